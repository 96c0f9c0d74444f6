#include <pmr/decorator/budget_resource.hpp>

#include <pmr/core/error.hpp>
#include <pmr/core/literals.hpp>
#include <pmr/pool/pool_resource.hpp>
#include <pmr/testing/test_resource.hpp>

#include "conformance/conformance.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <latch>
#include <limits>
#include <memory>
#include <memory_resource>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using namespace pmrkit::literals;
using pmrkit::budget_exceeded;
using pmrkit::budget_resource;
using pmrkit::decorator_threading;
using pmrkit::test_resource;

struct budget_traits {
  using resource_type = budget_resource;
  static constexpr std::string_view name = "pmrkit::budget_resource";
  static constexpr pmrkit::conformance::capabilities caps{.releases_on_destruction = false};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(pmrkit::budget_options{.limit = 256_MiB}, upstream);
  }
};

// No limit to speak of: huge requests reach the upstream, which refuses them.
struct unlimited_budget_traits {
  using resource_type = budget_resource;
  static constexpr std::string_view name = "pmrkit::budget_resource (no limit)";
  static constexpr pmrkit::conformance::capabilities caps{.releases_on_destruction = false};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(
        pmrkit::budget_options{.limit = std::numeric_limits<std::size_t>::max()}, upstream);
  }
};

struct serialized_budget_traits {
  using resource_type = budget_resource;
  static constexpr std::string_view name = "pmrkit::budget_resource (serialized)";
  static constexpr pmrkit::conformance::capabilities caps{.releases_on_destruction = false};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(
        pmrkit::budget_options{.limit = 256_MiB, .threading = decorator_threading::serialized},
        upstream);
  }
};

using budget_types =
    ::testing::Types<budget_traits, unlimited_budget_traits, serialized_budget_traits>;
INSTANTIATE_TYPED_TEST_SUITE_P(budget, resource_conformance, budget_types,
                               pmrkit::conformance::traits_names);

constexpr pmrkit::test_options upstream_options{.name = "upstream"};

constexpr decorator_threading both_modes[] = {decorator_threading::concurrent,
                                              decorator_threading::serialized};

/// Runs `request` and returns the budget_exceeded it throws; fails the test when it does not.
template <class Request>
budget_exceeded refusal(Request&& request) {
  try {
    std::forward<Request>(request)();
  } catch (const budget_exceeded& e) {
    return e;
  }
  ADD_FAILURE() << "the request was not refused with budget_exceeded";
  return budget_exceeded(0, 0, "", 0, 0);
}

TEST(BudgetResource, RefusesARequestPastTheLimitWithBudgetExceeded) {
  for (const decorator_threading mode : both_modes) {
    test_resource upstream(upstream_options, std::pmr::new_delete_resource());
    budget_resource budget({.limit = 1000, .threading = mode, .name = "tenant"}, &upstream);
    void* p = budget.allocate(600, 8);
    const budget_exceeded e = refusal([&] { (void)budget.allocate(500, 16); });
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::budget_exceeded);
    EXPECT_EQ(e.requested(), 500U);
    EXPECT_EQ(e.alignment(), 16U);
    EXPECT_EQ(e.resource_name(), "tenant");
    EXPECT_EQ(e.limit(), 1000U);
    EXPECT_EQ(e.remaining(), 400U);
    EXPECT_NE(std::string(e.what()).find("limit 1000, remaining 400"), std::string::npos);
    // The refused request never reached the upstream, and the budget is unchanged.
    EXPECT_EQ(upstream.stats().allocations, 1U);
    EXPECT_EQ(budget.stats().bytes_in_use, 600U);
    EXPECT_EQ(budget.stats().rejections, 1U);
    EXPECT_EQ(budget.remaining(), 400U);
    budget.deallocate(p, 600, 8);
    EXPECT_EQ(budget.stats().bytes_in_use, 0U);
    EXPECT_TRUE(pmrkit::conformance::upstream_is_clean(upstream));
  }
}

