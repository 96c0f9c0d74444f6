// Fuzzes buddy_resource against the model (fuzz_harness.hpp): region size,
// least block and region count from the input, release and shrink.
#include "fuzz_harness.hpp"

#include <pmr/buddy/buddy_resource.hpp>

namespace {

struct buddy_subject {
  static constexpr bool lifo = false;
  pmrkit::buddy_resource buddy;

  static pmrkit::buddy_options options(pmrkit::fuzz::fuzz_input& in) {
    pmrkit::buddy_options o;
    o.min_block = in.power_of_two(0, 12);
    o.region_size = in.power_of_two(6, 23);
    if ((in.u8() & 1) != 0) o.max_regions = in.range(1, 8);
    return o;
  }
  buddy_subject(pmrkit::fuzz::fuzz_input& in, std::pmr::memory_resource* upstream)
      : buddy(options(in), upstream) {}
  std::pmr::memory_resource& resource() { return buddy; }
  [[nodiscard]] std::size_t least_alignment() const { return 1; }
  void release() { buddy.release(); }
  std::size_t shrink() { return buddy.shrink(); }
};

}  // namespace

PMRKIT_FUZZ_SUBJECT(buddy_subject)
