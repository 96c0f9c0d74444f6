#include <pmr/testing/test_resource.hpp>

#include <pmr/core/error.hpp>
#include <pmr/testing/violation_recorder.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <list>
#include <memory_resource>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace {

using pmrkit::test_resource;
using pmrkit::violation_kind;
using pmrkit::violation_recorder;

// Options of the usual subject here. A test that provokes misuse installs a
// violation_recorder: misuse goes to the violation handler, which by default
// aborts.
constexpr pmrkit::test_options recording{.name = "under test"};

TEST(TestResource, ConstructsTheSixWaysAndWithANameFirst) {
  static_assert(std::is_default_constructible_v<test_resource>);
  static_assert(std::is_constructible_v<test_resource, std::pmr::memory_resource*>);
  static_assert(std::is_constructible_v<test_resource, test_resource*>);
  static_assert(std::is_constructible_v<test_resource, pmrkit::test_options>);
  static_assert(
      std::is_constructible_v<test_resource, pmrkit::test_options, std::pmr::memory_resource*>);
  static_assert(std::is_constructible_v<test_resource, const char*, test_resource*>);
  static_assert(!std::is_copy_constructible_v<test_resource>);
  static_assert(!std::is_move_constructible_v<test_resource>);
  test_resource upstream("upstream");
  test_resource a;
  test_resource b(&upstream);  // did not compile before: no constructor took a test_resource*
  test_resource c(pmrkit::test_options{.name = "c"});
  test_resource d(pmrkit::test_options{.name = "d"}, &upstream);
  test_resource e({});  // the default options, never a null upstream
  test_resource f({}, &upstream);
  test_resource g("g");
  test_resource h(std::string("h"), &upstream);
  test_resource i({.guard_bytes = 0, .name = "i"}, &upstream);
  EXPECT_EQ(a.upstream_resource(), std::pmr::get_default_resource());
  EXPECT_EQ(b.upstream_resource(), &upstream);
  EXPECT_EQ(c.name(), "c");
  EXPECT_EQ(d.upstream_resource(), &upstream);
  EXPECT_EQ(e.upstream_resource(), std::pmr::get_default_resource());
  EXPECT_EQ(e.name(), "test_resource");
  EXPECT_EQ(f.upstream_resource(), &upstream);
  EXPECT_EQ(g.name(), "g");
  EXPECT_EQ(h.name(), "h");
  EXPECT_EQ(h.upstream_resource(), &upstream);
  EXPECT_EQ(i.name(), "i");
}

TEST(TestResource, MisuseGoesToTheInstalledViolationHandlerAndIsRecorded) {
  violation_recorder recorder;
  test_resource resource("handled", std::pmr::new_delete_resource());
  void* p = resource.allocate(16, 8);
  resource.deallocate(p, 8, 8);  // aborted before, whatever the handler
  EXPECT_EQ(recorder.count(violation_kind::size_mismatch), 1U);
  ASSERT_EQ(recorder.size(), 1U);
  EXPECT_EQ(recorder.violations()[0].resource_name, "handled");
  EXPECT_EQ(resource.error_count(), 1U);
  EXPECT_EQ(resource.blocks_in_use(), 0U);
}

TEST(TestResource, ALeakAtDestructionGoesToTheInstalledViolationHandler) {
  violation_recorder recorder;
  {
    test_resource resource("leaker", std::pmr::new_delete_resource());
    (void)resource.allocate(24, 8);
    (void)resource.allocate(8, 8);
  }
  ASSERT_EQ(recorder.size(), 1U);  // one leak for all the blocks
  EXPECT_EQ(recorder.count(violation_kind::leak), 1U);
  EXPECT_EQ(recorder.violations()[0].size, 32U);
  EXPECT_EQ(recorder.violations()[0].resource_name, "leaker");
}

/// A handler that asks the reporting resource for its errors: it is called
/// outside the resource's lock, so this does not deadlock.
test_resource* reentered = nullptr;
std::size_t errors_seen_by_handler = 0;
void reentering_handler(const pmrkit::violation&) {
  errors_seen_by_handler = reentered->errors().size();
}

TEST(TestResource, TheHandlerMayCallTheResource) {
  test_resource resource("reentered", std::pmr::new_delete_resource());
  reentered = &resource;
  const pmrkit::violation_handler previous = pmrkit::set_violation_handler(&reentering_handler);
  int local = 0;
  resource.deallocate(&local, sizeof local, alignof(int));
  pmrkit::set_violation_handler(previous);
  EXPECT_EQ(errors_seen_by_handler, 1U);
}