TEST(BudgetResource, ARequestOfExactlyWhatRemainsFits) {
  for (const decorator_threading mode : both_modes) {
    budget_resource budget({.limit = 1000, .threading = mode});
    void* all = budget.allocate(1000, 8);
    void* none = budget.allocate(0, 8);  // zero bytes fit a full budget
    EXPECT_EQ(budget.remaining(), 0U);
    EXPECT_THROW((void)budget.allocate(1, 1), budget_exceeded);
    budget.deallocate(none, 0, 8);
    budget.deallocate(all, 1000, 8);
    EXPECT_EQ(budget.remaining(), 1000U);
  }
}

TEST(BudgetResource, CountsTheRequestedBytesAndTheirPeak) {
  for (const decorator_threading mode : both_modes) {
    test_resource upstream(upstream_options, std::pmr::new_delete_resource());
    budget_resource budget({.limit = 10_KiB, .threading = mode}, &upstream);
    void* a = budget.allocate(100, 64);
    void* b = budget.allocate(3, 1);
    EXPECT_EQ(budget.stats().bytes_in_use, 103U);  // not rounded to the alignment
    budget.deallocate(a, 100, 64);
    void* c = budget.allocate(50, 8);
    const pmrkit::budget_stats stats = budget.stats();
    EXPECT_EQ(stats.bytes_in_use, 53U);
    EXPECT_EQ(stats.peak_bytes_in_use, 103U);
    EXPECT_EQ(stats.limit, 10_KiB);
    EXPECT_EQ(stats.rejections, 0U);
    budget.deallocate(b, 3, 1);
    budget.deallocate(c, 50, 8);
    EXPECT_TRUE(pmrkit::conformance::upstream_is_clean(upstream));
  }
}

TEST(BudgetResource, RollsTheReservationBackWhenTheUpstreamThrows) {
  for (const decorator_threading mode : both_modes) {
    test_resource upstream(upstream_options, std::pmr::new_delete_resource());
    budget_resource budget({.limit = 1000, .threading = mode}, &upstream);
    upstream.set_allocation_limit(0);
    try {
      (void)budget.allocate(800, 8);
      ADD_FAILURE() << "the upstream's failure did not reach the caller";
    } catch (const pmrkit::allocation_error& e) {
      EXPECT_EQ(e.reason(), pmrkit::failure_reason::injected_failure);  // the upstream's, unchanged
    }
    const pmrkit::budget_stats stats = budget.stats();
    EXPECT_EQ(stats.bytes_in_use, 0U);
    EXPECT_EQ(stats.peak_bytes_in_use, 0U);
    EXPECT_EQ(stats.rejections, 0U);     // not the budget's refusal
    void* p = budget.allocate(1000, 8);  // the whole budget is there again
    budget.deallocate(p, 1000, 8);
  }
}

TEST(BudgetResource, APlainBadAllocFromTheUpstreamBecomesAnAllocationError) {
  budget_resource budget({.limit = 1000, .name = "over-null"}, std::pmr::null_memory_resource());
  try {
    (void)budget.allocate(10, 8);
    ADD_FAILURE() << "null_memory_resource did not fail";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::upstream_failed);
    EXPECT_EQ(e.resource_name(), "over-null");
  }
  EXPECT_EQ(budget.stats().bytes_in_use, 0U);
}

/// An upstream of a user's that throws its own std::bad_alloc subclass.
class quota_exhausted : public std::bad_alloc {
 public:
  [[nodiscard]] const char* what() const noexcept override { return "tenant quota exhausted"; }
};
class quota_resource final : public std::pmr::memory_resource {
  void* do_allocate(std::size_t, std::size_t) override { throw quota_exhausted(); }
  void do_deallocate(void*, std::size_t, std::size_t) override {}
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }
};

