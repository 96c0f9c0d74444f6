// Fuzzes locked_page_resource over the strict upstream against the model
// (fuzz_harness.hpp): each block is the upstream's pages, locked; with
// zero_on_free from the input; release. Requests over the lock limit
// (RLIMIT_MEMLOCK, enforced by the resource itself) throw allocation_error,
// and the upstream's block goes back: the strict upstream checks that.
#include "fuzz_harness.hpp"

#include <pmr/region/locked_page_resource.hpp>

namespace {

pmrkit::locked_page_options options_from(pmrkit::fuzz::fuzz_input& in) {
  pmrkit::locked_page_options o;
  o.zero_on_free = (in.u8() & 1) != 0;
  return o;
}

using locked_page_subject =
    pmrkit::fuzz::resource_subject<pmrkit::locked_page_resource, &options_from>;

}  // namespace

PMRKIT_FUZZ_SUBJECT(locked_page_subject)
