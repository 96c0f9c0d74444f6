#include <pmr/pool/multipool_resource.hpp>

#include <pmr/testing/exception_test.hpp>
#include <pmr/testing/test_resource.hpp>
#include <pmr/testing/violation_recorder.hpp>

#include "conformance/conformance.hpp"
#include "pool/chunks_shrunk.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory_resource>
#include <string>
#include <type_traits>
#include <vector>

namespace {

using pmrkit::multipool_resource;
using pmrkit::test_resource;
namespace size_classes = pmrkit::detail::size_classes;

struct multipool_traits {
  using resource_type = multipool_resource;
  static constexpr std::string_view name = "pmrkit::multipool_resource";
  static constexpr pmrkit::conformance::capabilities caps{};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(upstream);
  }
  static void release(resource_type& r) { r.release(); }
};

struct small_multipool_traits {
  using resource_type = multipool_resource;
  static constexpr std::string_view name = "pmrkit::multipool_resource (256 B, 4 blocks)";
  static constexpr pmrkit::conformance::capabilities caps{};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(
        std::pmr::pool_options{.max_blocks_per_chunk = 4, .largest_required_pool_block = 256},
        upstream);
  }
  static void release(resource_type& r) { r.release(); }
};

using multipool_types = ::testing::Types<multipool_traits, small_multipool_traits>;
INSTANTIATE_TYPED_TEST_SUITE_P(multipool, resource_conformance, multipool_types,
                               pmrkit::conformance::traits_names);

constexpr pmrkit::test_options upstream_options{.name = "upstream"};

TEST(MultipoolResource, OptionsFollowTheStandardsMeaning) {
  multipool_resource defaults;
  EXPECT_EQ(defaults.options().largest_required_pool_block, 65536U);
  EXPECT_EQ(defaults.options().max_blocks_per_chunk, 1024U);
  multipool_resource rounded(
      std::pmr::pool_options{.max_blocks_per_chunk = 16, .largest_required_pool_block = 1000});
  EXPECT_EQ(rounded.options().largest_required_pool_block, 1024U);  // up to a class
  EXPECT_EQ(rounded.options().max_blocks_per_chunk, 16U);
  multipool_resource clamped(std::pmr::pool_options{.max_blocks_per_chunk = 1'000'000,
                                                    .largest_required_pool_block = 1U << 30});
  EXPECT_EQ(clamped.options().largest_required_pool_block, std::size_t{1} << 20);
  EXPECT_EQ(clamped.options().max_blocks_per_chunk, 1024U);
  EXPECT_THROW(multipool_resource(pmrkit::multipool_options{}, nullptr), std::invalid_argument);
}

TEST(MultipoolResource, RequestsGoToTheirSizeClass) {
  multipool_resource pools;
  void* p = pools.allocate(100, 8);
  const std::size_t index = size_classes::index_of(100);
  EXPECT_EQ(pools.class_stats(index).block_size, 112U);
  EXPECT_EQ(pools.class_stats(index).blocks_in_use, 1U);
  EXPECT_EQ(pools.stats().bytes_in_use, 112U);
  void* q = pools.allocate(112, 16);
  EXPECT_EQ(pools.class_stats(index).blocks_in_use, 2U);
  pools.deallocate(p, 100, 8);
  EXPECT_EQ(pools.allocate(97, 4), p);  // same class: the freed block comes back
  pools.deallocate(p, 97, 4);
  pools.deallocate(q, 112, 16);
  EXPECT_EQ(pools.stats().blocks_in_use, 0U);
}

TEST(MultipoolResource, AlignedRequestsArePooledAtTheirAlignment) {
  multipool_resource pools;
  for (std::size_t alignment = 32; alignment <= 4096; alignment *= 2) {
    void* p = pools.allocate(40, alignment);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % alignment, 0U) << alignment;
    EXPECT_TRUE(pools.owns(p));
    pools.deallocate(p, 40, alignment);
  }
  void* huge_alignment = pools.allocate(40, 8192);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(huge_alignment) % 8192, 0U);
  EXPECT_EQ(pools.stats().large_blocks_in_use, 1U);
  pools.deallocate(huge_alignment, 40, 8192);
  EXPECT_EQ(pools.stats().large_blocks_in_use, 0U);
}

