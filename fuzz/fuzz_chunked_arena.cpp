// Fuzzes chunked_arena_resource against the model (fuzz_harness.hpp): option
// values from the input (an initial buffer of 0 to 4 KiB at any offset from a
// 64-byte boundary among them), checkpoint/rewind, reset, clear, release, shrink.
#include "fuzz_harness.hpp"

#include <pmr/arena/chunked_arena_resource.hpp>

#include <cstddef>
#include <span>

namespace {

// The initial buffers' memory: one input runs at a time, and the arena gives
// the buffer back unpoisoned when it is destroyed.
alignas(64) std::byte buffer_storage[4096 + 64];

pmrkit::chunked_arena_options options_from(pmrkit::fuzz::fuzz_input& in) {
  pmrkit::chunked_arena_options o;
  pmrkit::fuzz::draw_chain_options(in, o, 12);
  if ((in.u8() & 3) == 0) o.size_limit = in.range(0, std::size_t{1} << 20);
  if ((in.u8() & 1) != 0) {
    const std::size_t offset = in.range(0, 63);
    o.initial_buffer = std::span(buffer_storage).subspan(offset, in.range(0, 4096));
  }
  return o;
}

using chunked_arena_subject =
    pmrkit::fuzz::resource_subject<pmrkit::chunked_arena_resource, &options_from>;
// The arena's bulk calls reach the harness through the subject.
static_assert(requires(chunked_arena_subject & s) {
  s.reset();
  s.release();
  s.shrink();
  s.rewind(s.checkpoint());
});

}  // namespace

PMRKIT_FUZZ_SUBJECT(chunked_arena_subject)
