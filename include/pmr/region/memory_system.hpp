// memory_system: every typed region, a total budget, pressure levels and an
// emergency reserve behind one object (the nebula memory system, asked the
// Flight HAL way).
//
// Built from a `memory_system_config`: the regions (region_spec each: a
// region_resource over the page source its `backing` names), an optional
// total budget, pressure thresholds, an emergency reserve, and the tier
// thresholds for untyped requests. The config can be written in code, read
// from environment variables or from a small file (`memory_system_config`
// below says how); a bad value is std::invalid_argument naming the variable,
// or the file, line and key.
//
// Two ways of asking:
//   - typed (Flight): `allocate({.size, .alignment, .type, .flags,
//     .allow_fallback})` returns a `memory_block` {pointer, size, alignment,
//     type actually used}; a full region falls back to the system region (or,
//     with none configured, to system pages) when `allow_fallback` is set; a
//     request flagged `dma_capable` is served by locked memory only;
//     `deallocate(block)` gives it back. `resource(type)` is the memory
//     resource of a type for pmr containers (no fallback: its blocks stay in
//     the type's regions).
//   - untyped (nebula's tiers): a request with no type is served below
//     `small_threshold` by a pool, up to `large_threshold` by an arena, above
//     it by the system region (or system pages). `resource()` is that, as a
//     memory resource. The arena tier frees in bulk: its blocks' memory is
//     reused after `reset_arena()` (per frame, per request), though the
//     budget counts a block as freed when it is deallocated.
//
// Everything is under the total budget, which counts the bytes handed to
// callers. The emergency reserve is held back from it and from memory: a
// request flagged `critical` may use the whole budget and, when its region and
// the fallback are full, the reserve (`emergency_reserve` bytes of pages taken
// at construction, suballocated by a buddy); any other request is refused
// once the bytes in use would pass budget − reserve, and never touches the
// reserve's memory. Refusals are `budget_exceeded` (over the budget) or
// `allocation_error` out_of_capacity (no region has room), naming the system;
// the system is unchanged after either.
//
// Pressure: the level (none … critical) is the bytes in use against the
// budget (or, without one, against the regions' total capacity), with the
// config's thresholds; `on_pressure(level, fn)` subscribes exactly as
// pressure_resource does (the callback may free memory through the system:
// a texture cache dropping its textures), and callbacks also run, with level
// critical, when the budget refuses a request, which is then tried once more.
//
// Observers: `regions()` enumerates the regions {name, type, capacity, used,
// free, largest free block, fragmentation %, backing}; `stats()` totals;
// `operator<<` prints both as a table.
//
// Choose it for an application-wide memory plan (a game engine, a media
// pipeline, an embedded system with fixed shares); for one fixed region choose
// region_resource, for a bound alone budget_resource.
//
// Thread safety: safe to share between threads. Each region and tier has its
// own lock; the budget and the levels are atomics.
//
// Example:
//   pmrkit::memory_system_config config;
//   config.regions = {pmrkit::region_spec::for_type(pmrkit::memory_type::video, 8_MiB),
//                     pmrkit::region_spec::for_type(pmrkit::memory_type::system, 4_MiB)};
//   config.total_budget = 16_MiB;
//   pmrkit::memory_system memory(config);
//   using pmrkit::memory_type;
//   const auto texture = memory.allocate({.size = 6_MiB, .type = memory_type::video});
//   const auto spill = memory.allocate({.size = 3_MiB, .type = memory_type::video});
//   assert(texture.type == memory_type::video);
//   assert(spill.type == memory_type::system);  // the video region was full: it fell back
//   std::pmr::vector<int> small({1, 2, 3}, memory.resource());  // the untyped pool tier
//   assert(memory.stats().bytes_in_use == 9_MiB + 3 * sizeof(int));
//   memory.deallocate(spill);
//   memory.deallocate(texture);
#pragma once

#include <pmr/arena/chunked_arena_resource.hpp>
#include <pmr/decorator/budget_resource.hpp>
#include <pmr/decorator/pressure_resource.hpp>
#include <pmr/decorator/synchronized_resource.hpp>
#include <pmr/pool/concurrent_pool_resource.hpp>
#include <pmr/region/locked_page_resource.hpp>
#include <pmr/region/memory_type.hpp>
#include <pmr/region/page_resource.hpp>
#include <pmr/region/region_resource.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <memory_resource>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace pmrkit {

