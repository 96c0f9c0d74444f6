#include <pmr/decorator/statistics_resource.hpp>

#include <pmr/core/error.hpp>
#include <pmr/pool/concurrent_pool_resource.hpp>
#include <pmr/testing/test_resource.hpp>

#include "conformance/conformance.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <latch>
#include <limits>
#include <memory>
#include <memory_resource>
#include <numeric>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using pmrkit::allocation_counters;
using pmrkit::decorator_threading;
using pmrkit::statistics_resource;
using pmrkit::test_resource;

struct statistics_traits {
  using resource_type = statistics_resource;
  static constexpr std::string_view name = "pmrkit::statistics_resource";
  static constexpr pmrkit::conformance::capabilities caps{.releases_on_destruction = false};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(upstream);
  }
};

struct serialized_statistics_traits {
  using resource_type = statistics_resource;
  static constexpr std::string_view name = "pmrkit::statistics_resource (serialized)";
  static constexpr pmrkit::conformance::capabilities caps{.releases_on_destruction = false};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(
        pmrkit::statistics_options{.threading = decorator_threading::serialized}, upstream);
  }
};

struct counting_observer final : pmrkit::allocation_observer {
  void on_allocate(void*, std::size_t, std::size_t) noexcept override { ++calls; }
  void on_deallocate(void*, std::size_t, std::size_t) noexcept override { ++calls; }
  std::size_t calls = 0;
};

// A frame and an observer on: the slow path under the whole suite.
struct observed_statistics_traits {
  static inline counting_observer observer;

  using resource_type = statistics_resource;
  static constexpr std::string_view name = "pmrkit::statistics_resource (frame and observer)";
  static constexpr pmrkit::conformance::capabilities caps{.releases_on_destruction = false};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    auto resource = std::make_unique<resource_type>(upstream);
    resource->push_counters();
    resource->add_observer(observer);
    return resource;
  }
};

using statistics_types =
    ::testing::Types<statistics_traits, serialized_statistics_traits, observed_statistics_traits>;
INSTANTIATE_TYPED_TEST_SUITE_P(statistics, resource_conformance, statistics_types,
                               pmrkit::conformance::traits_names);

constexpr pmrkit::test_options upstream_options{.name = "upstream"};

constexpr decorator_threading both_modes[] = {decorator_threading::concurrent,
                                              decorator_threading::serialized};

/// For a frame's allocation_counters (signed) and the lifetime's statistics_stats (unsigned).
template <class Counters>
void expect_counters(const Counters& c, std::size_t allocations, std::size_t deallocations,
                     std::ptrdiff_t in_use, std::ptrdiff_t peak, std::size_t total) {
  EXPECT_EQ(c.allocations, allocations);
  EXPECT_EQ(c.deallocations, deallocations);
  EXPECT_EQ(static_cast<std::ptrdiff_t>(c.bytes_in_use), in_use);
  EXPECT_EQ(static_cast<std::ptrdiff_t>(c.peak_bytes_in_use), peak);
  EXPECT_EQ(c.total_bytes, total);
}

TEST(StatisticsResource, CountsCallsBytesAndPeak) {
  for (const decorator_threading mode : both_modes) {
    test_resource upstream(upstream_options, std::pmr::new_delete_resource());
    statistics_resource statistics({.threading = mode}, &upstream);
    void* a = statistics.allocate(100, 8);
    void* b = statistics.allocate(200, 64);
    statistics.deallocate(a, 100, 8);
    void* c = statistics.allocate(50, 1);
    expect_counters(statistics.stats(), 3, 1, 250, 300, 350);
    statistics.deallocate(b, 200, 64);
    statistics.deallocate(c, 50, 1);
    expect_counters(statistics.stats(), 3, 3, 0, 300, 350);
    EXPECT_TRUE(pmrkit::conformance::upstream_is_clean(upstream));
  }
}

