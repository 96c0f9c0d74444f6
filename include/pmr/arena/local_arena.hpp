// local_arena<N>: a chunked arena with an N-byte buffer inside the object, so
// a workload that fits takes nothing from the upstream (BDE's local
// sequential allocator; std::pmr::monotonic_buffer_resource over a stack
// array, without the array beside it).
//
// It is a `chunked_arena_resource` whose `initial_buffer` is its own member
// (see chunked_arena_resource.hpp for what the buffer does): blocks come from
// the buffer first, then from chunks of the upstream that grow from N;
// `reset()`, `clear()` and `release()` make the buffer current again, and it
// never goes to the upstream. Declared as a local variable, the buffer is on
// the stack: a function's scratch containers cost no heap allocation while
// they fit. Every call forwards to the inner arena, whose type is final, so
// only the call through `std::pmr::memory_resource` is virtual.
//
// Built the six ways with `chunked_arena_options` (their `initial_buffer`
// must be empty: the buffer is the object's; its default name is
// "local_arena"). Neither copyable nor movable: the arena points into itself.
// `sizeof(local_arena<N>)` is N plus the arena's own size (`stats()` and
// `inner()` tell the rest).
//
// Choose it for short-lived scratch memory of a bounded, usually small size
// (a parse, a request, a frame's temporaries) where the common case should
// not touch the heap; choose chunked_arena_resource with an `initial_buffer`
// when the buffer should live elsewhere (a member, a static), and
// stack_resource when lifetimes nest.
//
// Thread safety: none; an arena belongs to one thread at a time.
//
// Example:
//   pmrkit::local_arena<1024> scratch(std::pmr::null_memory_resource());  // only its buffer
//   std::pmr::vector<std::pmr::string> words(&scratch);
//   words.reserve(4);
//   words.emplace_back("short");
//   words.emplace_back("strings");
//   assert(scratch.stats().bytes_from_upstream == 0 && scratch.owns(words.data()));
#pragma once

#include <pmr/arena/arena_resource.hpp>
#include <pmr/arena/chunked_arena_resource.hpp>
#include <pmr/core/options.hpp>

#include <concepts>
#include <cstddef>
#include <memory_resource>
#include <string_view>

namespace pmrkit {

template <std::size_t N>
class local_arena final : public arena_resource {
  static_assert(N > 0, "pmrkit::local_arena: the buffer needs at least one byte");

 public:
  /// The inner arena's options over `upstream`, its initial buffer this
  /// object's. Throws std::invalid_argument naming the field for what
  /// chunked_arena_resource rejects, or a non-empty `initial_buffer`.
  explicit local_arena(const chunked_arena_options& options,
                       std::pmr::memory_resource* upstream = std::pmr::get_default_resource())
      : arena_(with_buffer(options), upstream) {}
  /// The default options over the default resource, or over `upstream` (a
  /// template, so that `{}` never reads as a null upstream). The cheap forms
  /// to build per call: no options object to copy.
  local_arena() : local_arena(std::pmr::get_default_resource()) {}
  template <std::derived_from<std::pmr::memory_resource> Upstream>
  explicit local_arena(Upstream* upstream) : arena_(default_options, buffer_, upstream, true) {}
  /// Not copyable. Declared on a non-const reference so that `{}` does not
  /// convert to it and `local_arena a({})` means the default options.
  local_arena(local_arena&) = delete;
  local_arena& operator=(const local_arena&) = delete;
  ~local_arena() override = default;

  /// The buffer's size.
  static constexpr std::size_t buffer_size = N;

  void reset() noexcept override { arena_.reset(); }
  /// Everything free; every chunk from the upstream goes back, the buffer stays.
  void clear() noexcept { arena_.clear(); }
  void release() noexcept override { arena_.release(); }
  std::size_t shrink() noexcept override { return arena_.shrink(); }
  [[nodiscard]] arena_checkpoint checkpoint() const noexcept override {
    return arena_.checkpoint();
  }
  void rewind(const arena_checkpoint& marker) override { arena_.rewind(marker); }
  bool try_resize(void* p, std::size_t old_size, std::size_t new_size,
                  std::size_t alignment) noexcept override {
    return arena_.try_resize(p, old_size, new_size, alignment);
  }
  [[nodiscard]] arena_stats stats() const noexcept override { return arena_.stats(); }
  [[nodiscard]] arena_strategy strategy() const noexcept override { return arena_.strategy(); }
  [[nodiscard]] std::string_view name() const noexcept override { return arena_.name(); }
  [[nodiscard]] std::pmr::memory_resource* upstream_resource() const noexcept override {
    return arena_.upstream_resource();
  }
  [[nodiscard]] bool owns(const void* p) const noexcept override { return arena_.owns(p); }
  /// The arena's options, its initial buffer this object's.
  [[nodiscard]] const chunked_arena_options& options() const noexcept { return arena_.options(); }
  /// The arena inside, for code that takes a chunked_arena_resource.
  [[nodiscard]] chunked_arena_resource& inner() noexcept { return arena_; }

 private:
  static constexpr chunked_arena_options default_options{.name = "local_arena"};

  chunked_arena_options with_buffer(chunked_arena_options options) noexcept(false) {
    require_option(options.initial_buffer.empty(), "local_arena", "initial_buffer",
                   "must be empty: a local_arena's buffer is its own");
    options.initial_buffer = buffer_;
    if (options.name == chunked_arena_options{}.name) options.name = "local_arena";
    return options;
  }

  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    return arena_.allocate(bytes, alignment);
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    arena_.deallocate(p, bytes, alignment);
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  // Declared before the arena: there before it, and still there when the
  // arena gives it back (unpoisoned) on destruction.
  alignas(std::max_align_t) std::byte buffer_[N];
  chunked_arena_resource arena_;
};

}  // namespace pmrkit
