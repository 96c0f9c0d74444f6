// buddy_resource: power-of-two blocks split from regions and merged back with
// their buddies, with its fragmentation in figures.
//
// A region is `region_size` bytes (a power of two) at an address aligned to
// its size. A request takes the smallest block of `min_block << k` bytes that
// holds it at its alignment; the block comes from the smallest free block
// that is large enough, halved as often as needed, each unused half staying
// free. A freed block merges with its buddy (the other half of the block it
// was split from) while the buddy is free. Both are O(log(region_size /
// min_block)). Every block is aligned to its size, so alignment up to the
// block size costs nothing. Requests larger than a region, or aligned beyond
// it, go to the upstream and are tracked so `release()` returns them.
//
// Merging is lazy (Barkley and Lee's lazy buddy): a freed block first goes to
// a bounded cache of its size (`cache_blocks_per_order` blocks, 16 by default;
// a pointer kept outside the block), and a request of that size takes the
// newest cached block, so a block freed and asked for again costs no merge and
// no split: a few instructions, inline, both ways. Cached blocks are merged
// with their buddies when the cache of their size is full (its older half),
// when a request cannot be served otherwise (all of them, before a new region
// is taken: a cache never makes a request fail or take a region), and by
// `coalesce()`, `shrink()` and `release()`. The figures stay exact: cached
// blocks count as free (`bytes_free`, `order_stats(k).free_blocks`; how many
// of them are cached: `bytes_cached`, `blocks_cached`), and
// `largest_free_block` is the largest block merging them would make, so it is
// still the largest request that succeeds now. stats() works that out without
// merging: from each cached block it climbs the orders while the buddy is free
// in the tree or would be once merged, looking blocks up in the trees and in
// the caches (nothing when nothing is cached; with the default caches full,
// about a quarter more than stats() costs anyway, which is a scan of every
// region's bitmaps; the lookups grow with the square of the cache size). After
// everything is freed and `coalesce()`, each region is one free block again.
// `cache_blocks_per_order = 0` merges at every free, as eager buddies do.
//
// The bookkeeping lives outside the blocks: per region and per block size,
// the set of free blocks is a bitmap with summary words (detail/bit_tree.hpp),
// split and merged by the one-region algorithm of detail/buddy_tree.hpp,
// in a metadata block taken from the upstream (about 0.4% of the region),
// and the tables that find the regions are taken from the upstream too; all
// of it counts in `stats().bytes_from_upstream`, and a failure to get any of
// it is an `allocation_error` naming the resource.
// Allocating and freeing never read or write the blocks themselves, so the
// memory may be memory the CPU should not touch (device or write-combined)
// and freeing cold blocks costs no cache misses. The size passed to
// deallocate names the block, so blocks have no headers.
//
// Regions come from the upstream when none has room (at most `max_regions`
// of them), or from a buffer the caller owns: each `region_size`-aligned
// window of the buffer becomes a region whose bytes outside the buffer are
// never handed out. `shrink()` returns upstream regions that are entirely
// free (and says how many bytes went back); `release()` returns everything
// taken from the upstream and makes the buffer free again.
//
// It is built the ways every pmrkit resource is: `buddy_resource r;`,
// `r(upstream)`, `r(options)`, `r(options, upstream)`, `r({})`,
// `r({}, upstream)`, and with a buffer first the same after it:
// `r(buffer)`, `r(buffer, upstream)`, `r(buffer, options)`,
// `r(buffer, options, upstream)`, `r(buffer, {})`, `r(buffer, {}, upstream)`
// (a buffer is anything that converts to std::span<std::byte>). `stats()` reports the bytes free,
// the largest free block, external fragmentation (1 - largest free / free) and internal
// fragmentation (bytes granted - bytes requested); `order_stats(k)` the free
// (and of them cached) and used blocks of each size.
//
// Choose it when blocks of widely varying sizes come and go and the memory
// must coalesce back into large blocks (a fixed region shared by buffers of
// many sizes, a GPU or DMA heap, long-running servers); choose
// multipool_resource when sizes repeat (it wastes less inside a block and is
// faster), an arena when everything is freed at once.
//
// In checked builds a pointer that is no block of the resource is a
// `foreign_pointer` violation, freeing a free block (cached or merged) a
// `double_free`, and a size that names another block size a `size_mismatch`;
// free blocks, cached ones included, are filled and poisoned for
// AddressSanitizer. Checked builds look the block up on every free, so they
// take the out-of-line paths. `verify()` checks every invariant of the
// bookkeeping, the caches included, without merging them (tests call it).
//
// Thread safety: none; use it from one thread at a time (or behind
// synchronized_resource).
//
// Example:
//   pmrkit::buddy_resource buddy({.region_size = 4096, .min_block = 64, .max_regions = 1});
//   void* a = buddy.allocate(100);  // a 128-byte block: 28 bytes of internal fragmentation
//   void* b = buddy.allocate(64);
//   assert(buddy.stats().internal_fragmentation == 28);
//   assert(buddy.stats().largest_free_block == 2048);  // 4096 = 64 + 64 + 128 + 1024 + 2048 free
//   buddy.deallocate(a, 100);  // both blocks wait in the caches, unmerged
//   buddy.deallocate(b, 64);
//   assert(buddy.order_stats(0).blocks_cached == 1 && buddy.stats().bytes_cached == 192);
//   assert(buddy.stats().largest_free_block == 4096);  // what merging them makes
//   assert(buddy.coalesce() == 2);                     // merged back into one block
//   assert(buddy.order_stats(buddy.order_count() - 1).free_blocks == 1);
//   assert(buddy.shrink() > 4096);  // the free region and its metadata go back upstream
//   assert(buddy.stats().chunk_count == 0);
#pragma once