TEST(StatisticsResource, HistogramBucketsArePowersOfTwo) {
  static_assert(statistics_resource::histogram_buckets == 65);
  static_assert(statistics_resource::histogram_bucket(0) == 0);
  static_assert(statistics_resource::histogram_bucket(1) == 0);
  static_assert(statistics_resource::histogram_bucket(2) == 1);
  static_assert(statistics_resource::histogram_bucket(3) == 2);
  static_assert(statistics_resource::histogram_bucket(4) == 2);
  static_assert(statistics_resource::histogram_bucket(5) == 3);
  static_assert(statistics_resource::histogram_bucket(1024) == 10);
  static_assert(statistics_resource::histogram_bucket(1025) == 11);
  static_assert(statistics_resource::histogram_bucket(std::numeric_limits<std::size_t>::max()) ==
                64);
  for (std::size_t bucket = 1; bucket < 64; ++bucket) {
    const std::size_t top = std::size_t{1} << bucket;
    EXPECT_EQ(statistics_resource::histogram_bucket(top), bucket);
    EXPECT_EQ(statistics_resource::histogram_bucket(top / 2 + 1), bucket);
  }

  statistics_resource statistics;
  std::vector<std::pair<void*, std::size_t>> blocks;
  for (std::size_t bytes : {0, 1, 16, 17, 32, 33, 4096})
    blocks.emplace_back(statistics.allocate(bytes), bytes);
  const statistics_resource::histogram_type histogram = statistics.histogram();
  EXPECT_EQ(histogram[0], 2U);   // 0 and 1
  EXPECT_EQ(histogram[4], 1U);   // 16
  EXPECT_EQ(histogram[5], 2U);   // 17 and 32
  EXPECT_EQ(histogram[6], 1U);   // 33
  EXPECT_EQ(histogram[12], 1U);  // 4096
  EXPECT_EQ(std::accumulate(histogram.begin(), histogram.end(), std::size_t{0}),
            statistics.stats().allocations);
  for (const auto& [p, bytes] : blocks)
    statistics.deallocate(p, bytes);
}

TEST(StatisticsResource, AFrameCountsOnlyWhatHappensInIt) {
  for (const decorator_threading mode : both_modes) {
    statistics_resource statistics({.threading = mode});
    void* before = statistics.allocate(1000);
    statistics.push_counters();
    EXPECT_EQ(statistics.frame_depth(), 1U);
    void* inside = statistics.allocate(100);
    statistics.deallocate(inside, 100);
    void* kept = statistics.allocate(40);
    const allocation_counters frame = statistics.pop_counters();
    expect_counters(frame, 2, 1, 40, 100, 140);
    EXPECT_EQ(statistics.frame_depth(), 0U);
    // The lifetime counters saw everything.
    expect_counters(statistics.stats(), 3, 1, 1040, 1100, 1140);
    statistics.deallocate(kept, 40);
    statistics.deallocate(before, 1000);
  }
}

TEST(StatisticsResource, AFrameThatFreesOlderBlocksHasNegativeBytes) {
  statistics_resource statistics;
  void* older = statistics.allocate(500);
  statistics.push_counters();
  statistics.deallocate(older, 500);
  expect_counters(statistics.pop_counters(), 0, 1, -500, 0, 0);
}

TEST(StatisticsResource, APoppedFrameAddsIntoTheFrameBelow) {
  statistics_resource statistics;
  statistics.push_counters();          // outer
  void* a = statistics.allocate(300);  // outer: 300 in use, peak 300
  statistics.push_counters();          // inner
  void* b = statistics.allocate(500);  // inner: 500, outer would be 800
  statistics.deallocate(b, 500);       // inner: 0, peak 500
  void* c = statistics.allocate(100);  // inner: 100
  expect_counters(statistics.pop_counters(), 2, 1, 100, 500, 600);
  // The outer frame: its peak is its 300 at the push plus the inner peak.
  statistics.deallocate(a, 300);
  expect_counters(statistics.pop_counters(), 3, 2, 100, 800, 900);
  statistics.deallocate(c, 100);
  expect_counters(statistics.stats(), 3, 3, 0, 800, 900);
}

/// The counters as RMM's adaptor defines them, kept by the test.
struct reference_frame {
  allocation_counters c;
  void allocate(std::size_t bytes) {
    ++c.allocations;
    c.total_bytes += bytes;
    c.bytes_in_use += static_cast<std::ptrdiff_t>(bytes);
    c.peak_bytes_in_use = std::max(c.peak_bytes_in_use, c.bytes_in_use);
  }
  void deallocate(std::size_t bytes) {
    ++c.deallocations;
    c.bytes_in_use -= static_cast<std::ptrdiff_t>(bytes);
  }
  void absorb(const allocation_counters& popped) {
    c.peak_bytes_in_use = std::max(c.peak_bytes_in_use, c.bytes_in_use + popped.peak_bytes_in_use);
    c.bytes_in_use += popped.bytes_in_use;
    c.allocations += popped.allocations;
    c.deallocations += popped.deallocations;
    c.total_bytes += popped.total_bytes;
  }
};

