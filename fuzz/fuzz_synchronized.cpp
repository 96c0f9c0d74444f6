// Fuzzes synchronized_resource over a multipool_resource against the model
// (fuzz_harness.hpp), one thread: every call goes through the lock to the
// pool, whose options come from the input; release() is the pool's, under
// nothing (no other thread). fuzz_threads.cpp shares it between threads.
#include "fuzz_harness.hpp"

#include <pmr/decorator/synchronized_resource.hpp>
#include <pmr/pool/multipool_resource.hpp>

namespace {

struct synchronized_subject {
  static constexpr bool lifo = false;
  pmrkit::multipool_resource pool;
  pmrkit::synchronized_resource synchronized;

  static pmrkit::multipool_options options(pmrkit::fuzz::fuzz_input& in) {
    pmrkit::multipool_options o;
    o.max_blocks_per_chunk = in.range(0, 4096);
    o.largest_required_pool_block = in.range(0, std::size_t{1} << 20);
    return o;
  }
  synchronized_subject(pmrkit::fuzz::fuzz_input& in, std::pmr::memory_resource* upstream)
      : pool(options(in), upstream), synchronized({}, &pool) {}
  std::pmr::memory_resource& resource() { return synchronized; }
  [[nodiscard]] std::size_t least_alignment() const { return 1; }
  void release() { pool.release(); }
  std::size_t shrink() { return pool.shrink(); }
};

}  // namespace

PMRKIT_FUZZ_SUBJECT(synchronized_subject)
