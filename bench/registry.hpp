// The registry: one call adds a subject to every scenario that applies to it.
//
//   rows.add_resource<capabilities{.block_size = 32}>("pmrkit_pool", [] {
//     return pmrkit::pool_resource({.block_size = 32}, counted_upstream());
//   });
//   rows.add_resource<capabilities{.release_all = true, .thread_safe = true}>(
//       "pmrkit_concurrent_pool",
//       [] { return pmrkit::concurrent_pool_resource({}, counted_upstream()); });
//
// The capabilities pick the scenarios; thread_safe (with individual frees) adds the churn_t<N>
// scenarios, one subject shared by N threads. counted_upstream() (upstream.hpp) as the upstream
// gives the row an upstream_peak counter. Benchmarks are named <scenario>/<row> (Google
// Benchmark appends /real_time/threads:N to the churn_t ones; compare.py drops it) and
// registered grouped by scenario, rows in the order they were added (pmrkit rows first).
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include "scenarios.hpp"
#include "subject.hpp"

namespace pmrkit::bench {

// The thread counts of the churn_t<N> scenarios: PMRKIT_BENCH_THREADS, a comma-separated list
// such as "1,2,4,8,16", or 2 when it is unset or empty. Exits with a message when it is malformed.
std::vector<int> churn_thread_counts();

class registry {
 public:
  // A resource made by `factory` (a captureless lambda returning the resource, or a pointer to
  // one). `release` is what release-all means for it when caps.release_all is set.
  template <capabilities Caps = capabilities{}, class Factory, class Release = release_member>
  void add_resource(std::string_view row, Factory, Release = {}) {
    add<resource_subject<Caps, Factory, Release>>(row);
  }

  // A native API struct: allocate/deallocate[/release], default-constructible, with `caps`.
  template <class Api>
  void add_native(std::string_view row) {
    add<resource_subject<Api::caps, construct<Api>>>(row);
  }

  // Any subject (subject.hpp), in every scenario it supports.
  template <class S>
  void add(std::string_view row);

  // A subject of the shm scenarios (shm.cpp), and only those: shm_churn_32, shm_churn_uniform,
  // shm_message_256 and their shm_*_t<N> forms (N from PMRKIT_BENCH_THREADS). A subject with
  // individual frees; in the threaded forms a thread-safe one is shared by the N threads, any
  // other is built once per thread (the non-shared reference).
  template <class S>
  void add_shm(std::string_view row);
  template <capabilities Caps = capabilities{}, class Factory>
  void add_shm_resource(std::string_view row, Factory) {
    add_shm<resource_subject<Caps, Factory>>(row);
  }
  template <class Api>
  void add_shm_native(std::string_view row) {
    add_shm<resource_subject<Api::caps, construct<Api>>>(row);
  }

  // One row of a scenario that is not written against subjects (json_parse): `run` is the whole
  // benchmark. These scenarios come after the container workloads, rows in the order added.
  void add_custom(std::string_view scenario, std::string_view row,
                  std::function<void(benchmark::State&)> run) {
    add_entry(custom_rank, scenario, row, std::move(run));
  }
  // The same for a scenario whose run starts threads of its own (bump_t<N>): timed in wall time,
  // so ns/op counts what every thread took, not the benchmark thread's CPU time alone.
  void add_custom_real_time(std::string_view scenario, std::string_view row,
                            std::function<void(benchmark::State&)> run) {
    add_entry(custom_rank, scenario, row, std::move(run));
    entries_.back().real_time = true;
  }

  // Hands everything to Google Benchmark, grouped by scenario. The registry must outlive the
  // run.
  void register_benchmarks();

  // Whether a benchmark ended with an error (a subject threw): main's exit status, so a smoke run
  // in CI fails.
  bool any_failed() const { return failed_.load(std::memory_order_relaxed); }

 private:
  using hook = void (*)(const benchmark::State&);
  struct entry {
    std::size_t rank;  // the scenario's position in the report
    std::string name;
    std::function<void(benchmark::State&)> run;
    int threads = 0;          // > 0: run by this many threads at once, timed in wall time
    hook setup = nullptr;     // called before each run's threads start
    hook teardown = nullptr;  // and after they end
    bool real_time = false;   // a custom run with threads of its own: timed in wall time
  };
  void add_entry(std::size_t rank, std::string_view scenario, std::string_view row,
                 std::function<void(benchmark::State&)> run, int threads = 0, hook setup = nullptr,
                 hook teardown = nullptr);

  // Report positions: the allocation scenarios first, then churn_t, then the shm scenarios, then
  // the containers, then the custom scenarios.
  static constexpr std::size_t threaded_rank = 1000;
  static constexpr std::size_t shm_rank = 500000;
  static constexpr std::size_t container_rank = 1000000;
  static constexpr std::size_t custom_rank = 2000000;

  template <class S, class... Workloads>
  void add_containers(std::string_view row, workload_list<Workloads...>);

