// Fuzzes concurrent_pool_resource, single-threaded, against the model
// (fuzz_harness.hpp): chunk, largest pool and cache sizes from the input,
// release and shrink.
#include "fuzz_harness.hpp"

#include <pmr/pool/concurrent_pool_resource.hpp>

namespace {

pmrkit::concurrent_pool_options options_from(pmrkit::fuzz::fuzz_input& in) {
  pmrkit::concurrent_pool_options o;
  o.max_blocks_per_chunk = in.range(0, 4096);
  o.largest_required_pool_block = in.range(0, std::size_t{1} << 20);
  o.cache_bytes_per_class = in.range(0, std::size_t{256} << 10);
  return o;
}

using concurrent_pool_subject =
    pmrkit::fuzz::resource_subject<pmrkit::concurrent_pool_resource, &options_from>;

}  // namespace

PMRKIT_FUZZ_SUBJECT(concurrent_pool_subject)
