// Fuzzes concurrent_arena_resource on one thread against the model
// (fuzz_harness.hpp): chunk sizes, growth, least alignment and size limit
// from the input; reset, release, shrink (the owner's calls, no other thread
// allocating). fuzz_threads.cpp shares it between threads.
#include "fuzz_harness.hpp"

#include <pmr/arena/concurrent_arena_resource.hpp>

namespace {

pmrkit::concurrent_arena_options options_from(pmrkit::fuzz::fuzz_input& in) {
  pmrkit::concurrent_arena_options o;
  pmrkit::fuzz::draw_chain_options(in, o, 14);
  if ((in.u8() & 3) == 0) o.size_limit = in.range(0, std::size_t{1} << 20);
  return o;
}

using concurrent_arena_subject =
    pmrkit::fuzz::resource_subject<pmrkit::concurrent_arena_resource, &options_from>;
static_assert(requires(concurrent_arena_subject & s) {
  s.reset();
  s.release();
  s.shrink();
});

}  // namespace

PMRKIT_FUZZ_SUBJECT(concurrent_arena_subject)
