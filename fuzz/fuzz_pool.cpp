// Fuzzes pool_resource against the model (fuzz_harness.hpp): block size,
// alignment, chunk growth and on_mismatch (forward or reject) from the input,
// release and shrink.
#include "fuzz_harness.hpp"

#include <pmr/pool/pool_resource.hpp>

namespace {

pmrkit::pool_options options_from(pmrkit::fuzz::fuzz_input& in) {
  pmrkit::pool_options o;
  o.block_size = in.range(1, 8192);
  o.block_alignment = in.power_of_two(0, 14);
  o.initial_blocks = in.range(1, 64);
  o.max_blocks_per_chunk = o.initial_blocks * in.range(1, 64);
  o.growth_factor = in.range(1, 16);
  o.on_mismatch =
      (in.u8() & 1) != 0 ? pmrkit::pool_mismatch::reject : pmrkit::pool_mismatch::forward;
  return o;
}

using pool_subject = pmrkit::fuzz::resource_subject<pmrkit::pool_resource, &options_from>;

}  // namespace

PMRKIT_FUZZ_SUBJECT(pool_subject)
