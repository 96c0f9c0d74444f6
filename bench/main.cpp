// pmrkit_bench: every pmrkit strategy against the peers, same binary, same workloads.
// See bench/README.md for running it and reading the tables.
#include <cstddef>
#include <memory_resource>

#include <benchmark/benchmark.h>

#include <pmr/pmrkit.hpp>

#include "registry.hpp"
#include "upstream.hpp"

namespace pmrkit::bench {
namespace {

// A decorator over a pool like pmrkit_pool's, both owned by the subject: the row's time less
// pmrkit_pool's is what the decorator adds per call (its counters, and the virtual call to the
// pool, which pmrkit_pool's row makes inline).
template <class Decorator>
struct over_pool {
  template <class Options>
  explicit over_pool(const Options& options) : decorator(options, &pool) {}
  over_pool(const over_pool&) = delete;
  over_pool& operator=(const over_pool&) = delete;

  void* allocate(std::size_t bytes, std::size_t alignment) {
    return decorator.allocate(bytes, alignment);
  }
  void deallocate(void* p, std::size_t bytes, std::size_t alignment) {
    decorator.deallocate(p, bytes, alignment);
  }

  pmrkit::pool_resource pool{{.block_size = 32}, counted_upstream()};
  Decorator decorator;
};

// The same pool called through a std::pmr::memory_resource* the compiler cannot see through, as
// every decorator calls its upstream: the baseline that separates a decorator's own work from
// the virtual call (pmrkit_pool's row calls the pool inline).
struct pool_via_pointer {
  pool_via_pointer() {
    asm volatile("" : "+r"(upstream));  // one "+r" operand: forget where it points
  }
  pool_via_pointer(const pool_via_pointer&) = delete;
  pool_via_pointer& operator=(const pool_via_pointer&) = delete;

  void* allocate(std::size_t bytes, std::size_t alignment) {
    return upstream->allocate(bytes, alignment);
  }
  void deallocate(void* p, std::size_t bytes, std::size_t alignment) {
    upstream->deallocate(p, bytes, alignment);
  }

