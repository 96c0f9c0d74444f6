// docs/errors.md, "memory_system configuration and requests" and "Page sources": each row's
// test, named after it.
#include <pmr/core/error.hpp>
#include <pmr/region/locked_page_resource.hpp>
#include <pmr/region/memory_system.hpp>
#include <pmr/region/page_resource.hpp>

#include <gtest/gtest.h>
#include <sys/resource.h>

#include <cstdlib>
#include <limits>
#include <string>

#include "errors/errors_test_support.hpp"

namespace {

using errors_test::expect_allocation_error;
using errors_test::expect_invalid_argument;
using pmrkit::failure_reason;
using pmrkit::memory_system;
using pmrkit::memory_system_config;
using pmrkit::memory_type;
using pmrkit::region_spec;
constexpr std::size_t mib = std::size_t{1} << 20;

TEST(MemorySystemConfig, BadSizeValue) {
  expect_invalid_argument([] { (void)memory_system_config::parse("budget = lots\n", "game.conf"); },
                          "pmrkit::memory_system: game.conf:1: budget: 'lots' is not a size");
}

TEST(MemorySystemConfig, UnknownKey) {
  expect_invalid_argument(
      [] { (void)memory_system_config::parse("# plan\ncolour = blue\n", "game.conf"); },
      "game.conf:2: colour: 'colour' is not a setting");
}

TEST(MemorySystemConfig, LineWithoutEquals) {
  expect_invalid_argument([] { (void)memory_system_config::parse("budget 64MiB\n"); },
                          "config:1: 'budget 64MiB' is not a key = value line");
}

TEST(MemorySystemConfig, BadPressurePercentages) {
  expect_invalid_argument([] { (void)memory_system_config::parse("pressure = 50,70\n"); },
                          "is not four percentages");
}

TEST(MemorySystemConfig, RegionWithoutCapacity) {
  expect_invalid_argument(
      [] { (void)memory_system_config::parse("region.video = backing=pages\n"); },
      "has no capacity=<size>");
}

TEST(MemorySystemConfig, MissingFile) {
  expect_invalid_argument(
      [] { (void)memory_system_config::from_file("/nonexistent/pmrkit-errors-test.conf"); },
      "pmrkit::memory_system: cannot read the config file '/nonexistent/pmrkit-errors-test.conf'");
}

// A bad PMRKIT_ variable names the variable.
TEST(MemorySystemConfig, BadEnvironmentValue) {
  ASSERT_EQ(::setenv("PMRKIT_BUDGET", "sixty-four", 1), 0);
  expect_invalid_argument([] { (void)memory_system_config::from_environment(); },
                          "pmrkit::memory_system: PMRKIT_BUDGET: 'sixty-four' is not a size");
  ::unsetenv("PMRKIT_BUDGET");
}

TEST(MemorySystemConfig, ReserveNotBelowBudget) {
  memory_system_config config;
  config.total_budget = mib;
  config.emergency_reserve = mib;
  expect_invalid_argument([&] { memory_system m(config); },
                          "pmrkit::memory_system: emergency_reserve must be below total_budget");
}

TEST(MemorySystemConfig, ThresholdsOutOfOrder) {
  memory_system_config config;
  config.small_threshold = 4096;
  config.large_threshold = 1024;
  expect_invalid_argument([&] { memory_system m(config); },
                          "pmrkit::memory_system: small_threshold");
}

TEST(MemorySystemConfig, DuplicateRegionNames) {
  memory_system_config config;
  config.regions = {region_spec::for_type(memory_type::video, mib),
                    region_spec::for_type(memory_type::video, mib)};
  expect_invalid_argument([&] { memory_system m(config); },
                          "pmrkit::memory_system: regions[1].name");
}

TEST(MemorySystemConfig, UnknownBacking) {
  memory_system_config config;
  region_spec spec = region_spec::for_type(memory_type::video, mib);
  spec.backing = "velvet";
  config.regions = {spec};
  expect_invalid_argument([&] { memory_system m(config); },
                          "pmrkit::memory_system: regions[0].backing");
}

// A bad region spec is the region's error, with the field's place in the config added.
TEST(MemorySystemConfig, BadRegionSpec) {
  memory_system_config config;
  region_spec spec = region_spec::for_type(memory_type::video, mib);
  spec.alignment = 3;
  config.regions = {spec};
  expect_invalid_argument([&] { memory_system m(config); }, "pmrkit::region_resource: alignment");
}

TEST(MemorySystem, ResourceOfMissingType) {
  memory_system m;
  expect_invalid_argument([&] { (void)m.resource(memory_type::audio); },
                          "pmrkit::memory_system: 'memory_system' has no audio region");
}

TEST(MemorySystem, AllocateBadRequests) {
  memory_system_config config;
  config.regions = {region_spec::for_type(memory_type::video, mib)};
  config.total_budget = 4 * mib;
  memory_system m(config);
  expect_allocation_error([&] { (void)m.allocate({.size = 16, .alignment = 3}); },
                          failure_reason::bad_alignment);
  expect_allocation_error(
      [&] { (void)m.allocate({.size = std::numeric_limits<std::size_t>::max(), .alignment = 8}); },
      failure_reason::size_overflow);
  try {
    (void)m.allocate({.size = 8 * mib, .type = memory_type::video});
    ADD_FAILURE() << "a block past the budget";
  } catch (const pmrkit::budget_exceeded& e) {
    EXPECT_EQ(e.reason(), failure_reason::budget_exceeded);
  }
  expect_allocation_error(
      [&] {
        (void)m.allocate({.size = 2 * mib, .type = memory_type::video, .allow_fallback = false});
      },
      failure_reason::out_of_capacity);
  const pmrkit::memory_block ok = m.allocate({.size = 64, .type = memory_type::video});
  m.deallocate(ok);
}

// locked_page_resource checks RLIMIT_MEMLOCK itself: a request past it is out_of_capacity
// naming the limit, what is locked and what was asked.
TEST(PageSources, LockedPagesPastMemlockLimit) {
  struct rlimit saved {};
  ASSERT_EQ(::getrlimit(RLIMIT_MEMLOCK, &saved), 0);
  struct rlimit lowered = saved;
  lowered.rlim_cur = 64 * 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_MEMLOCK, &lowered), 0);
  {
    pmrkit::page_resource pages;
    pmrkit::locked_page_resource locked(&pages);
    try {
      (void)locked.allocate(4 * mib, 4096);
      ADD_FAILURE() << "4 MiB locked under a 64 KiB limit";
    } catch (const pmrkit::allocation_error& e) {
      EXPECT_EQ(e.reason(), failure_reason::out_of_capacity);
      EXPECT_NE(std::string(e.what()).find("RLIMIT_MEMLOCK is "), std::string::npos) << e.what();
    }
    EXPECT_EQ(locked.stats().refusals, 1u);
  }
  ASSERT_EQ(::setrlimit(RLIMIT_MEMLOCK, &saved), 0);
}

// page_resource: an alignment no mapping can have (2^40) is the OS's refusal, out_of_capacity.
TEST(PageSources, AlignmentNoMappingHolds) {
  pmrkit::page_resource pages;
  expect_allocation_error([&] { (void)pages.allocate(16, std::size_t{1} << 40); },
                          failure_reason::out_of_capacity);
  errors_test::expect_usable(pages);
}

}  // namespace
