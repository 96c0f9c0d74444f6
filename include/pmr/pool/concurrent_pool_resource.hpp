// concurrent_pool_resource: a thread-safe multi-size pool, with a cache per
// thread over a shared depot; a drop-in for std::pmr::synchronized_pool_resource.
//
// Requests are served by size classes (detail/size_classes.hpp: 16-byte steps
// up to 128, then four classes per doubling). Each thread that uses the
// resource gets its own cache: per class a magazine (detail/block_magazine.hpp,
// the fast path pool_resource and multipool_resource take too) of up to
// `cache_bytes_per_class` bytes of blocks (at least 4 blocks, at most 256).
// Allocating pops the newest block's address and deallocating pushes one,
// with no lock, no atomic read-modify-write and no access to the block
// itself. When a thread's magazine is empty it takes a batch of blocks from
// the class's depot (batches other threads gave back, else fresh blocks
// carved from the class's chunks); when it is full it gives its older half
// back to the depot as one batch. The depots are locked,
// once per batch. A block may be freed by any thread, not only the one that
// allocated it. Requests above the largest class, or aligned beyond what a
// class offers, go to the upstream and are tracked, so `release()` returns
// them too.
//
// When a thread exits, its caches go back to the depots of every resource it
// used (libstdc++'s synchronized_pool_resource leaves them orphaned until
// release()). A resource may be destroyed while threads that used it still
// run: they forget it, and exit later without touching its memory.
//
// It takes `std::pmr::pool_options` with the standard's meaning:
// `largest_required_pool_block` is the largest request served by a pool
// (0: 64 KiB; at most 1 MiB; rounded up to a class), `max_blocks_per_chunk`
// caps the blocks a chunk holds (0 or above: 1024; chunks stay below 64 KiB
// unless one block is larger). Its own `concurrent_pool_options` say the same
// and add a name and the cache size; both build it the ways every pmrkit
// resource is built (`concurrent_pool_resource r;`, `r(upstream)`,
// `r(options)`, `r(options, upstream)`, `r({})`, `r({}, upstream)`, where `{}`
// means `concurrent_pool_options`), and the standard's two-argument form is
// not explicit, as the standard's is not.
//
// Choose it when several threads allocate and free at once (worker pools,
// message passing between threads); choose pool_resource or
// multipool_resource for one thread (no cache to fill, no locks), or either
// under synchronized_resource when threads rarely touch it.
//
// In checked builds a pointer that is no block of its class is a
// `foreign_pointer` violation, and a block freed with a size of another class
// a `size_mismatch`. A double free is reported when the block is free in its
// class's chunks or still in the freeing thread's cache, not when it sits in
// another thread's cache or a depot batch. Free blocks are filled (but for
// the first two words, the links, of those in depot batches). In checked builds and under
// AddressSanitizer free blocks, in thread caches, depot batches and chunks
// alike, are poisoned for ASan and memcheck (core/poison.hpp), links included
// (unpoisoned only around the resource's own accesses to them), so any use of
// a freed block is reported.
//
// Thread safety: allocate, deallocate, shrink, stats, class_stats and owns
// may be called from any thread at once. release() (and the destructor) only
// when no other thread uses the resource; threads that used it may still
// run, or exit meanwhile. Its bookkeeping (a depot per class; for each thread
// that uses it a cache of 16 bytes per class plus 8 per block its magazines
// can hold, about 27 KiB with the default options; a control block shared
// with those threads) comes from the global heap, not from the upstream, so
// release() returns every upstream byte while the caches stay in place, and
// `stats().bytes_from_upstream` (the chunks and the large blocks) is exactly
// what the upstream has handed it.
//
// Example:
//   pmrkit::concurrent_pool_resource pool;  // default options, over the default resource
//   void* block = pool.allocate(100);
//   std::thread worker([&] { pool.deallocate(block, 100); });  // freed by another thread
//   worker.join();  // the worker's cache went back to the depot when it exited
//   assert(pool.stats().blocks_in_use == 0 && pool.stats().thread_caches == 1);
//   pool.release();  // no other thread uses it now
//   assert(pool.stats().bytes_from_upstream == 0 && pool.stats().peak_bytes_from_upstream > 0);
#pragma once

#include <pmr/core/align.hpp>
#include <pmr/core/attributes.hpp>
#include <pmr/core/config.hpp>
#include <pmr/core/detail/large_blocks.hpp>
#include <pmr/core/poison.hpp>
#include <pmr/pool/detail/block_magazine.hpp>
#include <pmr/pool/detail/block_pool.hpp>
#include <pmr/pool/detail/size_classes.hpp>

#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <memory_resource>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>

