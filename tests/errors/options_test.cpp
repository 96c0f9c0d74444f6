// docs/errors.md, "Bad options": each row's test, named after it. A bad option is
// std::invalid_argument whose what() names the class and the field.
#include <pmr/arena/chunked_arena_resource.hpp>
#include <pmr/arena/concurrent_arena_resource.hpp>
#include <pmr/arena/local_arena.hpp>
#include <pmr/arena/make_arena.hpp>
#include <pmr/arena/stack_resource.hpp>
#include <pmr/arena/vmem_arena_resource.hpp>
#include <pmr/buddy/buddy_resource.hpp>
#include <pmr/cache/lru_cache.hpp>
#include <pmr/decorator/fallback_resource.hpp>
#include <pmr/decorator/guarded_resource.hpp>
#include <pmr/decorator/pressure_resource.hpp>
#include <pmr/decorator/size_router_resource.hpp>
#include <pmr/decorator/trace_resource.hpp>
#include <pmr/pool/concurrent_pool_resource.hpp>
#include <pmr/pool/multipool_resource.hpp>
#include <pmr/pool/object_pool.hpp>
#include <pmr/pool/pool_resource.hpp>
#include <pmr/region/page_resource.hpp>
#include <pmr/region/region_resource.hpp>
#include <pmr/testing/test_resource.hpp>

#include <gtest/gtest.h>

#include <cstddef>
#include <limits>
#include <span>
#include <string>
#include <system_error>

#include "errors/errors_test_support.hpp"
#include "errors/zoo.hpp"

