// pmrkit_bench: every pmrkit strategy against the peers, same binary, same workloads.
// See bench/README.md for running it and reading the tables.
#include <atomic>
#include <barrier>
#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

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

// A resource called through a std::pmr::memory_resource* the compiler cannot see through, as
// every decorator calls its upstream and every pmr container its resource. Over pmrkit_pool's
// pool it is the baseline that separates a decorator's own work from the virtual call
// (pmrkit_pool's row calls the pool inline); over the concurrent pool it runs the resource's
// out-of-line copy of its fast path, the one in the library (in a shared build, code compiled
// with -fPIC reads the pool's thread_local as that build's TLS model says).
template <class Resource>
struct via_pointer {
  template <class... Args>
  explicit via_pointer(Args&&... args) : resource(std::forward<Args>(args)...) {
    asm volatile("" : "+r"(upstream));  // one "+r" operand: forget where it points
  }
  via_pointer(const via_pointer&) = delete;
  via_pointer& operator=(const via_pointer&) = delete;

  void* allocate(std::size_t bytes, std::size_t alignment) {
    return upstream->allocate(bytes, alignment);
  }
  void deallocate(void* p, std::size_t bytes, std::size_t alignment) {
    upstream->deallocate(p, bytes, alignment);
  }

  Resource resource;
  std::pmr::memory_resource* upstream = &resource;
};

// bump_t<N>_32: one arena shared by N threads. A batch: every thread allocates bump_blocks blocks
// of 32 bytes through std::pmr::memory_resource& (writing the first byte of each), then, once all
// have finished (a barrier), the owner resets the arena while no thread allocates, and a second
// barrier lets the next batch start. The benchmark thread is one of the N; the others are started
// before the timed loop and joined after it. Timed in wall time; ns/op is per block.
constexpr int bump_blocks = 4096;

template <class Arena>
void bump_threaded(benchmark::State& state, int threads, Arena& arena,
                   std::pmr::memory_resource& resource) {
  std::barrier sync(threads);
  std::atomic<bool> stop = false;
  const auto batch = [&resource] {
    for (int i = 0; i < bump_blocks; ++i) {
      auto* p = static_cast<unsigned char*>(resource.allocate(32));
      *p = 1;
      benchmark::DoNotOptimize(p);
    }
  };
  std::vector<std::thread> workers;
  for (int t = 1; t < threads; ++t) {
    workers.emplace_back([&] {
      for (;;) {
        sync.arrive_and_wait();  // a batch starts (or the run ends)
        if (stop.load(std::memory_order_relaxed)) return;
        batch();
        sync.arrive_and_wait();  // every thread is done: the owner resets
      }
    });
  }
  for (auto _ : state) {
    sync.arrive_and_wait();
    batch();
    sync.arrive_and_wait();
    arena.reset();  // no thread allocates now
  }
  stop.store(true, std::memory_order_relaxed);
  sync.arrive_and_wait();
  for (std::thread& worker : workers)
    worker.join();
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * threads * bump_blocks);
}

// The subjects of bump_t<N>: each a resource every thread calls and a reset for the owner.
struct concurrent_arena_subject {
  pmrkit::concurrent_arena_resource arena{{}, counted_upstream()};
  std::pmr::memory_resource& resource() { return arena; }
  void reset() { arena.reset(); }
};
// The chunked arena behind synchronized_resource's lock.
struct synchronized_arena_subject {
  pmrkit::chunked_arena_resource arena{{}, counted_upstream()};
  pmrkit::synchronized_resource locked{{}, &arena};
  std::pmr::memory_resource& resource() { return locked; }
  void reset() { arena.reset(); }
};
// std::pmr::monotonic_buffer_resource behind a std::mutex; its reset is release(), which gives
// its chunks back (it keeps none).
struct monotonic_locked_subject final : std::pmr::memory_resource {
  std::mutex mutex;
  std::pmr::monotonic_buffer_resource monotonic{counted_upstream()};
  std::pmr::memory_resource& resource() { return *this; }
  void reset() { monotonic.release(); }

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    const std::lock_guard lock(mutex);
    return monotonic.allocate(bytes, alignment);
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    const std::lock_guard lock(mutex);
    monotonic.deallocate(p, bytes, alignment);
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }
};

template <class Subject>
void add_bump_row(registry& rows, const std::string& scenario, const char* row, int threads) {
  rows.add_custom_real_time(scenario, row, [threads](benchmark::State& state) {
    const upstream_peak peak;
    {
      Subject subject;
      bump_threaded(state, threads, subject, subject.resource());
    }
    peak.report(state);
  });
}

void add_bump_rows(registry& rows) {
  for (const int threads : churn_thread_counts()) {
    const std::string scenario = "bump_t" + std::to_string(threads) + "_32";
    add_bump_row<concurrent_arena_subject>(rows, scenario, "pmrkit_concurrent_arena", threads);
    add_bump_row<synchronized_arena_subject>(rows, scenario, "pmrkit_synchronized_arena", threads);
    add_bump_row<monotonic_locked_subject>(rows, scenario, "std_monotonic_locked", threads);
  }
}

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
  // The same with a pointer's least alignment: blocks packed as std_monotonic packs them (a
  // 40-byte map node takes 40 bytes), requests aligned above it take an align-up.
  rows.add_resource<monotonic>(
      "pmrkit_chunked_arena_packed",
      [] {
        return pmrkit::chunked_arena_resource({.alignment = alignof(void*)}, counted_upstream());
      },
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
  rows.add_resource<capabilities{.block_size = 32}>("pmrkit_pool_via_pointer", [] {
    return via_pointer<pmrkit::pool_resource>(pmrkit::pool_options{.block_size = 32},
                                              counted_upstream());
  });
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
  // Every call recorded (issue 18: cheap enough to leave on in a test run?): the records stream
  // to /dev/null, so the row pays the lock, the clock, the live-block table and the encoding.
  rows.add_resource<capabilities{.block_size = 32}>("pmrkit_trace_over_pool", [] {
    return over_pool<pmrkit::trace_resource>(pmrkit::trace_options{.path = "/dev/null"});
  });
  rows.add_resource<capabilities{.block_size = 32}>("pmrkit_trace_untimed_over_pool", [] {
    return over_pool<pmrkit::trace_resource>(
        pmrkit::trace_options{.path = "/dev/null", .timestamps = false});
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
  // The same through a pointer: the library's copy of the fast path (see via_pointer).
  rows.add_resource<capabilities{}>("pmrkit_concurrent_pool_via_pointer", [] {
    return via_pointer<pmrkit::concurrent_pool_resource>(pmrkit::concurrent_pool_options{},
                                                         counted_upstream());
  });
  // bump_t<N>_32: a thread-safe arena shared by N threads, reset between batches (above).
  add_bump_rows(rows);
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