namespace pmrkit {

struct concurrent_pool_options {
  std::size_t max_blocks_per_chunk = 0;         ///< 0: the default (1024)
  std::size_t largest_required_pool_block = 0;  ///< 0: the default (64 KiB)
  /// Bytes of free blocks each thread keeps per class (at least 4, at most
  /// 256 blocks); not 0.
  std::size_t cache_bytes_per_class = std::size_t{32} << 10;
  std::string_view name = "concurrent_pool";  ///< shown in errors and violations (copied)
};

/// One size class. Counts kept by several threads: a snapshot. The names
/// mean what docs/contract.md says.
struct concurrent_pool_class_stats {
  std::size_t bytes_in_use = 0;         ///< blocks_in_use * block_size
  std::size_t blocks_in_use = 0;        ///< held by callers
  std::size_t bytes_from_upstream = 0;  ///< the class's chunks
  std::size_t chunk_count = 0;
  std::size_t blocks_cached = 0;    ///< free, in thread caches
  std::size_t blocks_in_depot = 0;  ///< free, in depot batches
  std::size_t blocks_out = 0;       ///< taken from the chunks: in use, cached or in the depot
  std::size_t capacity_blocks = 0;  ///< blocks in all chunks
  std::size_t block_size = 0;
};

/// Totals over the classes and the large blocks. A snapshot. The names mean
/// what docs/contract.md says.
struct concurrent_pool_stats {
  std::size_t bytes_in_use = 0;   ///< block sizes of pooled blocks held by callers
  std::size_t blocks_in_use = 0;  ///< pooled blocks held by callers (not large blocks)
  /// Chunks and large blocks, headers included (the bookkeeping is the global heap's).
  std::size_t bytes_from_upstream = 0;
  std::size_t peak_bytes_from_upstream = 0;
  std::size_t chunk_count = 0;
  std::size_t large_blocks_in_use = 0;  ///< requests above the largest class or over-aligned
  std::size_t large_bytes_in_use = 0;   ///< their sizes as requested
  std::size_t blocks_cached = 0;        ///< free, in thread caches
  std::size_t blocks_in_depot = 0;      ///< free, in depot batches
  std::size_t thread_caches = 0;  ///< threads holding a cache (those that used it and still run)
};

class concurrent_pool_resource;

namespace detail {

/// A thread's magazine of one class: stats() reads its count from other threads.
using shared_magazine = block_magazine<magazine_count::shared>;

/// The resource the thread used last, and its cache there. Resources are told
/// apart by an id never reused, so a resource built where another was sees
/// none of the old one's cache.
struct concurrent_pool_slot {
  std::uint64_t id;       // 0: none
  shared_magazine* bins;  // one per class
};

/// Trivial and constant-initialised: reading it is one TLS load, no wrapper call.
PMRKIT_TLS_INITIAL_EXEC inline constinit thread_local concurrent_pool_slot
    concurrent_pool_last_used{0, nullptr};

struct concurrent_pool_depot;    // one per class (source file)
struct concurrent_thread_cache;  // one per thread and resource
struct concurrent_pool_control;  // shared by the resource and the threads' registries

}  // namespace detail

class concurrent_pool_resource final : public std::pmr::memory_resource {
 public:
  /// Throws std::invalid_argument naming the field: cache_bytes_per_class 0,
  /// a null upstream. Out-of-range pool options are replaced, as the standard
  /// says. Throws std::bad_alloc when the bookkeeping cannot be allocated.
  explicit concurrent_pool_resource(
      concurrent_pool_options options,
      std::pmr::memory_resource* upstream = std::pmr::get_default_resource());
  /// The constructors of std::pmr::synchronized_pool_resource. (Templates, so
  /// that `{}` always means the options above.)
  concurrent_pool_resource() : concurrent_pool_resource(concurrent_pool_options{}) {}
  template <std::convertible_to<std::pmr::memory_resource*> Upstream>
  explicit concurrent_pool_resource(Upstream upstream)
      : concurrent_pool_resource(concurrent_pool_options{}, upstream) {}
  template <std::same_as<std::pmr::pool_options> Options>
  explicit concurrent_pool_resource(const Options& options)
      : concurrent_pool_resource(options, std::pmr::get_default_resource()) {}
  /// Not explicit, as the standard's is not.
  template <std::same_as<std::pmr::pool_options> Options>
  concurrent_pool_resource(const Options& options, std::pmr::memory_resource* upstream)
      : concurrent_pool_resource(
            concurrent_pool_options{
                .max_blocks_per_chunk = options.max_blocks_per_chunk,
                .largest_required_pool_block = options.largest_required_pool_block},
            upstream) {}
  /// Not copyable. (Declared as taking a non-const reference, which an
  /// initializer `{}` cannot bind to, so that `concurrent_pool_resource r({})`
  /// means the options.)
  concurrent_pool_resource(concurrent_pool_resource&) = delete;
  concurrent_pool_resource& operator=(const concurrent_pool_resource&) = delete;
  /// release(), under the same condition: no other thread uses it any more.
  ~concurrent_pool_resource() override;

  // Bulk operations.

  /// Gives back every chunk and every large block: every block is free and
  /// every thread's cache empty. Only when no other thread uses the resource
  /// (threads that used it may still run, or exit meanwhile).
  void release() noexcept;
  /// Returns the depot batches to their classes' chunks and gives back the
  /// chunks whose blocks are all free; returns the bytes given back upstream.
  /// Blocks in thread caches count as in use. Safe to call at any time.
  std::size_t shrink() noexcept;

