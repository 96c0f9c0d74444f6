// fallback_resource<Primary>: a bounded primary resource, and a secondary for
// what it cannot serve.
//
// A request goes to the primary; when that throws std::bad_alloc (it is full,
// its upstream failed, or it refuses the size) the secondary serves it. A
// block goes back to the primary when `primary.owns(p)`, else to the
// secondary, so the primary must model `owning_resource`: a memory resource
// whose `owns(p)` is true for every block it handed out. The class is a
// template over the primary's type, so owns() and the primary's allocate and
// deallocate are called on the concrete type: devirtualized, and inlined
// where the primary's fast path is in its header.
//
// Models of owning_resource: pool_resource with `on_mismatch = reject` (a
// forwarded request is the pool's upstream's, and its owns() is false),
// chunked_arena_resource, stack_resource, vmem_arena_resource and the
// arena_resource port; multipool_resource and concurrent_pool_resource only
// when no request exceeds their largest class, and buddy_resource only when
// none exceeds a region (larger ones are their upstream's). A deallocation costs one owns(): a
// search of the chunks for the pools and arenas.
//
// Choose it for a fixed-capacity fast resource (a pool over a fixed buffer,
// an arena with a bounded upstream) that should overflow to the heap instead
// of failing. `stats()` counts what the secondary served. Each request the
// primary refuses costs an exception, so a primary that is often full is
// better put behind a size_router_resource or given room.
//
// Constructed with the primary first, then as every decorator:
// `f(&primary)`, `f(&primary, secondary)`, `f(&primary, options)`,
// `f(&primary, options, secondary)`, `f(&primary, {})` or
// `f(&primary, {}, secondary)`; the secondary defaults to the default
// resource.
//
// Thread safety: as the primary's and the secondary's; its own figures are
// relaxed atomics updated on the secondary's path only, with read-modify-writes
// unless `threading = decorator_threading::serialized` says the calls never
// overlap (see <pmr/decorator/threading.hpp>).
//
// Example:
//   alignas(64) std::byte storage[4096];  // room for one chunk of the pool
//   std::pmr::monotonic_buffer_resource fixed(storage, sizeof storage,
//                                             std::pmr::null_memory_resource());
//   pmrkit::pool_resource pool({.block_size = 32, .initial_blocks = 64, .growth_factor = 1,
//                               .on_mismatch = pmrkit::pool_mismatch::reject},
//                              &fixed);
//   pmrkit::fallback_resource overflow(&pool, std::pmr::new_delete_resource());
//   {
//     std::pmr::list<int> values(100, 0, &overflow);  // 64 nodes in the pool, 36 on the heap
//     assert(pool.stats().blocks_in_use == 64 && overflow.stats().secondary_blocks_in_use == 36);
//   }
//   assert(overflow.stats().fallbacks == 36 && overflow.stats().secondary_blocks_in_use == 0);
#pragma once

#include <pmr/core/align.hpp>
#include <pmr/core/detail/relaxed_counter.hpp>
#include <pmr/core/upstream.hpp>
#include <pmr/decorator/threading.hpp>

#include <concepts>
#include <cstddef>
#include <memory_resource>
#include <new>
#include <string>
#include <string_view>
#include <type_traits>

namespace pmrkit {

/// A memory resource that can tell the blocks it handed out: `owns(p)` is
/// true for each of them until it is deallocated (and false for memory it
/// never handed out, such as another resource's blocks).
template <class Resource>
concept owning_resource = std::derived_from<Resource, std::pmr::memory_resource> &&
    requires(const Resource& resource, const void* p) {
  { resource.owns(p) }
  noexcept->std::same_as<bool>;
};

struct fallback_options {
  decorator_threading threading = decorator_threading::concurrent;
  std::string_view name = "fallback";  ///< shown in errors (copied)
};

struct fallback_stats {
  std::size_t fallbacks = 0;  ///< requests the primary refused and the secondary served
  std::size_t secondary_blocks_in_use = 0;  ///< of those, the ones not yet freed
  std::size_t secondary_bytes_in_use = 0;   ///< and their bytes
};

template <owning_resource Primary>
class fallback_resource final : public std::pmr::memory_resource {
 public:
  /// Throws std::invalid_argument when `primary` or `secondary` is null.
  explicit fallback_resource(
      Primary* primary, fallback_options options = {},
      std::pmr::memory_resource* secondary = std::pmr::get_default_resource())
      : name_(options.name),
        primary_(require_upstream(primary, "pmrkit::fallback_resource", "primary")),
        secondary_(require_upstream(secondary, "pmrkit::fallback_resource", "secondary")),
        threading_(options.threading) {}
  /// The default options, `primary` and `secondary` (a template, so that `{}`
  /// never reads as a null secondary).
  template <std::convertible_to<std::pmr::memory_resource*> Secondary>
  explicit fallback_resource(Primary* primary, Secondary secondary)
      : fallback_resource(primary, fallback_options{}, secondary) {}
  fallback_resource(const fallback_resource&) = delete;
  fallback_resource& operator=(const fallback_resource&) = delete;
  ~fallback_resource() override = default;

  // Observers.

  [[nodiscard]] fallback_stats stats() const noexcept {
    return {.fallbacks = fallbacks_.load(),
            .secondary_blocks_in_use = secondary_blocks_.load(),
            .secondary_bytes_in_use = secondary_bytes_.load()};
  }
  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  [[nodiscard]] Primary* primary_resource() const noexcept { return primary_; }
  [[nodiscard]] std::pmr::memory_resource* secondary_resource() const noexcept {
    return secondary_;
  }
  [[nodiscard]] decorator_threading threading() const noexcept { return threading_; }

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    check_request(bytes, alignment, name_);
    try {
      return primary_->allocate(bytes, alignment);
    } catch (const std::bad_alloc&) {
      // The secondary is asked below, once this exception is gone.
    }
    void* p = allocate_from_upstream(secondary_, bytes, alignment, name_);
    fallbacks_.add(1, threading_);
    secondary_blocks_.add(1, threading_);
    secondary_bytes_.add(bytes, threading_);
    return p;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    if (primary_->owns(p)) [[likely]] {
      primary_->deallocate(p, bytes, alignment);
      return;
    }
    secondary_->deallocate(p, bytes, alignment);
    secondary_blocks_.subtract(1, threading_);
    secondary_bytes_.subtract(bytes, threading_);
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  std::string name_;
  Primary* primary_;
  std::pmr::memory_resource* secondary_;
  decorator_threading threading_;
  detail::relaxed_counter<std::size_t> fallbacks_;
  detail::relaxed_counter<std::size_t> secondary_blocks_;
  detail::relaxed_counter<std::size_t> secondary_bytes_;
};

}  // namespace pmrkit