/// What a memory_system is made of.
///
/// From the environment (`from_environment()`), each setting is a variable;
/// in a file (`from_file(path)`, `parse(text)`), a `key = value` line (`#`
/// starts a comment). Sizes are numbers with an optional suffix K, KiB, M,
/// MiB, G or GiB (powers of 1024):
///
/// | file key          | variable                 | value                          |
/// |-------------------|--------------------------|--------------------------------|
/// | budget            | PMRKIT_BUDGET            | size (0: none)                 |
/// | emergency_reserve | PMRKIT_EMERGENCY_RESERVE | size                           |
/// | small_threshold   | PMRKIT_SMALL_THRESHOLD   | size                           |
/// | large_threshold   | PMRKIT_LARGE_THRESHOLD   | size                           |
/// | pressure          | PMRKIT_PRESSURE          | low,medium,high,critical (%)   |
/// | region.NAME       | PMRKIT_REGION_NAME       | `key=value` words (below)      |
///
/// A region's words: `type=video capacity=64MiB alignment=256 block_size=4KiB
/// strategy=buddy backing=locked_pages flags=zero_fill|critical
/// segment=/name`; `capacity` is required, `type` defaults to NAME when NAME
/// is a type's name. A region given twice is replaced. `PMRKIT_CONFIG` names
/// a file that from_environment() reads first, the variables then override it.
struct memory_system_config {
  std::vector<region_spec> regions;
  std::size_t total_budget = 0;         ///< bytes in use at most, reserve included (0: no budget)
  std::size_t emergency_reserve = 0;    ///< held back for critical requests (< total_budget)
  std::size_t small_threshold = 256;    ///< untyped requests below it: the pool tier
  std::size_t large_threshold = 65536;  ///< untyped requests up to it: the arena tier
  /// Pressure thresholds, percent of the budget: 0 < low < medium < high < critical <= 100.
  double low_percent = 50;
  double medium_percent = 70;
  double high_percent = 85;
  double critical_percent = 95;
  /// Page sources by name, for region_spec::backing beyond the built-in "pages",
  /// "huge_pages", "locked_pages", "locked_huge_pages" and "shared_memory"
  /// (e.g. {"cuda_pinned", &pinned}); not owned, they must outlive the system.
  std::map<std::string, std::pmr::memory_resource*, std::less<>> page_sources;
  std::string name = "memory_system";  ///< shown in errors and tables

  /// The config `text` describes (file syntax). `source` names it in errors.
  [[nodiscard]] static memory_system_config parse(std::string_view text,
                                                  std::string_view source = "config");
  /// The config in the file at `path`; std::invalid_argument when it cannot be read.
  [[nodiscard]] static memory_system_config from_file(const std::string& path);
  /// The config the PMRKIT_ variables describe (over PMRKIT_CONFIG's file).
  [[nodiscard]] static memory_system_config from_environment();
  /// Applies one setting (a file key and its value); `where` names it in errors.
  void apply(std::string_view key, std::string_view value, std::string_view where);
};

/// A typed or untyped request.
struct memory_request {
  std::size_t size = 0;
  std::size_t alignment = alignof(std::max_align_t);
  std::optional<memory_type> type{};  ///< none: the untyped tiers
  /// zero_fill: the block reads as zero; critical: may use the reserve; dma_capable: only
  /// locked memory serves it (locked regions, else locked system pages). huge_pages is a
  /// region's property (region_spec::flags), not a request's.
  memory_flags flags = memory_flags::none;
  bool allow_fallback = true;  ///< a full region may pass the request to the system region
};

/// What allocate returns and deallocate takes back (unchanged).
struct memory_block {
  void* pointer = nullptr;
  std::size_t size = 0;                     ///< as requested
  std::size_t alignment = 0;                ///< as requested
  memory_type type = memory_type::system;   ///< the type of the memory actually used
  memory_flags flags = memory_flags::none;  ///< the request's
  std::uint32_t source = 0;                 ///< where it came from (internal)
};

/// One region, as regions() reports it.
struct memory_region_info {
  std::string name{};
  memory_type type = memory_type::system;
  region_strategy strategy = region_strategy::buddy;
  std::size_t capacity = 0;
  std::size_t used = 0;  ///< bytes_in_use of the region
  std::size_t free = 0;
  std::size_t largest_free = 0;  ///< the largest request it serves now
  double fragmentation_percent = 0;
  std::size_t blocks_in_use = 0;
  std::size_t failures = 0;  ///< requests it refused
  std::string backing{};     ///< "pages", "locked pages", "cuda pinned", ...
};

/// The totals of a memory_system.
struct memory_system_stats {
  std::size_t bytes_in_use = 0;       ///< bytes handed to callers and not freed (requested sizes)
  std::size_t peak_bytes_in_use = 0;  ///< the most bytes_in_use has been
  std::size_t total_budget = 0;       ///< 0: none
  std::size_t emergency_reserve = 0;
  std::size_t capacity = 0;  ///< of every region (the reserve not included)
  pressure_level level = pressure_level::none;
  std::size_t allocations = 0;
  std::size_t deallocations = 0;
  std::size_t failures = 0;             ///< requests refused
  std::size_t fallbacks = 0;            ///< typed requests served by the system memory
  std::size_t reserve_allocations = 0;  ///< critical requests served by the reserve
  std::size_t small_tier_bytes = 0;     ///< bytes in use in the pool tier (block sizes)
  std::size_t arena_tier_bytes = 0;     ///< consumed in the arena tier since reset_arena()
};