#include <pmr/buddy/detail/buddy_tree.hpp>
#include <pmr/core/align.hpp>
#include <pmr/core/config.hpp>
#include <pmr/core/detail/large_blocks.hpp>
#include <pmr/core/poison.hpp>

#include <array>
#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory_resource>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace pmrkit {

struct buddy_options {
  static constexpr std::size_t unlimited = std::numeric_limits<std::size_t>::max();

  std::size_t region_size = std::size_t{1} << 20;  ///< a power of two, at least min_block
  std::size_t min_block = 64;  ///< a power of two; region_size / min_block <= 2^30
  /// Regions taken from the upstream, at most (0 with a buffer: the buffer only).
  std::size_t max_regions = unlimited;
  /// Freed blocks kept unmerged per block size, at most max_cache_blocks_per_order (lazy
  /// coalescing): a block freed and asked for again costs no merge and no split. 0: every
  /// free merges at once (eager).
  std::size_t cache_blocks_per_order = 16;
  std::string_view name = "buddy";  ///< shown in errors and violations (copied)

  static constexpr std::size_t max_cache_blocks_per_order = 1024;
};

/// The blocks of one size (min_block << order).
struct buddy_order_stats {
  std::size_t block_size = 0;
  /// Free blocks of this size: in the bit trees, and in the cache (blocks_cached of them).
  std::size_t free_blocks = 0;
  std::size_t blocks_in_use = 0;
  /// Of free_blocks, those freed into the cache and not merged yet (coalesce() merges them).
  std::size_t blocks_cached = 0;
};

/// The figures of a buddy_resource; the names of the contract's table mean
/// what docs/contract.md says, the others are its own.
struct buddy_stats {
  std::size_t bytes_in_use = 0;   ///< block sizes granted in the regions (not large blocks)
  std::size_t blocks_in_use = 0;  ///< blocks in the regions (not large blocks)
  /// Regions, their metadata, the region tables and large blocks (headers included).
  std::size_t bytes_from_upstream = 0;
  std::size_t peak_bytes_from_upstream = 0;
  std::size_t chunk_count = 0;          ///< regions taken from the upstream
  std::size_t large_blocks_in_use = 0;  ///< requests sent to the upstream
  std::size_t large_bytes_in_use = 0;   ///< their sizes as requested
  /// Laid out now, metadata held: from the upstream, and the buffer's windows from the first
  /// allocation on (until release(); capacity and the free figures count the buffer either way).
  std::size_t regions = 0;
  std::size_t capacity = 0;         ///< bytes the regions can hand out
  std::size_t bytes_requested = 0;  ///< what the callers asked for the blocks in use
  std::size_t bytes_free = 0;       ///< in free blocks, cached ones included
  /// Of bytes_free, in blocks waiting unmerged in the caches (0 after coalesce()).
  std::size_t bytes_cached = 0;
  /// The largest request that fits without a new region: the largest block the free blocks
  /// make once the cached ones are merged (an allocation merges them when it must).
  std::size_t largest_free_block = 0;
  double external_fragmentation = 0;  ///< 1 - largest_free_block / bytes_free (0 when none free)
  std::size_t internal_fragmentation = 0;  ///< bytes_in_use - bytes_requested
};