TEST(TestResource, CountsBlocksAndBytesInUseMaxAndTotal) {
  test_resource resource("counts", std::pmr::new_delete_resource());
  void* a = resource.allocate(100, 8);
  void* b = resource.allocate(50, 16);
  auto stats = resource.stats();
  EXPECT_EQ(stats.blocks_in_use, 2U);
  EXPECT_EQ(stats.bytes_in_use, 150U);
  resource.deallocate(a, 100, 8);
  void* c = resource.allocate(10, 1);
  stats = resource.stats();
  EXPECT_EQ(stats.blocks_in_use, 2U);
  EXPECT_EQ(stats.bytes_in_use, 60U);
  EXPECT_EQ(stats.peak_blocks_in_use, 2U);
  EXPECT_EQ(stats.peak_bytes_in_use, 150U);
  EXPECT_EQ(stats.total_blocks, 3U);
  EXPECT_EQ(stats.total_bytes, 160U);
  EXPECT_EQ(stats.allocations, 3U);
  EXPECT_EQ(stats.deallocations, 1U);
  resource.deallocate(b, 50, 16);
  resource.deallocate(c, 10, 1);
  EXPECT_EQ(resource.blocks_in_use(), 0U);
  EXPECT_EQ(resource.bytes_in_use(), 0U);
}

TEST(TestResource, HonoursAlignmentUpTo4096AndKeepsBlocksApart) {
  test_resource resource(recording, std::pmr::new_delete_resource());
  std::vector<std::pair<void*, std::size_t>> blocks;
  for (std::size_t alignment = 1; alignment <= 4096; alignment *= 2) {
    void* p = resource.allocate(alignment + 3, alignment);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % alignment, 0U) << alignment;
    std::memset(p, 0x5A, alignment + 3);
    blocks.emplace_back(p, alignment);
  }
  EXPECT_TRUE(resource.check_guards());
  for (auto [p, alignment] : blocks)
    resource.deallocate(p, alignment + 3, alignment);
  EXPECT_TRUE(resource.errors().empty());
}

TEST(TestResource, FillsNewBlocksAndScribblesFreedOnes) {
  // The upstream is a monotonic buffer so the freed bytes stay readable.
  alignas(std::max_align_t) std::byte buffer[1024];
  std::pmr::monotonic_buffer_resource upstream(buffer, sizeof buffer,
                                               std::pmr::null_memory_resource());
  test_resource resource("fill", &upstream);
  auto* p = static_cast<unsigned char*>(resource.allocate(64, 8));
  for (int i = 0; i < 64; ++i)
    ASSERT_EQ(p[i], test_resource::allocated_fill);
  std::memset(p, 1, 64);
  resource.deallocate(p, 64, 8);
  for (int i = 0; i < 64; ++i)
    ASSERT_EQ(p[i], test_resource::freed_fill);
}

TEST(TestResource, DetectsForeignPointer) {
  violation_recorder recorder;
  test_resource resource(recording, std::pmr::new_delete_resource());
  int local = 0;
  resource.deallocate(&local, sizeof local, alignof(int));
  const auto errors = resource.errors();
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].kind, violation_kind::foreign_pointer);
  EXPECT_EQ(errors[0].pointer, &local);
  EXPECT_EQ(errors[0].resource_name, "under test");
  EXPECT_EQ(resource.stats().blocks_in_use, 0U);
}

TEST(TestResource, DetectsDoubleFree) {
  violation_recorder recorder;
  test_resource resource(recording, std::pmr::new_delete_resource());
  void* p = resource.allocate(32, 8);
  void* keep = resource.allocate(32, 8);  // so the first address is not reused at once
  resource.deallocate(p, 32, 8);
  resource.deallocate(p, 32, 8);
  const auto errors = resource.errors();
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].kind, violation_kind::double_free);
  EXPECT_EQ(errors[0].pointer, p);
  resource.deallocate(keep, 32, 8);
  EXPECT_EQ(resource.blocks_in_use(), 0U);
}

TEST(TestResource, DetectsSizeMismatchAndStillFreesTheBlock) {
  violation_recorder recorder;
  test_resource resource(recording, std::pmr::new_delete_resource());
  void* p = resource.allocate(48, 8);
  resource.deallocate(p, 32, 8);
  const auto errors = resource.errors();
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].kind, violation_kind::size_mismatch);
  EXPECT_EQ(errors[0].size, 32U);
  EXPECT_EQ(errors[0].expected_size, 48U);
  EXPECT_EQ(resource.blocks_in_use(), 0U);
}

