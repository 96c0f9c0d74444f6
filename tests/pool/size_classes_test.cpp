// size_classes (pool/detail): the block sizes of the multi-size pools and the map from a
// request to its class.
#include <pmr/pool/detail/size_classes.hpp>

#include <gtest/gtest.h>

#include <cstddef>

namespace {

namespace size_classes = pmrkit::detail::size_classes;

TEST(SizeClasses, EverySizeMapsToTheSmallestClassThatHoldsIt) {
  for (std::size_t bytes = 1; bytes <= size_classes::max_size; ++bytes) {
    const std::size_t index = size_classes::index_of(bytes);
    ASSERT_GE(size_classes::class_size(index), bytes) << bytes;
    if (index > 0) {
      ASSERT_LT(size_classes::class_size(index - 1), bytes) << bytes;
    }
  }
}

TEST(SizeClasses, ABlockWastesAtMostAQuarterAbove128Bytes) {
  for (std::size_t bytes = 129; bytes <= size_classes::max_size; bytes += 7) {
    const std::size_t size = size_classes::class_size(size_classes::index_of(bytes));
    ASSERT_LE(size - bytes, bytes / 4) << bytes;
  }
}

TEST(SizeClasses, AlignedRequestsGetAClassAlignedEnough) {
  constexpr std::size_t classes = size_classes::count_for(65536);
  for (std::size_t alignment = 1; alignment <= 4096; alignment *= 2) {
    for (std::size_t bytes : {1, 17, 100, 1000, 5000}) {
      const std::size_t index = size_classes::index_of(bytes, alignment, classes);
      ASSERT_LT(index, classes);
      EXPECT_GE(size_classes::class_size(index), bytes);
      EXPECT_GE(size_classes::class_alignment(index), alignment);
    }
  }
  EXPECT_EQ(size_classes::index_of(8, 8192, classes), classes);
  EXPECT_EQ(size_classes::index_of(65537, 8, classes), classes);
}

TEST(SizeClasses, ClassesAreAlignedToTheirLargestPowerOfTwo) {
  for (std::size_t index = 0; index < size_classes::count_for(size_classes::max_size); ++index) {
    const std::size_t size = size_classes::class_size(index);
    const std::size_t alignment = size_classes::class_alignment(index);
    ASSERT_EQ(size % alignment, 0U) << size;
    ASSERT_TRUE(alignment == size_classes::max_class_alignment || (size / alignment) % 2 == 1)
        << size;
  }
}

TEST(SizeClasses, EffectiveOptionsFollowTheStandardsMeaning) {
  const std::pmr::pool_options defaults = size_classes::effective_options(0, 0);
  EXPECT_EQ(defaults.max_blocks_per_chunk, size_classes::default_max_blocks_per_chunk);
  EXPECT_EQ(defaults.largest_required_pool_block, size_classes::default_largest_block);
  const std::pmr::pool_options capped = size_classes::effective_options(1U << 20, 1U << 30);
  EXPECT_EQ(capped.max_blocks_per_chunk, size_classes::default_max_blocks_per_chunk);
  EXPECT_EQ(capped.largest_required_pool_block, size_classes::max_size);
  EXPECT_EQ(size_classes::effective_options(8, 100).largest_required_pool_block, 112U);
  EXPECT_EQ(size_classes::effective_options(8, 100).max_blocks_per_chunk, 8U);
}

TEST(SizeClasses, ChunksStartNear4KiBAndGrowTo64KiBOrTheBlockLimit) {
  const auto small = size_classes::layout_of(size_classes::index_of(64), 0);
  EXPECT_EQ(small.block_size, 64U);
  EXPECT_EQ(small.growth.initial, 64U);  // 4 KiB
  EXPECT_EQ(small.growth.max, 1024U);    // 64 KiB
  EXPECT_EQ(small.growth.factor, 2U);
  EXPECT_EQ(size_classes::layout_of(size_classes::index_of(64), 16).growth.max, 16U);
  const auto large = size_classes::layout_of(size_classes::index_of(1U << 20), 0);
  EXPECT_EQ(large.growth.initial, 1U);  // one block is more than a chunk
  EXPECT_EQ(large.growth.max, 1U);
}

}  // namespace
