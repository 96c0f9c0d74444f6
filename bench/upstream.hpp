// The counting upstream: rows that take their memory from counted_upstream() report the peak
// bytes they held from it as the benchmark counter `upstream_peak`.
//
//   rows.add_resource<releasable>("std_unsync_pool", [] {
//     return std::pmr::unsynchronized_pool_resource(counted_upstream()); });
//
// It sits between a resource and new_delete_resource(), so only upstream calls (chunk refills)
// pay for the counting, never the resource's own allocate/deallocate. Relaxed atomics: it may be
// called from several threads at once (the churn_t scenarios).
#pragma once

#include <atomic>
#include <cstddef>
#include <memory_resource>

#include <benchmark/benchmark.h>

#include <pmr/interop/boost_bridge.hpp>

namespace pmrkit::bench {

class counting_resource final : public std::pmr::memory_resource {
 public:
  // Bytes handed out and not yet given back.
  std::size_t held() const noexcept { return held_.load(std::memory_order_relaxed); }
  // The most held() has been since the last reset_peak().
  std::size_t peak() const noexcept { return peak_.load(std::memory_order_relaxed); }
  // Starts a new peak at the current held() and returns it. Called between benchmark runs, when
  // no subject is using the resource.
  std::size_t reset_peak() noexcept {
    const std::size_t now = held();
    peak_.store(now, std::memory_order_relaxed);
    return now;
  }

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    void* p = std::pmr::new_delete_resource()->allocate(bytes, alignment);
    const std::size_t now = held_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    std::size_t peak = peak_.load(std::memory_order_relaxed);
    while (now > peak && !peak_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
    return p;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    held_.fetch_sub(bytes, std::memory_order_relaxed);
    std::pmr::new_delete_resource()->deallocate(p, bytes, alignment);
  }
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  std::atomic<std::size_t> held_{0};
  std::atomic<std::size_t> peak_{0};
};

// The one counting upstream, over std::pmr::new_delete_resource(); lives until exit.
inline counting_resource* counted_upstream() noexcept {
  static counting_resource resource;
  return &resource;
}

// counted_upstream() as a boost::container::pmr::memory_resource, for the Boost resources: pmrkit's
// bridge over it, so their upstream calls are counted too (one virtual call more per upstream
// call, none per allocation they serve).
inline boost::container::pmr::memory_resource* counted_boost_upstream() {
  static pmrkit::to_boost_resource bridge(counted_upstream());
  return &bridge;
}

// The upstream_peak counter of one benchmark run: construct it before the subject (it starts a
// new peak), report() after the run. Reports only when the subject took something from
// counted_upstream(), so rows over other upstreams show nothing.
class upstream_peak {
 public:
  upstream_peak() noexcept : base_(counted_upstream()->reset_peak()) {}

  void report(benchmark::State& state) const {
    const std::size_t peak = counted_upstream()->peak();
    if (peak > base_) {
      state.counters["upstream_peak"] =
          benchmark::Counter(static_cast<double>(peak - base_), benchmark::Counter::kDefaults,
                             benchmark::Counter::kIs1024);
    }
  }

 private:
  std::size_t base_;
};

}  // namespace pmrkit::bench
