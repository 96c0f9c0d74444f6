#include <pmr/decorator/fallback_resource.hpp>

#include <pmr/arena/arena_resource.hpp>
#include <pmr/arena/chunked_arena_resource.hpp>
#include <pmr/arena/stack_resource.hpp>
#include <pmr/arena/vmem_arena_resource.hpp>
#include <pmr/buddy/buddy_resource.hpp>
#include <pmr/core/error.hpp>
#include <pmr/core/literals.hpp>
#include <pmr/decorator/budget_resource.hpp>
#include <pmr/pool/concurrent_pool_resource.hpp>
#include <pmr/pool/multipool_resource.hpp>
#include <pmr/pool/pool_resource.hpp>
#include <pmr/testing/test_resource.hpp>

#include "conformance/conformance.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using namespace pmrkit::literals;
using pmrkit::fallback_resource;
using pmrkit::pool_resource;
using pmrkit::test_resource;

static_assert(pmrkit::owning_resource<pool_resource>);
static_assert(pmrkit::owning_resource<pmrkit::multipool_resource>);
static_assert(pmrkit::owning_resource<pmrkit::concurrent_pool_resource>);
static_assert(pmrkit::owning_resource<pmrkit::chunked_arena_resource>);
static_assert(pmrkit::owning_resource<pmrkit::stack_resource>);
static_assert(pmrkit::owning_resource<pmrkit::vmem_arena_resource>);
static_assert(pmrkit::owning_resource<pmrkit::buddy_resource>);
static_assert(pmrkit::owning_resource<pmrkit::arena_resource>);  // the port, through virtuals
static_assert(!pmrkit::owning_resource<test_resource>);          // owns() may throw: it locks
static_assert(!pmrkit::owning_resource<pmrkit::budget_resource>);
static_assert(!pmrkit::owning_resource<std::pmr::memory_resource>);

constexpr pmrkit::test_options primary_upstream_options{.name = "primary upstream"};
constexpr pmrkit::test_options secondary_options{.name = "secondary"};

/// The pool-with-overflow configuration: a pool of 64-byte blocks that
/// rejects other requests, whose chunks are capped by a budget, over a
/// test_resource of its own; the suite's upstream is the secondary. So both
/// sides serve the suite's requests: other sizes and everything once the
/// pool is full go to the secondary.
class pool_with_fallback final : public std::pmr::memory_resource {
 public:
  explicit pool_with_fallback(std::pmr::memory_resource* secondary)
      : primary_upstream_(primary_upstream_options, std::pmr::new_delete_resource()),
        chunk_budget_({.limit = 8_KiB, .name = "chunk budget"}, &primary_upstream_),
        pool_(
            {.block_size = 64, .initial_blocks = 16, .on_mismatch = pmrkit::pool_mismatch::reject},
            &chunk_budget_),
        fallback_(&pool_, {}, secondary) {}

  [[nodiscard]] std::vector<pmrkit::violation> primary_errors() const {
    return primary_upstream_.errors();
  }

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    return fallback_.allocate(bytes, alignment);
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    fallback_.deallocate(p, bytes, alignment);
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  test_resource primary_upstream_;
  pmrkit::budget_resource chunk_budget_;
  pool_resource pool_;
  fallback_resource<pool_resource> fallback_;
};

struct fallback_traits {
  using resource_type = pool_with_fallback;
  static constexpr std::string_view name = "pmrkit::fallback_resource<pmrkit::pool_resource>";
  static constexpr pmrkit::conformance::capabilities caps{.releases_on_destruction = false};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(upstream);
  }
  static std::vector<pmrkit::violation> recorded_errors(const resource_type& r) {
    return r.primary_errors();
  }
};

using fallback_types = ::testing::Types<fallback_traits>;
INSTANTIATE_TYPED_TEST_SUITE_P(fallback, resource_conformance, fallback_types,
                               pmrkit::conformance::traits_names);

