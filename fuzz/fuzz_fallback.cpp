// Fuzzes fallback_resource against the model (fuzz_harness.hpp): a rejecting
// pool as the primary, the strict upstream as the secondary (and the pool's
// upstream).
#include "fuzz_harness.hpp"

#include <pmr/decorator/fallback_resource.hpp>
#include <pmr/pool/pool_resource.hpp>

namespace {

struct fallback_subject {
  static constexpr bool lifo = false;
  pmrkit::pool_resource pool;
  pmrkit::fallback_resource<pmrkit::pool_resource> fallback;

  static pmrkit::pool_options pool_options(pmrkit::fuzz::fuzz_input& in) {
    pmrkit::pool_options o;
    o.block_size = in.range(1, 4096);
    o.block_alignment = in.power_of_two(0, 14);
    o.initial_blocks = in.range(1, 32);
    o.max_blocks_per_chunk = o.initial_blocks * in.range(1, 16);
    o.on_mismatch = pmrkit::pool_mismatch::reject;
    return o;
  }
  static pmrkit::fallback_options options(pmrkit::fuzz::fuzz_input& in) {
    pmrkit::fallback_options o;
    o.threading = (in.u8() & 1) != 0 ? pmrkit::decorator_threading::serialized
                                     : pmrkit::decorator_threading::concurrent;
    return o;
  }
  fallback_subject(pmrkit::fuzz::fuzz_input& in, std::pmr::memory_resource* upstream)
      : pool(pool_options(in), upstream), fallback(&pool, options(in), upstream) {}
  std::pmr::memory_resource& resource() { return fallback; }
  [[nodiscard]] std::size_t least_alignment() const { return 1; }
};

}  // namespace

PMRKIT_FUZZ_SUBJECT(fallback_subject)
