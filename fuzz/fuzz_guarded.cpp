// Fuzzes guarded_resource against the model (fuzz_harness.hpp): the guard
// before or after, the quarantine's length from the input, release.
#include "fuzz_harness.hpp"

#include <pmr/decorator/guarded_resource.hpp>

namespace {

pmrkit::guarded_options options_from(pmrkit::fuzz::fuzz_input& in) {
  pmrkit::guarded_options o;
  o.quarantine_blocks = in.range(0, 128);
  o.position = (in.u8() & 1) != 0 ? pmrkit::guard_position::before : pmrkit::guard_position::after;
  return o;
}

using guarded_subject = pmrkit::fuzz::resource_subject<pmrkit::guarded_resource, &options_from>;

}  // namespace

PMRKIT_FUZZ_SUBJECT(guarded_subject)
