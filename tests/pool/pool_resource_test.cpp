#include <pmr/pool/pool_resource.hpp>

#include <pmr/core/poison.hpp>
#include <pmr/testing/exception_test.hpp>
#include <pmr/testing/test_resource.hpp>
#include <pmr/testing/violation_recorder.hpp>

#include "conformance/conformance.hpp"
#include "pool/chunks_shrunk.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <list>
#include <map>
#include <memory_resource>
#include <set>
#include <stdexcept>
#include <type_traits>
#include <vector>

namespace {

using pmrkit::pool_options;
using pmrkit::pool_resource;
using pmrkit::test_resource;

struct pool_traits {
  using resource_type = pool_resource;
  static constexpr std::string_view name = "pmrkit::pool_resource (64 B, forwarding)";
  static constexpr pmrkit::conformance::capabilities caps{};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(pool_options{.block_size = 64, .initial_blocks = 4},
                                           upstream);
  }
  static void release(resource_type& r) { r.release(); }
};

struct rejecting_pool_traits {
  using resource_type = pool_resource;
  static constexpr std::string_view name = "pmrkit::pool_resource (256 B, rejecting)";
  static constexpr pmrkit::conformance::capabilities caps{
      .max_alignment = 16, .max_size = 256, .serves_containers = false};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(
        pool_options{.block_size = 256,
                     .block_alignment = 16,
                     .initial_blocks = 1,
                     .max_blocks_per_chunk = 8,
                     .growth_factor = 3,
                     .on_mismatch = pmrkit::pool_mismatch::reject},
        upstream);
  }
  static void release(resource_type& r) { r.release(); }
};

using pool_types = ::testing::Types<pool_traits, rejecting_pool_traits>;
INSTANTIATE_TYPED_TEST_SUITE_P(pool, resource_conformance, pool_types,
                               pmrkit::conformance::traits_names);

constexpr pmrkit::test_options upstream_options{.name = "upstream"};

// The sizes of the blocks the pool holds from its upstream, oldest first.
std::vector<std::size_t> upstream_blocks(const test_resource& upstream) {
  std::vector<std::size_t> sizes;
  for (const pmrkit::block_info& block : upstream.leaks())
    sizes.push_back(block.size);
  return sizes;
}

TEST(PoolResource, FirstChunkIsTakenOnFirstUse) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  pool_resource pool({.block_size = 32, .initial_blocks = 16}, &upstream);
  EXPECT_EQ(upstream.stats().blocks_in_use, 0U);
  void* p = pool.allocate(32, 8);
  EXPECT_EQ(upstream.stats().blocks_in_use, 1U);
  EXPECT_EQ(pool.stats().capacity_blocks, 16U);
  EXPECT_EQ(pool.stats().chunk_count, 1U);
  pool.deallocate(p, 32, 8);
}

TEST(PoolResource, ChunksGrowGeometricallyUpToTheMaximum) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  pool_resource pool({.block_size = 64, .initial_blocks = 4, .max_blocks_per_chunk = 16},
                     &upstream);
  std::vector<void*> blocks;
  for (int i = 0; i < 4 + 8 + 16 + 16 + 16; ++i)
    blocks.push_back(pool.allocate(64, 16));
  const pmrkit::pool_stats stats = pool.stats();
  EXPECT_EQ(stats.chunk_count, 5U);
  EXPECT_EQ(stats.capacity_blocks, 60U);
  EXPECT_EQ(stats.blocks_in_use, 60U);
  // Each chunk is its blocks plus a small trailer.
  const std::vector<std::size_t> sizes = upstream_blocks(upstream);
  ASSERT_EQ(sizes.size(), 5U);
  const std::size_t expected_blocks[] = {4, 8, 16, 16, 16};
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_GE(sizes[i], expected_blocks[i] * 64);
    EXPECT_LT(sizes[i], expected_blocks[i] * 64 + 128);
  }
  for (void* p : blocks)
    pool.deallocate(p, 64, 16);
}

TEST(PoolResource, GrowthFactorOneKeepsChunksConstant) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  pool_resource pool({.block_size = 16, .initial_blocks = 8, .growth_factor = 1}, &upstream);
  std::vector<void*> blocks;
  for (int i = 0; i < 32; ++i)
    blocks.push_back(pool.allocate(16, 8));
  EXPECT_EQ(pool.stats().chunk_count, 4U);
  for (void* p : blocks)
    pool.deallocate(p, 16, 8);
}

