// Fuzzes statistics_resource over the strict upstream against the model
// (fuzz_harness.hpp), both threading modes.
#include "fuzz_harness.hpp"

#include <pmr/decorator/statistics_resource.hpp>

namespace {

struct statistics_subject {
  static constexpr bool lifo = false;
  pmrkit::statistics_resource stats;

  static pmrkit::statistics_options options(pmrkit::fuzz::fuzz_input& in) {
    pmrkit::statistics_options o;
    o.threading = (in.u8() & 1) != 0 ? pmrkit::decorator_threading::serialized
                                     : pmrkit::decorator_threading::concurrent;
    return o;
  }
  statistics_subject(pmrkit::fuzz::fuzz_input& in, std::pmr::memory_resource* upstream)
      : stats(options(in), upstream) {}
  std::pmr::memory_resource& resource() { return stats; }
  [[nodiscard]] std::size_t least_alignment() const { return 1; }
};

}  // namespace

PMRKIT_FUZZ_SUBJECT(statistics_subject)