/// What buddy_resource's buffer constructors take: a std::span<std::byte>,
/// or anything that converts to one (an array of std::byte, a vector).
template <class Buffer>
concept buddy_buffer = std::convertible_to<Buffer, std::span<std::byte>>;

class buddy_resource final : public std::pmr::memory_resource {
 public:
  /// Regions from `upstream`. Throws std::invalid_argument naming the field
  /// when an option is invalid or `upstream` is null.
  explicit buddy_resource(buddy_options options,
                          std::pmr::memory_resource* upstream = std::pmr::get_default_resource())
      : buddy_resource(with_buffer{}, std::span<std::byte>{}, options, upstream) {}
  /// Default options. (The forms without options are templates, so that
  /// `{}` always means buddy_options.)
  buddy_resource() : buddy_resource(buddy_options{}) {}
  template <std::convertible_to<std::pmr::memory_resource*> Upstream>
  explicit buddy_resource(Upstream upstream) : buddy_resource(buddy_options{}, upstream) {}

  /// Regions over `buffer` (owned by the caller, outliving the resource)
  /// first, then from `upstream` up to `max_regions`. The metadata, the
  /// tables and the large blocks always come from `upstream`.
  template <buddy_buffer Buffer>
  explicit buddy_resource(Buffer&& buffer, buddy_options options,
                          std::pmr::memory_resource* upstream = std::pmr::get_default_resource())
      : buddy_resource(with_buffer{}, std::span<std::byte>(std::forward<Buffer>(buffer)), options,
                       upstream) {}
  template <buddy_buffer Buffer>
  explicit buddy_resource(Buffer&& buffer)
      : buddy_resource(with_buffer{}, std::span<std::byte>(std::forward<Buffer>(buffer)),
                       buddy_options{}, std::pmr::get_default_resource()) {}
  template <buddy_buffer Buffer, std::convertible_to<std::pmr::memory_resource*> Upstream>
  buddy_resource(Buffer&& buffer, Upstream upstream)
      : buddy_resource(with_buffer{}, std::span<std::byte>(std::forward<Buffer>(buffer)),
                       buddy_options{}, upstream) {}

  /// Not copyable. (Declared as taking a non-const reference, which an
  /// initializer `{}` cannot bind to, so that `buddy_resource r({})` means
  /// the options.)
  buddy_resource(buddy_resource&) = delete;
  buddy_resource& operator=(const buddy_resource&) = delete;
  ~buddy_resource() override;

  // Bulk operations.

  /// Gives back every upstream region, all metadata and every large block;
  /// the buffer's blocks are all free again.
  void release() noexcept;
  /// Gives back the upstream regions that are entirely free (with their
  /// metadata), after merging the cached blocks (coalesce()); returns the bytes
  /// given back upstream.
  std::size_t shrink() noexcept;
  /// Merges every cached block with its free buddies, as an eager free would
  /// have; returns how many blocks it took from the caches. The figures do not
  /// change (they already count cached blocks as what merging makes of them),
  /// only order_stats: blocks_cached becomes 0. O(cached blocks * orders).
  std::size_t coalesce() noexcept;

  // Observers.

  [[nodiscard]] buddy_stats stats() const noexcept;
  /// Block sizes: min_block << 0 .. min_block << (order_count() - 1) == region_size.
  [[nodiscard]] std::size_t order_count() const noexcept { return top_level_ + 1; }
  /// The blocks of min_block << `order` bytes (order below order_count()).
  [[nodiscard]] buddy_order_stats order_stats(std::size_t order) const noexcept;
  [[nodiscard]] std::size_t region_size() const noexcept { return region_size_; }
  /// The cache of each block size holds this many freed blocks at most (0: merged at once).
  [[nodiscard]] std::size_t cache_blocks_per_order() const noexcept { return cache_capacity_; }
  [[nodiscard]] std::size_t min_block() const noexcept { return std::size_t{1} << min_shift_; }
  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  [[nodiscard]] std::pmr::memory_resource* upstream_resource() const noexcept { return upstream_; }
  /// True when `p` lies in one of its regions (large blocks are the upstream's).
  [[nodiscard]] bool owns(const void* p) const noexcept;
  /// Checks the bookkeeping: the summary words match the bitmaps, no two free
  /// buddies in the bit trees are left unmerged, every cached block lies in a
  /// region at its size's alignment, no free or cached block overlaps another
  /// (or, in checked builds, a block in use), and free, cached and used blocks
  /// tile each region. It merges nothing: the caches are checked as they are.
  /// Returns an empty string, or what is wrong. O(region bytes / min_block).
  [[nodiscard]] std::string verify() const;