TEST(PoolResource, AFreedBlockIsTheNextOneHandedOut) {
  pool_resource pool({.block_size = 24});
  void* a = pool.allocate(24, 8);
  void* b = pool.allocate(24, 8);
  pool.deallocate(a, 24, 8);
  EXPECT_EQ(pool.allocate(24, 8), a);
  pool.deallocate(b, 24, 8);
  pool.deallocate(a, 24, 8);
}

TEST(PoolResource, AnEmptiedPoolHandsOutBlocksInAddressOrderAgain) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  pool_resource pool({.block_size = 32, .initial_blocks = 8, .max_blocks_per_chunk = 8}, &upstream);
  std::vector<void*> first;
  for (int i = 0; i < 20; ++i)
    first.push_back(pool.allocate(32, 8));
  // Freed in a scrambled order, as a tree's nodes are.
  for (int i : {7, 3, 19, 0, 12, 5, 16, 1, 9, 14, 2, 18, 6, 11, 4, 15, 8, 13, 10, 17})
    pool.deallocate(first[static_cast<std::size_t>(i)], 32, 8);
  std::vector<void*> second;
  for (int i = 0; i < 20; ++i)
    second.push_back(pool.allocate(32, 8));
  EXPECT_EQ(second, first);  // the same blocks, in the same order: chunks are kept
  EXPECT_EQ(upstream.stats().total_blocks, 3U);
  for (void* p : second)
    pool.deallocate(p, 32, 8);
}

TEST(PoolResource, BlocksAreDistinctAlignedAndDoNotOverlap) {
  pool_resource pool({.block_size = 40, .block_alignment = 64, .initial_blocks = 3});
  EXPECT_EQ(pool.stats().block_size, 64U);
  std::set<std::uintptr_t> addresses;
  std::vector<void*> blocks;
  for (int i = 0; i < 100; ++i) {
    void* p = pool.allocate(40, 64);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 64, 0U);
    std::memset(p, i, 40);
    blocks.push_back(p);
    addresses.insert(reinterpret_cast<std::uintptr_t>(p));
  }
  EXPECT_EQ(addresses.size(), 100U);
  for (auto it = std::next(addresses.begin()); it != addresses.end(); ++it)
    EXPECT_GE(*it - *std::prev(it), 64U);
  for (int i = 0; i < 100; ++i)
    EXPECT_EQ(static_cast<unsigned char*>(blocks[i])[39], static_cast<unsigned char>(i));
  for (void* p : blocks)
    pool.deallocate(p, 40, 64);
}

TEST(PoolResource, SmallerRequestsTakeAWholeBlock) {
  pool_resource pool({.block_size = 48});
  void* p = pool.allocate(1, 1);
  EXPECT_TRUE(pool.owns(p));
  EXPECT_EQ(pool.stats().blocks_in_use, 1U);
  pool.deallocate(p, 1, 1);
  EXPECT_EQ(pool.stats().blocks_in_use, 0U);
}

TEST(PoolResource, MismatchedRequestsAreForwardedAndReleased) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  pool_resource pool({.block_size = 32}, &upstream);
  void* large = pool.allocate(1000, 8);
  void* aligned = pool.allocate(16, 256);
  EXPECT_FALSE(pool.owns(large));
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(aligned) % 256, 0U);
  EXPECT_EQ(pool.stats().large_blocks_in_use, 2U);
  EXPECT_EQ(pool.stats().chunk_count, 0U);
  pool.deallocate(large, 1000, 8);
  EXPECT_EQ(pool.stats().large_blocks_in_use, 1U);
  pool.release();  // the remaining forwarded block goes back too
  EXPECT_EQ(upstream.stats().blocks_in_use, 0U);
  EXPECT_TRUE(upstream.errors().empty());
}