TEST(TestResource, DetectsAlignmentMismatch) {
  violation_recorder recorder;
  test_resource resource(recording, std::pmr::new_delete_resource());
  void* p = resource.allocate(48, 64);
  resource.deallocate(p, 48, 16);
  const auto errors = resource.errors();
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].kind, violation_kind::alignment_mismatch);
  EXPECT_EQ(errors[0].alignment, 16U);
  EXPECT_EQ(errors[0].expected_alignment, 64U);
}

TEST(TestResource, DetectsOverrunThroughTheGuardAfterTheBlock) {
  violation_recorder recorder;
  test_resource resource(recording, std::pmr::new_delete_resource());
  auto* p = static_cast<unsigned char*>(resource.allocate(20, 4));
  p[20] = 0;  // one past the end
  EXPECT_FALSE(resource.check_guards());
  resource.deallocate(p, 20, 4);
  const auto errors = resource.errors();
  ASSERT_EQ(errors.size(), 2U);  // once by check_guards, once on deallocate
  EXPECT_EQ(errors[0].kind, violation_kind::buffer_overrun);
  EXPECT_EQ(errors[1].kind, violation_kind::buffer_overrun);
}

TEST(TestResource, DetectsUnderrunThroughTheGuardBeforeTheBlock) {
  violation_recorder recorder;
  test_resource resource(recording, std::pmr::new_delete_resource());
  auto* p = static_cast<unsigned char*>(resource.allocate(20, 4));
  p[-1] = 0;
  resource.deallocate(p, 20, 4);
  const auto errors = resource.errors();
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].kind, violation_kind::buffer_underrun);
}

TEST(TestResource, ReportsLeaksBeforeDestructionOldestFirst) {
  violation_recorder recorder;  // b's leak at destruction
  test_resource resource({.name = "leaky"}, std::pmr::new_delete_resource());
  void* a = resource.allocate(10, 1);
  void* b = resource.allocate(20, 1);
  EXPECT_TRUE(resource.has_leaks());
  const auto leaks = resource.leaks();
  ASSERT_EQ(leaks.size(), 2U);
  EXPECT_EQ(leaks[0].pointer, a);
  EXPECT_EQ(leaks[0].sequence, 0U);
  EXPECT_EQ(leaks[1].pointer, b);
  EXPECT_EQ(leaks[1].size, 20U);
  EXPECT_TRUE(resource.owns(a));
  resource.deallocate(a, 10, 1);
  EXPECT_FALSE(resource.owns(a));
  // b is left for the destructor, which returns it upstream (checked under ASan).
}

TEST(TestResourceDeathTest, TheDefaultHandlerAbortsOnMisuseNamingTheResource) {
  EXPECT_DEATH(
      {
        test_resource resource("strict", std::pmr::new_delete_resource());
        int local = 0;
        resource.deallocate(&local, 4, 4);
      },
      "pmrkit: 'strict' foreign pointer");
  EXPECT_DEATH(
      {
        test_resource resource("strict", std::pmr::new_delete_resource());
        void* p = resource.allocate(16, 8);
        resource.deallocate(p, 8, 8);
      },
      "pmrkit: 'strict' size mismatch");
}

TEST(TestResourceDeathTest, TheDefaultHandlerAbortsOnLeakAtDestruction) {
  EXPECT_DEATH(
      {
        test_resource resource("leaker", std::pmr::new_delete_resource());
        (void)resource.allocate(16, 8);
      },
      "pmrkit: 'leaker' leak: 16 bytes still in use");
}

TEST(TestResource, AllocationLimitFailsTheNextPlusOneAllocationOnce) {
  test_resource resource(recording, std::pmr::new_delete_resource());
  resource.set_allocation_limit(2);
  void* a = resource.allocate(8, 8);
  void* b = resource.allocate(8, 8);
  try {
    (void)resource.allocate(8, 8);
    FAIL() << "third allocation did not throw";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::injected_failure);
    EXPECT_EQ(e.resource_name(), "under test");
  }
  EXPECT_EQ(resource.allocation_limit(), -1);
  void* c = resource.allocate(8, 8);  // the limit is spent
  const auto stats = resource.stats();
  EXPECT_EQ(stats.injected_failures, 1U);
  EXPECT_EQ(stats.failed_allocations, 1U);
  EXPECT_EQ(stats.blocks_in_use, 3U);
  for (void* p : {a, b, c})
    resource.deallocate(p, 8, 8);
}