TEST(FallbackResource, TheSecondaryTakesTheOverflowWhenThePrimaryRunsOut) {
  test_resource primary_upstream(primary_upstream_options, std::pmr::new_delete_resource());
  test_resource secondary(secondary_options, std::pmr::new_delete_resource());
  {
    // One chunk of 64 blocks fits the budget, a second does not: the pool is full at 64.
    pmrkit::budget_resource chunk_budget({.limit = 3_KiB}, &primary_upstream);
    pool_resource pool({.block_size = 32,
                        .initial_blocks = 64,
                        .growth_factor = 1,
                        .on_mismatch = pmrkit::pool_mismatch::reject},
                       &chunk_budget);
    fallback_resource overflow(&pool, {.name = "overflow"}, &secondary);
    static_assert(std::is_same_v<decltype(overflow), fallback_resource<pool_resource>>);

    std::vector<void*> blocks;
    for (int i = 0; i < 100; ++i)
      blocks.push_back(overflow.allocate(32));
    EXPECT_EQ(pool.stats().capacity_blocks, 64U);
    EXPECT_EQ(pool.stats().blocks_in_use, 64U);
    EXPECT_EQ(secondary.blocks_in_use(), 36U);
    for (std::size_t i = 0; i < blocks.size(); ++i)
      EXPECT_EQ(pool.owns(blocks[i]), i < 64) << i;
    pmrkit::fallback_stats stats = overflow.stats();
    EXPECT_EQ(stats.fallbacks, 36U);
    EXPECT_EQ(stats.secondary_blocks_in_use, 36U);
    EXPECT_EQ(stats.secondary_bytes_in_use, 36U * 32);

    // Freed in an order that mixes both sides; each block goes back where it came from.
    for (std::size_t i = 0; i < blocks.size(); i += 2)
      overflow.deallocate(blocks[i], 32);
    EXPECT_EQ(pool.stats().blocks_in_use, 32U);
    EXPECT_EQ(secondary.blocks_in_use(), 18U);
    // Room in the pool again: the next requests are the primary's.
    void* again = overflow.allocate(32);
    EXPECT_TRUE(pool.owns(again));
    overflow.deallocate(again, 32);
    for (std::size_t i = 1; i < blocks.size(); i += 2)
      overflow.deallocate(blocks[i], 32);
    stats = overflow.stats();
    EXPECT_EQ(stats.fallbacks, 36U);
    EXPECT_EQ(stats.secondary_blocks_in_use, 0U);
    EXPECT_EQ(stats.secondary_bytes_in_use, 0U);
    EXPECT_EQ(pool.stats().blocks_in_use, 0U);
  }
  EXPECT_TRUE(pmrkit::conformance::upstream_is_clean(secondary));
  EXPECT_TRUE(pmrkit::conformance::upstream_is_clean(primary_upstream));
}

TEST(FallbackResource, RequestsThePrimaryRefusesGoToTheSecondary) {
  test_resource secondary(secondary_options, std::pmr::new_delete_resource());
  pool_resource pool({.block_size = 32, .on_mismatch = pmrkit::pool_mismatch::reject});
  fallback_resource any_size(&pool, {}, &secondary);
  void* small = any_size.allocate(24, 8);
  void* large = any_size.allocate(1000, 8);
  void* aligned = any_size.allocate(16, 64);  // beyond the pool's block alignment
  EXPECT_TRUE(pool.owns(small));
  EXPECT_TRUE(secondary.owns(large));
  EXPECT_TRUE(secondary.owns(aligned));
  EXPECT_EQ(any_size.stats().fallbacks, 2U);
  any_size.deallocate(aligned, 16, 64);
  any_size.deallocate(large, 1000, 8);
  any_size.deallocate(small, 24, 8);
  EXPECT_EQ(pool.stats().blocks_in_use, 0U);
  EXPECT_TRUE(pmrkit::conformance::upstream_is_clean(secondary));
}