TEST(PoolResource, RejectingPoolThrowsAllocationErrorForMismatches) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  pool_resource pool({.block_size = 32, .on_mismatch = pmrkit::pool_mismatch::reject}, &upstream);
  try {
    (void)pool.allocate(33, 8);
    FAIL() << "expected allocation_error";
  } catch (const pmrkit::allocation_error& error) {
    EXPECT_EQ(error.reason(), pmrkit::failure_reason::out_of_capacity);
    EXPECT_EQ(error.requested(), 33U);
  }
  EXPECT_THROW((void)pool.allocate(8, 64), pmrkit::allocation_error);
  EXPECT_EQ(upstream.stats().total_blocks, 0U);
  void* p = pool.allocate(32, 8);  // still usable
  pool.deallocate(p, 32, 8);
}

TEST(PoolResource, ShrinkReturnsOnlyChunksWhoseBlocksAreAllFree) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  pool_resource pool({.block_size = 32, .initial_blocks = 4, .max_blocks_per_chunk = 4}, &upstream);
  std::vector<void*> blocks;
  for (int i = 0; i < 16; ++i)
    blocks.push_back(pool.allocate(32, 8));
  ASSERT_EQ(pool.stats().chunk_count, 4U);
  // Free all of chunks 0 and 2, and half of chunks 1 and 3.
  for (int i : {0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 12, 13})
    pool.deallocate(blocks[i], 32, 8);
  EXPECT_EQ(chunks_shrunk(pool), 2U);
  EXPECT_EQ(pool.stats().chunk_count, 2U);
  EXPECT_EQ(upstream.stats().blocks_in_use, 2U);
  EXPECT_EQ(pool.stats().capacity_blocks, 8U);
  // The blocks still in use are intact and the free ones of the kept chunks serve again.
  for (int i : {6, 7, 14, 15})
    EXPECT_TRUE(pool.owns(blocks[i]));
  std::set<void*> reused;
  for (int i = 0; i < 4; ++i)
    reused.insert(pool.allocate(32, 8));
  EXPECT_EQ(reused, (std::set<void*>{blocks[4], blocks[5], blocks[12], blocks[13]}));
  EXPECT_EQ(pool.stats().chunk_count, 2U);
  for (void* p : reused)
    pool.deallocate(p, 32, 8);
  for (int i : {6, 7, 14, 15})
    pool.deallocate(blocks[i], 32, 8);
  EXPECT_EQ(chunks_shrunk(pool), 2U);
  EXPECT_EQ(upstream.stats().blocks_in_use, 0U);
}

TEST(PoolResource, ShrinkReturnsAPartlyCarvedChunkThatIsFree) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  pool_resource pool({.block_size = 32, .initial_blocks = 64}, &upstream);
  void* p = pool.allocate(32, 8);
  pool.deallocate(p, 32, 8);
  EXPECT_EQ(chunks_shrunk(pool), 1U);
  EXPECT_EQ(upstream.stats().blocks_in_use, 0U);
  p = pool.allocate(32, 8);  // carving starts again in a new chunk
  EXPECT_TRUE(pool.owns(p));
  pool.deallocate(p, 32, 8);
}

TEST(PoolResource, ReleaseReturnsEverythingAndGrowthStartsAgain) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  pool_resource pool({.block_size = 32, .initial_blocks = 2}, &upstream);
  for (int i = 0; i < 20; ++i)
    (void)pool.allocate(32, 8);
  pool.release();
  EXPECT_EQ(upstream.stats().blocks_in_use, 0U);
  EXPECT_EQ(pool.stats().blocks_in_use, 0U);
  (void)pool.allocate(32, 8);
  EXPECT_EQ(pool.stats().capacity_blocks, 2U);
}

TEST(PoolResource, StatsCountBlocksAndPeak) {
  pool_resource pool({.block_size = 16, .initial_blocks = 8});
  std::vector<void*> blocks;
  for (int i = 0; i < 10; ++i)
    blocks.push_back(pool.allocate(16, 8));
  for (int i = 0; i < 6; ++i)
    pool.deallocate(blocks[i], 16, 8);
  const pmrkit::pool_stats stats = pool.stats();
  EXPECT_EQ(stats.blocks_in_use, 4U);
  EXPECT_EQ(stats.peak_blocks_in_use, 10U);
  EXPECT_EQ(stats.capacity_blocks, 24U);
  EXPECT_EQ(stats.chunk_count, 2U);
  EXPECT_GE(stats.bytes_from_upstream, 24U * 16U);
  for (int i = 6; i < 10; ++i)
    pool.deallocate(blocks[i], 16, 8);
}