namespace {

using errors_test::expect_invalid_argument;
constexpr std::size_t size_max = std::numeric_limits<std::size_t>::max();

TEST(BadOptions, ChunkedArena) {
  using pmrkit::chunked_arena_resource;
  const char* c = "pmrkit::chunked_arena_resource: ";
  expect_invalid_argument([] { chunked_arena_resource r({.initial_chunk_size = 0}); },
                          std::string(c) + "initial_chunk_size");
  expect_invalid_argument(
      [] { chunked_arena_resource r({.initial_chunk_size = 8192, .max_chunk_size = 4096}); },
      std::string(c) + "max_chunk_size");
  expect_invalid_argument([] { chunked_arena_resource r({.growth_factor = 17}); },
                          std::string(c) + "growth_factor");
  expect_invalid_argument([] { chunked_arena_resource r({.alignment = 24}); },
                          std::string(c) + "alignment");
  expect_invalid_argument([] { chunked_arena_resource r({.alignment = 8192}); },
                          std::string(c) + "alignment");
}

TEST(BadOptions, Stack) {
  using pmrkit::stack_resource;
  const char* c = "pmrkit::stack_resource: ";
  expect_invalid_argument([] { stack_resource r({.initial_chunk_size = 0}); },
                          std::string(c) + "initial_chunk_size");
  expect_invalid_argument([] { stack_resource r({.growth_factor = 0}); },
                          std::string(c) + "growth_factor");
  expect_invalid_argument([] { stack_resource r({.alignment = 3}); }, std::string(c) + "alignment");
}

TEST(BadOptions, InitialBuffer) {
  std::byte buffer[64];
  const std::span<std::byte> null_with_size{static_cast<std::byte*>(nullptr), 16};
  expect_invalid_argument(
      [&] { pmrkit::chunked_arena_resource r({.initial_buffer = null_with_size}); },
      "pmrkit::chunked_arena_resource: initial_buffer");
  // The standard's buffer form, (buffer, size, upstream), names the same field.
  expect_invalid_argument([&] { pmrkit::chunked_arena_resource r(nullptr, 64); },
                          "pmrkit::chunked_arena_resource: initial_buffer");
  expect_invalid_argument([&] { pmrkit::stack_resource r({.initial_buffer = null_with_size}); },
                          "pmrkit::stack_resource: initial_buffer");
  expect_invalid_argument([&] { pmrkit::local_arena<128> r({.initial_buffer = buffer}); },
                          "pmrkit::local_arena: initial_buffer");
}

TEST(BadOptions, ConcurrentArena) {
  using pmrkit::concurrent_arena_resource;
  const char* c = "pmrkit::concurrent_arena_resource: ";
  expect_invalid_argument([] { concurrent_arena_resource r({.initial_chunk_size = 0}); },
                          std::string(c) + "initial_chunk_size");
  expect_invalid_argument(
      [] { concurrent_arena_resource r({.initial_chunk_size = 8192, .max_chunk_size = 4096}); },
      std::string(c) + "max_chunk_size");
  expect_invalid_argument([] { concurrent_arena_resource r({.growth_factor = 0}); },
                          std::string(c) + "growth_factor");
  expect_invalid_argument([] { concurrent_arena_resource r({.alignment = 24}); },
                          std::string(c) + "alignment");
}

TEST(BadOptions, VmemArena) {
  using pmrkit::vmem_arena_resource;
  const char* c = "pmrkit::vmem_arena_resource: ";
  expect_invalid_argument([] { vmem_arena_resource r({.reserve = 0}); },
                          std::string(c) + "reserve");
  expect_invalid_argument([] { vmem_arena_resource r({.reserve = 1, .retain_on_reset = 0}); },
                          std::string(c) + "reserve");
  expect_invalid_argument([] { vmem_arena_resource r({.commit_step = 0}); },
                          std::string(c) + "commit_step");
  expect_invalid_argument([] { vmem_arena_resource r({.alignment = 48}); },
                          std::string(c) + "alignment");
  expect_invalid_argument(
      [] { vmem_arena_resource r({.reserve = 1 << 20, .retain_on_reset = 2 << 20}); },
      std::string(c) + "retain_on_reset");
}

// Only the chosen strategy's fields are checked: growth_factor 0 passes where the virtual memory
// arena is chosen (it has no growth) and is an error where the chained one is.
TEST(BadOptions, MakeArenaChecksTheChosenStrategy) {
  if (pmrkit::vmem_arena_resource::available()) {
    EXPECT_NO_THROW((void)pmrkit::make_arena({.growth_factor = 0}));
  }
  expect_invalid_argument(
      [] {
        (void)pmrkit::make_arena({.growth_factor = 0, .strategy = pmrkit::arena_strategy::chained});
      },
      "pmrkit::chunked_arena_resource: growth_factor");
}

TEST(BadOptions, Pool) {
  using pmrkit::pool_resource;
  const char* c = "pmrkit::pool_resource: ";
  expect_invalid_argument([] { pool_resource r; }, std::string(c) + "block_size");
  expect_invalid_argument([] { pool_resource r({.block_size = 16, .block_alignment = 12}); },
                          std::string(c) + "block_alignment");
  expect_invalid_argument([] { pool_resource r({.block_size = 16, .block_alignment = 8192}); },
                          std::string(c) + "block_alignment");
  expect_invalid_argument([] { pool_resource r({.block_size = 16, .initial_blocks = 0}); },
                          std::string(c) + "initial_blocks");
  expect_invalid_argument(
      [] { pool_resource r({.block_size = 16, .initial_blocks = 8, .max_blocks_per_chunk = 4}); },
      std::string(c) + "max_blocks_per_chunk");
  expect_invalid_argument([] { pool_resource r({.block_size = 16, .growth_factor = 17}); },
                          std::string(c) + "growth_factor");
  expect_invalid_argument(
      [] {
        pool_resource r(
            {.block_size = size_max / 2, .initial_blocks = 8, .max_blocks_per_chunk = 8});
      },
      std::string(c) + "block_size");
}

TEST(BadOptions, ObjectPool) {
  struct item {
    int value;
  };
  expect_invalid_argument([] { pmrkit::object_pool<item> p({.initial_blocks = 0}); },
                          "initial_blocks");
  expect_invalid_argument([] { pmrkit::object_pool<item> p({.growth_factor = 99}); },
                          "growth_factor");
}

// The standard pools' options are clamped, as std::pmr::pool_options are: no error.
TEST(BadOptions, MultipoolClampsLikeTheStandard) {
  pmrkit::multipool_resource r(pmrkit::multipool_options{.max_blocks_per_chunk = size_max,
                                                         .largest_required_pool_block = size_max});
  EXPECT_LT(r.options().max_blocks_per_chunk, size_max);
  EXPECT_LT(r.options().largest_required_pool_block, size_max);
  errors_test::expect_usable(r);
}

TEST(BadOptions, ConcurrentPool) {
  expect_invalid_argument([] { pmrkit::concurrent_pool_resource r({.cache_bytes_per_class = 0}); },
                          "pmrkit::concurrent_pool_resource: cache_bytes_per_class");
  pmrkit::concurrent_pool_resource clamped(pmrkit::concurrent_pool_options{
      .max_blocks_per_chunk = size_max, .largest_required_pool_block = size_max});
  EXPECT_LT(clamped.options().largest_required_pool_block, size_max);
}

TEST(BadOptions, Buddy) {
  using pmrkit::buddy_resource;
  const char* c = "pmrkit::buddy_resource: ";
  expect_invalid_argument([] { buddy_resource r({.region_size = 3000}); },
                          std::string(c) + "region_size");
  expect_invalid_argument([] { buddy_resource r({.min_block = 48}); },
                          std::string(c) + "min_block");
  expect_invalid_argument([] { buddy_resource r({.region_size = 64, .min_block = 128}); },
                          std::string(c) + "min_block");
  expect_invalid_argument(
      [] { buddy_resource r({.region_size = std::size_t{1} << 40, .min_block = 16}); },
      std::string(c) + "region_size");
  expect_invalid_argument([] { buddy_resource r({.max_regions = 0}); },
                          std::string(c) + "max_regions");
  expect_invalid_argument(
      [] {
        buddy_resource r(std::span<std::byte>(static_cast<std::byte*>(nullptr), 4096),
                         pmrkit::buddy_options{});
      },
      std::string(c) + "buffer");
  alignas(64) static std::byte tiny[32];
  expect_invalid_argument([] { buddy_resource r(std::span<std::byte>(tiny), {}); },
                          std::string(c) + "buffer");
}

TEST(BadOptions, SizeRouter) {
  pmrkit::test_resource small;
  expect_invalid_argument([&] { pmrkit::size_router_resource r(&small, {.threshold = 0}); },
                          "pmrkit::size_router_resource: threshold");
  expect_invalid_argument(
      [&] { pmrkit::size_router_resource r(&small, {.max_small_alignment = 6}); },
      "pmrkit::size_router_resource: max_small_alignment");
}

TEST(BadOptions, Pressure) {
  using pmrkit::pressure_resource;
  const char* c = "pmrkit::pressure_resource: ";
  expect_invalid_argument([] { pressure_resource r; }, std::string(c) + "capacity");
  expect_invalid_argument([] { pressure_resource r({.capacity = 100, .low_percent = 0}); },
                          std::string(c) + "low_percent");
  expect_invalid_argument(
      [] { pressure_resource r({.capacity = 100, .low_percent = 80, .medium_percent = 70}); },
      std::string(c) + "medium_percent");
  expect_invalid_argument(
      [] {
        pressure_resource r(
            {.capacity = 100, .critical_percent = std::numeric_limits<double>::quiet_NaN()});
      },
      std::string(c) + "critical_percent");
}

TEST(BadOptions, Guarded) {
  using pmrkit::guarded_resource;
  expect_invalid_argument([] { guarded_resource r({.quarantine_blocks = 100000}); },
                          "pmrkit::guarded_resource: quarantine_blocks");
  expect_invalid_argument(
      [] { guarded_resource r({.position = static_cast<pmrkit::guard_position>(7)}); },
      "pmrkit::guarded_resource: position");
}

// A path that cannot be opened for writing (a folder that does not exist, a folder itself) is
// std::system_error with the OS's error code, naming the resource and the path; the upstream
// is not touched.
TEST(BadOptions, Trace) {
  pmrkit::test_resource strict("strict", std::pmr::new_delete_resource());
  const std::string paths[] = {"/nonexistent-pmrkit-folder/x.trace", "/"};
  for (const std::string& path : paths) {
    SCOPED_TRACE(path);
    try {
      pmrkit::trace_resource r({.path = path, .name = "traced"}, &strict);
      ADD_FAILURE() << "no std::system_error";
    } catch (const std::system_error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("pmrkit::trace_resource 'traced': cannot open " + path),
                std::string::npos)
          << "what(): " << what;
      EXPECT_NE(e.code().value(), 0);
      EXPECT_EQ(e.code().category(), std::generic_category());
    }
  }
  EXPECT_EQ(strict.blocks_in_use(), 0u);
  EXPECT_EQ(strict.stats().allocations, 0u);
}