TEST(TestResource, AllocationLimitZeroFailsTheFirstAndMinusOneDisables) {
  test_resource resource(recording, std::pmr::new_delete_resource());
  resource.set_allocation_limit(0);
  EXPECT_THROW((void)resource.allocate(1, 1), pmrkit::allocation_error);
  resource.set_allocation_limit(0);
  resource.set_allocation_limit(-1);
  void* p = resource.allocate(1, 1);
  resource.deallocate(p, 1, 1);
}

TEST(TestResource, BadRequestsThrowAllocationErrorAndLeaveItUsable) {
  test_resource resource(recording, std::pmr::new_delete_resource());
  volatile std::size_t bad_alignment = 3;  // not a constant, so clang does not reject the call
  try {
    (void)resource.allocate(16, bad_alignment);
    FAIL();
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::bad_alignment);
  }
  try {
    (void)resource.allocate(std::numeric_limits<std::size_t>::max() - 8, 8);
    FAIL();
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::size_overflow);
  }
  void* p = resource.allocate(16, 8);
  resource.deallocate(p, 16, 8);
  EXPECT_EQ(resource.stats().failed_allocations, 2U);
}

TEST(TestResource, UpstreamFailureBecomesAllocationErrorUpstreamFailed) {
  test_resource resource({.name = "over null"}, std::pmr::null_memory_resource());
  try {
    (void)resource.allocate(16, 8);
    FAIL();
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::upstream_failed);
    EXPECT_EQ(e.requested(), 16U);
  }
}

TEST(TestResource, ZeroSizeBlocksAreDistinctAndGuarded) {
  test_resource resource(recording, std::pmr::new_delete_resource());
  void* a = resource.allocate(0, 8);
  void* b = resource.allocate(0, 8);
  EXPECT_NE(a, nullptr);
  EXPECT_NE(a, b);
  resource.deallocate(a, 0, 8);
  resource.deallocate(b, 0, 8);
  EXPECT_TRUE(resource.errors().empty());
}

TEST(TestResource, WithoutGuardsAndFillStillChecksPointersAndSizes) {
  violation_recorder recorder;
  test_resource resource({.guard_bytes = 0, .fill = false, .name = "bare"},
                         std::pmr::new_delete_resource());
  void* p = resource.allocate(8, 8);
  resource.deallocate(p, 16, 8);
  EXPECT_EQ(resource.error_count(), 1U);
  resource.clear_errors();
  EXPECT_EQ(resource.error_count(), 0U);
}

TEST(TestResource, RejectsUnreasonableGuardsNamingTheField) {
  try {
    test_resource resource({.guard_bytes = 1 << 20});
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), "pmrkit::test_resource: guard_bytes must be at most 4096");
  }
}

TEST(TestResource, ChainsToAnotherTestResourceAndEqualsOnlyItself) {
  test_resource outer({.name = "outer"}, std::pmr::new_delete_resource());
  test_resource inner({.name = "inner"}, &outer);
  EXPECT_EQ(inner.upstream_resource(), &outer);
  EXPECT_TRUE(inner.is_equal(inner));
  EXPECT_FALSE(inner.is_equal(outer));
  {
    std::pmr::list<std::pmr::string> strings(&inner);
    for (int i = 0; i < 50; ++i)
      strings.emplace_back(100, 'x');
    EXPECT_EQ(inner.blocks_in_use(), 100U);
    EXPECT_EQ(outer.blocks_in_use(), 100U);
  }
  EXPECT_EQ(outer.blocks_in_use(), 0U);
}

TEST(TestResource, IsSafeToShareBetweenThreads) {
  test_resource resource({.name = "shared"}, std::pmr::new_delete_resource());
  constexpr int threads = 4;
  constexpr int rounds = 2000;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&resource, t] {
      std::vector<void*> held;
      for (int i = 0; i < rounds; ++i) {
        held.push_back(resource.allocate(static_cast<std::size_t>(16 + t + i % 64), 8));
        if (held.size() > 32) {
          resource.deallocate(held.front(), static_cast<std::size_t>(16 + t + (i - 32) % 64), 8);
          held.erase(held.begin());
        }
      }
      for (std::size_t k = 0; k < held.size(); ++k) {
        const int i = rounds - static_cast<int>(held.size()) + static_cast<int>(k);
        resource.deallocate(held[k], static_cast<std::size_t>(16 + t + i % 64), 8);
      }
    });
  }
  for (auto& worker : workers)
    worker.join();
  const auto stats = resource.stats();
  EXPECT_EQ(stats.allocations, std::size_t{threads * rounds});
  EXPECT_EQ(stats.blocks_in_use, 0U);
  EXPECT_TRUE(resource.errors().empty());
}

}  // namespace
