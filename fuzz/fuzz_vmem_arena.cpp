// Fuzzes vmem_arena_resource against the model (fuzz_harness.hpp): a small
// reserve so overflow blocks go to the strict upstream, least alignments up to
// above the page size, checkpoint/rewind, reset, release, shrink.
#include "fuzz_harness.hpp"

#include <pmr/arena/vmem_arena_resource.hpp>

namespace {

struct vmem_arena_subject {
  static constexpr bool lifo = false;
  pmrkit::vmem_arena_resource arena;

  static pmrkit::vmem_arena_options options(pmrkit::fuzz::fuzz_input& in) {
    pmrkit::vmem_arena_options o;
    o.reserve = in.range(4096, std::size_t{64} << 20);
    o.commit_step = in.range(1, std::size_t{1} << 20);
    o.retain_on_reset = in.range(0, o.reserve);
    o.alignment = in.power_of_two(0, 16);  // above the page size too
    o.huge_pages = (in.u8() & 1) != 0;
    return o;
  }
  vmem_arena_subject(pmrkit::fuzz::fuzz_input& in, std::pmr::memory_resource* upstream)
      : arena(options(in), upstream) {}
  std::pmr::memory_resource& resource() { return arena; }
  [[nodiscard]] std::size_t least_alignment() const { return arena.options().alignment; }
  void reset() { arena.reset(); }
  void release() { arena.release(); }
  std::size_t shrink() { return arena.shrink(); }
  pmrkit::arena_checkpoint checkpoint() { return arena.checkpoint(); }
  void rewind(const pmrkit::arena_checkpoint& marker) { arena.rewind(marker); }
};

}  // namespace

PMRKIT_FUZZ_SUBJECT(vmem_arena_subject)