TEST(StatisticsResource, CountersMatchAReferenceThroughNestedFrames) {
  for (const decorator_threading mode : both_modes) {
    statistics_resource statistics({.threading = mode});
    reference_frame lifetime;
    std::vector<reference_frame> frames;
    std::vector<std::pair<void*, std::size_t>> held;
    std::uint32_t state = 12345;
    const auto next = [&] {
      state ^= state << 13;
      state ^= state >> 17;
      state ^= state << 5;
      return state;
    };
    for (int step = 0; step < 5000; ++step) {
      const std::uint32_t pick = next() % 100;
      if (pick < 3) {
        statistics.push_counters();
        frames.emplace_back();
      } else if (pick < 6 && !frames.empty()) {
        const allocation_counters popped = statistics.pop_counters();
        const allocation_counters expected = frames.back().c;
        frames.pop_back();
        expect_counters(popped, expected.allocations, expected.deallocations, expected.bytes_in_use,
                        expected.peak_bytes_in_use, expected.total_bytes);
        if (!frames.empty()) frames.back().absorb(popped);
      } else if (pick < 50 && !held.empty()) {
        const std::size_t index = next() % held.size();
        const auto [p, bytes] = held[index];
        held[index] = held.back();
        held.pop_back();
        statistics.deallocate(p, bytes);
        lifetime.deallocate(bytes);
        if (!frames.empty()) frames.back().deallocate(bytes);
      } else {
        const std::size_t bytes = next() % 300;
        held.emplace_back(statistics.allocate(bytes), bytes);
        lifetime.allocate(bytes);
        if (!frames.empty()) frames.back().allocate(bytes);
      }
      if (step % 97 == 0) {
        const pmrkit::statistics_stats now = statistics.stats();
        ASSERT_EQ(static_cast<std::ptrdiff_t>(now.bytes_in_use), lifetime.c.bytes_in_use) << step;
        ASSERT_EQ(static_cast<std::ptrdiff_t>(now.peak_bytes_in_use), lifetime.c.peak_bytes_in_use)
            << step;
      }
    }
    while (statistics.frame_depth() != 0)
      (void)statistics.pop_counters();
    for (const auto& [p, bytes] : held) {
      statistics.deallocate(p, bytes);
      lifetime.deallocate(bytes);
    }
    const allocation_counters& expected = lifetime.c;
    expect_counters(statistics.stats(), expected.allocations, expected.deallocations, 0,
                    expected.peak_bytes_in_use, expected.total_bytes);
  }
}

TEST(StatisticsResource, PoppingWithoutAFrameIsALogicError) {
  statistics_resource statistics;
  EXPECT_THROW((void)statistics.pop_counters(), std::logic_error);
  statistics.push_counters();
  (void)statistics.pop_counters();
  EXPECT_THROW((void)statistics.pop_counters(), std::logic_error);
}

struct recording_observer final : pmrkit::allocation_observer {
  struct call {
    bool allocate;
    void* p;
    std::size_t bytes;
    std::size_t alignment;
    unsigned char first_byte;  // of the block, when it was deallocated
    bool operator==(const call&) const = default;
  };
  void on_allocate(void* p, std::size_t bytes, std::size_t alignment) noexcept override {
    calls.push_back({true, p, bytes, alignment, 0});
  }
  void on_deallocate(void* p, std::size_t bytes, std::size_t alignment) noexcept override {
    calls.push_back({false, p, bytes, alignment, *static_cast<unsigned char*>(p)});
  }
  std::vector<call> calls;
};

TEST(StatisticsResource, ObserversSeeEveryCallWhileTheBlockIsValid) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  statistics_resource statistics(&upstream);
  recording_observer first;
  recording_observer second;
  statistics.add_observer(first);
  statistics.add_observer(second);
  void* p = statistics.allocate(64, 16);
  std::memset(p, 0x5A, 64);
  statistics.deallocate(p, 64, 16);  // test_resource scribbles it after the observers ran

  const std::vector<recording_observer::call> expected{{true, p, 64, 16, 0},
                                                       {false, p, 64, 16, 0x5A}};
  EXPECT_EQ(first.calls, expected);
  EXPECT_EQ(second.calls, expected);

  EXPECT_TRUE(statistics.remove_observer(first));
  EXPECT_FALSE(statistics.remove_observer(first));
  void* q = statistics.allocate(8);
  statistics.deallocate(q, 8);
  EXPECT_EQ(first.calls.size(), 2U);
  EXPECT_EQ(second.calls.size(), 4U);
  EXPECT_TRUE(statistics.remove_observer(second));
  EXPECT_TRUE(pmrkit::conformance::upstream_is_clean(upstream));
}

