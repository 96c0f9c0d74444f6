// Fuzzes memory_system against the model (fuzz_harness.hpp). The config
// comes from the input: up to four regions (type, strategy, capacity, least
// alignment, pool block size, backing by pages or locked pages, flags), the
// total budget, the emergency reserve, the tier thresholds and the pressure
// thresholds (the constructor rejects what does not hold together). Calls go
// through an adaptor that asks the system typed or untyped, as the request's
// size and the call's number pick: each type, with or without fallback,
// zero_fill, critical and dma_capable; a zero_fill block must read as zero.
// The system is a root (its regions take pages from the OS), so at the end its
// own figures must say that nothing is in use.
#include "fuzz_harness.hpp"

#include <pmr/region/memory_system.hpp>

#include <map>

namespace {

using pmrkit::memory_flags;
using pmrkit::memory_type;

/// allocate/deallocate as memory_system requests; remembers each block.
class request_adaptor final : public std::pmr::memory_resource {
 public:
  explicit request_adaptor(pmrkit::memory_system& system) noexcept : system_(&system) {}

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    const std::uint64_t call = calls_++;
    const std::uint64_t pick = (call * 0x9E3779B97F4A7C15ULL) ^ bytes ^ (alignment << 7);
    pmrkit::memory_request request{.size = bytes, .alignment = alignment};
    if (pick % 4 != 0) request.type = pmrkit::all_memory_types[(pick >> 2) % 6];
    memory_flags flags = memory_flags::none;
    if ((pick >> 5) % 3 == 0) flags = flags | memory_flags::zero_fill;
    if ((pick >> 7) % 5 == 0) flags = flags | memory_flags::critical;
    if ((pick >> 9) % 7 == 0) flags = flags | memory_flags::dma_capable;
    request.flags = flags;
    request.allow_fallback = (pick >> 11) % 2 == 0;
    const pmrkit::memory_block block = system_->allocate(request);
    if (block.size != bytes || block.alignment != alignment) {
      pmrkit::fuzz::fail("memory_system's block does not say what was asked");
    }
    if ((flags & memory_flags::zero_fill) == memory_flags::zero_fill) {
      const auto* p = static_cast<const unsigned char*>(block.pointer);
      pmrkit::fuzz::for_each_patterned(bytes, [&](std::size_t i) {
        if (p[i] != 0) pmrkit::fuzz::fail("a zero_fill block does not read as zero");
      });
    }
    blocks_.emplace(block.pointer, block);
    return block.pointer;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    auto [it, end] = blocks_.equal_range(p);
    while (it != end && (it->second.size != bytes || it->second.alignment != alignment))
      ++it;
    if (it == end) pmrkit::fuzz::fail("the harness freed a block the adaptor did not hand out");
    system_->deallocate(it->second);
    blocks_.erase(it);
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  pmrkit::memory_system* system_;
  std::multimap<void*, pmrkit::memory_block> blocks_;  // zero-size blocks may share an address
  std::uint64_t calls_ = 0;
};

pmrkit::memory_system_config config_from(pmrkit::fuzz::fuzz_input& in) {
  static constexpr pmrkit::region_strategy strategies[] = {
      pmrkit::region_strategy::type_default, pmrkit::region_strategy::buddy,
      pmrkit::region_strategy::pool, pmrkit::region_strategy::arena};
  static constexpr const char* backings[] = {"", "pages", "locked_pages"};
  pmrkit::memory_system_config c;
  const std::size_t regions = in.range(0, 4);
  for (std::size_t i = 0; i < regions; ++i) {
    pmrkit::region_spec s;
    s.type = pmrkit::all_memory_types[in.u8() % 6];
    if (s.type == memory_type::shared) s.type = memory_type::temporary;  // no segments here
    s.strategy = strategies[in.u8() % std::size(strategies)];
    s.capacity = in.range(1, std::size_t{4} << 20);
    s.alignment = (in.u8() & 1) != 0 ? 0 : in.power_of_two(0, 14);
    s.block_size = (in.u8() & 1) != 0 ? 0 : in.range(1, 16384);
    s.backing = backings[in.u8() % std::size(backings)];
    if ((in.u8() & 3) == 0) s.flags = memory_flags::zero_fill;
    c.regions.push_back(s);
  }
  if ((in.u8() & 1) != 0) {
    c.total_budget = in.range(1, std::size_t{32} << 20);
    if ((in.u8() & 1) != 0) c.emergency_reserve = in.range(0, c.total_budget);
  }
  c.small_threshold = in.range(0, 4096);
  c.large_threshold = in.range(0, std::size_t{1} << 20);
  if ((in.u8() & 3) == 0) {
    c.low_percent = static_cast<double>(in.range(0, 100));
    c.medium_percent = c.low_percent + static_cast<double>(in.range(0, 30));
    c.high_percent = c.medium_percent + static_cast<double>(in.range(0, 30));
    c.critical_percent = c.high_percent + static_cast<double>(in.range(0, 30));
  }
  return c;
}

struct memory_system_subject {
  static constexpr bool lifo = false;
  pmrkit::memory_system system;
  request_adaptor adaptor{system};

  memory_system_subject(pmrkit::fuzz::fuzz_input& in, std::pmr::memory_resource*)
      : system(config_from(in)) {}
  std::pmr::memory_resource& resource() { return adaptor; }
  [[nodiscard]] std::size_t least_alignment() const { return 1; }
  void check_everything_back() {
    const pmrkit::memory_system_stats s = system.stats();
    if (s.bytes_in_use != 0 || s.small_tier_bytes != 0) {
      pmrkit::fuzz::fail("memory_system counts " + std::to_string(s.bytes_in_use) +
                         " bytes in use with every block freed");
    }
    for (const pmrkit::memory_region_info& region : system.regions()) {
      // An arena region frees only its newest block; the others wait for its reset.
      if (region.strategy == pmrkit::region_strategy::arena) continue;
      if (region.blocks_in_use != 0 || region.used != 0) {
        pmrkit::fuzz::fail("a region of memory_system holds blocks with every block freed");
      }
    }
    system.reset_arena();
  }
};

}  // namespace

PMRKIT_FUZZ_SUBJECT(memory_system_subject)
