// concurrent_arena_resource: a thread-safe arena; each thread bumps in chunks
// of its own, taken from a shared upstream, and everything is freed in bulk.
//
// Each thread that allocates gets a slot of its own: a chunk chain
// (detail/bump_chain.hpp, as chunked_arena_resource's) that only that thread
// bumps in. The fast path finds the calling thread's slot in a thread_local
// entry (the arena it used last, told apart by an id never reused) and bumps
// there: no lock and no locked instruction. Another arena, or a thread's
// first request, goes through the thread's registry (its arenas, pruned of
// destroyed ones when it grows, so a thread's memory stays bounded however
// many arenas a program makes) and, for a new slot, the arena's mutex. Chunks
// grow per slot as chunked_arena_options say (`initial_chunk_size` ×
// `growth_factor` up to `max_chunk_size`); a request larger than the next
// chunk gets a chunk of its size in the thread's chain. The upstream is
// shared and need not be thread-safe: the arena serialises its own upstream
// calls (a mutex around taking and returning chunks, nothing else).
//
// `deallocate` frees nothing but the calling thread's newest block, which is
// rolled back (as chunked_arena_resource does); any other free is a no-op
// until reset() or release(). `reset()` makes everything free and keeps every
// chunk of every slot (a second identical pass takes nothing from the
// upstream); `shrink()` returns the chunks kept beyond each slot's position;
// `release()` returns everything. The destructor calls release().
//
// Threads that exit. A slot's chunks stay until reset() or release() (the
// blocks the thread handed out may still be in use elsewhere). The slot is
// reused: the next thread that allocates takes a slot whose thread exited
// (after its blocks, which stay in use) before the arena makes a new one, so
// there are as many slots as threads ever allocated at once (`thread_slots()`).
// A thread that allocates from a thread_local destructor, after its registry
// is gone, gets a slot that is never reused.
//
// No checkpoints. Unlike the single-threaded arenas it does not implement the
// arena port (arena_resource): a marker names one position of one sequence,
// and here every thread has a sequence of its own interleaved in time with the
// others, so "everything allocated after the marker" cannot be told without
// stopping every thread. A thread that wants markers of its own uses a
// chunked_arena_resource over this one, or of its own.
//
// Choose it when several threads allocate short-lived blocks that are freed
// together (a parallel parse, a frame built by workers, a request fanned out);
// choose chunked_arena_resource when one thread allocates (no slot lookup),
// synchronized_resource over a chunked arena when threads rarely allocate (one
// arena, one lock), and concurrent_pool_resource when blocks are freed one by
// one and their memory must serve again.
//
// In checked builds (PMRKIT_CHECKED) a deallocate of a pointer that lies in
// no chunk of the arena is a `foreign_pointer` violation, one of memory past
// the calling thread's position (a block already rolled back) a
// `double_free`, and a rollback with another size than the allocation's a
// `size_mismatch`. The cost: the arena keeps a map of its chunks (taken from
// the global heap, updated under the upstream mutex when a chunk is taken or
// returned), and every free that is not a rollback locks that mutex to look
// the pointer up (logarithmic in the chunks). Unchecked builds keep no map and
// a free that is not a rollback costs a comparison. Checked builds also fill
// and poison free chunk memory for ASan as chunked_arena_resource does.
//
// Thread safety: allocate and deallocate from any threads at once.
// reset(), release(), shrink(), stats(), owns() and the destructor only when
// no thread allocates or deallocates (the owner, between phases: a thread
// join or another synchronisation must order them); threads that used the
// arena may still run, or exit meanwhile. The slots and the threads'
// registries come from the global heap, not from the upstream, so
// `stats().bytes_from_upstream` is exactly what the upstream handed out.
//
// Example:
//   pmrkit::concurrent_arena_resource arena({.initial_chunk_size = 4096});
//   std::vector<std::thread> workers;
//   for (int t = 0; t < 4; ++t) {
//     workers.emplace_back([&arena] {
//       std::pmr::vector<int> local(100, 7, &arena);  // bumped in this thread's own chunk
//       assert(local[99] == 7);
//     });
//   }
//   for (std::thread& worker : workers) worker.join();
//   assert(arena.thread_slots() >= 1 && arena.stats().chunk_count >= 1);
//   arena.reset();  // by the owner, when no thread allocates: every chunk is kept
//   assert(arena.stats().bytes_in_use == 0 && arena.stats().bytes_from_upstream > 0);
#pragma once