TEST(BadOptions, TestResource) {
  expect_invalid_argument(
      [] { pmrkit::test_resource r(pmrkit::test_options{.guard_bytes = 8192}); },
      "pmrkit::test_resource: guard_bytes");
}

TEST(BadOptions, PageResource) {
  expect_invalid_argument(
      [] { pmrkit::page_resource r({.huge_pages = static_cast<pmrkit::huge_page_mode>(9)}); },
      "pmrkit::page_resource: huge_pages");
}

TEST(BadOptions, Region) {
  using pmrkit::memory_type;
  using pmrkit::region_resource;
  using pmrkit::region_spec;
  const char* c = "pmrkit::region_resource: ";
  expect_invalid_argument([] { region_resource r(region_spec{.capacity = 0}); },
                          std::string(c) + "capacity");
  expect_invalid_argument([] { region_resource r(region_spec{.alignment = 96}); },
                          std::string(c) + "alignment");
  expect_invalid_argument(
      [] {
        region_resource r(region_spec{.type = memory_type::system,
                                      .strategy = pmrkit::region_strategy::shared_segment});
      },
      std::string(c) + "strategy");
  expect_invalid_argument(
      [] {
        region_resource r(region_spec{
            .capacity = 4096, .block_size = 8192, .strategy = pmrkit::region_strategy::pool});
      },
      std::string(c) + "block_size");
  expect_invalid_argument(
      [] {
        region_resource r(region_spec{.capacity = 128, .strategy = pmrkit::region_strategy::arena});
      },
      std::string(c) + "capacity");
}