class memory_system {
 public:
  /// Builds every region and the tiers. Throws std::invalid_argument naming
  /// the field ("regions[1].capacity", "emergency_reserve", ...) and what a
  /// region_resource throws when its memory cannot be had.
  explicit memory_system(memory_system_config config = {});
  memory_system(const memory_system&) = delete;
  memory_system& operator=(const memory_system&) = delete;
  /// Blocks still allocated go back with their regions.
  ~memory_system();

  // Allocation.

  /// Serves `request` (see the header comment). Throws budget_exceeded or
  /// allocation_error; the system is unchanged then.
  [[nodiscard]] memory_block allocate(const memory_request& request);
  /// Gives back a block allocate returned.
  void deallocate(const memory_block& block) noexcept;
  /// The memory resource of `type` (its regions; no fallback), for pmr
  /// containers; throws std::invalid_argument when no region has that type.
  [[nodiscard]] std::pmr::memory_resource* resource(memory_type type);
  /// The untyped tiers as a memory resource.
  [[nodiscard]] std::pmr::memory_resource* resource() noexcept;
  /// Frees every block of the arena tier (call when none is in use).
  void reset_arena();
  /// Frees every block of the arena regions of `type` (std::logic_error when
  /// one of them is not an arena).
  void reset(memory_type type);

  // Pressure.

  /// As pressure_resource::on_pressure.
  [[nodiscard]] pressure_subscription on_pressure(pressure_level threshold,
                                                  pressure_callback callback);
  [[nodiscard]] pressure_level level() const noexcept { return pressure_.level(); }

  // Observers.

  [[nodiscard]] std::vector<memory_region_info> regions() const;
  [[nodiscard]] memory_system_stats stats() const;
  [[nodiscard]] const memory_system_config& config() const noexcept { return config_; }
  [[nodiscard]] std::string_view name() const noexcept { return config_.name; }
  /// The regions and the totals as a table.
  [[nodiscard]] std::string format() const;

  struct region_entry;  // a region, its lock and its memory resource (source file)
  class port;           // resource()'s memory resources (source file)

 private:
  // The bottom of the meter: a resource that hands out no memory, only counts are kept above it.
  class ledger final : public std::pmr::memory_resource {
    void* do_allocate(std::size_t, std::size_t) override { return this; }
    void do_deallocate(void*, std::size_t, std::size_t) override {}
    [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
      return this == &other;
    }
  };
  // Under the pressure decorator: a critical request goes to the total budget alone, any other
  // through the normal one (budget - reserve) first. Which it is, the calling thread says
  // (memory_system sets it around each call into the meter; source file).
  class meter_router final : public std::pmr::memory_resource {
   public:
    meter_router(budget_resource& normal, budget_resource& total) noexcept
        : normal_(&normal), total_(&total) {}
    meter_router(meter_router&) = delete;
    meter_router& operator=(const meter_router&) = delete;

   private:
    void* do_allocate(std::size_t bytes, std::size_t alignment) override;
    void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override;
    [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
      return this == &other;
    }
    budget_resource* normal_;
    budget_resource* total_;
  };

  void meter_allocate(const memory_request& request);
  void meter_deallocate(std::size_t size, memory_flags flags) noexcept;
  memory_block serve(const memory_request& request, std::size_t alignment);
  bool try_region(memory_type type, const memory_request& request, std::size_t alignment,
                  memory_block& block);
  void* allocate_from(std::uint32_t source, std::size_t size, std::size_t alignment);
  void free_to(std::uint32_t source, void* p, std::size_t size, std::size_t alignment) noexcept;
  [[nodiscard]] std::uint32_t untyped_source(std::size_t size) const noexcept;
  [[nodiscard]] std::pmr::memory_resource* page_source_named(std::string_view backing,
                                                             std::string_view field);
  void count_peak() noexcept;

  memory_system_config config_;
  // The page sources the built-in backings name.
  page_resource pages_;
  page_resource huge_pages_;
  locked_page_resource locked_pages_;
  locked_page_resource locked_huge_pages_;
  // The meter, over a ledger: pressure_ counts every request and calls the subscribers when a
  // budget refuses; under it budget_normal_ (budget - reserve) sees the requests that are not
  // critical, budget_total_ (the budget) every request.
  ledger ledger_;
  budget_resource budget_total_;
  budget_resource budget_normal_;
  meter_router router_;
  pressure_resource pressure_;
  std::vector<std::unique_ptr<region_entry>> regions_;
  std::unique_ptr<region_entry> reserve_;
  // The untyped tiers (the large one is the system region, or system_pages_).
  concurrent_pool_resource small_tier_;
  chunked_arena_resource arena_tier_;
  mutable synchronized_resource arena_lock_;  // stats() takes it too
  std::unique_ptr<port> untyped_port_;
  std::atomic<std::size_t> allocations_{0};
  std::atomic<std::size_t> deallocations_{0};
  std::atomic<std::size_t> failures_{0};
  std::atomic<std::size_t> fallbacks_{0};
  std::atomic<std::size_t> reserve_allocations_{0};
};

/// Prints memory.format().
std::ostream& operator<<(std::ostream& out, const memory_system& memory);

}  // namespace pmrkit