#include <pmr/arena/arena_resource.hpp>
#include <pmr/arena/detail/bump_chain.hpp>
#include <pmr/core/align.hpp>
#include <pmr/core/attributes.hpp>
#include <pmr/core/config.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <memory_resource>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>

namespace pmrkit {

struct concurrent_arena_options {
  /// Bytes of each thread's first chunk (header included).
  std::size_t initial_chunk_size = 4096;
  std::size_t max_chunk_size = 65536;  ///< each thread's growth stops here
  /// 1 to 16; 1 keeps every chunk of a thread at initial_chunk_size.
  std::size_t growth_factor = 2;
  std::size_t alignment = alignof(std::max_align_t);  ///< the least alignment of every block
  /// Requests larger than this throw allocation_error (out of capacity).
  std::size_t size_limit = std::numeric_limits<std::size_t>::max();
  std::string_view name = "concurrent_arena";  ///< shown in errors and violations (copied)
};

namespace detail {

/// The arena's view of its upstream: every call under one mutex, counting
/// what is held (and, in checked builds, where each chunk lies). The slots'
/// chains take their chunks through it.
class concurrent_arena_upstream final : public std::pmr::memory_resource {
 public:
  explicit concurrent_arena_upstream(std::pmr::memory_resource* upstream) noexcept
      : upstream_(upstream) {}
  [[nodiscard]] std::pmr::memory_resource* upstream() const noexcept { return upstream_; }
  [[nodiscard]] std::size_t bytes_from_upstream() const noexcept;
  [[nodiscard]] std::size_t peak_bytes_from_upstream() const noexcept;
#if PMRKIT_CHECKED
  /// True when `p` lies in a chunk held now.
  [[nodiscard]] bool holds(const void* p) const noexcept;
#endif

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override;
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override;
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  mutable std::mutex mutex_;
  std::pmr::memory_resource* upstream_;
  std::size_t from_upstream_ = 0;
  std::size_t peak_ = 0;
#if PMRKIT_CHECKED
  std::map<std::uintptr_t, std::size_t> chunks_;  // start → size
#endif
};

/// One thread's part of an arena: written by the thread that holds it only
/// (and by the owner's bulk operations when no thread allocates).
struct alignas(64) concurrent_arena_slot {
  concurrent_arena_slot(chunk_growth growth, std::size_t alignment,
                        std::pmr::memory_resource* upstream) noexcept
      : chain(growth, alignment, upstream) {}

  bump_chain chain;
  concurrent_arena_slot* next = nullptr;  // the arena's list, under its mutex
  bool taken = true;                      // held by a running thread; under the arena's mutex
#if PMRKIT_CHECKED
  const void* last_block = nullptr;  // to tell a rollback with a wrong size
  std::size_t last_size = 0;
#endif
};

/// The arena the thread allocated from last, and its slot there. Trivial and
/// constant-initialised: reading it is one TLS load.
struct concurrent_arena_last {
  std::uint64_t id;  // 0: none
  concurrent_arena_slot* slot;
};
PMRKIT_TLS_INITIAL_EXEC inline constinit thread_local concurrent_arena_last
    concurrent_arena_last_used{0, nullptr};

struct concurrent_arena_control;  // shared by the arena and the threads' registries (source)

}  // namespace detail

class concurrent_arena_resource final : public std::pmr::memory_resource {
 public:
  /// Throws std::invalid_argument naming the field when an option is invalid
  /// (initial_chunk_size below 256 bytes, max_chunk_size below
  /// initial_chunk_size, growth_factor not 1 to 16, alignment not a power of
  /// two or above 4096) or `upstream` is null.
  explicit concurrent_arena_resource(
      const concurrent_arena_options& options = {},
      std::pmr::memory_resource* upstream = std::pmr::get_default_resource());
  /// The default options over `upstream` (a template, so that `{}` never
  /// reads as a null upstream).
  template <std::derived_from<std::pmr::memory_resource> Upstream>
  explicit concurrent_arena_resource(Upstream* upstream)
      : concurrent_arena_resource(concurrent_arena_options{}, upstream) {}
  /// Not copyable. Declared on a non-const reference so that `{}` does not
  /// convert to it and `concurrent_arena_resource a({})` means the default options.
  concurrent_arena_resource(concurrent_arena_resource&) = delete;
  concurrent_arena_resource& operator=(const concurrent_arena_resource&) = delete;
  /// release(); only when no thread allocates (threads that used it may still run).
  ~concurrent_arena_resource() override;

