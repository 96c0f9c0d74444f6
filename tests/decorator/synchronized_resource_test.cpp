#include <pmr/decorator/synchronized_resource.hpp>

#include <pmr/core/error.hpp>
#include <pmr/pool/multipool_resource.hpp>
#include <pmr/pool/pool_resource.hpp>
#include <pmr/testing/test_resource.hpp>

#include "conformance/conformance.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory_resource>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using pmrkit::synchronized_resource;
using pmrkit::test_resource;

struct synchronized_traits {
  using resource_type = synchronized_resource;
  static constexpr std::string_view name = "pmrkit::synchronized_resource";
  static constexpr pmrkit::conformance::capabilities caps{.releases_on_destruction = false};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(upstream);
  }
};

using synchronized_types = ::testing::Types<synchronized_traits>;
INSTANTIATE_TYPED_TEST_SUITE_P(synchronized, resource_conformance, synchronized_types,
                               pmrkit::conformance::traits_names);

constexpr pmrkit::test_options upstream_options{.name = "upstream"};

TEST(SynchronizedResource, ThreadsShareAMultipoolThroughIt) {
  constexpr int threads = 4;
  constexpr int steps = 5000;
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  pmrkit::multipool_resource pools(
      std::pmr::pool_options{.max_blocks_per_chunk = 64, .largest_required_pool_block = 2048},
      &upstream);
  synchronized_resource shared({.name = "shared pools"}, &pools);

  std::vector<int> damaged(threads, 0);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      struct held_block {
        unsigned char* p;
        std::size_t bytes;
        unsigned char fill;
      };
      std::vector<held_block> held;
      std::uint32_t state = static_cast<std::uint32_t>(t + 1) * 2654435761U | 1U;
      const auto next = [&] {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        return state;
      };
      const auto release_one = [&](std::size_t index) {
        const held_block b = held[index];
        for (std::size_t i = 0; i < b.bytes; ++i)
          damaged[t] += b.p[i] != b.fill ? 1 : 0;
        shared.deallocate(b.p, b.bytes, 8);
        held[index] = held.back();
        held.pop_back();
      };
      for (int step = 0; step < steps; ++step) {
        if (!held.empty() && next() % 100 < 45) {
          release_one(next() % held.size());
          continue;
        }
        // Mostly pooled sizes, some above the largest class (tracked large blocks).
        const std::size_t bytes = next() % 10 == 0 ? 3000 + next() % 2000 : 1 + next() % 2048;
        auto* p = static_cast<unsigned char*>(shared.allocate(bytes, 8));
        const auto fill = static_cast<unsigned char>(next());
        for (std::size_t i = 0; i < bytes; ++i)
          p[i] = fill;
        held.push_back({p, bytes, fill});
      }
      while (!held.empty())
        release_one(held.size() - 1);
    });
  }
  // Meanwhile the pool's figures are read under the same lock (TSan checks the ordering).
  for (int i = 0; i < 100; ++i)
    (void)shared.locked([&] { return pools.stats(); });
  for (std::thread& worker : workers)
    worker.join();

  for (int t = 0; t < threads; ++t)
    EXPECT_EQ(damaged[t], 0) << "thread " << t << " found bytes of its blocks overwritten";
  const pmrkit::multipool_stats stats = shared.locked([&] { return pools.stats(); });
  EXPECT_EQ(stats.blocks_in_use, 0U);
  EXPECT_EQ(stats.large_blocks_in_use, 0U);
  shared.locked([&] { pools.release(); });
  EXPECT_TRUE(pmrkit::conformance::upstream_is_clean(upstream));
}

TEST(SynchronizedResource, LockedReturnsWhatTheFunctionReturns) {
  pmrkit::pool_resource pool({.block_size = 16});
  synchronized_resource shared(&pool);
  void* p = shared.allocate(16);
  EXPECT_EQ(shared.locked([&] { return pool.stats().blocks_in_use; }), 1U);
  int calls = 0;
  int& same = shared.locked([&]() -> int& { return calls; });  // references pass through
  ++same;
  EXPECT_EQ(calls, 1);
  shared.deallocate(p, 16);
  EXPECT_EQ(shared.stats().contended_locks, 0U);  // one thread never waits
}

TEST(SynchronizedResource, TheUpstreamsErrorsReachTheCaller) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  synchronized_resource shared({.name = "locked"}, &upstream);
  upstream.set_allocation_limit(0);
  try {
    (void)shared.allocate(64);
    ADD_FAILURE() << "the upstream's failure did not reach the caller";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::injected_failure);
  }
  void* p = shared.allocate(64);  // the lock was released by the failed call
  shared.deallocate(p, 64);

  synchronized_resource over_null({.name = "over-null"}, std::pmr::null_memory_resource());
  try {
    (void)over_null.allocate(64);
    ADD_FAILURE() << "null_memory_resource did not fail";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::upstream_failed);
    EXPECT_EQ(e.resource_name(), "over-null");
  }
  EXPECT_TRUE(pmrkit::conformance::upstream_is_clean(upstream));
}

TEST(SynchronizedResource, ANullUpstreamIsAnInvalidArgument) {
  try {
    synchronized_resource shared(nullptr);
    ADD_FAILURE() << "a null upstream was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), "pmrkit::synchronized_resource: upstream must not be null");
  }
}

}  // namespace