  // Observers.

  /// The options in effect, as std::pmr::synchronized_pool_resource::options().
  [[nodiscard]] std::pmr::pool_options options() const noexcept { return effective_; }
  /// A snapshot: under concurrent use the counts may be momentarily
  /// inconsistent (a block moving between a cache and a depot).
  [[nodiscard]] concurrent_pool_stats stats() const noexcept;
  [[nodiscard]] std::size_t class_count() const noexcept { return class_count_; }
  /// Class `index` (below class_count()), a snapshot as stats().
  [[nodiscard]] concurrent_pool_class_stats class_stats(std::size_t index) const noexcept;
  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  [[nodiscard]] std::pmr::memory_resource* upstream_resource() const noexcept { return upstream_; }
  /// True when `p` is the start of a pooled block, in use or free (large
  /// blocks are the upstream's).
  [[nodiscard]] bool owns(const void* p) const noexcept;

  /// Bounds of a thread cache's blocks per class, whatever cache_bytes_per_class says.
  static constexpr std::size_t min_cached_blocks = 4;
  static constexpr std::size_t max_cached_blocks = 256;

 private:
  friend struct detail::concurrent_pool_control;

  // Requests at this alignment or less fit every class.
  static constexpr std::size_t class_min_alignment = detail::size_classes::min_size;

  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    if (bytes <= largest_ && alignment <= class_min_alignment && is_power_of_two(alignment))
        [[likely]] {
      const detail::concurrent_pool_slot& slot = detail::concurrent_pool_last_used;
      if (slot.id == id_) [[likely]] {
        const std::size_t index = detail::size_classes::index_of(bytes);
        if (void* p = slot.bins[index].try_pop()) [[likely]] {
          detail::revive(p, detail::size_classes::class_size(index));
          return p;
        }
      }
    }
    return allocate_slow(bytes, alignment);
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    if (bytes <= largest_ && alignment <= class_min_alignment) [[likely]] {
      const std::size_t index = detail::size_classes::index_of(bytes);
#if PMRKIT_CHECKED
      if (!check_deallocate(p, bytes, alignment, index)) return;
#endif
      const detail::concurrent_pool_slot& slot = detail::concurrent_pool_last_used;
      if (slot.id == id_) [[likely]] {
        if (slot.bins[index].try_push(p)) [[likely]] {
          detail::retire(p, detail::size_classes::class_size(index));
          return;
        }
      }
      deallocate_to_class(p, index);
      return;
    }
    deallocate_slow(p, bytes, alignment);
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  // Slow paths (source file).
  void* allocate_slow(std::size_t bytes, std::size_t alignment);
  void* allocate_from_class(std::size_t index);
  // A new chunk for `depot`'s pool (its mutex held), counted in from_upstream_.
  void* allocate_from_new_chunk(detail::block_pool& pool);
  // Counts what was taken from, or given back to, the upstream (any thread).
  void took(std::size_t bytes) noexcept;
  void gave_back(std::size_t bytes) noexcept {
    from_upstream_.fetch_sub(bytes, std::memory_order_relaxed);
  }
  void deallocate_slow(void* p, std::size_t bytes, std::size_t alignment);
  void deallocate_to_class(void* p, std::size_t index) noexcept;
  // This thread's cache, created on first use; nullptr when the thread is
  // exiting or the cache cannot be allocated (the depots serve it directly then).
  [[nodiscard]] detail::shared_magazine* cache_of_this_thread() noexcept;
  [[nodiscard]] detail::shared_magazine* find_or_create_cache() noexcept;
  void refill(std::size_t index, detail::shared_magazine& bin);
  void give_back_half(std::size_t index, detail::shared_magazine& bin) noexcept;
  // Called by a thread's registry as the thread exits, under the control mutex.
  void retire_cache(detail::concurrent_thread_cache* cache) noexcept;
  void destroy_caches() noexcept;
#if PMRKIT_CHECKED
  bool check_deallocate(void* p, std::size_t bytes, std::size_t alignment, std::size_t index) const;
#endif

  // Read on the fast path: next to the vtable pointer.
  std::uint64_t id_;
  std::size_t largest_;  // the block size of the largest class
  std::size_t class_count_;
  std::string name_;
  std::pmr::memory_resource* upstream_;
  std::pmr::pool_options effective_;
  detail::concurrent_pool_depot* depots_;  // class_count_ of them
  std::shared_ptr<detail::concurrent_pool_control> control_;
  detail::concurrent_thread_cache* caches_ = nullptr;  // guarded by control_'s mutex
  std::size_t cache_count_ = 0;                        // likewise
  mutable std::mutex large_mutex_;
  detail::large_blocks large_;
  // What is held from the upstream (chunks and large blocks), and its peak: kept on the slow
  // paths that take a chunk or a large block, under different locks, hence atomics.
  std::atomic<std::size_t> from_upstream_{0};
  std::atomic<std::size_t> peak_from_upstream_{0};
};

static_assert(std::is_base_of_v<std::pmr::memory_resource, concurrent_pool_resource>);

}  // namespace pmrkit