  struct region;  // the metadata of one region (defined in the source file)

 private:
  // The one constructor the others delegate to (a buffer, maybe empty).
  struct with_buffer {};
  buddy_resource(with_buffer, std::span<std::byte> buffer, buddy_options options,
                 std::pmr::memory_resource* upstream);

  // Where the region tables take their memory: from the upstream through
  // allocate_from_upstream (a failure is an allocation_error naming the buddy),
  // counted in the buddy's bytes_from_upstream.
  class table_resource final : public std::pmr::memory_resource {
   public:
    explicit table_resource(buddy_resource& owner) noexcept : owner_(&owner) {}
    table_resource(table_resource&) = delete;
    table_resource& operator=(const table_resource&) = delete;

   private:
    void* do_allocate(std::size_t bytes, std::size_t alignment) override;
    void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override;
    [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
      return this == &other;
    }
    buddy_resource* owner_;
  };

  // Levels 0 (min_block) to top_level_ (region_size), at most 2^30 apart.
  static constexpr std::size_t max_levels = detail::buddy_layout::max_levels;

  // The level (log2(block / min_block)) a small request needs; the caller
  // has checked bytes and alignment are at most the region size.
  [[nodiscard]] unsigned level_of(std::size_t bytes, std::size_t alignment) const noexcept {
    const std::size_t need = bytes > alignment ? bytes : alignment;
    const auto order = static_cast<unsigned>(std::bit_width(need - (need != 0)));
    return order > min_shift_ ? order - min_shift_ : 0;
  }
  [[nodiscard]] bool is_small(std::size_t bytes, std::size_t alignment) const noexcept {
    return (bytes > alignment ? bytes : alignment) <= region_size_;
  }
  [[nodiscard]] std::size_t block_size(unsigned level) const noexcept {
    return std::size_t{1} << (min_shift_ + level);
  }
  // The cache of `level`: cached_[level] blocks, the newest last.
  [[nodiscard]] void** cache_of(unsigned level) const noexcept {
    return cache_ + level * cache_capacity_;
  }
  // The fast paths: a block of the cache, or a freed block into it (no merge, no split, no
  // region lookup). Checked builds take the out-of-line paths, which check the block first.
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    if (is_small(bytes, alignment) && is_power_of_two(alignment)) [[likely]] {
      const unsigned level = level_of(bytes, alignment);
#if !PMRKIT_CHECKED
      if (cached_[level] != 0) [[likely]] {
        void* p = cache_of(level)[--cached_[level]];
        ++in_use_[level];
        bytes_requested_ += bytes;
        detail::revive(p, block_size(level));
        return p;
      }
#endif
      return allocate_block(bytes, alignment, level);
    }
    return allocate_large(bytes, alignment);
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    if (is_small(bytes, alignment)) [[likely]] {
      const unsigned level = level_of(bytes, alignment);
#if !PMRKIT_CHECKED
      if (cached_[level] < cache_limit_) [[likely]] {
        detail::retire(p, block_size(level));
        cache_of(level)[cached_[level]++] = p;
        --in_use_[level];
        bytes_requested_ -= bytes;
        return;
      }
#endif
      free_block(p, bytes, alignment, level);
      return;
    }
    large_.deallocate(upstream_, p, bytes, alignment, name_);
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  void* allocate_block(std::size_t bytes, std::size_t alignment, unsigned level);
  // Counts what was taken from, or given back to, the upstream (not the large blocks).
  void took(std::size_t bytes) noexcept;
  void gave_back(std::size_t bytes) noexcept {
    from_upstream_ -= bytes;
  }
  [[nodiscard]] std::size_t metadata_bytes() const noexcept;
  [[nodiscard]] std::size_t cache_bytes() const noexcept {
    return (top_level_ + std::size_t{1}) * cache_capacity_ * sizeof(void*);
  }
  void* allocate_large(std::size_t bytes, std::size_t alignment);
  void free_block(void* p, std::size_t bytes, std::size_t alignment, unsigned level) noexcept;
  // Gives cached block `p` of `level` to its region's tree, merging it.
  void merge_block(void* p, unsigned level) noexcept;
  // Merges the oldest `count` blocks of the cache of `level`.
  void merge_oldest(unsigned level, std::size_t count) noexcept;
  [[nodiscard]] bool any_cached() const noexcept;
  [[nodiscard]] bool is_cached(const void* p, unsigned level) const noexcept;
  // Whether the block of `level` at `p` (in `r`) is free once every cached block is merged.
  [[nodiscard]] bool free_after_merge(const region& r, const std::byte* p,
                                      unsigned level) const noexcept;
  // The largest free block once every cached block is merged (0: none), given the largest of
  // the trees (0: none).
  [[nodiscard]] std::size_t largest_after_merge(std::size_t largest_in_trees) const noexcept;
  [[nodiscard]] region* lowest_slot_with(unsigned level) const noexcept;
  [[nodiscard]] region* find_region(const void* p) const noexcept;
  [[nodiscard]] std::size_t home_of(std::uintptr_t base) const noexcept;
  void index_insert(region* r) noexcept;
  void index_erase(region* r) noexcept;
  region* add_upstream_region(std::size_t bytes, std::size_t alignment);
  void install_buffer();
  // Calls visit(usable bytes, free blocks per level) for each region the buffer will make when
  // install_buffer() lays it out; nothing once it has (or without a buffer).
  template <class Visit>
  void for_each_pending_buffer_region(Visit visit) const noexcept;
  region* new_region(std::byte* base, bool from_upstream, std::size_t usable_begin,
                     std::size_t usable_end);
  void remove_region(region* r) noexcept;
  [[nodiscard]] detail::buddy_tree tree_of(region& r) const noexcept;
  [[nodiscard]] detail::buddy_tree tree_of(const region& r) const noexcept;
  // What a region's buddy_tree tells: a level gained its first free block or lost its last one;
  // the tables follow (level_gained, level_lost).
  struct level_events;
  void level_gained(region& r, unsigned level) noexcept;
  void level_lost(const region& r, unsigned level) noexcept;
#if PMRKIT_CHECKED
  bool check_free(const region* r, const void* p, std::size_t bytes, std::size_t alignment,
                  unsigned level) const noexcept;
#endif

