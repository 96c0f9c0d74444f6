#include "registry.hpp"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <system_error>
#include <utility>

namespace pmrkit::bench {

std::vector<int> churn_thread_counts() {
  const char* text = std::getenv("PMRKIT_BENCH_THREADS");
  if (text == nullptr || *text == '\0') return {2};
  constexpr int max_threads = 1024;
  const char* const text_end = text + std::strlen(text);
  std::vector<int> counts;
  for (const char* p = text;;) {
    int count = 0;
    const auto [end, error] = std::from_chars(p, text_end, count);
    if (error != std::errc() || count < 1 || count > max_threads || (*end != ',' && *end != '\0')) {
      std::fprintf(stderr,
                   "pmrkit_bench: PMRKIT_BENCH_THREADS=\"%s\": expected thread counts from 1 to %d "
                   "separated by commas, e.g. 1,2,4\n",
                   text, max_threads);
      std::exit(1);
    }
    if (std::find(counts.begin(), counts.end(), count) == counts.end()) counts.push_back(count);
    if (*end == '\0') return counts;
    p = end + 1;
  }
}

void registry::add_entry(std::size_t rank, std::string_view scenario, std::string_view row,
                         std::function<void(benchmark::State&)> run, int threads, hook setup,
                         hook teardown) {
  entries_.push_back({rank, std::string(scenario) + "/" + std::string(row), std::move(run), threads,
                      setup, teardown});
}

void registry::register_benchmarks() {
  std::stable_sort(entries_.begin(), entries_.end(),
                   [](const entry& a, const entry& b) { return a.rank < b.rank; });
  for (entry& e : entries_) {
    // A subject that throws (out of capacity, unsupported request) gets an error row instead of
    // ending the whole run.
    auto guarded = [this, run = std::move(e.run)](benchmark::State& state) {
      try {
        run(state);
      } catch (const std::exception& error) {
        state.SkipWithError(error.what());
        failed_.store(true, std::memory_order_relaxed);
      }
    };
    benchmark::internal::Benchmark* b =
        benchmark::RegisterBenchmark(e.name.c_str(), std::move(guarded));
    b->Unit(benchmark::kMicrosecond);
    // Google Benchmark names these <scenario>/<row>/real_time/threads:N.
    if (e.real_time) b->UseRealTime();
    if (e.threads > 0) {
      b->Threads(e.threads)->UseRealTime()->Setup(e.setup)->Teardown(e.teardown);
    }
  }
  entries_.clear();
}

}  // namespace pmrkit::bench