  std::vector<entry> entries_;
  std::vector<int> thread_counts_ = churn_thread_counts();
  std::atomic<bool> failed_ = false;  // set by the benchmark threads
};

// The third-party rows (peers.cpp); main.cpp adds the pmrkit rows.
void add_peer_rows(registry& rows);
// The json_parse scenario, pmrkit rows and peers (json_parse.cpp).
void add_json_rows(registry& rows);
// The shm scenarios and their rows, pmrkit_shm, boost_ipc and pmrkit_multipool (shm.cpp); none
// when the library is built without the shared-memory family.
void add_shm_rows(registry& rows);
// The page sources' first_touch scenarios: page_resource's kinds of pages, locked pages and
// malloc, with page faults per iteration, and region_alloc_2KiB: a pooled region against a page
// source per request (pages.cpp).
void add_page_rows(registry& rows);
// Scratch arenas made per call: small_scratch (an arena over a stack buffer, a short vector of
// short strings) and arena_per_request / arena_reuse_request, against monotonic_buffer_resource
// (scratch.cpp).
void add_scratch_rows(registry& rows);

template <class S>
void registry::add(std::string_view row) {
  if constexpr (allocating_subject<S>) {
    const auto variants = size_variants();
    for (std::size_t s = 0; s < alloc_scenario_names.size(); ++s) {
      const auto scenario = static_cast<alloc_scenario>(s);
      for (std::size_t v = 0; v < variants.size(); ++v) {
        const size_variant& variant = variants[v];
        if (!applies<S>(scenario, variant)) continue;
        const std::string name =
            std::string(alloc_scenario_names[s]) + "_" + std::string(variant.suffix);
        add_entry(s * variants.size() + v, name, row, [scenario, sizes = variant.sizes](auto& st) {
          run_alloc_scenario<S>(st, scenario, sizes);
        });
      }
    }
    // churn_uniform: churn over uniform sizes with uniform_churn_live_blocks live, after the
    // other allocation scenarios.
    if constexpr (S::caps.individual_free && S::caps.block_size == 0) {
      const std::span<const std::size_t> uniform = uniform_sizes();
      add_entry(alloc_scenario_names.size() * variants.size(), "churn_uniform", row,
                [uniform](auto& st) { churn<S>(st, uniform, uniform_churn_live_blocks); });
    }
    // churn_t<N>: one subject shared by N threads.
    if constexpr (S::caps.thread_safe && S::caps.individual_free) {
      for (std::size_t t = 0; t < thread_counts_.size(); ++t) {
        for (std::size_t v = 0; v < variants.size(); ++v) {
          const size_variant& variant = variants[v];
          if (!applies<S>(alloc_scenario::churn, variant)) continue;
          const std::string name =
              "churn_t" + std::to_string(thread_counts_[t]) + "_" + std::string(variant.suffix);
          add_entry(
              threaded_rank + t * variants.size() + v, name, row,
              [sizes = variant.sizes](auto& st) { churn_threaded<S>(st, sizes); },
              thread_counts_[t], &shared_subject<S>::setup, &shared_subject<S>::teardown);
        }
      }
    }
  }
  if constexpr (container_subject<S>) add_containers<S>(row, container_workloads{});
}

template <class S>
void registry::add_shm(std::string_view row) {
  static_assert(allocating_subject<S> && S::caps.individual_free && S::caps.block_size == 0,
                "the shm scenarios free one block at a time, of any size up to 4096 bytes");
  const std::span<const std::size_t> fixed = size_variants().front().sizes;
  const std::span<const std::size_t> uniform = uniform_sizes();
  add_entry(shm_rank, "shm_churn_32", row, [fixed](auto& st) { churn<S>(st, fixed); });
  add_entry(shm_rank + 1, "shm_churn_uniform", row, [uniform](auto& st) { churn<S>(st, uniform); });
  add_entry(shm_rank + 2, "shm_message_" + std::to_string(message_size), row, message<S>);
  for (std::size_t t = 0; t < thread_counts_.size(); ++t) {
    const int threads = thread_counts_[t];
    const std::string n = std::to_string(threads);
    const std::size_t rank = shm_rank + 3 * (t + 1);
    add_entry(
        rank, "shm_churn_t" + n + "_32", row, [fixed](auto& st) { churn_threaded<S>(st, fixed); },
        threads, &shared_subject<S>::setup, &shared_subject<S>::teardown);
    add_entry(
        rank + 1, "shm_churn_t" + n + "_uniform", row,
        [uniform](auto& st) { churn_threaded<S>(st, uniform); }, threads, &shared_subject<S>::setup,
        &shared_subject<S>::teardown);
    add_entry(rank + 2, "shm_message_t" + n + "_" + std::to_string(message_size), row,
              message_threaded<S>, threads, &shared_subject<S>::setup,
              &shared_subject<S>::teardown);
  }
}

template <class S, class... Workloads>
void registry::add_containers(std::string_view row, workload_list<Workloads...>) {
  std::size_t rank = container_rank;
  const auto offer = [&]<class Workload>(Workload) {
    const bool fits = S::caps.block_size == 0 || largest_request<Workload>() <= S::caps.block_size;
    if (fits) add_entry(rank, Workload::name, row, run_container<S, Workload>);
    ++rank;
  };
  (offer(Workloads{}), ...);
}

}  // namespace pmrkit::bench