  pmrkit::pool_resource pool{{.block_size = 32}, counted_upstream()};
  std::pmr::memory_resource* upstream = &pool;
};

constexpr std::size_t no_limit = std::size_t{1} << 40;  // never reached: measures the bookkeeping

// The pmrkit rows: one line per strategy, named pmrkit_*, added before the peers so they lead
// every table. The capabilities (subject.hpp: general, releasable, monotonic,
// capabilities{.block_size = N}, or with .thread_safe = true for a resource that may be called
// from several threads at once) pick the scenarios that apply; thread_safe adds churn_t<N>, one
// resource shared by N threads. counted_upstream() as the upstream reports the peak bytes taken
// from it (upstream_peak, compare.py's peak KiB). For example:
//
//   rows.add_resource<capabilities{.block_size = 32}>("pmrkit_pool", [] {
//     return pmrkit::pool_resource({.block_size = 32}, counted_upstream()); });
//   rows.add_resource<releasable>("pmrkit_multipool", [] {
//     return pmrkit::multipool_resource({}, counted_upstream()); });
//   rows.add_resource<capabilities{.release_all = true, .thread_safe = true}>(
//     "pmrkit_concurrent_pool", [] {
//       return pmrkit::concurrent_pool_resource({}, counted_upstream()); });
//   rows.add_resource<monotonic>("pmrkit_chunked_arena", [] {
//     return pmrkit::chunked_arena_resource({}, counted_upstream()); },
//     [](auto& arena) { arena.reset(); });  // release-all that keeps the chunks
void add_pmrkit_rows(registry& rows) {
  // reset() frees everything and keeps the chunks: what a per-batch arena does.
  rows.add_resource<monotonic>(
      "pmrkit_chunked_arena", [] { return pmrkit::chunked_arena_resource({}, counted_upstream()); },
      [](pmrkit::chunked_arena_resource& arena) { arena.reset(); });
  // Retaining what a batch commits keeps reset free of system calls, as a hot loop would.
  rows.add_resource<monotonic>(
      "pmrkit_vmem_arena",
      [] {
        return pmrkit::vmem_arena_resource(
            {.reserve = std::size_t{1} << 32, .retain_on_reset = std::size_t{64} << 20},
            counted_upstream());
      },
      [](pmrkit::vmem_arena_resource& arena) { arena.reset(); });
  // Frees pop only the newest block; a batch ends with a rewind to the start.
  rows.add_resource<monotonic>(
      "pmrkit_stack",
      [] {
        // Chunks as foonathan_stack's blocks (peers.cpp): 64 KiB first, doubling without a cap.
        return pmrkit::stack_resource(
            {.initial_chunk_size = std::size_t{64} << 10, .max_chunk_size = std::size_t{1} << 30},
            counted_upstream());
      },
      [](pmrkit::stack_resource& stack) { stack.reset(); });
  // One block size: the fixed-size scenarios and the containers whose requests all fit.
  rows.add_resource<capabilities{.block_size = 32, .release_all = true}>(
      "pmrkit_pool", [] { return pmrkit::pool_resource({.block_size = 32}, counted_upstream()); });
  // Decorators over that pool, with the same block size so they run the same scenarios (frees
  // one by one in bump_release: a budget or statistics cannot follow a pool's release()).
  // Default threading (atomic read-modify-writes), then serialized (loads and stores), which is
  // what a single-threaded pool allows.
  rows.add_resource<capabilities{.block_size = 32}>("pmrkit_pool_via_pointer",
                                                    [] { return pool_via_pointer(); });
  rows.add_resource<capabilities{.block_size = 32}>("pmrkit_budget_over_pool", [] {
    return over_pool<pmrkit::budget_resource>(pmrkit::budget_options{.limit = no_limit});
  });
  rows.add_resource<capabilities{.block_size = 32}>("pmrkit_budget_serialized_over_pool", [] {
    return over_pool<pmrkit::budget_resource>(pmrkit::budget_options{
        .limit = no_limit, .threading = pmrkit::decorator_threading::serialized});
  });
  rows.add_resource<capabilities{.block_size = 32}>("pmrkit_statistics_over_pool", [] {
    return over_pool<pmrkit::statistics_resource>(pmrkit::statistics_options{});
  });
  rows.add_resource<capabilities{.block_size = 32}>("pmrkit_statistics_serialized_over_pool", [] {
    return over_pool<pmrkit::statistics_resource>(
        pmrkit::statistics_options{.threading = pmrkit::decorator_threading::serialized});
  });
  // A lock around the pool: thread-safe, so it also runs churn_t<N>.
  rows.add_resource<capabilities{.block_size = 32, .thread_safe = true}>(
      "pmrkit_synchronized_over_pool",
      [] { return over_pool<pmrkit::synchronized_resource>(pmrkit::synchronized_options{}); });
  rows.add_resource<releasable>("pmrkit_multipool",
                                [] { return pmrkit::multipool_resource(counted_upstream()); });
  // Default options: 1 MiB regions, 64-byte blocks at least.
  rows.add_resource<releasable>("pmrkit_buddy", [] {
    return pmrkit::buddy_resource(pmrkit::buddy_options{}, counted_upstream());
  });
  // Shared by the threads of churn_t<N>; in the single-threaded scenarios one thread's cache.
  rows.add_resource<capabilities{.release_all = true, .thread_safe = true}>(
      "pmrkit_concurrent_pool", [] {
        return pmrkit::concurrent_pool_resource(pmrkit::concurrent_pool_options{},
                                                counted_upstream());
      });
}

}  // namespace
}  // namespace pmrkit::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  pmrkit::bench::registry rows;
  pmrkit::bench::add_pmrkit_rows(rows);
  pmrkit::bench::add_peer_rows(rows);
  pmrkit::bench::add_json_rows(rows);
  pmrkit::bench::add_shm_rows(rows);
  pmrkit::bench::add_page_rows(rows);
  pmrkit::bench::add_scratch_rows(rows);
  rows.register_benchmarks();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return rows.any_failed() ? 1 : 0;
}