TEST(BudgetResource, TheUpstreamsOwnExceptionIsNestedInTheAllocationError) {
  quota_resource upstream;
  budget_resource budget({.limit = 1000, .name = "tenant"}, &upstream);
  try {
    (void)budget.allocate(10, 8);
    ADD_FAILURE() << "the upstream did not fail";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::upstream_failed);
    EXPECT_EQ(e.resource_name(), "tenant");
    EXPECT_NE(std::string(e.what()).find("upstream: tenant quota exhausted"), std::string::npos);
    EXPECT_THROW(std::rethrow_if_nested(e), quota_exhausted);
  }
}

TEST(BudgetResource, NestedBudgetsNameTheOneThatRefuses) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  budget_resource process({.limit = 1500, .name = "process"}, &upstream);
  budget_resource tenant_a({.limit = 1000, .name = "tenant-a"}, &process);
  budget_resource tenant_b({.limit = 1000, .name = "tenant-b"}, &process);

  void* a = tenant_a.allocate(800);
  // The inner budget refuses: the process budget is never asked.
  const budget_exceeded inner = refusal([&] { (void)tenant_a.allocate(300); });
  EXPECT_EQ(inner.resource_name(), "tenant-a");
  EXPECT_EQ(inner.limit(), 1000U);
  EXPECT_EQ(inner.remaining(), 200U);
  EXPECT_EQ(process.stats().rejections, 0U);

  void* b = tenant_b.allocate(600);  // 1400 of the process's 1500
  // Within tenant-b's limit, but not the process's: the outer budget refuses,
  // and tenant-b's reservation is rolled back.
  const budget_exceeded outer = refusal([&] { (void)tenant_b.allocate(200); });
  EXPECT_EQ(outer.resource_name(), "process");
  EXPECT_EQ(outer.limit(), 1500U);
  EXPECT_EQ(outer.remaining(), 100U);
  EXPECT_EQ(outer.requested(), 200U);
  EXPECT_EQ(tenant_b.stats().bytes_in_use, 600U);
  EXPECT_EQ(tenant_b.stats().peak_bytes_in_use, 600U);
  EXPECT_EQ(tenant_b.stats().rejections, 0U);
  EXPECT_EQ(process.stats().rejections, 1U);
  EXPECT_EQ(process.stats().bytes_in_use, 1400U);

  void* rest = tenant_b.allocate(100);  // what the process has left still fits
  tenant_b.deallocate(rest, 100);
  tenant_b.deallocate(b, 600);
  tenant_a.deallocate(a, 800);
  EXPECT_EQ(process.stats().bytes_in_use, 0U);
  EXPECT_EQ(process.stats().peak_bytes_in_use, 1500U);
  EXPECT_TRUE(pmrkit::conformance::upstream_is_clean(upstream));
}

TEST(BudgetResource, LoweringTheLimitRefusesNewRequestsUntilUseDrops) {
  for (const decorator_threading mode : both_modes) {
    test_resource upstream(upstream_options, std::pmr::new_delete_resource());
    budget_resource budget({.limit = 1000, .threading = mode}, &upstream);
    std::vector<void*> blocks;
    for (int i = 0; i < 3; ++i)
      blocks.push_back(budget.allocate(300));
    budget.set_limit(500);
    EXPECT_EQ(budget.limit(), 500U);
    EXPECT_EQ(budget.remaining(), 0U);
    EXPECT_EQ(refusal([&] { (void)budget.allocate(1); }).remaining(), 0U);
    budget.deallocate(blocks.back(), 300);  // frees always work
    blocks.pop_back();
    EXPECT_THROW((void)budget.allocate(1), budget_exceeded);  // 600 in use, limit 500
    budget.deallocate(blocks.back(), 300);
    blocks.pop_back();
    blocks.push_back(budget.allocate(200));  // 300 + 200 = the new limit
    EXPECT_THROW((void)budget.allocate(1), budget_exceeded);
    budget.set_limit(2000);
    blocks.push_back(budget.allocate(1000));
    EXPECT_EQ(budget.stats().rejections, 3U);
    budget.deallocate(blocks[2], 1000);
    budget.deallocate(blocks[1], 200);
    budget.deallocate(blocks[0], 300);
    EXPECT_EQ(budget.stats().bytes_in_use, 0U);
    EXPECT_TRUE(pmrkit::conformance::upstream_is_clean(upstream));
  }
}

