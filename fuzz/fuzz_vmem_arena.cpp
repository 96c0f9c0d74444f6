// Fuzzes vmem_arena_resource against the model (fuzz_harness.hpp): a small
// reserve so overflow blocks go to the strict upstream, least alignments up to
// above the page size, checkpoint/rewind, reset, release, shrink.
#include "fuzz_harness.hpp"

#include <pmr/arena/vmem_arena_resource.hpp>

namespace {

pmrkit::vmem_arena_options options_from(pmrkit::fuzz::fuzz_input& in) {
  pmrkit::vmem_arena_options o;
  o.reserve = in.range(4096, std::size_t{64} << 20);
  o.commit_step = in.range(1, std::size_t{1} << 20);
  o.retain_on_reset = in.range(0, o.reserve);
  o.alignment = in.power_of_two(0, 16);  // above the page size too
  o.huge_pages = (in.u8() & 1) != 0;
  return o;
}

using vmem_arena_subject =
    pmrkit::fuzz::resource_subject<pmrkit::vmem_arena_resource, &options_from>;
// The arena's bulk calls reach the harness through the subject.
static_assert(requires(vmem_arena_subject & s) {
  s.reset();
  s.release();
  s.shrink();
  s.rewind(s.checkpoint());
});

}  // namespace

PMRKIT_FUZZ_SUBJECT(vmem_arena_subject)
