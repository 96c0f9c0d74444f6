// Free pooled blocks are poisoned for AddressSanitizer in checked and
// sanitizer builds, link words included, and unpoisoned exactly when handed
// out: pool_resource and multipool_resource (a block in the magazine, on the
// free list, after shrink) and concurrent_pool_resource (a block in a thread
// cache, in a depot batch, back in the depot's chunks after its thread
// exited). The tests need AddressSanitizer (the asan preset) and skip without.
#include <pmr/core/poison.hpp>
#include <pmr/pool/concurrent_pool_resource.hpp>
#include <pmr/pool/multipool_resource.hpp>
#include <pmr/pool/pool_resource.hpp>

#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <thread>
#include <vector>

namespace {

using pmrkit::concurrent_pool_options;
using pmrkit::concurrent_pool_resource;
using pmrkit::multipool_resource;
using pmrkit::pool_options;
using pmrkit::pool_resource;

constexpr const char* needs_asan = "needs AddressSanitizer (the asan preset)";
constexpr const char* reported = "use-after-poison|heap-use-after-free";

// How many bytes of [p, p + n) are poisoned.
std::size_t poisoned_bytes(const void* p, std::size_t n) {
  const auto* bytes = static_cast<const unsigned char*>(p);
  std::size_t count = 0;
  for (std::size_t i = 0; i < n; ++i)
    count += pmrkit::detail::is_poisoned(bytes + i) ? 1 : 0;
  return count;
}

// Allocates `count` blocks of `bytes`, each written whole (so a poisoned one fails under ASan).
std::vector<void*> allocate_written(std::pmr::memory_resource& r, std::size_t count,
                                    std::size_t bytes) {
  std::vector<void*> blocks;
  for (std::size_t i = 0; i < count; ++i) {
    void* p = r.allocate(bytes, 8);
    EXPECT_EQ(poisoned_bytes(p, bytes), 0U) << "block " << i << " handed out poisoned";
    std::memset(p, 0x5A, bytes);
    blocks.push_back(p);
  }
  return blocks;
}

void expect_all_poisoned(const std::vector<void*>& blocks, std::size_t bytes) {
  for (std::size_t i = 0; i < blocks.size(); ++i)
    EXPECT_EQ(poisoned_bytes(blocks[i], bytes), bytes) << "free block " << i;
}

TEST(PoolPoisoning, IsPoisonedSeesRetireAndRevive) {
  if (!PMRKIT_HAS_ASAN) GTEST_SKIP() << needs_asan;
  alignas(16) unsigned char bytes[64] = {};
  pmrkit::detail::retire(bytes, sizeof bytes);
  EXPECT_EQ(poisoned_bytes(bytes, sizeof bytes), sizeof bytes);
  pmrkit::detail::revive(bytes, 16);
  EXPECT_EQ(poisoned_bytes(bytes, sizeof bytes), sizeof bytes - 16);
  pmrkit::detail::poison(bytes, 8);
  EXPECT_EQ(poisoned_bytes(bytes, sizeof bytes), sizeof bytes - 8);
  pmrkit::detail::revive(bytes, sizeof bytes);
  EXPECT_EQ(poisoned_bytes(bytes, sizeof bytes), 0U);
}

TEST(PoolPoisoning, PoolResourceBlocksArePoisonedWhileFree) {
  if (!PMRKIT_HAS_ASAN) GTEST_SKIP() << needs_asan;
  constexpr std::size_t size = 64;
  pool_resource pool(pool_options{.block_size = size, .initial_blocks = 8});
  // More than a magazine (32), so that freeing spills blocks onto the free list.
  std::vector<void*> blocks = allocate_written(pool, 80, size);
  std::vector<void*> freed(blocks.begin(), blocks.begin() + 70);
  for (void* p : freed)
    pool.deallocate(p, size, 8);
  expect_all_poisoned(freed, size);
  // Handed out again from the magazine and the free list: unpoisoned.
  std::vector<void*> again = allocate_written(pool, 70, size);
  for (void* p : again)
    pool.deallocate(p, size, 8);
  // shrink() sorts the free list and keeps the chunks still in use: their free blocks stay
  // poisoned.
  pool.shrink();
  std::vector<void*> kept;
  for (void* p : freed) {
    if (pool.owns(p)) kept.push_back(p);
  }
  ASSERT_FALSE(kept.empty());
  expect_all_poisoned(kept, size);
  (void)allocate_written(pool, kept.size(), size);
  for (std::size_t i = 70; i < blocks.size(); ++i)
    EXPECT_EQ(poisoned_bytes(blocks[i], size), 0U) << "block in use " << i;
}

TEST(PoolPoisoning, MultipoolBlocksArePoisonedWhileFree) {
  if (!PMRKIT_HAS_ASAN) GTEST_SKIP() << needs_asan;
  multipool_resource pool;
  for (const std::size_t size : {16U, 48U, 200U}) {
    std::vector<void*> blocks = allocate_written(pool, 50, size);
    std::vector<void*> freed(blocks.begin(), blocks.begin() + 45);
    for (void* p : freed)
      pool.deallocate(p, size, 8);
    expect_all_poisoned(freed, size);
    std::vector<void*> again = allocate_written(pool, 45, size);
    for (void* p : again)
      pool.deallocate(p, size, 8);
    pool.shrink();
    for (std::size_t i = 45; i < blocks.size(); ++i) {
      EXPECT_EQ(poisoned_bytes(blocks[i], size), 0U) << size << "-byte block in use " << i;
      pool.deallocate(blocks[i], size, 8);
    }
  }
  pool.release();
}

TEST(PoolPoisoning, ConcurrentPoolBlocksArePoisonedInCachesAndDepot) {
  if (!PMRKIT_HAS_ASAN) GTEST_SKIP() << needs_asan;
  constexpr std::size_t size = 64;
  // Eight blocks per thread cache: the ninth freed sends the oldest four to the depot.
  concurrent_pool_resource pool(concurrent_pool_options{.cache_bytes_per_class = 8 * size});
  std::vector<void*> blocks = allocate_written(pool, 20, size);
  for (void* p : blocks)
    pool.deallocate(p, size, 8);
  ASSERT_GT(pool.stats().blocks_in_depot, 0U);
  ASSERT_GT(pool.stats().blocks_cached, 0U);
  expect_all_poisoned(blocks, size);
  // From the cache, then from depot batches: unpoisoned as handed out.
  std::vector<void*> again = allocate_written(pool, 20, size);
  // Freed by a thread that exits: back in the depot's chunks, poisoned.
  std::thread([&] {
    for (void* p : again)
      pool.deallocate(p, size, 8);
  }).join();
  EXPECT_EQ(pool.stats().thread_caches, 1U);
  expect_all_poisoned(again, size);
  pool.shrink();
  std::vector<void*> kept;
  for (void* p : again) {
    if (pool.owns(p)) kept.push_back(p);
  }
  expect_all_poisoned(kept, size);
  (void)allocate_written(pool, 20, size);
  pool.release();
}

TEST(PoolPoisoningDeathTest, PoolResourceUseAfterFreeIsReported) {
  if (!PMRKIT_HAS_ASAN) GTEST_SKIP() << needs_asan;
  testing::FLAGS_gtest_death_test_style = "threadsafe";
  pool_resource pool(pool_options{.block_size = 64, .initial_blocks = 8});
  auto* p = static_cast<volatile unsigned char*>(pool.allocate(64, 8));
  pool.deallocate(const_cast<unsigned char*>(p), 64, 8);
  EXPECT_DEATH(p[0] = 1, reported);  // the link word
  EXPECT_DEATH(p[40] = 1, reported);
  EXPECT_DEATH((void)p[63], reported);
}

TEST(PoolPoisoningDeathTest, PoolResourceUseAfterFreeOnTheFreeListIsReported) {
  if (!PMRKIT_HAS_ASAN) GTEST_SKIP() << needs_asan;
  testing::FLAGS_gtest_death_test_style = "threadsafe";
  pool_resource pool(pool_options{.block_size = 32, .initial_blocks = 64});
  std::vector<void*> blocks;
  for (int i = 0; i < 50; ++i)
    blocks.push_back(pool.allocate(32, 8));
  // The first freed are spilled from the magazine onto the free list, their link words written.
  for (int i = 0; i < 40; ++i)
    pool.deallocate(blocks[i], 32, 8);
  auto* p = static_cast<volatile unsigned char*>(blocks[0]);
  EXPECT_DEATH((void)p[0], reported);
  EXPECT_DEATH(p[0] = 1, reported);
  EXPECT_DEATH(p[16] = 1, reported);
}

TEST(PoolPoisoningDeathTest, MultipoolUseAfterFreeIsReported) {
  if (!PMRKIT_HAS_ASAN) GTEST_SKIP() << needs_asan;
  testing::FLAGS_gtest_death_test_style = "threadsafe";
  multipool_resource pool;
  auto* small = static_cast<volatile unsigned char*>(pool.allocate(24, 8));
  auto* large = static_cast<volatile unsigned char*>(pool.allocate(3000, 8));
  pool.deallocate(const_cast<unsigned char*>(small), 24, 8);
  pool.deallocate(const_cast<unsigned char*>(large), 3000, 8);
  EXPECT_DEATH(small[0] = 1, reported);
  EXPECT_DEATH((void)small[20], reported);
  EXPECT_DEATH(large[0] = 1, reported);
  EXPECT_DEATH(large[2999] = 1, reported);
}

TEST(PoolPoisoningDeathTest, ConcurrentPoolUseAfterFreeInAThreadCacheIsReported) {
  if (!PMRKIT_HAS_ASAN) GTEST_SKIP() << needs_asan;
  testing::FLAGS_gtest_death_test_style = "threadsafe";
  concurrent_pool_resource pool;
  auto* p = static_cast<volatile unsigned char*>(pool.allocate(64, 8));
  const std::size_t cached = pool.stats().blocks_cached;  // the rest of the batch carved
  pool.deallocate(const_cast<unsigned char*>(p), 64, 8);
  ASSERT_EQ(pool.stats().blocks_cached, cached + 1);
  EXPECT_DEATH(p[0] = 1, reported);  // the cache's link
  EXPECT_DEATH((void)p[8], reported);
  EXPECT_DEATH(p[63] = 1, reported);
}

TEST(PoolPoisoningDeathTest, ConcurrentPoolUseAfterFreeInADepotBatchIsReported) {
  if (!PMRKIT_HAS_ASAN) GTEST_SKIP() << needs_asan;
  testing::FLAGS_gtest_death_test_style = "threadsafe";
  constexpr std::size_t size = 64;
  concurrent_pool_resource pool(concurrent_pool_options{.cache_bytes_per_class = 8 * size});
  std::vector<void*> blocks;
  for (int i = 0; i < 9; ++i)
    blocks.push_back(pool.allocate(size, 8));
  // Three blocks carved but never handed out stay cached; the sixth free finds the cache full
  // and its oldest four go to the depot as a batch, headed by the first freed (whose second
  // word links the batches).
  for (void* p : blocks)
    pool.deallocate(p, size, 8);
  ASSERT_EQ(pool.stats().blocks_in_depot, 4U);
  auto* p = static_cast<volatile unsigned char*>(blocks[0]);
  EXPECT_DEATH(p[0] = 1, reported);
  EXPECT_DEATH((void)p[8], reported);
  EXPECT_DEATH(p[32] = 1, reported);
}

TEST(PoolPoisoningDeathTest, ConcurrentPoolUseAfterFreeBackInTheDepotIsReported) {
  if (!PMRKIT_HAS_ASAN) GTEST_SKIP() << needs_asan;
  testing::FLAGS_gtest_death_test_style = "threadsafe";
  concurrent_pool_resource pool;
  void* block = pool.allocate(64, 8);
  const std::size_t cached = pool.stats().blocks_cached;  // this thread's: the rest of the batch
  // Freed by a thread that exits: its cache goes back to the depot's chunks.
  std::thread([&] { pool.deallocate(block, 64, 8); }).join();
  ASSERT_EQ(pool.stats().thread_caches, 1U);
  ASSERT_EQ(pool.stats().blocks_cached, cached);
  auto* p = static_cast<volatile unsigned char*>(block);
  EXPECT_DEATH(p[0] = 1, reported);
  EXPECT_DEATH((void)p[48], reported);
}

}  // namespace
