// block_pool (pool/detail): the free-list building block of the pools, and
// block_magazine, the fast path in front of it and of the concurrent pool's depots.
#include <pmr/pool/detail/block_magazine.hpp>
#include <pmr/pool/detail/block_pool.hpp>

#include <pmr/core/config.hpp>
#include <pmr/core/error.hpp>
#include <pmr/testing/test_resource.hpp>
#include <pmr/testing/violation_recorder.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory_resource>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using pmrkit::detail::block_pool;
using pmrkit::detail::block_pool_layout;

constexpr pmrkit::test_options upstream_options{.name = "upstream"};

void* allocate(block_pool& pool) {
  if (void* p = pool.try_allocate()) return p;
  return pool.allocate_from_new_chunk("block_pool");
}

std::string message_of(block_pool_layout layout) {
  try {
    (void)pmrkit::detail::validated_layout("pool_resource", layout);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "no exception";
}

using block_magazine = pmrkit::detail::block_magazine<>;
template <std::uint32_t N>
using inline_magazine =
    pmrkit::detail::block_magazine<pmrkit::detail::magazine_count::owner_only, N>;

TEST(BlockMagazine, PopsTheNewestBlockFirst) {
  void* slots[3];
  block_magazine magazine(slots, 3);
  int blocks[3];
  EXPECT_TRUE(magazine.empty());
  EXPECT_EQ(magazine.capacity(), 3U);
  for (int& block : blocks)
    magazine.push(&block);
  EXPECT_TRUE(magazine.full());
  EXPECT_EQ(magazine.pop(), &blocks[2]);
  EXPECT_EQ(magazine.size(), 2U);
  EXPECT_FALSE(magazine.full());
  magazine.push(&blocks[2]);
  EXPECT_EQ(magazine.pop(), &blocks[2]);
  EXPECT_EQ(magazine.pop(), &blocks[1]);
  EXPECT_EQ(magazine.pop(), &blocks[0]);
  EXPECT_TRUE(magazine.empty());
}

TEST(BlockMagazine, TakeOldestHandsOverTheOldestAndKeepsTheNewerInOrder) {
  void* slots[6];
  block_magazine magazine(slots, 6);
  int blocks[6];
  for (int& block : blocks)
    magazine.push(&block);
  std::vector<void*> taken;
  magazine.take_oldest(4, [&](void* block) { taken.push_back(block); });
  EXPECT_EQ(taken, (std::vector<void*>{&blocks[0], &blocks[1], &blocks[2], &blocks[3]}));
  ASSERT_EQ(magazine.size(), 2U);
  EXPECT_FALSE(magazine.contains(&blocks[0]));
  EXPECT_TRUE(magazine.contains(&blocks[4]));
  magazine.push(&blocks[0]);
  EXPECT_EQ(magazine.pop(), &blocks[0]);
  EXPECT_EQ(magazine.pop(), &blocks[5]);
  EXPECT_EQ(magazine.pop(), &blocks[4]);
  magazine.take_oldest(0, [](void*) { FAIL() << "nothing to take"; });
  EXPECT_TRUE(magazine.empty());
}

TEST(BlockMagazine, TakeAllEmptiesNewestFirstAndClearForgets) {
  inline_magazine<4> magazine;  // its slots inside it
  EXPECT_EQ(magazine.capacity(), 4U);
  int blocks[3];
  for (int& block : blocks)
    magazine.push(&block);
  std::vector<void*> taken;
  magazine.take_all([&](void* block) {
    taken.push_back(block);
    EXPECT_EQ(magazine.size(), 3U - taken.size());  // counted out before it is handed over
  });
  EXPECT_EQ(taken, (std::vector<void*>{&blocks[2], &blocks[1], &blocks[0]}));
  EXPECT_TRUE(magazine.empty());
  magazine.push(&blocks[0]);
  magazine.clear();
  EXPECT_TRUE(magazine.empty());
  EXPECT_FALSE(magazine.contains(&blocks[0]));
}

TEST(BlockPool, ValidatedLayoutNamesTheClassTheFieldAndTheRule) {
  EXPECT_EQ(message_of({.block_size = 0, .block_alignment = 8, .growth = {1, 1, 2}}),
            "pmrkit::pool_resource: block_size must not be 0");
  EXPECT_EQ(message_of({.block_size = 8, .block_alignment = 3, .growth = {1, 1, 2}}),
            "pmrkit::pool_resource: block_alignment must be a power of two no greater than 4096");
  EXPECT_EQ(message_of({.block_size = 8, .block_alignment = 8192, .growth = {1, 1, 2}}),
            "pmrkit::pool_resource: block_alignment must be a power of two no greater than 4096");
  EXPECT_NE(message_of({.block_size = 8, .block_alignment = 8, .growth = {0, 1, 2}})
                .find("initial_blocks"),
            std::string::npos);
  EXPECT_NE(message_of({.block_size = 8, .block_alignment = 8, .growth = {8, 4, 2}})
                .find("max_blocks_per_chunk"),
            std::string::npos);
  EXPECT_NE(message_of({.block_size = 8, .block_alignment = 8, .growth = {1, 4, 17}})
                .find("growth_factor"),
            std::string::npos);
  EXPECT_NE(
      message_of({.block_size = std::size_t{1} << 62, .block_alignment = 8, .growth = {1, 64, 2}})
          .find("overflows"),
      std::string::npos);
}

TEST(BlockPool, BlocksHoldALinkAndKeepTheirNeighboursAligned) {
  const block_pool_layout layout = pmrkit::detail::validated_layout(
      "pool_resource", {.block_size = 1, .block_alignment = 1, .growth = {4, 4, 1}});
  EXPECT_EQ(layout.block_size, sizeof(void*));
  EXPECT_EQ(layout.block_alignment, alignof(void*));
  const block_pool_layout odd = pmrkit::detail::validated_layout(
      "pool_resource", {.block_size = 40, .block_alignment = 32, .growth = {4, 4, 1}});
  EXPECT_EQ(odd.block_size, 64U);
}

TEST(BlockPool, TakesNoChunkUntilAskedAndChunksFollowTheGrowth) {
  pmrkit::test_resource upstream(upstream_options);
  block_pool pool({.block_size = 16, .block_alignment = 16, .growth = {.initial = 2, .max = 8}},
                  &upstream);
  EXPECT_EQ(pool.try_allocate(), nullptr);
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
  std::vector<void*> blocks;
  for (int i = 0; i < 2 + 4 + 8 + 8; ++i)
    blocks.push_back(allocate(pool));
  EXPECT_EQ(pool.chunk_count(), 4U);  // 2, 4, 8, 8 blocks
  EXPECT_EQ(pool.counts().capacity_blocks, 22U);
  EXPECT_EQ(pool.bytes_from_upstream(), upstream.bytes_in_use());
  for (void* p : blocks) {
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 16, 0U);
    pool.deallocate(p);
  }
  EXPECT_EQ(pool.blocks_in_use(), 0U);
  pool.release();
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
  EXPECT_EQ(pool.bytes_from_upstream(), 0U);
  (void)allocate(pool);  // growth starts again: a chunk of 2
  EXPECT_EQ(pool.counts().capacity_blocks, 2U);
  pool.release();
}

