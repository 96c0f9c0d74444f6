#include <pmr/testing/test_resource.hpp>

#include <pmr/core/error.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <list>
#include <memory_resource>
#include <string>
#include <thread>
#include <vector>

namespace {

using pmrkit::error_mode;
using pmrkit::test_resource;
using pmrkit::violation_kind;

// Options of the usual subject here: record mode, quiet, over new_delete.
constexpr pmrkit::test_resource_options recording{
    .name = "under test", .mode = error_mode::record, .quiet = true};

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
  EXPECT_EQ(stats.max_blocks_in_use, 2U);
  EXPECT_EQ(stats.max_bytes_in_use, 150U);
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
  test_resource resource(recording, std::pmr::new_delete_resource());
  auto* p = static_cast<unsigned char*>(resource.allocate(20, 4));
  p[-1] = 0;
  resource.deallocate(p, 20, 4);
  const auto errors = resource.errors();
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].kind, violation_kind::buffer_underrun);
}

TEST(TestResource, ReportsLeaksBeforeDestructionOldestFirst) {
  test_resource resource({.name = "leaky", .mode = error_mode::record, .quiet = true},
                         std::pmr::new_delete_resource());
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

TEST(TestResource, RecordModePrintsLeaksAtDestructionUnlessQuiet) {
  testing::internal::CaptureStderr();
  {
    test_resource resource({.name = "noisy", .mode = error_mode::record},
                           std::pmr::new_delete_resource());
    (void)resource.allocate(24, 8);
  }
  const std::string printed = testing::internal::GetCapturedStderr();
  EXPECT_NE(printed.find("pmrkit: 'noisy' leak: 1 blocks (24 bytes) still in use"),
            std::string::npos)
      << printed;
}

TEST(TestResourceDeathTest, AbortModeAbortsOnMisuseNamingTheResource) {
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

TEST(TestResourceDeathTest, AbortModeAbortsOnLeakAtDestruction) {
  EXPECT_DEATH(
      {
        test_resource resource("leaker", std::pmr::new_delete_resource());
        (void)resource.allocate(16, 8);
      },
      "pmrkit: 'leaker' leak: 1 blocks \\(16 bytes\\) still in use");
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
  test_resource resource({.name = "over null", .mode = error_mode::record},
                         std::pmr::null_memory_resource());
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
  test_resource resource(
      {.name = "bare", .mode = error_mode::record, .guard_bytes = 0, .fill = false},
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
    EXPECT_NE(std::string(e.what()).find("guard_bytes"), std::string::npos);
  }
}

TEST(TestResource, ChainsToAnotherTestResourceAndEqualsOnlyItself) {
  test_resource outer({.name = "outer", .mode = error_mode::record},
                      std::pmr::new_delete_resource());
  test_resource inner({.name = "inner", .mode = error_mode::record}, &outer);
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
  test_resource resource({.name = "shared", .mode = error_mode::record},
                         std::pmr::new_delete_resource());
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
