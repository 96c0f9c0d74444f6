#include "registry.hpp"

#include <algorithm>
#include <exception>
#include <utility>

namespace pmrkit::bench {

void registry::add_entry(std::size_t rank, std::string_view scenario, std::string_view row,
                         std::function<void(benchmark::State&)> run) {
  entries_.push_back({rank, std::string(scenario) + "/" + std::string(row), std::move(run)});
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
        failed_ = true;
      }
    };
    benchmark::RegisterBenchmark(e.name.c_str(), std::move(guarded))->Unit(benchmark::kMicrosecond);
  }
  entries_.clear();
}

}  // namespace pmrkit::bench
