#include <pmr/core/error.hpp>

#include <gtest/gtest.h>

#include <new>
#include <string>
#include <type_traits>

namespace {

using pmrkit::allocation_error;
using pmrkit::budget_exceeded;
using pmrkit::failure_reason;

TEST(AllocationError, IsABadAllocCarryingEveryField) {
  static_assert(std::is_base_of_v<std::bad_alloc, allocation_error>);
  static_assert(std::is_nothrow_copy_constructible_v<allocation_error>);
  const allocation_error error(failure_reason::out_of_capacity, 4096, 64, "frame arena");
  EXPECT_EQ(error.reason(), failure_reason::out_of_capacity);
  EXPECT_EQ(error.requested(), 4096U);
  EXPECT_EQ(error.alignment(), 64U);
  EXPECT_EQ(error.resource_name(), "frame arena");
}

TEST(AllocationError, WhatIsOneLineNamingResourceReasonSizeAndAlignment) {
  const allocation_error error(failure_reason::bad_alignment, 100, 3, "nodes");
  const std::string what = error.what();
  EXPECT_EQ(what, "pmrkit: 'nodes' bad alignment: requested 100 bytes, alignment 3");
  EXPECT_EQ(what.find('\n'), std::string::npos);
}

TEST(AllocationError, LongNamesAreTruncatedNotOverflowed) {
  const std::string long_name(500, 'x');
  const allocation_error error(failure_reason::size_overflow, 1, 1, long_name);
  EXPECT_EQ(error.resource_name(), std::string(63, 'x'));
  EXPECT_LT(std::string(error.what()).size(), 256U);
}

TEST(AllocationError, EveryReasonHasAName) {
  for (auto reason : {failure_reason::out_of_capacity, failure_reason::budget_exceeded,
                      failure_reason::bad_alignment, failure_reason::size_overflow,
                      failure_reason::upstream_failed, failure_reason::injected_failure}) {
    EXPECT_NE(pmrkit::to_string(reason), "unknown failure");
  }
  EXPECT_EQ(pmrkit::to_string(failure_reason::upstream_failed), "upstream failed");
}

TEST(BudgetExceeded, AddsLimitAndRemainingToTheMessage) {
  const budget_exceeded error(512, 16, "tenant-a", 1024, 100);
  EXPECT_EQ(error.reason(), failure_reason::budget_exceeded);
  EXPECT_EQ(error.limit(), 1024U);
  EXPECT_EQ(error.remaining(), 100U);
  EXPECT_STREQ(error.what(),
               "pmrkit: 'tenant-a' budget exceeded: requested 512 bytes, alignment 16; limit "
               "1024, remaining 100");
}

TEST(BudgetExceeded, IsCaughtAsAllocationErrorAndBadAlloc) {
  try {
    throw budget_exceeded(1, 1, "b", 0, 0);
  } catch (const std::bad_alloc& e) {
    const auto* as_allocation_error = dynamic_cast<const allocation_error*>(&e);
    ASSERT_NE(as_allocation_error, nullptr);
    EXPECT_EQ(as_allocation_error->reason(), failure_reason::budget_exceeded);
  }
}

TEST(ThrowAllocationError, ThrowsTheDescribedError) {
  try {
    pmrkit::throw_allocation_error(failure_reason::upstream_failed, 7, 8, "r");
    FAIL() << "nothing thrown";
  } catch (const allocation_error& e) {
    EXPECT_EQ(e.reason(), failure_reason::upstream_failed);
    EXPECT_EQ(e.requested(), 7U);
    EXPECT_EQ(e.alignment(), 8U);
    EXPECT_EQ(e.resource_name(), "r");
  }
}

}  // namespace
