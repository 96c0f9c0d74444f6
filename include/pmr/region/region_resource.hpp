// region_resource: a fixed-capacity region of one memory type, taken once from
// its page source and cut up by a buddy, a pool or an arena.
//
// A region is the unit of typed memory (Flight's HAL regions): `capacity`
// bytes of a `memory_type`, taken from the upstream in one block when the
// region is built and never grown, so what it may use is known up front and
// one kind of memory never crowds out another. A `region_spec` says what the
// region is; what it leaves unsaid comes from its type (`region_spec::for_type`
// and `resolved()` show the result):
//
// | type      | alignment | suballocation                     | flags        |
// |-----------|-----------|-----------------------------------|--------------|
// | system    | 16        | buddy                             |              |
// | video     | 256       | buddy                             |              |
// | audio     | 64        | pool of 4 KiB buffers             | dma_capable  |
// | network   | 64 (line) | pool of 2 KiB packet buffers      |              |
// | temporary | 16        | arena (frees in bulk, `reset()`)  |              |
// | shared    | 16        | a shared memory segment (shm_resource) |         |
//
// The strategies: `buddy` (any size up to the largest power of two that fits,
// coalescing; O(log n)), `pool` (blocks of `block_size`, O(1); a larger or
// more aligned request is refused), `arena` (bump allocation; `deallocate`
// frees only the newest block, `reset()` everything), `shared_segment` (an
// shm_resource over a new anonymous segment that forked children inherit, or
// over the named segment `segment_name`, opened or created, that any process
// may open: the upstream is not used).
//
// The flags are honoured whatever the upstream: `dma_capable` locks the
// region's pages in RAM (through a locked_page_resource between the region
// and an upstream that is not already locked memory — see page_source.hpp —
// so RLIMIT_MEMLOCK applies and a refusal is an allocation_error naming it),
// `huge_pages` asks the OS for huge pages over the region, `zero_fill` zeroes
// every block handed out. A request the region cannot serve (full, too large,
// too aligned for a pool) is an allocation_error `out_of_capacity` naming the
// region; the region is unchanged.
//
// `stats()`: capacity, bytes in use (block sizes, as the strategy counts
// them), bytes free, the largest free block (the largest request that would
// succeed now), external fragmentation in percent (100 × (1 − largest free /
// free); 0 for a pool, whose free blocks each serve any request it takes),
// counts. `owns(p)` tells whether `p` lies in the region.
//
// Built the ways every resource is: `region_resource r;` (a 1 MiB system
// region from the default resource), `r(upstream)`, `r(spec)`,
// `r(spec, upstream)`, `r({})`, `r({}, upstream)`; its options struct is the
// `region_spec` (also spelled `region_options`). Bad specs throw
// std::invalid_argument naming the field.
//
// Choose it to give one kind of memory a fixed share (video, audio, packets)
// from the right pages; choose memory_system to hold every region, a budget
// and pressure levels behind one object; choose buddy_resource or a pool
// directly when the memory need not be typed or fixed.
//
// Thread safety: none (as its strategies); memory_system locks each region.
//
// Example:
//   pmrkit::page_resource pages;
//   pmrkit::region_resource video({.capacity = 4_MiB, .type = pmrkit::memory_type::video}, &pages);
//   void* texture = video.allocate(1_MiB);
//   assert(video.owns(texture) && pmrkit::is_aligned(texture, 256));
//   assert(video.stats().bytes_in_use == 1_MiB && video.stats().largest_free_block == 2_MiB);
//   video.deallocate(texture, 1_MiB);
//   pmrkit::region_resource packets({.capacity = 64_KiB, .type = pmrkit::memory_type::network});
//   assert(packets.spec().block_size == 2048 && packets.strategy() ==
//   pmrkit::region_strategy::pool);
#pragma once

#include <pmr/region/memory_type.hpp>

#include <concepts>
#include <cstddef>
#include <memory>
#include <memory_resource>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace pmrkit {

/// How a region cuts up its memory.
enum class region_strategy : unsigned char {
  type_default,    ///< the type's: see the table in region_resource.hpp
  buddy,           ///< power-of-two blocks, coalescing (buddy_resource)
  pool,            ///< blocks of block_size (pool_resource)
  arena,           ///< bump allocation, freed in bulk (chunked_arena_resource)
  shared_segment,  ///< a shared memory segment (shm_resource)
};

/// "buddy", "pool", "arena", "shared_segment" ("type_default" for that).
[[nodiscard]] std::string_view to_string(region_strategy strategy) noexcept;
[[nodiscard]] std::optional<region_strategy> parse_region_strategy(std::string_view name) noexcept;

/// What a region is: the options of region_resource and the entries of a
/// memory_system's configuration. Zeros and defaults take the type's values.
struct region_spec {
  std::size_t capacity = std::size_t{1} << 20;  ///< bytes taken from the page source, > 0
  std::size_t alignment = 0;   ///< least alignment of every block (power of two); 0: the type's
  std::size_t block_size = 0;  ///< pool: bytes per block; 0: the type's (4 KiB audio, 2 KiB net)
  memory_type type = memory_type::system;
  region_strategy strategy = region_strategy::type_default;
  /// Which page source backs it, by name, for memory_system: "pages", "huge_pages",
  /// "locked_pages", "shared_memory" or a source added to its config; empty: the type's.
  /// region_resource itself takes its memory from its upstream.
  std::string backing{};
  /// shared_segment: the segment's name ("/name"); empty: an anonymous segment.
  std::string segment_name{};
  memory_flags flags = memory_flags::none;  ///< added to the type's flags
  std::string name{};                       ///< shown in errors and tables; empty: the type's name