TEST(StatisticsResource, AFailedAllocationCountsNothing) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  statistics_resource statistics(&upstream);
  recording_observer observer;
  statistics.add_observer(observer);
  statistics.push_counters();
  upstream.set_allocation_limit(0);
  EXPECT_THROW((void)statistics.allocate(100), pmrkit::allocation_error);
  EXPECT_THROW((void)statistics.allocate(100, 3), pmrkit::allocation_error);  // bad alignment
  expect_counters(statistics.pop_counters(), 0, 0, 0, 0, 0);
  expect_counters(statistics.stats(), 0, 0, 0, 0, 0);
  EXPECT_TRUE(observer.calls.empty());
  const statistics_resource::histogram_type histogram = statistics.histogram();
  EXPECT_EQ(std::accumulate(histogram.begin(), histogram.end(), std::size_t{0}), 0U);
}

TEST(StatisticsResource, APlainBadAllocFromTheUpstreamBecomesAnAllocationError) {
  statistics_resource statistics({.name = "counted"}, std::pmr::null_memory_resource());
  try {
    (void)statistics.allocate(10);
    ADD_FAILURE() << "null_memory_resource did not fail";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::upstream_failed);
    EXPECT_EQ(e.resource_name(), "counted");
  }
}

TEST(StatisticsResource, ANullUpstreamIsAnInvalidArgument) {
  EXPECT_THROW(statistics_resource(pmrkit::statistics_options{}, nullptr), std::invalid_argument);
}

TEST(StatisticsResource, ConcurrentCountersAreExactOverAThreadSafeUpstream) {
  constexpr int threads = 4;
  constexpr std::size_t steps = 20000;
  pmrkit::concurrent_pool_resource pool;
  statistics_resource statistics({.name = "shared"}, &pool);
  statistics.push_counters();  // frames count concurrently too (pushed before the threads)
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::vector<std::pair<void*, std::size_t>> held;
      for (std::size_t step = 0; step < steps; ++step) {
        const std::size_t bytes = 8 + (step * 7 + static_cast<std::size_t>(t)) % 500;
        held.emplace_back(statistics.allocate(bytes), bytes);
        if (step % 3 == 2) {
          for (const auto& [p, size] : held)
            statistics.deallocate(p, size);
          held.clear();
        }
      }
      for (const auto& [p, size] : held)
        statistics.deallocate(p, size);
    });
  }
  for (std::thread& worker : workers)
    worker.join();
  const allocation_counters frame = statistics.pop_counters();
  const pmrkit::statistics_stats lifetime = statistics.stats();
  EXPECT_EQ(lifetime.allocations, threads * steps);
  EXPECT_EQ(lifetime.deallocations, threads * steps);
  EXPECT_EQ(lifetime.bytes_in_use, 0U);
  EXPECT_GT(lifetime.peak_bytes_in_use, 0U);
  EXPECT_EQ(frame.allocations, lifetime.allocations);
  EXPECT_EQ(frame.bytes_in_use, 0);
  EXPECT_EQ(frame.total_bytes, lifetime.total_bytes);
  const statistics_resource::histogram_type histogram = statistics.histogram();
  EXPECT_EQ(std::accumulate(histogram.begin(), histogram.end(), std::size_t{0}), threads * steps);
}

/// What a thread of the tests below did, by its own count.
struct thread_counts {
  std::size_t allocations = 0;
  std::size_t deallocations = 0;
  std::size_t allocated = 0;
  std::size_t freed = 0;
  statistics_resource::histogram_type histogram{};
};

