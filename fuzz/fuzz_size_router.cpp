// Fuzzes size_router_resource against the model (fuzz_harness.hpp): a
// multipool for the small requests, the strict upstream for the large ones,
// the threshold and the largest small alignment from the input.
#include "fuzz_harness.hpp"

#include <pmr/decorator/size_router_resource.hpp>
#include <pmr/pool/multipool_resource.hpp>

namespace {

struct size_router_subject {
  static constexpr bool lifo = false;
  pmrkit::multipool_resource small;
  pmrkit::size_router_resource router;

  static pmrkit::size_router_options options(pmrkit::fuzz::fuzz_input& in) {
    pmrkit::size_router_options o;
    o.threshold = in.range(1, std::size_t{1} << 17);
    o.max_small_alignment = in.power_of_two(0, 13);
    return o;
  }
  size_router_subject(pmrkit::fuzz::fuzz_input& in, std::pmr::memory_resource* upstream)
      : small(pmrkit::multipool_options{}, upstream), router(&small, options(in), upstream) {}
  std::pmr::memory_resource& resource() { return router; }
  [[nodiscard]] std::size_t least_alignment() const { return 1; }
};

}  // namespace

PMRKIT_FUZZ_SUBJECT(size_router_subject)
