// Fuzzes statistics_resource over the strict upstream against the model
// (fuzz_harness.hpp), both threading modes.
#include "fuzz_harness.hpp"

#include <pmr/decorator/statistics_resource.hpp>

namespace {

pmrkit::statistics_options options_from(pmrkit::fuzz::fuzz_input& in) {
  pmrkit::statistics_options o;
  o.threading = (in.u8() & 1) != 0 ? pmrkit::decorator_threading::serialized
                                   : pmrkit::decorator_threading::concurrent;
  return o;
}

using statistics_subject =
    pmrkit::fuzz::resource_subject<pmrkit::statistics_resource, &options_from>;

}  // namespace

PMRKIT_FUZZ_SUBJECT(statistics_subject)
