// Fuzzes local_arena<4096> against the model (fuzz_harness.hpp): the inner
// chunked arena's options from the input (its buffer is the object's),
// checkpoint/rewind, reset, release, shrink.
#include "fuzz_harness.hpp"

#include <pmr/arena/local_arena.hpp>

namespace {

pmrkit::chunked_arena_options options_from(pmrkit::fuzz::fuzz_input& in) {
  pmrkit::chunked_arena_options o;
  o.initial_chunk_size = in.range(256, 65536);
  o.max_chunk_size = o.initial_chunk_size * in.range(1, 64);
  o.growth_factor = in.range(1, 16);
  o.alignment = in.power_of_two(0, 12);
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
