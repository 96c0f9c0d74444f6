// Every resource is constructed the obvious ways (docs/contract.md): `T r;`,
// `T r(upstream)`, `T r(options)`, `T r(options, upstream)`, `T r({})` and
// `T r({}, upstream)`, with what a class needs first (size_router's small
// side, fallback's primary, the buddy's buffer, test_resource's name) before
// the same forms. `{}` must mean the default options, never a null upstream
// or the deleted copy constructor. The drop-in pools also take
// `(std::pmr::pool_options, upstream)`, not explicit, as the standard's.
#include <pmr/arena/chunked_arena_resource.hpp>
#include <pmr/arena/concurrent_arena_resource.hpp>
#include <pmr/arena/local_arena.hpp>
#include <pmr/arena/stack_resource.hpp>
#include <pmr/arena/vmem_arena_resource.hpp>
#include <pmr/buddy/buddy_resource.hpp>
#include <pmr/decorator/budget_resource.hpp>
#include <pmr/decorator/fallback_resource.hpp>
#include <pmr/decorator/guarded_resource.hpp>
#include <pmr/decorator/pressure_resource.hpp>
#include <pmr/decorator/size_router_resource.hpp>
#include <pmr/decorator/statistics_resource.hpp>
#include <pmr/decorator/synchronized_resource.hpp>
#include <pmr/decorator/trace_resource.hpp>
#include <pmr/pool/concurrent_pool_resource.hpp>
#include <pmr/pool/multipool_resource.hpp>
#include <pmr/pool/object_pool.hpp>
#include <pmr/pool/pool_resource.hpp>
#include <pmr/region/locked_page_resource.hpp>
#include <pmr/region/page_resource.hpp>
#include <pmr/region/region_resource.hpp>
#include <pmr/testing/test_resource.hpp>

#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <memory_resource>
#include <span>
#include <stdexcept>
#include <type_traits>