TEST(BudgetResource, UnderAPoolItCapsTheChunksTheStrategyTakes) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  budget_resource budget({.limit = 4_KiB, .name = "pool budget"}, &upstream);
  pmrkit::pool_resource pool({.block_size = 64, .initial_blocks = 16, .growth_factor = 1}, &budget);
  std::vector<void*> blocks;
  try {
    for (;;)
      blocks.push_back(pool.allocate(64));
  } catch (const budget_exceeded& e) {
    // The pool passes the budget's error on unchanged: it names the budget,
    // and nothing is nested in it.
    EXPECT_EQ(e.resource_name(), "pool budget");
    EXPECT_EQ(dynamic_cast<const std::nested_exception*>(&e), nullptr);
  }
  EXPECT_GE(blocks.size(), 16U);
  EXPECT_LE(budget.stats().bytes_in_use, 4_KiB);
  EXPECT_EQ(budget.stats().bytes_in_use, pool.stats().bytes_from_upstream);
  for (void* p : blocks)
    pool.deallocate(p, 64);
  pool.release();
  EXPECT_EQ(budget.stats().bytes_in_use, 0U);
  EXPECT_TRUE(pmrkit::conformance::upstream_is_clean(upstream));
}

TEST(BudgetResource, ANullUpstreamIsAnInvalidArgument) {
  try {
    budget_resource budget({.limit = 1}, nullptr);
    ADD_FAILURE() << "a null upstream was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), "pmrkit::budget_resource: upstream must not be null");
  }
}

TEST(BudgetResource, ConcurrentCallersNeverOvershootTheLimit) {
  constexpr std::size_t limit = 64_KiB;
  constexpr int threads = 4;
  constexpr int steps = 20000;
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  budget_resource budget({.limit = limit, .name = "shared"}, &upstream);
  std::atomic<std::size_t> live_bytes = 0;  // what the threads hold, by their own count
  std::atomic<std::size_t> refused = 0;
  std::atomic<int> overshoots = 0;

  const auto work = [&](std::uint32_t seed) {
    std::vector<std::pair<void*, std::size_t>> held;
    std::uint32_t state = seed * 2654435761U | 1U;
    const auto next = [&] {
      state ^= state << 13;
      state ^= state >> 17;
      state ^= state << 5;
      return state;
    };
    for (int step = 0; step < steps; ++step) {
      if (!held.empty() && next() % 100 < 45) {
        const std::size_t index = next() % held.size();
        const auto [p, bytes] = held[index];
        held[index] = held.back();
        held.pop_back();
        live_bytes.fetch_sub(bytes);
        budget.deallocate(p, bytes);
        continue;
      }
      const std::size_t bytes = 1 + next() % 4096;
      try {
        void* p = budget.allocate(bytes);
        held.emplace_back(p, bytes);
        if (live_bytes.fetch_add(bytes) + bytes > limit) overshoots.fetch_add(1);
        if (budget.stats().bytes_in_use > limit) overshoots.fetch_add(1);
      } catch (const budget_exceeded& e) {
        refused.fetch_add(1);
        if (e.resource_name() != "shared" || e.limit() != limit) overshoots.fetch_add(1);
      }
    }
    for (const auto& [p, bytes] : held) {
      live_bytes.fetch_sub(bytes);
      budget.deallocate(p, bytes);
    }
  };
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back(work, static_cast<std::uint32_t>(t + 1));
  for (std::thread& worker : workers)
    worker.join();

  EXPECT_EQ(overshoots.load(), 0);
  EXPECT_GT(refused.load(), 0U) << "the threads never reached the limit: the test proves nothing";
  const pmrkit::budget_stats stats = budget.stats();
  EXPECT_EQ(stats.bytes_in_use, 0U);
  EXPECT_LE(stats.peak_bytes_in_use, limit);
  EXPECT_EQ(stats.rejections, refused.load());
  EXPECT_EQ(live_bytes.load(), 0U);
  EXPECT_TRUE(pmrkit::conformance::upstream_is_clean(upstream));
}

