#include <pmr/core/align.hpp>

#include <gtest/gtest.h>

#include <cstddef>
#include <limits>

namespace {

constexpr std::size_t max_size = std::numeric_limits<std::size_t>::max();

TEST(Align, PowerOfTwoRejectsZeroAndComposites) {
  EXPECT_FALSE(pmrkit::is_power_of_two(0));
  EXPECT_TRUE(pmrkit::is_power_of_two(1));
  EXPECT_TRUE(pmrkit::is_power_of_two(4096));
  EXPECT_FALSE(pmrkit::is_power_of_two(24));
  EXPECT_TRUE(pmrkit::is_power_of_two(std::size_t{1} << 63));
}

TEST(Align, CheckedAlignUpReportsOverflowAtTheExactBoundary) {
  std::size_t result = 0;
  EXPECT_TRUE(pmrkit::checked_align_up(13, 8, result));
  EXPECT_EQ(result, 16U);
  EXPECT_TRUE(pmrkit::checked_align_up(16, 8, result));
  EXPECT_EQ(result, 16U);
  EXPECT_TRUE(pmrkit::checked_align_up(max_size - 15, 16, result));
  EXPECT_EQ(result, max_size - 15);
  result = 7;
  EXPECT_FALSE(pmrkit::checked_align_up(max_size - 14, 16, result));
  EXPECT_EQ(result, 7U) << "result untouched on overflow";
  EXPECT_TRUE(pmrkit::checked_align_up(max_size, 1, result));
}

TEST(Align, CheckedAddAndMultiplyReportOverflow) {
  std::size_t result = 0;
  EXPECT_TRUE(pmrkit::checked_add(max_size - 1, 1, result));
  EXPECT_FALSE(pmrkit::checked_add(max_size, 1, result));
  EXPECT_TRUE(pmrkit::checked_multiply(std::size_t{1} << 31, std::size_t{1} << 32, result));
  EXPECT_FALSE(pmrkit::checked_multiply(std::size_t{1} << 32, std::size_t{1} << 32, result));
  EXPECT_TRUE(pmrkit::checked_multiply(max_size, 0, result));
  EXPECT_EQ(result, 0U);
}

TEST(Align, NextPowerOfTwoAndLog2) {
  EXPECT_EQ(pmrkit::next_power_of_two(0), 1U);
  EXPECT_EQ(pmrkit::next_power_of_two(17), 32U);
  EXPECT_EQ(pmrkit::next_power_of_two(64), 64U);
  EXPECT_EQ(pmrkit::next_power_of_two((std::size_t{1} << 63) + 1), 0U);
  EXPECT_EQ(pmrkit::log2_floor(1), 0U);
  EXPECT_EQ(pmrkit::log2_floor(4097), 12U);
}

TEST(Align, BlockExtentIsAtLeastOneGranuleAndReportsOverflow) {
  EXPECT_EQ(pmrkit::block_extent(0, 16), 16U);
  EXPECT_EQ(pmrkit::block_extent(1, 16), 16U);
  EXPECT_EQ(pmrkit::block_extent(17, 16), 32U);
  EXPECT_EQ(pmrkit::block_extent(0, 1), 1U);
  std::size_t result = 0;
  EXPECT_TRUE(pmrkit::checked_block_extent(max_size - 15, 16, result));
  EXPECT_FALSE(pmrkit::checked_block_extent(max_size - 14, 16, result));
}

TEST(Align, AlignPointerRoundsUpAndKeepsAlignedPointers) {
  alignas(64) std::byte buffer[256];
  EXPECT_EQ(pmrkit::align_pointer(buffer + 1, 64), buffer + 64);
  EXPECT_EQ(pmrkit::align_pointer(buffer + 64, 64), buffer + 64);
  EXPECT_TRUE(pmrkit::is_aligned(buffer + 32, 32));
  EXPECT_FALSE(pmrkit::is_aligned(buffer + 33, 2));
}

TEST(Align, CheckRequestThrowsBadAlignmentNamingTheResource) {
  EXPECT_NO_THROW(pmrkit::check_request(10, 16, "r"));
  try {
    pmrkit::check_request(10, 12, "frame arena");
    FAIL() << "nothing thrown";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::bad_alignment);
    EXPECT_EQ(e.alignment(), 12U);
    EXPECT_EQ(e.resource_name(), "frame arena");
  }
}

}  // namespace