/// Allocates `steps` blocks of varied sizes, frees two in three, keeps the rest in `kept`.
thread_counts churn(statistics_resource& statistics, int seed, std::size_t steps,
                    std::vector<std::pair<void*, std::size_t>>& kept) {
  thread_counts counts;
  for (std::size_t step = 0; step < steps; ++step) {
    const std::size_t bytes = (step * 37 + static_cast<std::size_t>(seed) * 11) % 3000;
    void* p = statistics.allocate(bytes);
    ++counts.allocations;
    counts.allocated += bytes;
    ++counts.histogram[statistics_resource::histogram_bucket(bytes)];
    if (step % 3 == 2) {
      kept.emplace_back(p, bytes);
    } else {
      statistics.deallocate(p, bytes);
      ++counts.deallocations;
      counts.freed += bytes;
    }
  }
  return counts;
}

void expect_sums(const statistics_resource& statistics, const std::vector<thread_counts>& all) {
  thread_counts sum;
  for (const thread_counts& one : all) {
    sum.allocations += one.allocations;
    sum.deallocations += one.deallocations;
    sum.allocated += one.allocated;
    sum.freed += one.freed;
    for (std::size_t i = 0; i < statistics_resource::histogram_buckets; ++i)
      sum.histogram[i] += one.histogram[i];
  }
  const pmrkit::statistics_stats stats = statistics.stats();
  EXPECT_EQ(stats.allocations, sum.allocations);
  EXPECT_EQ(stats.deallocations, sum.deallocations);
  EXPECT_EQ(stats.total_bytes, sum.allocated);
  EXPECT_EQ(stats.bytes_in_use, sum.allocated - sum.freed);
  EXPECT_GE(stats.peak_bytes_in_use, stats.bytes_in_use);
  EXPECT_EQ(statistics.histogram(), sum.histogram);
}

TEST(StatisticsResource, ShardsSumExactlyWhileTheirThreadsAreQuietAndAfterTheyExit) {
  constexpr int threads = 4;
  constexpr std::size_t steps = 3000;
  statistics_resource statistics;
  std::vector<thread_counts> counts(threads);
  std::vector<std::vector<std::pair<void*, std::size_t>>> kept(threads);
  std::latch quiet(threads + 1);
  std::latch checked(1);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      counts[t] = churn(statistics, t, steps, kept[t]);
      quiet.count_down();
      checked.wait();  // alive, holding its shard
    });
  }
  quiet.arrive_and_wait();
  EXPECT_EQ(statistics.thread_shards(), static_cast<std::size_t>(threads));
  expect_sums(statistics, counts);
  checked.count_down();
  for (std::thread& worker : workers)
    worker.join();
  // Each thread folded its shard into the resource as it exited.
  EXPECT_EQ(statistics.thread_shards(), 0U);
  expect_sums(statistics, counts);
  // Blocks kept by exited threads, freed by this one.
  thread_counts mine;
  for (const auto& blocks : kept) {
    for (const auto& [p, bytes] : blocks) {
      statistics.deallocate(p, bytes);
      ++mine.deallocations;
      mine.freed += bytes;
    }
  }
  counts.push_back(mine);
  expect_sums(statistics, counts);
  EXPECT_EQ(statistics.stats().bytes_in_use, 0U);
}

// Threads that take turns, each exiting before the next starts: the peak is exact, since no
// two threads ever hold a drift at once.
TEST(StatisticsResource, ThePeakOfThreadsTakingTurnsIsExact) {
  statistics_resource statistics;
  std::vector<std::pair<void*, std::size_t>> held;
  std::thread([&] {
    for (int i = 0; i < 10; ++i)
      held.emplace_back(statistics.allocate(1000), 1000);  // 10000, kept
  }).join();
  std::thread([&] {
    void* a = statistics.allocate(20000);  // 30000: the peak
    void* b = statistics.allocate(5000);   // 35000
    statistics.deallocate(b, 5000);
    statistics.deallocate(a, 20000);  // 10000
    for (int i = 0; i < 5; ++i) {     // 5000
      statistics.deallocate(held.back().first, 1000);
      held.pop_back();
    }
  }).join();
  const pmrkit::statistics_stats stats = statistics.stats();
  EXPECT_EQ(stats.bytes_in_use, 5000U);
  EXPECT_EQ(stats.peak_bytes_in_use, 35000U);
  for (const auto& [p, bytes] : held)
    statistics.deallocate(p, bytes);
}

