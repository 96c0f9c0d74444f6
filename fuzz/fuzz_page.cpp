// Fuzzes page_resource against the model (fuzz_harness.hpp): blocks mapped
// from the OS (the strict upstream is not used and must stay empty), release.
#include "fuzz_harness.hpp"

#include <pmr/region/page_resource.hpp>

namespace {

pmrkit::page_options options_from(pmrkit::fuzz::fuzz_input& in) {
  pmrkit::page_options o;
  o.prefault = (in.u8() & 1) != 0;
  return o;
}

using page_subject = pmrkit::fuzz::resource_subject<pmrkit::page_resource, &options_from>;

}  // namespace

PMRKIT_FUZZ_SUBJECT(page_subject)
