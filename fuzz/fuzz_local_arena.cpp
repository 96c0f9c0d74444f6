// Fuzzes local_arena<4096> against the model (fuzz_harness.hpp): the inner
// chunked arena's options from the input (its buffer is the object's),
// checkpoint/rewind, reset, release, shrink.
#include "fuzz_harness.hpp"

#include <pmr/arena/local_arena.hpp>

namespace {

pmrkit::chunked_arena_options options_from(pmrkit::fuzz::fuzz_input& in) {
  pmrkit::chunked_arena_options o;
  pmrkit::fuzz::draw_chain_options(in, o, 12);
  if ((in.u8() & 3) == 0) o.size_limit = in.range(0, std::size_t{1} << 20);
  return o;
}

using local_arena_subject =
    pmrkit::fuzz::resource_subject<pmrkit::local_arena<4096>, &options_from>;
static_assert(requires(local_arena_subject & s) {
  s.reset();
  s.release();
  s.shrink();
  s.rewind(s.checkpoint());
});

}  // namespace

PMRKIT_FUZZ_SUBJECT(local_arena_subject)
