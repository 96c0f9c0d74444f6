// Fuzzes shm_resource over a new anonymous segment against the model
// (fuzz_harness.hpp): the segment's size and the thread cache's limit from
// the input (the constructor rejects what is out of range). It is a root:
// no upstream to count, so at the end its own figures must say that nothing
// is in use, the thread's cache flushed.
#include "fuzz_harness.hpp"

#include <pmr/shm/shm_resource.hpp>

namespace {

struct shm_subject {
  static constexpr bool lifo = false;
  pmrkit::shm_resource shm;

  static pmrkit::shm_resource_options options(pmrkit::fuzz::fuzz_input& in) {
    pmrkit::shm_resource_options o;
    o.segment_size = in.range(0, std::size_t{16} << 20);
    o.cache_limit = in.range(0, 1100);
    return o;
  }
  shm_subject(pmrkit::fuzz::fuzz_input& in, std::pmr::memory_resource*) : shm(options(in)) {}
  std::pmr::memory_resource& resource() { return shm; }
  [[nodiscard]] std::size_t least_alignment() const { return 1; }
  void check_everything_back() {
    shm.flush_thread_cache();
    const pmrkit::shm_stats s = shm.stats();
    if (s.blocks_in_use != 0 || s.bytes_in_use != 0 || s.large_blocks_in_use != 0) {
      pmrkit::fuzz::fail("shm_resource counts " + std::to_string(s.blocks_in_use) + " blocks, " +
                         std::to_string(s.bytes_in_use) + " bytes in use with every block freed");
    }
    if (s.bytes_cached != 0) pmrkit::fuzz::fail("shm_resource: the flushed cache holds bytes");
  }
};

}  // namespace

PMRKIT_FUZZ_SUBJECT(shm_subject)
