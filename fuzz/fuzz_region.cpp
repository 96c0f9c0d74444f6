// Fuzzes region_resource against the model (fuzz_harness.hpp): the memory
// type, strategy (buddy, pool, arena), capacity, least alignment and pool
// block size from the input; blocks freed newest first (what an arena region
// frees), reset() for arena regions.
#include "fuzz_harness.hpp"

#include <pmr/region/region_resource.hpp>

namespace {

struct region_subject {
  static constexpr bool lifo = true;
  pmrkit::region_resource region;

  static pmrkit::region_spec spec(pmrkit::fuzz::fuzz_input& in) {
    static constexpr pmrkit::memory_type types[] = {
        pmrkit::memory_type::system, pmrkit::memory_type::video, pmrkit::memory_type::audio,
        pmrkit::memory_type::network, pmrkit::memory_type::temporary};
    static constexpr pmrkit::region_strategy strategies[] = {
        pmrkit::region_strategy::type_default, pmrkit::region_strategy::buddy,
        pmrkit::region_strategy::pool, pmrkit::region_strategy::arena};
    pmrkit::region_spec s;
    s.type = types[in.u8() % std::size(types)];
    s.strategy = strategies[in.u8() % std::size(strategies)];
    s.capacity = in.range(1, std::size_t{8} << 20);
    s.alignment = (in.u8() & 1) != 0 ? 0 : in.power_of_two(0, 14);
    s.block_size = (in.u8() & 1) != 0 ? 0 : in.range(1, 16384);
    return s;
  }
  region_subject(pmrkit::fuzz::fuzz_input& in, std::pmr::memory_resource* upstream)
      : region(spec(in), upstream) {}
  std::pmr::memory_resource& resource() { return region; }
  [[nodiscard]] std::size_t least_alignment() const { return region.spec().alignment; }
  /// Only arena regions reset (the others throw std::logic_error, by contract).
  bool reset() {
    if (region.strategy() != pmrkit::region_strategy::arena) return false;
    region.reset();
    return true;
  }
};

}  // namespace

PMRKIT_FUZZ_SUBJECT(region_subject)
