// Fuzzes multipool_resource against the model (fuzz_harness.hpp): chunk and
// largest pool sizes from the input, release and shrink.
#include "fuzz_harness.hpp"

#include <pmr/pool/multipool_resource.hpp>

namespace {

pmrkit::multipool_options options_from(pmrkit::fuzz::fuzz_input& in) {
  pmrkit::multipool_options o;
  o.max_blocks_per_chunk = in.range(0, 4096);
  o.largest_required_pool_block = in.range(0, std::size_t{1} << 20);
  return o;
}

using multipool_subject = pmrkit::fuzz::resource_subject<pmrkit::multipool_resource, &options_from>;

}  // namespace

PMRKIT_FUZZ_SUBJECT(multipool_subject)