TEST(MultipoolResource, LargeRequestsAreTrackedAndReleased) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  multipool_resource pools(std::pmr::pool_options{.largest_required_pool_block = 1024}, &upstream);
  (void)pools.allocate(16, 8);  // the class table and a chunk of the first class
  const std::size_t table = upstream.stats().blocks_in_use;
  std::vector<void*> large;
  for (std::size_t i = 0; i < 10; ++i)
    large.push_back(pools.allocate(2000 + i, 8));
  EXPECT_EQ(pools.stats().large_blocks_in_use, 10U);
  EXPECT_EQ(pools.stats().large_bytes_in_use, 10 * 2000U + 45);
  EXPECT_FALSE(pools.owns(large[0]));
  pools.deallocate(large[3], 2003, 8);
  pools.deallocate(large[0], 2000, 8);
  pools.deallocate(large[9], 2009, 8);
  EXPECT_EQ(upstream.stats().blocks_in_use, table + 7);
  pools.release();
  EXPECT_EQ(upstream.stats().blocks_in_use, 0U);
  EXPECT_TRUE(upstream.errors().empty());
}

TEST(MultipoolResource, MixedWorkloadWastesLittle) {
  // Log-uniform sizes over 16..4096, as in the benchmark's mixed workload.
  multipool_resource pools;
  std::vector<std::pair<void*, std::size_t>> blocks;
  std::size_t requested = 0;
  std::uint64_t state = 42;
  for (int i = 0; i < 4096; ++i) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    const std::size_t low = std::size_t{16} << ((state >> 33) % 8);
    const std::size_t bytes = low + (state >> 40) % (low + 1);
    blocks.emplace_back(pools.allocate(bytes, 8), bytes);
    requested += bytes;
  }
  const pmrkit::multipool_stats stats = pools.stats();
  EXPECT_LE(static_cast<double>(stats.bytes_in_use), 1.15 * static_cast<double>(requested));
  for (auto [p, bytes] : blocks)
    pools.deallocate(p, bytes, 8);
}

TEST(MultipoolResource, ChunksStartSmallAndGrow) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  multipool_resource pools(&upstream);
  std::vector<void*> blocks;
  for (int i = 0; i < 1000; ++i)
    blocks.push_back(pools.allocate(64, 8));
  const auto stats = pools.class_stats(size_classes::index_of(64));
  EXPECT_EQ(stats.capacity_blocks, 64U + 128 + 256 + 512 + 1024);  // 4 KiB, doubling
  EXPECT_EQ(stats.chunk_count, 5U);
  for (void* p : blocks)
    pools.deallocate(p, 64, 8);
  EXPECT_EQ(chunks_shrunk(pools), 5U);
  // Every chunk went back: the class table alone is left, until release().
  EXPECT_EQ(pools.stats().chunk_count, 0U);
  EXPECT_EQ(pools.stats().bytes_from_upstream, upstream.bytes_in_use());
  EXPECT_EQ(upstream.blocks_in_use(), 1U);
  pools.release();
  EXPECT_EQ(pools.stats().bytes_from_upstream, 0U);
}

TEST(MultipoolResource, ReleaseReturnsEverything) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  {
    multipool_resource pools(&upstream);
    std::pmr::map<int, std::pmr::string> map(&pools);
    for (int i = 0; i < 500; ++i)
      map.emplace(i, std::pmr::string(static_cast<std::size_t>(i), 'x'));
    (void)pools.allocate(100000, 8);
    EXPECT_GT(upstream.stats().blocks_in_use, 10U);
    pools.release();
    EXPECT_EQ(upstream.stats().blocks_in_use, 0U);
    EXPECT_EQ(pools.stats().bytes_from_upstream, 0U);
    // Release means everything is free: map's blocks are gone, so it must not free them.
    new (&map) std::pmr::map<int, std::pmr::string>(&pools);
  }
  EXPECT_EQ(upstream.stats().blocks_in_use, 0U);
  EXPECT_TRUE(upstream.errors().empty());
}

TEST(MultipoolResource, ContainersDoNotLeakUnderExceptions) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  const std::size_t runs = pmrkit::exception_test(upstream, [&] {
    multipool_resource pools(std::pmr::pool_options{.largest_required_pool_block = 512}, &upstream);
    std::pmr::map<int, std::pmr::string> map(&pools);
    for (int i = 0; i < 100; ++i)
      map.emplace(i, std::pmr::string(static_cast<std::size_t>(i * 10), 'y'));
  });
  EXPECT_GT(runs, 10U);
  EXPECT_TRUE(upstream.errors().empty());
}

