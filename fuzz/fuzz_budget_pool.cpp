// Fuzzes budget_resource over a pool_resource against the model
// (fuzz_harness.hpp): the limit, its changes and the pool's options from the
// input.
#include "fuzz_harness.hpp"

#include <pmr/decorator/budget_resource.hpp>
#include <pmr/pool/pool_resource.hpp>

namespace {

struct budget_pool_subject {
  static constexpr bool lifo = false;
  pmrkit::pool_resource pool;
  pmrkit::budget_resource budget;

  static pmrkit::pool_options pool_options(pmrkit::fuzz::fuzz_input& in) {
    pmrkit::pool_options o;
    o.block_size = in.range(1, 4096);
    o.block_alignment = in.power_of_two(0, 14);
    o.initial_blocks = in.range(1, 32);
    o.max_blocks_per_chunk = o.initial_blocks * in.range(1, 16);
    o.on_mismatch =
        (in.u8() & 1) != 0 ? pmrkit::pool_mismatch::reject : pmrkit::pool_mismatch::forward;
    return o;
  }
  static pmrkit::budget_options budget_options(pmrkit::fuzz::fuzz_input& in) {
    pmrkit::budget_options o;
    o.limit = in.range(0, std::size_t{16} << 20);
    o.threading = (in.u8() & 1) != 0 ? pmrkit::decorator_threading::serialized
                                     : pmrkit::decorator_threading::concurrent;
    return o;
  }
  budget_pool_subject(pmrkit::fuzz::fuzz_input& in, std::pmr::memory_resource* upstream)
      : pool(pool_options(in), upstream), budget(budget_options(in), &pool) {}
  std::pmr::memory_resource& resource() { return budget; }
  [[nodiscard]] std::size_t least_alignment() const { return 1; }
  // shrink: the pool's, under the budget (nothing in use moves).
  std::size_t shrink() { return pool.shrink(); }
};

}  // namespace

PMRKIT_FUZZ_SUBJECT(budget_pool_subject)
