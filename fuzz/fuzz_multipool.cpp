// Fuzzes multipool_resource against the model (fuzz_harness.hpp): chunk and
// largest pool sizes from the input, release and shrink.
#include "fuzz_harness.hpp"

#include <pmr/pool/multipool_resource.hpp>

namespace {

struct multipool_subject {
  static constexpr bool lifo = false;
  pmrkit::multipool_resource pools;

  static pmrkit::multipool_options options(pmrkit::fuzz::fuzz_input& in) {
    pmrkit::multipool_options o;
    o.max_blocks_per_chunk = in.range(0, 4096);
    o.largest_required_pool_block = in.range(0, std::size_t{1} << 20);
    return o;
  }
  multipool_subject(pmrkit::fuzz::fuzz_input& in, std::pmr::memory_resource* upstream)
      : pools(options(in), upstream) {}
  std::pmr::memory_resource& resource() { return pools; }
  [[nodiscard]] std::size_t least_alignment() const { return 1; }
  void release() { pools.release(); }
  std::size_t shrink() { return pools.shrink(); }
};

}  // namespace

PMRKIT_FUZZ_SUBJECT(multipool_subject)