// The same code works over the standard pool and over multipool_resource.
template <class Pool>
std::size_t build_and_count() {
  Pool pool(std::pmr::pool_options{.max_blocks_per_chunk = 32, .largest_required_pool_block = 512},
            std::pmr::new_delete_resource());
  std::size_t total = 0;
  {
    std::pmr::map<int, std::pmr::vector<int>> map(&pool);
    for (int i = 0; i < 200; ++i)
      map[i % 50].push_back(i);
    for (const auto& [key, values] : map)
      total += values.size();
  }
  pool.release();
  return total;
}

// Built the ways every resource is (docs/contract.md), `{}` meaning multipool_options, and
// the standard's (pool_options, upstream) form not explicit, as the standard's is not.
TEST(MultipoolResource, ConstructsTheWaysEveryResourceDoes) {
  using pmrkit::multipool_options;
  static_assert(std::is_default_constructible_v<multipool_resource>);
  static_assert(std::is_constructible_v<multipool_resource, test_resource*>);
  static_assert(std::is_constructible_v<multipool_resource, multipool_options>);
  static_assert(std::is_constructible_v<multipool_resource, multipool_options, test_resource*>);
  static_assert(std::is_constructible_v<multipool_resource, std::pmr::pool_options>);
  static_assert(requires { multipool_resource({}); });
  static_assert(
      requires(std::pmr::memory_resource * upstream) { multipool_resource({}, upstream); });
  static_assert(!std::is_copy_constructible_v<multipool_resource>);
  static_assert(!std::is_move_constructible_v<multipool_resource>);
  static_assert(!std::is_convertible_v<std::pmr::memory_resource*, multipool_resource>);
  static_assert(!std::is_convertible_v<std::pmr::pool_options, multipool_resource>);
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  std::pmr::memory_resource* base = &upstream;
  multipool_resource a;
  multipool_resource b(base);
  multipool_resource c(multipool_options{.largest_required_pool_block = 256});
  multipool_resource d(multipool_options{.name = "d"}, &upstream);
  multipool_resource e({});
  multipool_resource f({}, &upstream);
  multipool_resource g({.largest_required_pool_block = 512, .name = "g"}, base);
  const std::pmr::pool_options standard{.max_blocks_per_chunk = 8,
                                        .largest_required_pool_block = 1024};
  multipool_resource h(standard);
  multipool_resource i(standard, &upstream);
  multipool_resource j = {standard, &upstream};
  std::pmr::unsynchronized_pool_resource k = {standard, &upstream};  // the same spelling
  EXPECT_EQ(a.upstream_resource(), std::pmr::get_default_resource());
  EXPECT_EQ(b.upstream_resource(), &upstream);
  EXPECT_EQ(c.options().largest_required_pool_block, 256U);
  EXPECT_EQ(d.name(), "d");
  EXPECT_EQ(e.upstream_resource(), std::pmr::get_default_resource());
  EXPECT_EQ(e.name(), "multipool");
  EXPECT_EQ(f.upstream_resource(), &upstream);
  EXPECT_EQ(g.options().largest_required_pool_block, 512U);
  EXPECT_EQ(h.options().max_blocks_per_chunk, 8U);
  EXPECT_EQ(i.upstream_resource(), &upstream);
  EXPECT_EQ(j.options().largest_required_pool_block, k.options().largest_required_pool_block);
  j.deallocate(j.allocate(100), 100);
}

TEST(MultipoolResource, IsADropInForTheUnsynchronizedPool) {
  EXPECT_EQ(build_and_count<multipool_resource>(),
            build_and_count<std::pmr::unsynchronized_pool_resource>());
}

TEST(MultipoolResource, MisuseIsReportedInCheckedBuilds) {
  if (!PMRKIT_CHECKED) GTEST_SKIP() << "violations are reported in checked builds";
  pmrkit::violation_recorder recorder;
  multipool_resource pools(pmrkit::multipool_options{.name = "messages"});
  void* p = pools.allocate(100, 8);
  pools.deallocate(p, 100, 8);
  pools.deallocate(p, 100, 8);
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::double_free), 1U);
  void* q = pools.allocate(100, 8);
  pools.deallocate(q, 300, 8);  // another class
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::size_mismatch), 1U);
  alignas(16) std::byte elsewhere[64];
  pools.deallocate(elsewhere, 64, 8);
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::foreign_pointer), 1U);
  void* large = pools.allocate(1 << 20, 8);
  pools.deallocate(large, (1 << 20) + 1, 8);
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::size_mismatch), 2U);
  ASSERT_FALSE(recorder.empty());
  EXPECT_EQ(recorder.violations()[0].resource_name, "messages");
  pools.deallocate(large, 1 << 20, 8);
  pools.deallocate(q, 100, 8);
}

}  // namespace