namespace {

using pmrkit::test_resource;

template <class T, class Options>
constexpr bool constructible_the_six_ways =
    std::is_default_constructible_v<T>&& std::is_constructible_v<T, std::pmr::memory_resource*>&&
        std::is_constructible_v<T, test_resource*>&& std::is_constructible_v<T, Options>&&
            std::is_constructible_v<T, Options, std::pmr::memory_resource*>&&
                std::is_constructible_v<T, Options, test_resource*> &&
    !std::is_copy_constructible_v<T> && !std::is_move_constructible_v<T>;

static_assert(
    constructible_the_six_ways<pmrkit::chunked_arena_resource, pmrkit::chunked_arena_options>);
static_assert(constructible_the_six_ways<pmrkit::local_arena<512>, pmrkit::chunked_arena_options>);
static_assert(constructible_the_six_ways<pmrkit::concurrent_arena_resource,
                                         pmrkit::concurrent_arena_options>);
static_assert(constructible_the_six_ways<pmrkit::stack_resource, pmrkit::stack_options>);
static_assert(constructible_the_six_ways<pmrkit::vmem_arena_resource, pmrkit::vmem_arena_options>);
static_assert(constructible_the_six_ways<pmrkit::pool_resource, pmrkit::pool_options>);
static_assert(constructible_the_six_ways<pmrkit::multipool_resource, pmrkit::multipool_options>);
static_assert(
    constructible_the_six_ways<pmrkit::concurrent_pool_resource, pmrkit::concurrent_pool_options>);
static_assert(constructible_the_six_ways<pmrkit::buddy_resource, pmrkit::buddy_options>);
static_assert(constructible_the_six_ways<pmrkit::test_resource, pmrkit::test_options>);
static_assert(constructible_the_six_ways<pmrkit::budget_resource, pmrkit::budget_options>);
static_assert(constructible_the_six_ways<pmrkit::statistics_resource, pmrkit::statistics_options>);
static_assert(
    constructible_the_six_ways<pmrkit::synchronized_resource, pmrkit::synchronized_options>);
static_assert(constructible_the_six_ways<pmrkit::pressure_resource, pmrkit::pressure_options>);
static_assert(constructible_the_six_ways<pmrkit::trace_resource, pmrkit::trace_options>);
static_assert(
    constructible_the_six_ways<pmrkit::locked_page_resource, pmrkit::locked_page_options>);
static_assert(constructible_the_six_ways<pmrkit::region_resource, pmrkit::region_options>);
static_assert(constructible_the_six_ways<pmrkit::guarded_resource, pmrkit::guarded_options>);
// page_resource has no upstream (the OS is its memory): `T r;`, `T r(options)`, `T r({})`.
static_assert(std::is_default_constructible_v<pmrkit::page_resource> &&
              std::is_constructible_v<pmrkit::page_resource, pmrkit::page_options> &&
              !std::is_constructible_v<pmrkit::page_resource, std::pmr::memory_resource*> &&
              !std::is_copy_constructible_v<pmrkit::page_resource> &&
              !std::is_move_constructible_v<pmrkit::page_resource>);

// The drop-ins take the standard's options, and that constructor is not explicit.
static_assert(std::is_convertible_v<std::pmr::pool_options, pmrkit::multipool_resource> == false);
static_assert(std::is_constructible_v<pmrkit::multipool_resource, std::pmr::pool_options>);
static_assert(std::is_constructible_v<pmrkit::concurrent_pool_resource, std::pmr::pool_options>);

// The forms with `{}` are not type traits: each is written out below.
template <class T>
void expect_upstream(const T& resource, std::pmr::memory_resource* upstream) {
  EXPECT_EQ(resource.upstream_resource(), upstream);
}

/// The six forms of a resource whose default options are valid: each
/// constructs, and the upstream is the one given or the class's default
/// (the default resource, but the null resource for the vmem arena's overflow).
template <class T, class Options>
void expect_the_six_ways(const Options& options, std::pmr::memory_resource* default_upstream =
                                                     std::pmr::get_default_resource()) {
  test_resource upstream("upstream");
  {
    T a;
    T b(&upstream);
    T c(options);
    T d(options, &upstream);
    T e({});
    T f({}, &upstream);
    EXPECT_EQ(a.upstream_resource(), default_upstream);
    EXPECT_EQ(b.upstream_resource(), &upstream);
    EXPECT_EQ(c.upstream_resource(), default_upstream);
    EXPECT_EQ(d.upstream_resource(), &upstream);
    EXPECT_EQ(e.upstream_resource(), default_upstream);
    EXPECT_EQ(f.upstream_resource(), &upstream);
  }
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
}

TEST(Construction, ChunkedArenaTheSixWays) {
  expect_the_six_ways<pmrkit::chunked_arena_resource>(
      pmrkit::chunked_arena_options{.initial_chunk_size = 1024});
}

TEST(Construction, ConcurrentArenaTheSixWays) {
  expect_the_six_ways<pmrkit::concurrent_arena_resource>(
      pmrkit::concurrent_arena_options{.initial_chunk_size = 1024});
}

TEST(Construction, LocalArenaTheSixWays) {
  expect_the_six_ways<pmrkit::local_arena<512>>(
      pmrkit::chunked_arena_options{.initial_chunk_size = 1024});
}

TEST(Construction, StackTheSixWays) {
  expect_the_six_ways<pmrkit::stack_resource>(pmrkit::stack_options{.initial_chunk_size = 1024});
}

TEST(Construction, VmemArenaTheSixWays) {
  if (!pmrkit::vmem_arena_resource::available()) GTEST_SKIP() << "no virtual memory here";
  expect_the_six_ways<pmrkit::vmem_arena_resource>(pmrkit::vmem_arena_options{},
                                                   std::pmr::null_memory_resource());
}

TEST(Construction, MultipoolTheSixWaysAndTheStandardsForms) {
  expect_the_six_ways<pmrkit::multipool_resource>(pmrkit::multipool_options{});
  test_resource upstream("upstream");
  const std::pmr::pool_options standard{.max_blocks_per_chunk = 16,
                                        .largest_required_pool_block = 256};
  pmrkit::multipool_resource g(standard);
  pmrkit::multipool_resource h = {standard, &upstream};  // not explicit, as the standard's
  EXPECT_EQ(h.upstream_resource(), &upstream);
}

TEST(Construction, ConcurrentPoolTheSixWaysAndTheStandardsForms) {
  expect_the_six_ways<pmrkit::concurrent_pool_resource>(pmrkit::concurrent_pool_options{});
  test_resource upstream("upstream");
  const std::pmr::pool_options standard{.max_blocks_per_chunk = 16,
                                        .largest_required_pool_block = 256};
  pmrkit::concurrent_pool_resource g(standard);
  pmrkit::concurrent_pool_resource h = {standard, &upstream};
  EXPECT_EQ(h.upstream_resource(), &upstream);
}

TEST(Construction, PoolTheSixWays) {
  test_resource upstream("upstream");
  // The default options have no block size: these forms compile and throw.
  EXPECT_THROW(pmrkit::pool_resource a, std::invalid_argument);
  EXPECT_THROW(pmrkit::pool_resource b(&upstream), std::invalid_argument);
  EXPECT_THROW(pmrkit::pool_resource e({}), std::invalid_argument);
  EXPECT_THROW(pmrkit::pool_resource f({}, &upstream), std::invalid_argument);
  pmrkit::pool_resource c(pmrkit::pool_options{.block_size = 32});
  pmrkit::pool_resource d(pmrkit::pool_options{.block_size = 32}, &upstream);
  pmrkit::pool_resource g({.block_size = 32}, &upstream);
  EXPECT_EQ(c.upstream_resource(), std::pmr::get_default_resource());
  EXPECT_EQ(d.upstream_resource(), &upstream);
  EXPECT_EQ(g.upstream_resource(), &upstream);
}

TEST(Construction, ObjectPoolTheSixWays) {
  expect_the_six_ways<pmrkit::object_pool<double>>(pmrkit::object_pool_options{});
}

TEST(Construction, BuddyTheSixWaysAndTheSameAfterABuffer) {
  const pmrkit::buddy_options small{.region_size = 4096, .min_block = 64};
  expect_the_six_ways<pmrkit::buddy_resource>(small);
  test_resource upstream("upstream");
  alignas(4096) static std::array<std::byte, 4096> storage;
  const std::span<std::byte> buffer(storage);
  {
    pmrkit::buddy_resource a(buffer);
    pmrkit::buddy_resource b(buffer, &upstream);
    EXPECT_EQ(b.upstream_resource(), &upstream);
  }
  {
    pmrkit::buddy_resource c(buffer, small);
    pmrkit::buddy_resource d(buffer, small, &upstream);
    EXPECT_EQ(d.upstream_resource(), &upstream);
  }
  {
    pmrkit::buddy_resource e(buffer, {});
    pmrkit::buddy_resource f(buffer, {}, &upstream);
    EXPECT_EQ(f.upstream_resource(), &upstream);
  }
}

TEST(Construction, TestResourceTheSixWaysAndWithANameFirst) {
  expect_the_six_ways<test_resource>(pmrkit::test_options{.name = "c"});
  test_resource upstream("upstream");
  test_resource g("g");
  test_resource h("h", &upstream);
  EXPECT_EQ(g.name(), "g");
  EXPECT_EQ(h.upstream_resource(), &upstream);
}

TEST(Construction, BudgetResourceTheSixWays) {
  test_resource upstream("upstream");
  pmrkit::budget_resource a;
  pmrkit::budget_resource b(&upstream);
  pmrkit::budget_resource c(pmrkit::budget_options{.limit = 10});
  pmrkit::budget_resource d(pmrkit::budget_options{.limit = 10}, &upstream);
  pmrkit::budget_resource e({});
  pmrkit::budget_resource f({}, &upstream);
  pmrkit::budget_resource g({.limit = 10, .name = "g"}, &upstream);
  expect_upstream(a, std::pmr::get_default_resource());
  expect_upstream(b, &upstream);
  expect_upstream(c, std::pmr::get_default_resource());
  expect_upstream(d, &upstream);
  expect_upstream(e, std::pmr::get_default_resource());
  expect_upstream(f, &upstream);
  EXPECT_EQ(c.limit(), 10U);
  EXPECT_EQ(e.limit(), 0U);
  EXPECT_EQ(g.name(), "g");
}

TEST(Construction, GuardedResourceTheSixWays) {
  expect_the_six_ways<pmrkit::guarded_resource>(
      pmrkit::guarded_options{.position = pmrkit::guard_position::before, .name = "c"});
  pmrkit::guarded_resource e({});
  EXPECT_EQ(e.position(), pmrkit::guard_position::after);
  EXPECT_EQ(e.name(), "guarded");
}

TEST(Construction, StatisticsResourceTheSixWays) {
  test_resource upstream("upstream");
  pmrkit::statistics_resource a;
  pmrkit::statistics_resource b(&upstream);
  pmrkit::statistics_resource c(pmrkit::statistics_options{.name = "c"});
  pmrkit::statistics_resource d(pmrkit::statistics_options{}, &upstream);
  pmrkit::statistics_resource e({});  // the default options, not a null upstream
  pmrkit::statistics_resource f({}, &upstream);
  expect_upstream(a, std::pmr::get_default_resource());
  expect_upstream(b, &upstream);
  expect_upstream(c, std::pmr::get_default_resource());
  expect_upstream(d, &upstream);
  expect_upstream(e, std::pmr::get_default_resource());
  expect_upstream(f, &upstream);
  EXPECT_EQ(c.name(), "c");
}

TEST(Construction, SynchronizedResourceTheSixWays) {
  test_resource upstream("upstream");
  pmrkit::synchronized_resource a;
  pmrkit::synchronized_resource b(&upstream);
  pmrkit::synchronized_resource c(pmrkit::synchronized_options{.name = "c"});
  pmrkit::synchronized_resource d(pmrkit::synchronized_options{}, &upstream);
  pmrkit::synchronized_resource e({});
  pmrkit::synchronized_resource f({}, &upstream);
  expect_upstream(a, std::pmr::get_default_resource());
  expect_upstream(b, &upstream);
  expect_upstream(c, std::pmr::get_default_resource());
  expect_upstream(d, &upstream);
  expect_upstream(e, std::pmr::get_default_resource());
  expect_upstream(f, &upstream);
}

TEST(Construction, TraceResourceTheSixWays) {
  test_resource upstream("upstream");
  pmrkit::trace_resource a;
  pmrkit::trace_resource b(&upstream);
  pmrkit::trace_resource c(pmrkit::trace_options{.name = "c"});
  pmrkit::trace_resource d(pmrkit::trace_options{}, &upstream);
  pmrkit::trace_resource e({});  // the default options, not a null upstream
  pmrkit::trace_resource f({}, &upstream);
  expect_upstream(a, std::pmr::get_default_resource());
  expect_upstream(b, &upstream);
  expect_upstream(c, std::pmr::get_default_resource());
  expect_upstream(d, &upstream);
  expect_upstream(e, std::pmr::get_default_resource());
  expect_upstream(f, &upstream);
  EXPECT_EQ(c.name(), "c");
  EXPECT_TRUE(a.path().empty());
}

TEST(Construction, PressureResourceTheSixWays) {
  test_resource upstream("upstream");
  // The default options have no capacity: these forms compile and throw.
  EXPECT_THROW(pmrkit::pressure_resource a, std::invalid_argument);
  EXPECT_THROW(pmrkit::pressure_resource b(&upstream), std::invalid_argument);
  EXPECT_THROW(pmrkit::pressure_resource e({}), std::invalid_argument);
  EXPECT_THROW(pmrkit::pressure_resource f({}, &upstream), std::invalid_argument);
  pmrkit::pressure_resource c(pmrkit::pressure_options{.capacity = 100});
  pmrkit::pressure_resource d(pmrkit::pressure_options{.capacity = 100}, &upstream);
  pmrkit::pressure_resource g({.capacity = 100}, &upstream);
  expect_upstream(c, std::pmr::get_default_resource());
  expect_upstream(d, &upstream);
  expect_upstream(g, &upstream);
}

TEST(Construction, SizeRouterResourceTheSixWaysAfterTheSmallSide) {
  using pmrkit::size_router_resource;
  static_assert(!std::is_default_constructible_v<size_router_resource>);
  static_assert(std::is_constructible_v<size_router_resource, test_resource*, test_resource*>);
  test_resource small("small");
  test_resource large("large");
  size_router_resource a(&small);
  size_router_resource b(&small, &large);
  size_router_resource c(&small, pmrkit::size_router_options{.threshold = 8});
  size_router_resource d(&small, pmrkit::size_router_options{.threshold = 8}, &large);
  size_router_resource e(&small, {});
  size_router_resource f(&small, {}, &large);
  for (const size_router_resource* router : {&a, &b, &c, &d, &e, &f})
    EXPECT_EQ(router->small_resource(), &small);
  EXPECT_EQ(a.large_resource(), std::pmr::get_default_resource());
  EXPECT_EQ(b.large_resource(), &large);
  EXPECT_EQ(c.threshold(), 8U);
  EXPECT_EQ(d.large_resource(), &large);
  EXPECT_EQ(e.large_resource(), std::pmr::get_default_resource());
  EXPECT_EQ(f.large_resource(), &large);
}

TEST(Construction, FallbackResourceTheSixWaysAfterThePrimary) {
  using fallback = pmrkit::fallback_resource<pmrkit::pool_resource>;
  static_assert(!std::is_default_constructible_v<fallback>);
  test_resource secondary("secondary");
  pmrkit::pool_resource pool({.block_size = 32, .on_mismatch = pmrkit::pool_mismatch::reject});
  pmrkit::fallback_resource a(&pool);
  pmrkit::fallback_resource b(&pool, &secondary);
  pmrkit::fallback_resource c(&pool, pmrkit::fallback_options{.name = "c"});
  pmrkit::fallback_resource d(&pool, pmrkit::fallback_options{}, &secondary);
  pmrkit::fallback_resource e(&pool, {});
  pmrkit::fallback_resource f(&pool, {}, &secondary);
  static_assert(std::is_same_v<decltype(f), fallback>);
  for (const fallback* overflow : {&a, &b, &c, &d, &e, &f})
    EXPECT_EQ(overflow->primary_resource(), &pool);
  EXPECT_EQ(a.secondary_resource(), std::pmr::get_default_resource());
  EXPECT_EQ(b.secondary_resource(), &secondary);
  EXPECT_EQ(c.name(), "c");
  EXPECT_EQ(d.secondary_resource(), &secondary);
  EXPECT_EQ(e.secondary_resource(), std::pmr::get_default_resource());
  EXPECT_EQ(f.secondary_resource(), &secondary);
}

TEST(Construction, LockedPageResourceTheSixWays) {
  expect_the_six_ways<pmrkit::locked_page_resource>(pmrkit::locked_page_options{.name = "c"});
}

TEST(Construction, PageResourceWithoutAnUpstream) {
  pmrkit::page_resource a;
  pmrkit::page_resource b({});
  pmrkit::page_resource c(pmrkit::page_options{.prefault = true, .name = "c"});
  pmrkit::page_resource d({.huge_pages = pmrkit::huge_page_mode::transparent});
  EXPECT_EQ(a.name(), "pages");
  EXPECT_EQ(b.options().huge_pages, pmrkit::huge_page_mode::none);
  EXPECT_EQ(c.name(), "c");
  EXPECT_TRUE(c.options().prefault);
  EXPECT_EQ(d.options().huge_pages, pmrkit::huge_page_mode::transparent);
}

TEST(Construction, RegionResourceTheSixWays) {
  // Each form takes its region (1 MiB by default) from its upstream at once.
  expect_the_six_ways<pmrkit::region_resource>(pmrkit::region_spec{.capacity = 4096, .name = "c"});
}

}  // namespace