TEST(PoolResource, UpstreamFailureLeavesThePoolUsable) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  pool_resource pool({.block_size = 32, .initial_blocks = 1, .growth_factor = 1}, &upstream);
  void* first = pool.allocate(32, 8);
  upstream.set_allocation_limit(0);
  try {
    (void)pool.allocate(32, 8);
    FAIL() << "expected allocation_error";
  } catch (const pmrkit::allocation_error& error) {
    EXPECT_EQ(error.reason(), pmrkit::failure_reason::injected_failure);
  }
  EXPECT_EQ(pool.stats().chunk_count, 1U);
  upstream.set_allocation_limit(-1);
  void* second = pool.allocate(32, 8);
  pool.deallocate(second, 32, 8);
  pool.deallocate(first, 32, 8);
}

TEST(PoolResource, ContainersDoNotLeakUnderExceptions) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  const std::size_t runs = pmrkit::exception_test(upstream, [&] {
    pool_resource pool({.block_size = 48, .initial_blocks = 2}, &upstream);
    std::pmr::map<int, int> map(&pool);
    for (int i = 0; i < 40; ++i)
      map.emplace(i, i);
  });
  EXPECT_GT(runs, 4U);
  EXPECT_TRUE(upstream.errors().empty());
}

TEST(PoolResource, InvalidOptionsNameTheField) {
  const auto message_of = [](pool_options options) {
    try {
      pool_resource pool(options);
    } catch (const std::invalid_argument& error) {
      return std::string(error.what());
    }
    return std::string("no exception");
  };
  EXPECT_NE(message_of({}).find("block_size"), std::string::npos);
  EXPECT_NE(message_of({.block_size = 8, .block_alignment = 3}).find("block_alignment"),
            std::string::npos);
  EXPECT_NE(message_of({.block_size = 8, .initial_blocks = 0}).find("initial_blocks"),
            std::string::npos);
  EXPECT_NE(message_of({.block_size = 8, .initial_blocks = 8, .max_blocks_per_chunk = 4})
                .find("max_blocks_per_chunk"),
            std::string::npos);
  EXPECT_NE(message_of({.block_size = 8, .growth_factor = 0}).find("growth_factor"),
            std::string::npos);
  EXPECT_NE(message_of({.block_size = std::size_t{1} << 62}).find("overflows"), std::string::npos);
  EXPECT_THROW(pool_resource({.block_size = 8}, nullptr), std::invalid_argument);
}

// Built the ways every resource is (docs/contract.md): the forms compile, and `{}` means the
// options. block_size has no sensible default, so the forms without one throw
// std::invalid_argument naming it.
TEST(PoolResource, ConstructsTheWaysEveryResourceDoes) {
  using pmrkit::pool_options;
  static_assert(std::is_default_constructible_v<pool_resource>);
  static_assert(std::is_constructible_v<pool_resource, std::pmr::memory_resource*>);
  static_assert(std::is_constructible_v<pool_resource, test_resource*>);
  static_assert(std::is_constructible_v<pool_resource, pool_options>);
  static_assert(std::is_constructible_v<pool_resource, pool_options, test_resource*>);
  static_assert(requires { pool_resource({}); });
  static_assert(requires(std::pmr::memory_resource * upstream) { pool_resource({}, upstream); });
  static_assert(!std::is_copy_constructible_v<pool_resource>);
  static_assert(!std::is_move_constructible_v<pool_resource>);
  static_assert(!std::is_convertible_v<std::pmr::memory_resource*, pool_resource>);
  static_assert(!std::is_convertible_v<pool_options, pool_resource>);
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  std::pmr::memory_resource* base = &upstream;
  const auto names_block_size = [](auto make) {
    try {
      make();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what()) == "pmrkit::pool_resource: block_size must not be 0";
    }
    return false;
  };
  EXPECT_TRUE(names_block_size([] { pool_resource r; }));
  EXPECT_TRUE(names_block_size([&] { pool_resource r(base); }));
  EXPECT_TRUE(names_block_size([&] { pool_resource r(&upstream); }));
  EXPECT_TRUE(names_block_size([] { pool_resource r({}); }));
  EXPECT_TRUE(names_block_size([&] { pool_resource r({}, &upstream); }));
  const pool_options options{.block_size = 8, .name = "eight"};
  pool_resource a(options);
  pool_resource b(options, &upstream);
  pool_resource c({.block_size = 8});
  pool_resource d({.block_size = 8}, base);
  EXPECT_EQ(a.upstream_resource(), std::pmr::get_default_resource());
  EXPECT_EQ(b.upstream_resource(), &upstream);
  EXPECT_EQ(b.name(), "eight");
  EXPECT_EQ(c.name(), "pool");
  EXPECT_EQ(d.upstream_resource(), &upstream);
  d.deallocate(d.allocate(8), 8);
}