  std::string name_;
  std::pmr::memory_resource* upstream_;
  std::span<std::byte> buffer_;
  std::size_t max_regions_;
  std::size_t region_size_;
  unsigned region_shift_;
  unsigned min_shift_;
  unsigned top_level_;  // region_shift_ - min_shift_
  // The words of a region's metadata (detail/buddy_tree.hpp): its level mask, one free tree per
  // level, then in checked builds one in-use bitmap per level.
  detail::buddy_layout layout_;
  // Regions, metadata and tables held from the upstream (the large blocks count their own).
  std::size_t from_upstream_ = 0;
  std::size_t peak_from_upstream_ = 0;
  table_resource tables_{*this};

  // Regions by slot; and by base address in an open-addressing hash table (linear probing,
  // a power-of-two size at least twice the regions; null: empty), for find_region.
  std::pmr::vector<region*> slots_;
  std::pmr::vector<region*> index_;
  // For each level, a bit per slot: the region has a free block of that level.
  std::pmr::vector<std::uint64_t> level_regions_;
  std::size_t slot_words_ = 0;
  std::array<std::uint32_t, max_levels> regions_with_level_{};
  std::uint32_t levels_free_ = 0;  // bit l: some region has a free block of level l
  std::array<region*, max_levels> first_with_level_{};  // of them, the one in the lowest slot
  bool buffer_installed_ = false;
  std::size_t upstream_regions_ = 0;

  std::array<std::size_t, max_levels> in_use_{};  // blocks per level
  std::size_t bytes_requested_ = 0;

  // The caches of freed blocks, unmerged: per level cache_capacity_ slots in cache_ (taken from
  // the upstream with the first region, given back by release()), cached_[level] of them full.
  // cache_limit_ is cache_capacity_ while the slots exist, else 0 (every free takes the slow
  // path, which merges).
  std::size_t cache_capacity_;
  std::size_t cache_limit_ = 0;
  void** cache_ = nullptr;
  std::array<std::uint32_t, max_levels> cached_{};
  detail::large_blocks large_;
};

static_assert(std::is_base_of_v<std::pmr::memory_resource, buddy_resource>);

}  // namespace pmrkit