// The same hammering with a limit large enough for whole batches of credit (64 KiB), so the
// threads serve most requests from their credit and give the excess back.
TEST(BudgetResource, FourThreadsServedFromCreditNeverPassTheLimit) {
  constexpr std::size_t limit = 4_MiB;
  constexpr int threads = 4;
  constexpr int steps = 20000;
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  budget_resource budget({.limit = limit, .name = "shared"}, &upstream);
  std::atomic<std::size_t> live_bytes = 0;  // what the threads hold, by their own count
  std::atomic<int> overshoots = 0;
  std::atomic<std::size_t> refused = 0;
  std::latch done(threads);
  std::latch checked(1);

  const auto work = [&](std::uint32_t seed) {
    std::vector<std::pair<void*, std::size_t>> held;
    std::uint32_t state = seed * 2654435761U | 1U;
    const auto next = [&] {
      state ^= state << 13;
      state ^= state >> 17;
      state ^= state << 5;
      return state;
    };
    for (int step = 0; step < steps; ++step) {
      if (!held.empty() && next() % 100 < 40) {
        const std::size_t index = next() % held.size();
        const auto [p, bytes] = held[index];
        held[index] = held.back();
        held.pop_back();
        live_bytes.fetch_sub(bytes);
        budget.deallocate(p, bytes);
        continue;
      }
      // Mostly small requests, some of 64 KiB: a thread holds up to about 1.3 MiB.
      const std::size_t bytes = next() % 16 == 0 ? 64_KiB : 1 + next() % 512;
      try {
        void* p = budget.allocate(bytes);
        held.emplace_back(p, bytes);
        if (live_bytes.fetch_add(bytes) + bytes > limit) overshoots.fetch_add(1);
      } catch (const budget_exceeded&) {
        refused.fetch_add(1);
      }
    }
    done.count_down();
    checked.wait();  // still running, quiet: its credit is still its own
    for (const auto& [p, bytes] : held) {
      live_bytes.fetch_sub(bytes);
      budget.deallocate(p, bytes);
    }
  };
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back(work, static_cast<std::uint32_t>(t + 1));
  done.wait();
  // Quiet threads: the bytes in use are exact, their credit aside.
  EXPECT_EQ(budget.stats().bytes_in_use, live_bytes.load());
  EXPECT_EQ(budget.thread_credits(), static_cast<std::size_t>(threads));
  checked.count_down();
  for (std::thread& worker : workers)
    worker.join();

  EXPECT_EQ(overshoots.load(), 0);
  const pmrkit::budget_stats stats = budget.stats();
  EXPECT_EQ(stats.bytes_in_use, 0U);
  EXPECT_LE(stats.peak_bytes_in_use, limit);
  EXPECT_EQ(stats.rejections, refused.load());
  EXPECT_EQ(budget.thread_credits(), 0U);  // each thread gave its credit back as it exited
  EXPECT_EQ(budget.remaining(), limit);
  void* all = budget.allocate(limit);  // and all of it is there for one request
  budget.deallocate(all, limit);
  EXPECT_TRUE(pmrkit::conformance::upstream_is_clean(upstream));
}

