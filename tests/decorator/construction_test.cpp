// Every decorator is constructed the obvious ways: `T r;`, `T r(upstream)`,
// `T r(options)`, `T r(options, upstream)`, `T r({})` and `T r({}, upstream)`,
// with the resource a class needs first (size_router's small side,
// fallback's primary) before the same forms. `{}` must mean the default
// options, never a null upstream or the deleted copy constructor.
#include <pmr/decorator/budget_resource.hpp>
#include <pmr/decorator/fallback_resource.hpp>
#include <pmr/decorator/pressure_resource.hpp>
#include <pmr/decorator/size_router_resource.hpp>
#include <pmr/decorator/statistics_resource.hpp>
#include <pmr/decorator/synchronized_resource.hpp>
#include <pmr/pool/pool_resource.hpp>
#include <pmr/testing/test_resource.hpp>

#include <gtest/gtest.h>

#include <memory_resource>
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

static_assert(constructible_the_six_ways<pmrkit::budget_resource, pmrkit::budget_options>);
static_assert(constructible_the_six_ways<pmrkit::statistics_resource, pmrkit::statistics_options>);
static_assert(
    constructible_the_six_ways<pmrkit::synchronized_resource, pmrkit::synchronized_options>);
static_assert(constructible_the_six_ways<pmrkit::pressure_resource, pmrkit::pressure_options>);

// The forms with `{}` are not type traits: each is written out below.
template <class T>
void expect_upstream(const T& resource, std::pmr::memory_resource* upstream) {
  EXPECT_EQ(resource.upstream_resource(), upstream);
}

TEST(DecoratorConstruction, BudgetResourceTheSixWays) {
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

TEST(DecoratorConstruction, StatisticsResourceTheSixWays) {
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

TEST(DecoratorConstruction, SynchronizedResourceTheSixWays) {
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

TEST(DecoratorConstruction, PressureResourceTheSixWays) {
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

TEST(DecoratorConstruction, SizeRouterResourceTheSixWaysAfterTheSmallSide) {
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

TEST(DecoratorConstruction, FallbackResourceTheSixWaysAfterThePrimary) {
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

}  // namespace