TEST(BlockPool, AFreedBlockIsTheNextOneAndAnEmptiedPoolCarvesInAddressOrder) {
  block_pool pool({.block_size = 32, .block_alignment = 8, .growth = {.initial = 8, .max = 8}},
                  std::pmr::new_delete_resource());
  std::vector<void*> blocks;
  for (int i = 0; i < 6; ++i)
    blocks.push_back(allocate(pool));
  pool.deallocate(blocks[3]);
  EXPECT_EQ(allocate(pool), blocks[3]);
  for (void* p : {blocks[5], blocks[0], blocks[4], blocks[2], blocks[1], blocks[3]})
    pool.deallocate(p);
  // Every block is free: carving restarts at the start of the oldest chunk.
  for (int i = 0; i < 6; ++i)
    EXPECT_EQ(allocate(pool), blocks[static_cast<std::size_t>(i)]) << i;
  for (void* p : blocks)
    pool.deallocate(p);
}

TEST(BlockPool, ShrinkGivesBackFullyFreeChunksAndReturnsTheirBytes) {
  pmrkit::test_resource upstream(upstream_options);
  block_pool pool({.block_size = 64, .block_alignment = 8, .growth = {.initial = 4, .max = 4}},
                  &upstream);
  std::vector<void*> blocks;
  for (int i = 0; i < 12; ++i)
    blocks.push_back(allocate(pool));
  EXPECT_EQ(pool.chunk_count(), 3U);
  const std::size_t one_chunk = pool.bytes_from_upstream() / 3;
  // The second chunk entirely, and half of the third.
  for (int i : {4, 5, 6, 7, 8, 9})
    pool.deallocate(blocks[static_cast<std::size_t>(i)]);
  EXPECT_EQ(pool.shrink(), one_chunk);
  EXPECT_EQ(pool.chunk_count(), 2U);
  EXPECT_EQ(pool.bytes_from_upstream(), upstream.bytes_in_use());
  EXPECT_EQ(pool.blocks_in_use(), 6U);
  EXPECT_EQ(pool.shrink(), 0U);  // nothing more is free
  for (int i : {0, 1, 2, 3, 10, 11})
    pool.deallocate(blocks[static_cast<std::size_t>(i)]);
  EXPECT_EQ(pool.shrink(), 2 * one_chunk);
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
  EXPECT_EQ(pool.counts().peak_blocks_in_use, 12U);
}

TEST(BlockPool, UpstreamFailureThrowsAllocationErrorAndChangesNothing) {
  pmrkit::test_resource upstream(upstream_options);
  block_pool pool({.block_size = 16, .block_alignment = 16, .growth = {.initial = 2, .max = 2}},
                  &upstream);
  void* a = allocate(pool);
  void* b = allocate(pool);
  upstream.set_allocation_limit(0);
  EXPECT_THROW((void)allocate(pool), pmrkit::allocation_error);
  EXPECT_EQ(pool.chunk_count(), 1U);
  EXPECT_EQ(pool.blocks_in_use(), 2U);
  pool.deallocate(a);
  pool.deallocate(b);
  pool.release();
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
}

TEST(BlockPool, CheckDeallocateReportsForeignPointersAndDoubleFrees) {
  if (!PMRKIT_CHECKED) GTEST_SKIP() << "violations are reported in checked builds";
  block_pool pool({.block_size = 32, .block_alignment = 8, .growth = {.initial = 4, .max = 4}},
                  std::pmr::new_delete_resource());
  void* p = allocate(pool);
  pmrkit::violation_recorder recorder;
  int elsewhere = 0;
  EXPECT_FALSE(pool.check_deallocate(&elsewhere, "block_pool", 32, 8));
  EXPECT_FALSE(pool.check_deallocate(static_cast<std::byte*>(p) + 8, "block_pool", 32, 8));
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::foreign_pointer), 2U);
  EXPECT_TRUE(pool.check_deallocate(p, "block_pool", 32, 8));
  pool.deallocate(p);
  EXPECT_FALSE(pool.check_deallocate(p, "block_pool", 32, 8));
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::double_free), 1U);
  EXPECT_TRUE(pool.owns(p));
  EXPECT_FALSE(pool.owns(&elsewhere));
}

}  // namespace
