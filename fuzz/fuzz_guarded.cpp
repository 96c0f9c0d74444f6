// Fuzzes guarded_resource against the model (fuzz_harness.hpp): the guard
// before or after, the quarantine's length from the input, release.
#include "fuzz_harness.hpp"

#include <pmr/decorator/guarded_resource.hpp>

namespace {

struct guarded_subject {
  static constexpr bool lifo = false;
  pmrkit::guarded_resource guarded;

  static pmrkit::guarded_options options(pmrkit::fuzz::fuzz_input& in) {
    pmrkit::guarded_options o;
    o.quarantine_blocks = in.range(0, 128);
    o.position =
        (in.u8() & 1) != 0 ? pmrkit::guard_position::before : pmrkit::guard_position::after;
    return o;
  }
  guarded_subject(pmrkit::fuzz::fuzz_input& in, std::pmr::memory_resource* upstream)
      : guarded(options(in), upstream) {}
  std::pmr::memory_resource& resource() { return guarded; }
  [[nodiscard]] std::size_t least_alignment() const { return 1; }
  void release() { guarded.release(); }
};

}  // namespace

PMRKIT_FUZZ_SUBJECT(guarded_subject)