  /// The spec of a region of `type` with the type's defaults written out.
  [[nodiscard]] static region_spec for_type(memory_type type, std::size_t capacity);
  /// This spec with every default replaced by the type's value.
  [[nodiscard]] region_spec resolved() const;
};

/// region_resource's options, by the contract's naming rule.
using region_options = region_spec;

/// The figures of a region_resource.
struct region_stats {
  std::size_t capacity = 0;             ///< bytes the region can hand out
  std::size_t bytes_in_use = 0;         ///< as the strategy counts them (block sizes)
  std::size_t peak_bytes_in_use = 0;    ///< the most bytes_in_use has been
  std::size_t blocks_in_use = 0;        ///< blocks handed out and not yet freed
  std::size_t bytes_free = 0;           ///< capacity - bytes_in_use - what the strategy wastes
  std::size_t largest_free_block = 0;   ///< the largest request that succeeds now
  double fragmentation_percent = 0;     ///< 100 * (1 - largest free / free); 0 for a pool
  std::size_t bytes_from_upstream = 0;  ///< the region's block (0 for a shared segment)
  std::size_t allocations = 0;          ///< allocate calls that returned a block
  std::size_t deallocations = 0;        ///< deallocate calls
  std::size_t failures = 0;             ///< allocate calls refused
};

class region_resource final : public std::pmr::memory_resource {
 public:
  /// Takes the region from `upstream` (a page source, or any resource).
  /// Throws std::invalid_argument naming the field for a bad spec (capacity
  /// 0, alignment not a power of two or above 4096, a pool block_size 0 or
  /// larger than the capacity, a strategy the type cannot have) or a null
  /// upstream, and allocation_error when the upstream, the OS (locking,
  /// RLIMIT_MEMLOCK) or the shared memory segment refuses.
  explicit region_resource(region_spec spec,
                           std::pmr::memory_resource* upstream = std::pmr::get_default_resource());
  region_resource() : region_resource(region_spec{}) {}
  template <std::convertible_to<std::pmr::memory_resource*> Upstream>
  explicit region_resource(Upstream upstream) : region_resource(region_spec{}, upstream) {}
  /// Not copyable. Declared on a non-const reference so that `{}` does not
  /// convert to it and `region_resource r({})` means the default spec.
  region_resource(region_resource&) = delete;
  region_resource& operator=(const region_resource&) = delete;
  /// Gives the region back to its upstream.
  ~region_resource() override;

  // Bulk operations.

  /// Makes every block free again. Arena regions only (their way of freeing);
  /// throws std::logic_error for the other strategies, which free block by
  /// block.
  void reset();

  // Observers.

  [[nodiscard]] region_stats stats() const noexcept;
  /// The spec with the type's defaults written out.
  [[nodiscard]] const region_spec& spec() const noexcept { return spec_; }
  [[nodiscard]] memory_type type() const noexcept { return spec_.type; }
  [[nodiscard]] region_strategy strategy() const noexcept { return spec_.strategy; }
  [[nodiscard]] std::string_view name() const noexcept { return spec_.name; }
  /// What backs it: the page source's backing() ("locked pages", "cuda pinned", ...),
  /// "shared memory", or "upstream" for a resource that is no page source.
  [[nodiscard]] std::string_view backing() const noexcept { return backing_; }
  /// Whether the pages are locked in RAM (dma_capable honoured).
  [[nodiscard]] bool locked() const noexcept { return locked_; }
  /// Whether huge pages were asked for the region (and the OS took the hint).
  [[nodiscard]] bool huge_pages() const noexcept { return huge_pages_; }
  [[nodiscard]] std::pmr::memory_resource* upstream_resource() const noexcept { return upstream_; }
  /// True when `p` lies in the region.
  [[nodiscard]] bool owns(const void* p) const noexcept;

  struct strategy_state;  // the suballocator (defined in the source file)

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override;
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override;
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  // The block the buddy grants a request (it keeps no peak, so the region counts).
  [[nodiscard]] std::size_t buddy_block(std::size_t bytes, std::size_t alignment) const noexcept;

  region_spec spec_;
  std::pmr::memory_resource* upstream_;
  std::unique_ptr<std::pmr::memory_resource> locker_;  // a locked_page_resource, for dma_capable
  std::pmr::memory_resource* source_;                  // upstream_ or locker_
  std::byte* base_ = nullptr;
  std::size_t taken_ = 0;            // bytes taken from source_
  std::size_t taken_alignment_ = 0;  // their alignment
  std::string backing_;
  bool locked_ = false;
  bool huge_pages_ = false;
  std::unique_ptr<strategy_state> state_;
  std::size_t buddy_in_use_ = 0;
  std::size_t peak_ = 0;
  std::size_t blocks_ = 0;
  std::size_t allocations_ = 0;
  std::size_t deallocations_ = 0;
  std::size_t failures_ = 0;
};

static_assert(std::is_base_of_v<std::pmr::memory_resource, region_resource>);

}  // namespace pmrkit