  // Bulk operations: only when no thread allocates or deallocates.

  /// Everything is free; every chunk of every slot is kept.
  void reset() noexcept;
  /// Everything goes back upstream; each slot's growth starts again.
  void release() noexcept;
  /// Gives back the chunks kept beyond each slot's position; returns the bytes given back.
  std::size_t shrink() noexcept;

  // Observers: only when no thread allocates or deallocates.

  /// The figures of arena_stats over every slot; bytes_reserved is
  /// bytes_from_upstream (no initial buffer); large_* are 0 (a large request
  /// takes a chunk of the thread's chain); current_chunk_size is the largest
  /// next chunk size of a slot (initial_chunk_size before any); peak_bytes_in_use
  /// is the most seen at a reset, release, shrink, or now.
  [[nodiscard]] arena_stats stats() const noexcept;
  /// Slots made so far: the most threads that held one at once (exited
  /// threads' slots are reused), plus any made for exiting threads.
  [[nodiscard]] std::size_t thread_slots() const noexcept;
  /// True when `p` lies in a chunk of the arena.
  [[nodiscard]] bool owns(const void* p) const noexcept;
  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  [[nodiscard]] std::pmr::memory_resource* upstream_resource() const noexcept {
    return upstream_.upstream();
  }
  [[nodiscard]] const concurrent_arena_options& options() const noexcept { return options_; }

 private:
  [[nodiscard]] std::size_t extent_of(std::size_t bytes) const noexcept {
    return block_extent(bytes, options_.alignment);
  }

  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    const detail::concurrent_arena_last& last = detail::concurrent_arena_last_used;
    if (last.id == id_ && alignment <= options_.alignment && is_power_of_two(alignment) &&
        bytes <= fast_limit_) [[likely]] {
      if (void* p = last.slot->chain.try_bump_at_cursor(extent_of(bytes))) [[likely]] {
#if PMRKIT_CHECKED
        last.slot->last_block = p;
        last.slot->last_size = bytes;
#endif
        return p;
      }
    }
    return allocate_slow(bytes, alignment);
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    const detail::concurrent_arena_last& last = detail::concurrent_arena_last_used;
    if (last.id == id_ && bytes <= fast_limit_) [[likely]] {
      auto* block = static_cast<std::byte*>(p);
      // The thread's most recent block ends at its cursor: roll it back.
      if (last.slot->chain.move_cursor(block + extent_of(bytes), block)) [[likely]] {
#if PMRKIT_CHECKED
        last.slot->last_block = nullptr;
#endif
        return;
      }
    }
    deallocate_slow(p, bytes, alignment);
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  void* allocate_slow(std::size_t bytes, std::size_t alignment);
  void deallocate_slow(void* p, std::size_t bytes, std::size_t alignment);
  // The calling thread's slot, found or (create) made; made the thread's last used.
  [[nodiscard]] detail::concurrent_arena_slot* slot_of_this_thread(bool create);
  [[nodiscard]] detail::concurrent_arena_slot* claim_slot();
  template <class Apply>
  std::size_t on_every_chain(Apply apply) noexcept;
  void note_peak() noexcept;  // under the control mutex
  [[nodiscard]] std::size_t used_now() const noexcept;

  // Read on the fast paths: next to the vtable pointer.
  std::uint64_t id_;
  std::size_t fast_limit_;  // size_limit, capped so rounding an extent cannot overflow
  concurrent_arena_options options_;
  std::string name_;
  detail::chunk_growth growth_;
  detail::concurrent_arena_upstream upstream_;
  std::shared_ptr<detail::concurrent_arena_control> control_;
  detail::concurrent_arena_slot* slots_ = nullptr;  // under control_'s mutex
  std::size_t slot_count_ = 0;                      // likewise
  std::size_t peak_used_ = 0;                       // likewise
};

static_assert(std::is_base_of_v<std::pmr::memory_resource, concurrent_arena_resource>);
static_assert(!std::is_copy_constructible_v<concurrent_arena_resource> &&
              !std::is_move_constructible_v<concurrent_arena_resource>);

}  // namespace pmrkit