TEST(FallbackResource, AnArenaPrimaryOverflowsToo) {
  test_resource primary_upstream(primary_upstream_options, std::pmr::new_delete_resource());
  test_resource secondary(secondary_options, std::pmr::new_delete_resource());
  {
    pmrkit::budget_resource arena_budget({.limit = 16_KiB}, &primary_upstream);
    pmrkit::chunked_arena_resource arena({}, &arena_budget);
    // Through the arena port: owns() is virtual there.
    fallback_resource<pmrkit::arena_resource> overflow(&arena, {}, &secondary);
    std::vector<std::pair<void*, std::size_t>> blocks;
    for (std::size_t i = 0; i < 200; ++i) {
      const std::size_t bytes = 64 + i * 8;
      blocks.emplace_back(overflow.allocate(bytes), bytes);
    }
    EXPECT_GT(overflow.stats().fallbacks, 0U);
    EXPECT_EQ(overflow.stats().secondary_blocks_in_use, secondary.blocks_in_use());
    for (const auto& [p, bytes] : blocks)
      EXPECT_NE(arena.owns(p), secondary.owns(p));
    for (const auto& [p, bytes] : blocks)
      overflow.deallocate(p, bytes);
    EXPECT_EQ(overflow.stats().secondary_blocks_in_use, 0U);
  }
  EXPECT_TRUE(pmrkit::conformance::upstream_is_clean(secondary));
  EXPECT_TRUE(pmrkit::conformance::upstream_is_clean(primary_upstream));
}

// The typical primary of fixed capacity: a buddy over a buffer, taking nothing from its upstream
// but its metadata.
TEST(FallbackResource, ABuddyOverABufferOverflowsToTheSecondary) {
  alignas(4096) static std::byte storage[4096];
  test_resource metadata(primary_upstream_options, std::pmr::new_delete_resource());
  test_resource secondary(secondary_options, std::pmr::new_delete_resource());
  {
    pmrkit::buddy_resource buddy(storage, {.region_size = 4096, .min_block = 64, .max_regions = 0},
                                 &metadata);
    fallback_resource overflow(&buddy, {}, &secondary);
    std::vector<void*> blocks;
    for (int i = 0; i < 100; ++i)
      blocks.push_back(overflow.allocate(100));  // 128-byte blocks: 32 fit in the buffer
    EXPECT_EQ(buddy.stats().blocks_in_use, 32U);
    EXPECT_EQ(overflow.stats().fallbacks, 68U);
    EXPECT_EQ(secondary.blocks_in_use(), 68U);
    for (void* p : blocks)
      overflow.deallocate(p, 100);
    EXPECT_EQ(buddy.stats().largest_free_block, 4096U);  // everything merged back
    EXPECT_EQ(overflow.stats().secondary_blocks_in_use, 0U);
  }
  EXPECT_TRUE(pmrkit::conformance::upstream_is_clean(secondary));
  EXPECT_TRUE(pmrkit::conformance::upstream_is_clean(metadata));
}

TEST(FallbackResource, TheSecondarysFailureReachesTheCaller) {
  pool_resource pool({.block_size = 32, .on_mismatch = pmrkit::pool_mismatch::reject});
  fallback_resource overflow(&pool, {.name = "overflow"}, std::pmr::null_memory_resource());
  try {
    (void)overflow.allocate(100);
    ADD_FAILURE() << "null_memory_resource did not fail";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::upstream_failed);
    EXPECT_EQ(e.resource_name(), "overflow");
  }
  try {
    (void)overflow.allocate(16, 24);
    ADD_FAILURE() << "alignment 24 was accepted";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::bad_alignment);
  }
  EXPECT_EQ(overflow.stats().fallbacks, 0U);
  void* p = overflow.allocate(32);
  overflow.deallocate(p, 32);
}

TEST(FallbackResource, NullResourcesAreInvalidArguments) {
  pool_resource pool({.block_size = 32});
  try {
    fallback_resource<pool_resource> overflow(nullptr);
    ADD_FAILURE() << "a null primary was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), "pmrkit::fallback_resource: primary must not be null");
  }
  try {
    fallback_resource overflow(&pool, {}, nullptr);
    ADD_FAILURE() << "a null secondary was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), "pmrkit::fallback_resource: secondary must not be null");
  }
  fallback_resource overflow(&pool, {});
  EXPECT_EQ(overflow.primary_resource(), &pool);
  EXPECT_EQ(overflow.secondary_resource(), std::pmr::get_default_resource());
  EXPECT_EQ(overflow.name(), "fallback");
}

}  // namespace
