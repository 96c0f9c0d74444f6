// Fuzzes buddy_resource against the model (fuzz_harness.hpp): region size,
// least block, region count and cache size from the input, release and shrink.
#include "fuzz_harness.hpp"

#include <pmr/buddy/buddy_resource.hpp>

namespace {

pmrkit::buddy_options options_from(pmrkit::fuzz::fuzz_input& in) {
  pmrkit::buddy_options o;
  o.min_block = in.power_of_two(0, 14);
  o.region_size = in.power_of_two(6, 23);
  if ((in.u8() & 1) != 0) o.max_regions = in.range(1, 8);
  o.cache_blocks_per_order = in.range(0, 32);  // 0: eager merging; 1, 2: a cache that overflows
  return o;
}

using buddy_subject = pmrkit::fuzz::resource_subject<pmrkit::buddy_resource, &options_from>;

}  // namespace

PMRKIT_FUZZ_SUBJECT(buddy_subject)