// One thread (the others never called the budget): a request is served exactly when it fits
// the limit less the bytes in use, as without credit, whatever the thread's credit is then.
TEST(BudgetResource, WithOneThreadARequestIsServedExactlyWhenItFitsWhatRemains) {
  for (const std::size_t limit : {std::size_t{1000}, std::size_t{100'000}, 2_MiB}) {
    for (const decorator_threading mode : both_modes) {
      SCOPED_TRACE(limit);
      budget_resource budget({.limit = limit, .threading = mode});
      std::vector<std::pair<void*, std::size_t>> held;
      std::size_t in_use = 0;
      std::size_t peak = 0;
      std::uint32_t state = 987654321U;
      const auto next = [&] {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        return state;
      };
      for (int step = 0; step < 20000; ++step) {
        if (!held.empty() && next() % 100 < 45) {
          const std::size_t index = next() % held.size();
          const auto [p, bytes] = held[index];
          held[index] = held.back();
          held.pop_back();
          budget.deallocate(p, bytes);
          in_use -= bytes;
          continue;
        }
        const std::size_t bytes = next() % (limit / 4 + 2);
        ASSERT_EQ(budget.remaining(), limit - in_use) << step;
        if (bytes <= limit - in_use) {
          void* p = nullptr;
          ASSERT_NO_THROW(p = budget.allocate(bytes)) << step;
          held.emplace_back(p, bytes);
          in_use += bytes;
          peak = std::max(peak, in_use);
        } else {
          const budget_exceeded e = refusal([&] { (void)budget.allocate(bytes); });
          ASSERT_EQ(e.remaining(), limit - in_use) << step;
        }
        ASSERT_EQ(budget.stats().bytes_in_use, in_use) << step;
        ASSERT_EQ(budget.stats().peak_bytes_in_use, peak) << step;
      }
      for (const auto& [p, bytes] : held)
        budget.deallocate(p, bytes);
      EXPECT_EQ(budget.stats().bytes_in_use, 0U);
    }
  }
}

// Another thread's unused credit is not this thread's: a request that fits the limit less the
// bytes in use is refused while another thread holds that much credit, and served once that
// thread exits (and gave it back).
TEST(BudgetResource, AnotherThreadsUnusedCreditIsRefusedUntilItExits) {
  constexpr std::size_t limit = 1_MiB;
  budget_resource budget({.limit = limit});
  std::latch holding(1);
  std::latch finish(1);
  std::thread other([&] {
    // The first thread of the budget: a batch of min(64 KiB, limit / 16) beyond its request.
    void* p = budget.allocate(100);
    holding.count_down();
    finish.wait();
    budget.deallocate(p, 100);
  });
  holding.wait();
  EXPECT_EQ(budget.thread_credits(), 1U);
  EXPECT_EQ(budget.stats().bytes_in_use, 100U);
  // Everything but the other thread's block and its credit.
  const std::size_t rest = limit - 100 - 64_KiB;
  void* big = budget.allocate(rest);
  EXPECT_EQ(budget.remaining(), 64_KiB);  // the limit less the bytes in use
  const budget_exceeded e = refusal([&] { (void)budget.allocate(1); });
  EXPECT_EQ(e.remaining(), 0U);  // what this request could have had
  EXPECT_EQ(budget.stats().rejections, 1U);
  finish.count_down();
  other.join();
  EXPECT_EQ(budget.thread_credits(), 1U);      // this thread's
  void* last = budget.allocate(64_KiB + 100);  // one thread now: exactly what remains fits
  EXPECT_EQ(budget.remaining(), 0U);
  EXPECT_THROW((void)budget.allocate(1), budget_exceeded);
  budget.deallocate(last, 64_KiB + 100);
  budget.deallocate(big, rest);
  EXPECT_EQ(budget.stats().bytes_in_use, 0U);
  EXPECT_EQ(budget.stats().peak_bytes_in_use, limit);
}

// A thread that holds credit judges its next request against a limit lowered meanwhile.
TEST(BudgetResource, ALoweredLimitVoidsTheCreditOfEveryThread) {
  budget_resource budget({.limit = 1_MiB});
  std::latch allocated(1);
  std::latch lowered(1);
  std::thread other([&] {
    void* p = budget.allocate(1000);  // and a batch of credit (64 KiB)
    allocated.count_down();
    lowered.wait();
    // 1000 + 1000 fit the old limit and the thread's credit, not the new limit.
    const budget_exceeded e = refusal([&] { (void)budget.allocate(1000); });
    EXPECT_EQ(e.limit(), 1500U);
    EXPECT_EQ(e.remaining(), 500U);
    void* q = budget.allocate(500);
    EXPECT_EQ(budget.remaining(), 0U);
    budget.deallocate(q, 500);
    budget.deallocate(p, 1000);
  });
  allocated.wait();
  budget.set_limit(1500);
  lowered.count_down();
  other.join();
  EXPECT_EQ(budget.stats().bytes_in_use, 0U);
  EXPECT_EQ(budget.stats().rejections, 1U);
}

// The peak with two threads holding blocks at once: never below the true peak, at most the
// other thread's unused credit (two batches) above it.
TEST(BudgetResource, ThePeakOfTwoThreadsIsWithinTheirCredit) {
  constexpr std::size_t limit = 64_MiB;  // batches of 64 KiB
  budget_resource budget({.limit = limit});
  std::latch both_hold(2);
  std::latch first_freed(1);
  const auto work = [&](std::size_t blocks, bool wait_for_first) {
    std::vector<void*> held;
    for (std::size_t i = 0; i < blocks; ++i)
      held.push_back(budget.allocate(1000));
    both_hold.arrive_and_wait();
    // A request after both hold theirs: its peak sees both (the latch orders the counts).
    budget.deallocate(budget.allocate(0), 0);
    if (wait_for_first) first_freed.wait();
    for (void* p : held)
      budget.deallocate(p, 1000);
    if (!wait_for_first) first_freed.count_down();
  };
  std::thread a(work, 300, false);
  std::thread b(work, 500, true);
  a.join();
  b.join();
  const std::size_t true_peak = 800 * 1000;
  const std::size_t peak = budget.stats().peak_bytes_in_use;
  EXPECT_GE(peak, true_peak);
  EXPECT_LE(peak, true_peak + 2 * 64_KiB);
}

// Threads that used a budget may outlive it: they forget it, and exit later without touching it.
TEST(BudgetResource, ABudgetDestroyedBeforeAThreadThatUsedItExits) {
  auto budget = std::make_unique<budget_resource>(pmrkit::budget_options{.limit = 1_MiB});
  std::latch used(1);
  std::latch destroyed(1);
  std::thread worker([&] {
    void* p = budget->allocate(100);
    budget->deallocate(p, 100);
    used.count_down();
    destroyed.wait();
    budget_resource next({.limit = 1000});  // a new budget on the same thread works
    void* q = next.allocate(1000);
    EXPECT_THROW((void)next.allocate(1), budget_exceeded);
    next.deallocate(q, 1000);
  });  // exits holding a registry entry of the destroyed budget (ASan, TSan: untouched)
  used.wait();
  EXPECT_EQ(budget->thread_credits(), 1U);
  budget.reset();
  destroyed.count_down();
  worker.join();
}

// A thread_local made before the thread's credit registry, destroyed after it: its calls find
// no credit and reserve from the limit directly.
struct late_budget_calls {
  budget_resource* budget = nullptr;
  void* block = nullptr;
  ~late_budget_calls() {
    if (budget == nullptr) return;
    budget->deallocate(block, 600);
    void* last = budget->allocate(1000);  // the whole limit: the exited credit went back
    EXPECT_THROW((void)budget->allocate(1), budget_exceeded);
    budget->deallocate(last, 1000);
  }
};

TEST(BudgetResource, CallsAfterTheThreadsCreditIsGoneReserveDirectly) {
  budget_resource budget({.limit = 1000});
  std::thread worker([&] {
    thread_local late_budget_calls late;  // constructed first, destroyed last
    late.budget = &budget;
    late.block = budget.allocate(600);
  });
  worker.join();
  const pmrkit::budget_stats stats = budget.stats();
  EXPECT_EQ(stats.bytes_in_use, 0U);
  EXPECT_EQ(stats.peak_bytes_in_use, 1000U);
  EXPECT_EQ(stats.rejections, 1U);
  EXPECT_EQ(budget.thread_credits(), 0U);
  EXPECT_EQ(budget.remaining(), 1000U);
}

}  // namespace