TEST(PoolResource, DoubleFreeIsAViolation) {
  if (!PMRKIT_CHECKED) GTEST_SKIP() << "violations are reported in checked builds";
  pmrkit::violation_recorder recorder;
  pool_resource pool({.block_size = 32, .name = "nodes"});
  void* p = pool.allocate(32, 8);
  void* q = pool.allocate(32, 8);
  pool.deallocate(p, 32, 8);
  pool.deallocate(p, 32, 8);
  ASSERT_EQ(recorder.count(pmrkit::violation_kind::double_free), 1U);
  EXPECT_EQ(recorder.violations()[0].resource_name, "nodes");
  EXPECT_EQ(recorder.violations()[0].pointer, p);
  // The free list is intact: p comes back once.
  void* again = pool.allocate(32, 8);
  EXPECT_EQ(again, p);
  EXPECT_NE(pool.allocate(32, 8), p);
  (void)q;
}

TEST(PoolResource, ForeignPointersAreViolations) {
  if (!PMRKIT_CHECKED) GTEST_SKIP() << "violations are reported in checked builds";
  pmrkit::violation_recorder recorder;
  pool_resource pool({.block_size = 32});
  void* p = pool.allocate(32, 8);
  alignas(16) std::byte elsewhere[32];
  pool.deallocate(elsewhere, 32, 8);
  pool.deallocate(static_cast<std::byte*>(p) + 8, 32, 8);  // inside a block, not its start
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::foreign_pointer), 2U);
  EXPECT_EQ(pool.stats().blocks_in_use, 1U);
  // One of its blocks freed with a size that routes it upstream.
  pool.deallocate(p, 64, 8);
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::size_mismatch), 1U);
  pool.deallocate(p, 32, 8);
}

TEST(PoolResource, FreeBlocksArePoisonedInCheckedBuilds) {
  if (!PMRKIT_CHECKED || PMRKIT_HAS_ASAN) GTEST_SKIP() << "checked builds without ASan";
  pool_resource pool({.block_size = 64});
  auto* p = static_cast<unsigned char*>(pool.allocate(64, 8));
  std::memset(p, 0, 64);
  pool.deallocate(p, 64, 8);
  EXPECT_EQ(p[8], pmrkit::detail::retired_fill);
  EXPECT_EQ(p[63], pmrkit::detail::retired_fill);
}

TEST(PoolResourceDeathTest, UseAfterFreeIsCaughtByAddressSanitizer) {
  if (!PMRKIT_CHECKED || !PMRKIT_HAS_ASAN) {
    GTEST_SKIP() << "needs a checked build under AddressSanitizer (the asan preset)";
  }
  pool_resource pool({.block_size = 64});
  auto* p = static_cast<volatile unsigned char*>(pool.allocate(64, 8));
  pool.deallocate(const_cast<unsigned char*>(p), 64, 8);
  EXPECT_DEATH(p[32] = 1, "use-after-poison");
}

TEST(PoolResource, ServesStdContainers) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  {
    pool_resource pool({.block_size = 64}, &upstream);
    std::pmr::list<int> list(&pool);
    std::pmr::map<int, int> map(&pool);
    for (int i = 0; i < 1000; ++i) {
      list.push_back(i);
      map.emplace(i, i);
    }
    std::pmr::vector<int> vector(&pool);  // forwarded once it grows past a block
    vector.resize(500);
    EXPECT_EQ(map.size(), 1000U);
    EXPECT_GT(pool.stats().blocks_in_use, 2000U - 1);
  }
  EXPECT_EQ(upstream.stats().blocks_in_use, 0U);
  EXPECT_TRUE(upstream.errors().empty());
}

}  // namespace