TEST(BadOptions, NullUpstream) {
  std::pmr::memory_resource* none = nullptr;
  expect_invalid_argument([&] { pmrkit::chunked_arena_resource r(none); },
                          "chunked_arena_resource: upstream must not be null");
  expect_invalid_argument([&] { pmrkit::stack_resource r(none); },
                          "stack_resource: upstream must not be null");
  expect_invalid_argument([&] { pmrkit::vmem_arena_resource r(none); },
                          "vmem_arena_resource: upstream must not be null");
  expect_invalid_argument([&] { pmrkit::pool_resource r({.block_size = 8}, none); },
                          "pool_resource: upstream must not be null");
  expect_invalid_argument([&] { pmrkit::multipool_resource r(none); },
                          "multipool_resource: upstream must not be null");
  expect_invalid_argument([&] { pmrkit::concurrent_pool_resource r(none); },
                          "concurrent_pool_resource: upstream must not be null");
  expect_invalid_argument([&] { pmrkit::buddy_resource r(none); },
                          "buddy_resource: upstream must not be null");
  expect_invalid_argument([&] { pmrkit::budget_resource r(none); },
                          "budget_resource: upstream must not be null");
  expect_invalid_argument([&] { pmrkit::statistics_resource r(none); },
                          "statistics_resource: upstream must not be null");
  expect_invalid_argument([&] { pmrkit::synchronized_resource r(none); },
                          "synchronized_resource: upstream must not be null");
  expect_invalid_argument([&] { pmrkit::trace_resource r(none); },
                          "trace_resource: upstream must not be null");
  expect_invalid_argument([&] { pmrkit::trace_resource r({}, none); },
                          "trace_resource: upstream must not be null");
  expect_invalid_argument([&] { pmrkit::pressure_resource r({.capacity = 1}, none); },
                          "pressure_resource: upstream must not be null");
  expect_invalid_argument([&] { pmrkit::guarded_resource r(none); },
                          "guarded_resource: upstream must not be null");
  expect_invalid_argument([&] { pmrkit::test_resource r(none); },
                          "test_resource: upstream must not be null");
  expect_invalid_argument([&] { pmrkit::locked_page_resource r(none); },
                          "locked_page_resource: upstream must not be null");
  expect_invalid_argument([&] { pmrkit::region_resource r(none); },
                          "region_resource: upstream must not be null");
  expect_invalid_argument([&] { pmrkit::size_router_resource r(none); },
                          "size_router_resource: small must not be null");
  pmrkit::pool_resource* no_primary = nullptr;
  expect_invalid_argument([&] { pmrkit::fallback_resource<pmrkit::pool_resource> r(no_primary); },
                          "fallback_resource: primary must not be null");
  expect_invalid_argument(
      [&] {
        struct item {
          int v;
        };
        pmrkit::object_pool<item> p(none);
      },
      "upstream must not be null");
  expect_invalid_argument([&] { pmrkit::lru_cache<int, int> cache({}, none); },
                          "lru_cache: resource must not be null");
}

}  // namespace