/// Four threads each allocate 64 KiB in 64-byte blocks and hold them all at once, then free
/// them: the true peak is 256 KiB. Returns the reported peak.
std::size_t peak_of_four_holding_threads(std::size_t peak_batch) {
  constexpr int threads = 4;
  statistics_resource statistics({.peak_batch = peak_batch});
  std::latch all_hold(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      std::vector<void*> held;
      for (int i = 0; i < 1024; ++i)
        held.push_back(statistics.allocate(64));
      all_hold.arrive_and_wait();
      for (void* p : held)
        statistics.deallocate(p, 64);
    });
  }
  for (std::thread& worker : workers)
    worker.join();
  EXPECT_EQ(statistics.stats().bytes_in_use, 0U);
  return statistics.stats().peak_bytes_in_use;
}

TEST(StatisticsResource, ThePeakOfConcurrentThreadsIsWithinTheirBatches) {
  constexpr std::size_t true_peak = 4 * 64 * 1024;
  // Every call folds: exact.
  EXPECT_EQ(peak_of_four_holding_threads(0), true_peak);
  // Each thread drifts by at most 1 KiB: within 3 KiB of the true peak (the peak is taken
  // before the frees, none of which has folded yet when the first one runs).
  const std::size_t peak = peak_of_four_holding_threads(1024);
  EXPECT_GE(peak, true_peak - 3 * 1024);
  EXPECT_LE(peak, true_peak + 3 * 1024);
}

// A thread frees what another allocated: its drift goes negative and the other's positive, so
// the first thread's later peak reads the shared total too high, by at most the batch.
TEST(StatisticsResource, APeakReadTooHighIsWithinTheOtherThreadsBatch) {
  constexpr std::size_t batch = 1024;
  statistics_resource statistics({.peak_batch = batch});
  std::vector<void*> blocks;
  std::latch allocated(1);
  std::latch freed(1);
  std::thread owner([&] {
    for (int i = 0; i < 64; ++i)
      blocks.push_back(statistics.allocate(512));  // 32 KiB: the true peak
    allocated.count_down();
    freed.wait();
    std::vector<void*> more;
    for (int i = 0; i < 32; ++i)
      more.push_back(statistics.allocate(512));  // 16 KiB
    for (void* p : more)
      statistics.deallocate(p, 512);
  });
  std::thread freer([&] {
    allocated.wait();
    for (void* p : blocks)
      statistics.deallocate(p, 512);
    freed.count_down();
  });
  owner.join();
  freer.join();
  const pmrkit::statistics_stats stats = statistics.stats();
  EXPECT_EQ(stats.bytes_in_use, 0U);
  EXPECT_GE(stats.peak_bytes_in_use, 32 * 1024 - batch);
  EXPECT_LE(stats.peak_bytes_in_use, 32 * 1024 + batch);
}

// Threads that used a resource may outlive it: they forget it, and exit later without
// touching its memory.
TEST(StatisticsResource, AResourceDestroyedBeforeAThreadThatUsedItExits) {
  auto statistics = std::make_unique<statistics_resource>();
  std::latch used(1);
  std::latch destroyed(1);
  std::thread worker([&] {
    void* p = statistics->allocate(100);
    statistics->deallocate(p, 100);
    used.count_down();
    destroyed.wait();
    statistics_resource next;  // a new resource on the same thread counts from zero
    void* q = next.allocate(10);
    EXPECT_EQ(next.stats().allocations, 1U);
    next.deallocate(q, 10);
  });  // exits holding a registry entry of the destroyed resource (ASan, TSan: untouched)
  used.wait();
  EXPECT_EQ(statistics->thread_shards(), 1U);
  EXPECT_EQ(statistics->stats().allocations, 1U);
  statistics.reset();
  destroyed.count_down();
  worker.join();
}

// A thread_local made before the thread's shard registry, destroyed after it: its calls find
// no shard and count in the resource's own counters, exactly.
struct late_statistics_calls {
  statistics_resource* statistics = nullptr;
  void* block = nullptr;
  ~late_statistics_calls() {
    if (statistics == nullptr) return;
    statistics->deallocate(block, 64);
    statistics->deallocate(statistics->allocate(32), 32);
  }
};

TEST(StatisticsResource, CallsAfterTheThreadsShardIsGoneCountExactly) {
  statistics_resource statistics;
  std::thread worker([&] {
    thread_local late_statistics_calls late;  // constructed first, destroyed last
    late.statistics = &statistics;
    late.block = statistics.allocate(64);
    statistics.deallocate(statistics.allocate(16), 16);
  });
  worker.join();
  expect_counters(statistics.stats(), 3, 3, 0, 80, 112);
  EXPECT_EQ(statistics.thread_shards(), 0U);
}

}  // namespace
