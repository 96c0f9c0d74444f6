#include <pmr/buddy/buddy_resource.hpp>

#include <pmr/core/error.hpp>
#include <pmr/core/poison.hpp>
#include <pmr/testing/exception_test.hpp>
#include <pmr/testing/test_resource.hpp>
#include <pmr/testing/violation_recorder.hpp>

#include "conformance/conformance.hpp"
#include "pool/chunks_shrunk.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory_resource>
#include <random>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace {

using pmrkit::buddy_options;
using pmrkit::buddy_resource;
using pmrkit::test_resource;

struct buddy_traits {
  using resource_type = buddy_resource;
  static constexpr std::string_view name = "pmrkit::buddy_resource";
  static constexpr pmrkit::conformance::capabilities caps{};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(buddy_options{}, upstream);
  }
  static void release(resource_type& r) { r.release(); }
};

// Small regions: most container growth and the larger checks leave the regions for the
// upstream, and a few blocks fill a region.
struct small_buddy_traits {
  using resource_type = buddy_resource;
  static constexpr std::string_view name = "pmrkit::buddy_resource (4 KiB regions, 16 B)";
  static constexpr pmrkit::conformance::capabilities caps{};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(buddy_options{.region_size = 4096, .min_block = 16},
                                           upstream);
  }
  static void release(resource_type& r) { r.release(); }
};

// The same with the cache off (every free merges at once) and, for the small regions, a cache
// of two blocks per order that overflows and merges all the time.
struct eager_buddy_traits {
  using resource_type = buddy_resource;
  static constexpr std::string_view name = "pmrkit::buddy_resource (no cache)";
  static constexpr pmrkit::conformance::capabilities caps{};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(buddy_options{.cache_blocks_per_order = 0}, upstream);
  }
  static void release(resource_type& r) { r.release(); }
};
struct small_cached_buddy_traits {
  using resource_type = buddy_resource;
  static constexpr std::string_view name = "pmrkit::buddy_resource (4 KiB regions, cache 2)";
  static constexpr pmrkit::conformance::capabilities caps{};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(
        buddy_options{.region_size = 4096, .min_block = 16, .cache_blocks_per_order = 2}, upstream);
  }
  static void release(resource_type& r) { r.release(); }
};
struct small_eager_buddy_traits {
  using resource_type = buddy_resource;
  static constexpr std::string_view name = "pmrkit::buddy_resource (4 KiB regions, no cache)";
  static constexpr pmrkit::conformance::capabilities caps{};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(
        buddy_options{.region_size = 4096, .min_block = 16, .cache_blocks_per_order = 0}, upstream);
  }
  static void release(resource_type& r) { r.release(); }
};

using buddy_types = ::testing::Types<buddy_traits, small_buddy_traits, eager_buddy_traits,
                                     small_cached_buddy_traits, small_eager_buddy_traits>;
INSTANTIATE_TYPED_TEST_SUITE_P(buddy, resource_conformance, buddy_types,
                               pmrkit::conformance::traits_names);

constexpr pmrkit::test_options upstream_options{.name = "upstream"};

std::uintptr_t address(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p);
}

TEST(BuddyResource, InvalidOptionsNameTheField) {
  const auto message = [](auto make) {
    try {
      make();
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no exception");
  };
  EXPECT_NE(message([] { buddy_resource r({.region_size = 3000}); }).find("region_size"),
            std::string::npos);
  EXPECT_NE(message([] { buddy_resource r({.min_block = 48}); }).find("min_block"),
            std::string::npos);
  EXPECT_NE(
      message([] { buddy_resource r({.region_size = 64, .min_block = 128}); }).find("min_block"),
      std::string::npos);
  EXPECT_NE(message([] {
              buddy_resource r({.region_size = std::size_t{1} << 40, .min_block = 16});
            }).find("region_size / min_block"),
            std::string::npos);
  EXPECT_NE(message([] { buddy_resource r({.max_regions = 0}); }).find("max_regions"),
            std::string::npos);
  EXPECT_NE(message([] { buddy_resource r({}, nullptr); }).find("upstream"), std::string::npos);
  EXPECT_NE(
      message([] {
        buddy_resource r({.cache_blocks_per_order = buddy_options::max_cache_blocks_per_order + 1});
      }).find("cache_blocks_per_order"),
      std::string::npos);
  EXPECT_EQ(
      message([] {
        buddy_resource r({.cache_blocks_per_order = buddy_options::max_cache_blocks_per_order});
      }),
      "no exception");
  EXPECT_NE(message([] {
              alignas(64) std::byte tiny[100];
              buddy_resource r(std::span<std::byte>(tiny).subspan(1, 64), {.max_regions = 0});
            }).find("buffer"),
            std::string::npos);
}

// Splitting, merging, alignment and the figures.

TEST(BuddyResource, SplitsTheSmallestFreeBlockAndMergesBack) {
  test_resource upstream(upstream_options);
  // Eager: every free merges at once (the caches have their own tests below).
  buddy_resource buddy(
      {.region_size = 4096, .min_block = 64, .max_regions = 1, .cache_blocks_per_order = 0},
      &upstream);
  void* a = buddy.allocate(64);
  // 4096 split down to 64: one free block of each size 64 .. 2048.
  for (std::size_t order = 0; order < 6; ++order) {
    EXPECT_EQ(buddy.order_stats(order).free_blocks, 1U) << order;
  }
  EXPECT_EQ(buddy.order_stats(6).free_blocks, 0U);
  EXPECT_EQ(buddy.order_stats(0).blocks_in_use, 1U);
  void* b = buddy.allocate(64);  // the buddy of a: no split needed
  EXPECT_EQ(address(b), address(a) + 64);
  EXPECT_EQ(buddy.order_stats(0).free_blocks, 0U);
  EXPECT_EQ(address(a) % 4096, 0U);  // regions are aligned to their size
  buddy.deallocate(a, 64);
  EXPECT_EQ(buddy.order_stats(0).free_blocks, 1U);  // b is in use: no merge
  buddy.deallocate(b, 64);
  EXPECT_EQ(buddy.order_stats(6).free_blocks, 1U);  // everything merged back
  EXPECT_EQ(buddy.stats().largest_free_block, 4096U);
  EXPECT_EQ(buddy.verify(), "");
}

TEST(BuddyResource, BlocksAreAlignedToTheirSizeAndAlignmentPicksTheBlock) {
  buddy_resource buddy({.region_size = 1 << 16, .min_block = 16});
  for (std::size_t size : {1U, 16U, 17U, 100U, 1000U, 4096U, 5000U}) {
    void* p = buddy.allocate(size, 8);
    EXPECT_EQ(address(p) % std::bit_ceil(std::max<std::size_t>(size, 16)), 0U) << size;
    buddy.deallocate(p, size, 8);
  }
  // A 16-byte request aligned to 1024 takes a 1024-byte block.
  void* p = buddy.allocate(16, 1024);
  EXPECT_EQ(address(p) % 1024, 0U);
  EXPECT_EQ(buddy.stats().bytes_in_use, 1024U);
  EXPECT_EQ(buddy.stats().internal_fragmentation, 1008U);
  buddy.deallocate(p, 16, 1024);
  EXPECT_EQ(buddy.verify(), "");
}

TEST(BuddyResource, LargerThanARegionGoesUpstreamAndIsTracked) {
  test_resource upstream(upstream_options);
  {
    buddy_resource buddy({.region_size = 4096, .min_block = 64}, &upstream);
    void* big = buddy.allocate(10000);
    void* over_aligned = buddy.allocate(64, 8192);
    EXPECT_EQ(address(over_aligned) % 8192, 0U);
    EXPECT_EQ(buddy.stats().large_blocks_in_use, 2U);
    EXPECT_EQ(buddy.stats().regions, 0U);
    EXPECT_FALSE(buddy.owns(big));
    buddy.deallocate(big, 10000);
    EXPECT_EQ(buddy.stats().large_blocks_in_use, 1U);
    // over_aligned is returned by the destructor.
  }
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
  EXPECT_TRUE(upstream.errors().empty());
}

// The fragmentation scenario: every other 64-byte block of a 4 KiB region freed.
TEST(BuddyResource, FragmentationFiguresOfAKnownScenario) {
  test_resource upstream(upstream_options);
  buddy_resource buddy({.region_size = 4096, .min_block = 64, .max_regions = 1}, &upstream);
  std::vector<void*> blocks;
  for (int i = 0; i < 64; ++i)
    blocks.push_back(buddy.allocate(60));
  pmrkit::buddy_stats full = buddy.stats();
  EXPECT_EQ(full.bytes_free, 0U);
  EXPECT_EQ(full.largest_free_block, 0U);
  EXPECT_EQ(full.external_fragmentation, 0.0);
  EXPECT_EQ(full.bytes_in_use, 4096U);
  EXPECT_EQ(full.bytes_requested, 64U * 60);
  EXPECT_EQ(full.internal_fragmentation, 64U * 4);
  EXPECT_THROW((void)buddy.allocate(1), pmrkit::allocation_error);  // max_regions reached

  for (std::size_t i = 0; i < blocks.size(); i += 2)
    buddy.deallocate(blocks[i], 60);
  const pmrkit::buddy_stats holes = buddy.stats();
  EXPECT_EQ(holes.bytes_free, 2048U);
  EXPECT_EQ(holes.largest_free_block, 64U);
  EXPECT_DOUBLE_EQ(holes.external_fragmentation, 1.0 - 64.0 / 2048.0);  // 0.96875
  EXPECT_EQ(buddy.order_stats(0).free_blocks, 32U);
  EXPECT_EQ(buddy.order_stats(0).blocks_in_use, 32U);
  EXPECT_EQ(holes.internal_fragmentation, 32U * 4);
  // Half the region is free, yet no 128-byte block exists.
  try {
    (void)buddy.allocate(128);
    ADD_FAILURE() << "expected allocation_error";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::out_of_capacity);
    EXPECT_EQ(e.requested(), 128U);
  }
  // Freeing one neighbour merges a 128-byte block; the rest stays fragmented.
  buddy.deallocate(blocks[1], 60);
  EXPECT_EQ(buddy.stats().largest_free_block, 128U);
  EXPECT_DOUBLE_EQ(buddy.stats().external_fragmentation, 1.0 - 128.0 / 2112.0);
  EXPECT_EQ(buddy.verify(), "");

  for (std::size_t i = 3; i < blocks.size(); i += 2)
    buddy.deallocate(blocks[i], 60);
  const pmrkit::buddy_stats empty = buddy.stats();
  EXPECT_EQ(empty.bytes_free, 4096U);
  EXPECT_EQ(empty.largest_free_block, 4096U);
  EXPECT_EQ(empty.external_fragmentation, 0.0);
  EXPECT_EQ(empty.internal_fragmentation, 0U);
  EXPECT_EQ(buddy.verify(), "");
}

// The model-based test: random allocations and frees of random sizes and alignments, the
// bookkeeping checked after every step against its invariants and a model of the live blocks.
struct live_block {
  std::size_t size;
  std::size_t alignment;
  unsigned char fill;
};

void run_model(buddy_resource& buddy, std::mt19937& rng, int steps, std::size_t max_size) {
  SCOPED_TRACE("cache_blocks_per_order " + std::to_string(buddy.cache_blocks_per_order()));
  std::map<std::uintptr_t, live_block> live;
  std::size_t requested = 0;
  const auto block_of = [&](const live_block& b) {
    return std::bit_ceil(std::max({b.size, b.alignment, buddy.min_block()}));
  };
  for (int step = 0; step < steps; ++step) {
    const bool allocate = live.empty() || rng() % 100 < 55;
    if (allocate) {
      const std::size_t size = std::size_t{1} + rng() % max_size;
      const std::size_t alignment = std::size_t{1} << (rng() % 8);
      void* p = nullptr;
      try {
        p = buddy.allocate(size, alignment);
      } catch (const pmrkit::allocation_error&) {
        continue;  // out of regions: fine, the model is unchanged
      }
      const live_block b{size, alignment, static_cast<unsigned char>(rng())};
      ASSERT_EQ(address(p) % block_of(b), 0U) << "step " << step;
      // No overlap with a neighbour in the model.
      const auto next = live.lower_bound(address(p));
      if (next != live.end()) {
        ASSERT_GE(next->first, address(p) + block_of(b)) << "step " << step;
      }
      if (next != live.begin()) {
        const auto previous = std::prev(next);
        ASSERT_LE(previous->first + block_of(previous->second), address(p)) << "step " << step;
      }
      std::memset(p, b.fill, size);
      live.emplace(address(p), b);
      requested += size;
    } else {
      auto victim = live.begin();
      std::advance(victim, static_cast<std::ptrdiff_t>(rng() % live.size()));
      const live_block b = victim->second;
      auto* bytes = reinterpret_cast<unsigned char*>(victim->first);
      ASSERT_TRUE(std::all_of(bytes, bytes + b.size, [&](unsigned char c) { return c == b.fill; }))
          << "step " << step << ": contents changed";
      buddy.deallocate(bytes, b.size, b.alignment);
      requested -= b.size;
      live.erase(victim);
    }
    ASSERT_EQ(buddy.verify(), "") << "step " << step;
    const pmrkit::buddy_stats s = buddy.stats();
    ASSERT_EQ(s.blocks_in_use, live.size()) << "step " << step;
    ASSERT_EQ(s.bytes_requested, requested) << "step " << step;
    ASSERT_EQ(s.bytes_free + s.bytes_in_use, s.capacity) << "step " << step;
    ASSERT_LE(s.bytes_cached, s.bytes_free) << "step " << step;
    std::size_t cached = 0;
    std::size_t free_bytes = 0;
    for (std::size_t order = 0; order < buddy.order_count(); ++order) {
      const pmrkit::buddy_order_stats o = buddy.order_stats(order);
      ASSERT_LE(o.blocks_cached, buddy.cache_blocks_per_order()) << "step " << step;
      ASSERT_LE(o.blocks_cached, o.free_blocks) << "step " << step;
      cached += o.blocks_cached * o.block_size;
      free_bytes += o.free_blocks * o.block_size;
    }
    ASSERT_EQ(cached, s.bytes_cached) << "step " << step;
    ASSERT_EQ(free_bytes, s.bytes_free) << "step " << step;
    if (rng() % 10 == 0) {
      // Merging the caches changes none of the figures: largest_free_block already said what
      // merging makes. (Only now and then, so that the caches fill in between.)
      const std::size_t was_cached = s.bytes_cached;
      const std::size_t merged = buddy.coalesce();
      const pmrkit::buddy_stats m = buddy.stats();
      ASSERT_EQ(merged == 0, was_cached == 0) << "step " << step;
      ASSERT_EQ(m.bytes_cached, 0U) << "step " << step;
      ASSERT_EQ(m.largest_free_block, s.largest_free_block) << "step " << step;
      ASSERT_EQ(m.bytes_free, s.bytes_free) << "step " << step;
      ASSERT_EQ(buddy.verify(), "") << "step " << step;
    }
  }
  for (const auto& [p, b] : live)
    buddy.deallocate(reinterpret_cast<void*>(p), b.size, b.alignment);
  ASSERT_EQ(buddy.verify(), "");
}

// The model tests run with the cache off (eager merging), tiny (overflowing all the time) and
// at the default size.
class BuddyModel : public ::testing::TestWithParam<std::size_t> {};
INSTANTIATE_TEST_SUITE_P(CacheSizes, BuddyModel,
                         ::testing::Values(std::size_t{0}, std::size_t{1}, std::size_t{4},
                                           buddy_options{}.cache_blocks_per_order),
                         [](const auto& info) { return "cache" + std::to_string(info.param); });

TEST_P(BuddyModel, ModelBasedRandomStepsKeepEveryInvariant) {
  test_resource upstream(upstream_options);
  for (unsigned seed = 1; seed <= 4; ++seed) {
    buddy_resource buddy({.region_size = 8192,
                          .min_block = 32,
                          .max_regions = 4,
                          .cache_blocks_per_order = GetParam()},
                         &upstream);
    std::mt19937 rng(seed);
    run_model(buddy, rng, 3000, 3000);
    // Everything freed and merged: each region is one free block again.
    EXPECT_EQ(buddy.stats().largest_free_block, buddy.stats().regions == 0 ? 0U : 8192U);
    (void)buddy.coalesce();
    const pmrkit::buddy_stats s = buddy.stats();
    EXPECT_EQ(s.blocks_in_use, 0U);
    EXPECT_EQ(buddy.order_stats(buddy.order_count() - 1).free_blocks, s.regions);
    EXPECT_EQ(s.bytes_free, s.regions * 8192);
    EXPECT_EQ(s.largest_free_block, s.regions == 0 ? 0U : 8192U);
    EXPECT_EQ(chunks_shrunk(buddy), s.regions);
    EXPECT_EQ(buddy.stats().regions, 0U);
  }
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
  EXPECT_TRUE(upstream.errors().empty());
}

TEST_P(BuddyModel, ModelBasedRandomStepsOverABuffer) {
  // An unaligned buffer spanning three windows: the parts outside it are never handed out.
  std::vector<std::byte> storage(3 * 4096 + 64);
  const std::span<std::byte> buffer = std::span<std::byte>(storage).subspan(40, 2 * 4096 + 1000);
  test_resource upstream(upstream_options);
  buddy_resource buddy(buffer,
                       {.region_size = 4096,
                        .min_block = 16,
                        .max_regions = 0,
                        .cache_blocks_per_order = GetParam()},
                       &upstream);
  std::mt19937 rng(11);
  run_model(buddy, rng, 3000, 600);
  const pmrkit::buddy_stats s = buddy.stats();
  EXPECT_EQ(s.bytes_free, s.capacity);
  // The capacity is the buffer trimmed to 16-byte blocks at both ends.
  const std::uintptr_t begin = (address(buffer.data()) + 15) & ~std::uintptr_t{15};
  const std::uintptr_t end = (address(buffer.data()) + buffer.size()) & ~std::uintptr_t{15};
  EXPECT_EQ(s.capacity, end - begin);
  EXPECT_EQ(chunks_shrunk(buddy), 0U);  // the buffer is not the upstream's
  for (int i = 0; i < 100; ++i) {
    void* p = buddy.allocate(16);
    EXPECT_GE(address(p), address(buffer.data()));
    EXPECT_LE(address(p) + 16, address(buffer.data()) + buffer.size());
  }
  buddy.release();
  EXPECT_EQ(buddy.stats().blocks_in_use, 0U);
  EXPECT_EQ(upstream.blocks_in_use(), 0U);  // the metadata went back too
  EXPECT_EQ(buddy.stats().regions, 0U);
  void* p = buddy.allocate(16);  // the buffer is installed again
  EXPECT_TRUE(buddy.owns(p));
  EXPECT_EQ(buddy.verify(), "");
}

TEST(BuddyResource, ABufferFirstThenUpstreamRegions) {
  alignas(4096) static std::byte storage[4096];
  test_resource upstream(upstream_options);
  buddy_resource buddy(storage, {.region_size = 4096, .min_block = 64, .max_regions = 1},
                       &upstream);
  void* a = buddy.allocate(4096);
  EXPECT_EQ(a, static_cast<void*>(storage));
  void* b = buddy.allocate(4096);  // from the upstream
  EXPECT_NE(b, a);
  EXPECT_EQ(buddy.stats().regions, 2U);
  EXPECT_THROW((void)buddy.allocate(64), pmrkit::allocation_error);
  buddy.deallocate(b, 4096);
  EXPECT_EQ(chunks_shrunk(buddy), 1U);
  EXPECT_EQ(buddy.stats().regions, 1U);
  buddy.deallocate(a, 4096);
}

TEST(BuddyResource, ShrinkReturnsOnlyEntirelyFreeRegions) {
  test_resource upstream(upstream_options);
  buddy_resource buddy({.region_size = 4096, .min_block = 64}, &upstream);
  std::vector<void*> blocks;
  for (int i = 0; i < 4; ++i)
    blocks.push_back(buddy.allocate(4096));
  void* small = buddy.allocate(64);  // a fifth region
  EXPECT_EQ(buddy.stats().regions, 5U);
  buddy.deallocate(blocks[1], 4096);
  buddy.deallocate(blocks[3], 4096);
  EXPECT_EQ(chunks_shrunk(buddy), 2U);
  EXPECT_EQ(buddy.stats().regions, 3U);
  EXPECT_EQ(buddy.verify(), "");
  buddy.deallocate(blocks[0], 4096);
  buddy.deallocate(blocks[2], 4096);
  buddy.deallocate(small, 64);
  EXPECT_EQ(chunks_shrunk(buddy), 3U);
  EXPECT_EQ(buddy.stats().regions, 0U);
  // Regions come back when needed, slots reused.
  void* again = buddy.allocate(100);
  EXPECT_TRUE(buddy.owns(again));
  buddy.deallocate(again, 100);
}

TEST(BuddyResource, ManyRegionsUseMoreThanOneWordOfSlots) {
  test_resource upstream(upstream_options);
  buddy_resource buddy({.region_size = 1024, .min_block = 64}, &upstream);
  std::vector<void*> blocks;
  for (int i = 0; i < 200; ++i)
    blocks.push_back(buddy.allocate(600));  // one region each
  EXPECT_EQ(buddy.stats().regions, 200U);
  EXPECT_EQ(buddy.verify(), "");
  for (std::size_t i = 0; i < blocks.size(); i += 3)
    buddy.deallocate(blocks[i], 600);
  // A 512-byte block is free in every third region, found through the slot words.
  for (std::size_t i = 0; i < blocks.size(); i += 3)
    blocks[i] = buddy.allocate(500);
  EXPECT_EQ(buddy.stats().regions, 200U);
  EXPECT_EQ(buddy.verify(), "");
  for (void* p : blocks)
    EXPECT_TRUE(buddy.owns(p));
  buddy.release();
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
}

TEST(BuddyResource, ReleaseReturnsEverythingAndStaysUsable) {
  test_resource upstream(upstream_options);
  buddy_resource buddy({.region_size = 4096, .min_block = 64}, &upstream);
  for (int i = 0; i < 20; ++i)
    (void)buddy.allocate(static_cast<std::size_t>(100 * (i + 1)));
  (void)buddy.allocate(100000);
  buddy.release();
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
  EXPECT_EQ(buddy.stats().bytes_from_upstream, 0U);
  EXPECT_EQ(buddy.stats().bytes_free, 0U);
  void* p = buddy.allocate(64);
  buddy.deallocate(p, 64);
  EXPECT_EQ(buddy.verify(), "");
}

TEST(BuddyResource, UpstreamFailureLeavesItUnchanged) {
  test_resource upstream(upstream_options);
  buddy_resource buddy({.region_size = 4096, .min_block = 64}, &upstream);
  std::vector<std::pair<void*, std::size_t>> live;
  pmrkit::exception_test(upstream, [&] {
    try {
      for (std::size_t size : {100U, 2000U, 3000U, 4000U, 50U})
        live.emplace_back(buddy.allocate(size), size);
    } catch (const pmrkit::allocation_error&) {
      // The blocks served before the failure are intact and go back as usual.
      EXPECT_EQ(buddy.verify(), "");
      for (auto [p, size] : live)
        buddy.deallocate(p, size);
      live.clear();
      EXPECT_EQ(buddy.verify(), "");
      EXPECT_EQ(buddy.stats().bytes_from_upstream, upstream.bytes_in_use());
      buddy.release();  // the run leaves nothing behind upstream
      throw;
    }
  });
  EXPECT_EQ(buddy.verify(), "");
  for (auto [p, size] : live)
    buddy.deallocate(p, size);
  EXPECT_EQ(buddy.stats().blocks_in_use, 0U);
  buddy.release();
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
}

// An upstream that throws a plain std::bad_alloc (not a pmrkit error) on its nth
// allocation from now, and counts the bytes it has handed out.
class plain_failing_upstream final : public std::pmr::memory_resource {
 public:
  void fail_at(long long n) noexcept { countdown_ = n; }
  [[nodiscard]] std::size_t bytes_in_use() const noexcept { return bytes_; }

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    if (countdown_ >= 0 && countdown_-- == 0) throw std::bad_alloc();
    void* p = std::pmr::new_delete_resource()->allocate(bytes, alignment);
    bytes_ += bytes;
    return p;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    bytes_ -= bytes;
    std::pmr::new_delete_resource()->deallocate(p, bytes, alignment);
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  long long countdown_ = -1;
  std::size_t bytes_ = 0;
};

// The region tables (slots, address index, level sets) grow through the upstream too: a plain
// std::bad_alloc there reaches the caller as allocation_error naming the buddy, like every
// other failure, and leaves it consistent and usable.
TEST(BuddyResource, AFailureWhileTheRegionTablesGrowIsAnAllocationError) {
  for (long long n = 0;; ++n) {
    plain_failing_upstream upstream;
    buddy_resource buddy({.region_size = 4096, .min_block = 64, .name = "tables"}, &upstream);
    upstream.fail_at(n);  // the region, then each table, then the region's metadata
    bool failed = false;
    try {
      buddy.deallocate(buddy.allocate(100), 100);
    } catch (const pmrkit::allocation_error& e) {
      failed = true;
      EXPECT_EQ(e.reason(), pmrkit::failure_reason::upstream_failed) << n;
      EXPECT_EQ(e.resource_name(), "tables") << n;
    } catch (const std::bad_alloc&) {
      ADD_FAILURE() << "allocation " << n << ": a plain std::bad_alloc escaped";
      failed = true;
    }
    EXPECT_EQ(buddy.verify(), "") << n;
    EXPECT_EQ(buddy.stats().bytes_from_upstream, upstream.bytes_in_use()) << n;
    upstream.fail_at(-1);
    void* p = buddy.allocate(3000);  // still usable
    EXPECT_EQ(buddy.verify(), "") << n;
    buddy.deallocate(p, 3000);
    buddy.release();
    EXPECT_EQ(upstream.bytes_in_use(), 0U) << n;
    if (!failed) break;  // every upstream allocation of the first request has failed once
  }
}

// Built the ways every resource is (docs/contract.md), `{}` meaning buddy_options, and with a
// buffer first the same rule after it.
TEST(BuddyResource, ConstructsTheWaysEveryResourceDoes) {
  static_assert(std::is_default_constructible_v<buddy_resource>);
  static_assert(std::is_constructible_v<buddy_resource, test_resource*>);
  static_assert(std::is_constructible_v<buddy_resource, buddy_options>);
  static_assert(std::is_constructible_v<buddy_resource, buddy_options, test_resource*>);
  static_assert(requires { buddy_resource({}); });
  static_assert(requires(std::pmr::memory_resource * upstream) { buddy_resource({}, upstream); });
  static_assert(requires(std::span<std::byte> buffer, std::pmr::memory_resource * upstream) {
    buddy_resource(buffer);
    buddy_resource(buffer, upstream);
    buddy_resource(buffer, buddy_options{});
    buddy_resource(buffer, buddy_options{}, upstream);
    buddy_resource(buffer, {});
    buddy_resource(buffer, {}, upstream);
  });
  static_assert(!std::is_copy_constructible_v<buddy_resource>);
  static_assert(!std::is_move_constructible_v<buddy_resource>);
  static_assert(!std::is_convertible_v<std::pmr::memory_resource*, buddy_resource>);
  test_resource upstream(upstream_options);
  std::pmr::memory_resource* base = &upstream;
  buddy_resource a;
  buddy_resource b(base);
  buddy_resource c(buddy_options{.region_size = 4096});
  buddy_resource d(buddy_options{.name = "d"}, &upstream);
  buddy_resource e({});
  buddy_resource f({}, &upstream);
  buddy_resource g({.region_size = 4096, .min_block = 16}, base);
  EXPECT_EQ(a.upstream_resource(), std::pmr::get_default_resource());
  EXPECT_EQ(b.upstream_resource(), &upstream);
  EXPECT_EQ(c.region_size(), 4096U);
  EXPECT_EQ(d.name(), "d");
  EXPECT_EQ(e.name(), "buddy");
  EXPECT_EQ(f.upstream_resource(), &upstream);
  EXPECT_EQ(g.min_block(), 16U);
  alignas(4096) static std::array<std::byte, 8192> storage;
  const std::span<std::byte> buffer(storage);
  buddy_resource h(storage);  // anything that converts to std::span<std::byte>
  buddy_resource i(buffer, &upstream);
  buddy_resource j(buffer, buddy_options{.region_size = 4096, .max_regions = 0});
  buddy_resource k(buffer, buddy_options{.region_size = 4096, .name = "k"}, &upstream);
  buddy_resource l(buffer, {});
  buddy_resource m(buffer, {.region_size = 4096, .max_regions = 0}, base);
  EXPECT_EQ(h.upstream_resource(), std::pmr::get_default_resource());
  EXPECT_EQ(i.upstream_resource(), &upstream);
  EXPECT_EQ(k.name(), "k");
  EXPECT_EQ(l.region_size(), std::size_t{1} << 20);
  void* p = m.allocate(64);
  EXPECT_TRUE(m.owns(p) && p >= storage.data() && p < storage.data() + storage.size());
  m.deallocate(p, 64);
  EXPECT_EQ(m.stats().chunk_count, 0U);  // the buffer is no chunk of the upstream
}

TEST(BuddyResource, ServesContainers) {
  test_resource upstream(upstream_options);
  buddy_resource buddy({.region_size = 1 << 16, .min_block = 32}, &upstream);
  {
    std::pmr::map<int, std::pmr::string> names(&buddy);
    for (int i = 0; i < 1000; ++i)
      names.emplace(i, std::pmr::string(static_cast<std::size_t>(20 + i % 200), 'x'));
    std::pmr::vector<int> numbers(&buddy);
    for (int i = 0; i < 50000; ++i)
      numbers.push_back(i);  // grows past a region: the last buffers go upstream
    EXPECT_EQ(names.size(), 1000U);
    EXPECT_EQ(buddy.verify(), "");
  }
  EXPECT_EQ(buddy.stats().blocks_in_use, 0U);
  EXPECT_EQ(buddy.stats().large_blocks_in_use, 0U);
  EXPECT_EQ(buddy.stats().largest_free_block, 1U << 16);
}

// Lazy coalescing: the per-order caches.

// Found by fuzz_buddy: before the first region there is no cache storage, and coalesce() (and
// shrink(), which merges first) offset the null pointer to each order's cache: undefined
// behaviour that clang's UBSan reports (fuzz/regressions/buddy/ replays it; GCC's does not).
TEST(BuddyCache, CoalesceAndShrinkBeforeTheFirstRegionTouchNothing) {
  pmrkit::buddy_resource buddy({.cache_blocks_per_order = 4}, std::pmr::null_memory_resource());
  EXPECT_EQ(buddy.coalesce(), 0U);
  EXPECT_EQ(buddy.shrink(), 0U);
  EXPECT_EQ(buddy.stats().bytes_from_upstream, 0U);
}

TEST(BuddyCache, AFreedBlockAskedForAgainComesFromTheCacheUnmerged) {
  test_resource upstream(upstream_options);
  buddy_resource buddy({.region_size = 4096, .min_block = 64, .cache_blocks_per_order = 4},
                       &upstream);
  void* a = buddy.allocate(64);  // splits the region down to 64
  buddy.deallocate(a, 64);
  // Cached, not merged: the split halves are still there, and the block counts as free.
  EXPECT_EQ(buddy.order_stats(0).blocks_cached, 1U);
  EXPECT_EQ(buddy.order_stats(0).free_blocks, 2U);  // a, and its buddy in the tree
  EXPECT_EQ(buddy.order_stats(5).free_blocks, 1U);
  EXPECT_EQ(buddy.order_stats(6).free_blocks, 0U);
  EXPECT_EQ(buddy.stats().bytes_free, 4096U);
  EXPECT_EQ(buddy.stats().bytes_cached, 64U);
  EXPECT_EQ(buddy.verify(), "");
  void* b = buddy.allocate(40);
  EXPECT_EQ(b, a);  // the cached block, no split
  EXPECT_EQ(buddy.order_stats(0).blocks_cached, 0U);
  EXPECT_EQ(buddy.order_stats(0).free_blocks, 1U);
  buddy.deallocate(b, 40);
  EXPECT_EQ(buddy.coalesce(), 1U);
  EXPECT_EQ(buddy.order_stats(6).free_blocks, 1U);  // one free region again
  EXPECT_EQ(buddy.coalesce(), 0U);
  EXPECT_EQ(buddy.verify(), "");
}

TEST(BuddyCache, WithoutACacheEveryFreeMerges) {
  buddy_resource buddy({.region_size = 4096, .min_block = 64, .cache_blocks_per_order = 0});
  EXPECT_EQ(buddy.cache_blocks_per_order(), 0U);
  buddy.deallocate(buddy.allocate(64), 64);
  EXPECT_EQ(buddy.order_stats(0).blocks_cached, 0U);
  EXPECT_EQ(buddy.order_stats(6).free_blocks, 1U);
  EXPECT_EQ(buddy.stats().bytes_cached, 0U);
  EXPECT_EQ(buddy.coalesce(), 0U);
}

TEST(BuddyCache, AFullCacheMergesItsOlderHalf) {
  buddy_resource buddy({.region_size = 4096, .min_block = 64, .cache_blocks_per_order = 4});
  std::vector<void*> blocks;
  for (int i = 0; i < 8; ++i)
    blocks.push_back(buddy.allocate(64));  // 0..511 of the region
  for (int i = 0; i < 4; ++i)
    buddy.deallocate(blocks[static_cast<std::size_t>(i)], 64);
  EXPECT_EQ(buddy.order_stats(0).blocks_cached, 4U);
  EXPECT_EQ(buddy.order_stats(0).free_blocks, 4U);
  // The fifth free finds the cache full: blocks 0 and 1 (the oldest) merge into one of 128.
  buddy.deallocate(blocks[4], 64);
  EXPECT_EQ(buddy.order_stats(0).blocks_cached, 3U);
  EXPECT_EQ(buddy.order_stats(0).free_blocks, 3U);
  EXPECT_EQ(buddy.order_stats(1).free_blocks, 1U);
  EXPECT_EQ(buddy.stats().bytes_free, 4096U - 3 * 64);
  EXPECT_EQ(buddy.verify(), "");
  // The newest cached block is the next one handed out.
  EXPECT_EQ(buddy.allocate(64), blocks[4]);
  EXPECT_EQ(buddy.allocate(64), blocks[3]);
}

TEST(BuddyCache, LargestFreeBlockCountsWhatMergingTheCacheMakes) {
  buddy_resource buddy({.region_size = 4096, .min_block = 64, .max_regions = 1});
  std::vector<void*> blocks;
  for (int i = 0; i < 64; ++i)
    blocks.push_back(buddy.allocate(64));
  // Blocks 0..3 freed: cached, unmerged, but together a free 256-byte block.
  for (std::size_t i = 0; i < 4; ++i)
    buddy.deallocate(blocks[i], 64);
  EXPECT_EQ(buddy.order_stats(0).blocks_cached, 4U);
  EXPECT_EQ(buddy.stats().largest_free_block, 256U);
  // Blocks 5 and 6 are not buddies (4 and 7 are in use): no merge between them.
  buddy.deallocate(blocks[5], 64);
  buddy.deallocate(blocks[6], 64);
  EXPECT_EQ(buddy.stats().largest_free_block, 256U);
  EXPECT_DOUBLE_EQ(buddy.stats().external_fragmentation, 1.0 - 256.0 / 384.0);
  // Blocks 8..15, all cached: together a 512-byte block.
  for (std::size_t i = 8; i < 16; ++i)
    buddy.deallocate(blocks[i], 64);
  EXPECT_EQ(buddy.stats().largest_free_block, 512U);
  // It is the largest request that succeeds now: one region only, so it merges the caches.
  void* big = buddy.allocate(512);
  EXPECT_EQ(big, blocks[8]);
  EXPECT_EQ(buddy.stats().bytes_cached, 0U);
  EXPECT_EQ(buddy.stats().largest_free_block, 256U);
  EXPECT_THROW((void)buddy.allocate(512), pmrkit::allocation_error);
  EXPECT_EQ(buddy.verify(), "");
}

TEST(BuddyCache, AnAllocationTheTreesCannotServeMergesTheCachesFirst) {
  test_resource upstream(upstream_options);
  buddy_resource buddy({.region_size = 4096, .min_block = 64, .cache_blocks_per_order = 64},
                       &upstream);
  std::vector<void*> blocks;
  for (int i = 0; i < 64; ++i)
    blocks.push_back(buddy.allocate(64));
  for (void* p : blocks)
    buddy.deallocate(p, 64);
  EXPECT_EQ(buddy.order_stats(0).blocks_cached, 64U);  // the whole region, in the cache
  EXPECT_EQ(buddy.stats().largest_free_block, 4096U);
  // A whole region's block: the caches merge rather than a second region being taken.
  void* whole = buddy.allocate(4096);
  EXPECT_EQ(buddy.stats().regions, 1U);
  EXPECT_EQ(buddy.stats().bytes_cached, 0U);
  EXPECT_EQ(whole, blocks.front());
  buddy.deallocate(whole, 4096);
  EXPECT_EQ(buddy.verify(), "");
}

TEST(BuddyCache, ShrinkMergesTheCachesAndReturnsTheFreeRegions) {
  test_resource upstream(upstream_options);
  buddy_resource buddy({.region_size = 4096, .min_block = 64}, &upstream);
  void* a = buddy.allocate(64);
  void* b = buddy.allocate(1000);
  buddy.deallocate(a, 64);
  buddy.deallocate(b, 1000);
  EXPECT_NE(buddy.stats().bytes_cached, 0U);
  EXPECT_EQ(chunks_shrunk(buddy), 1U);
  EXPECT_EQ(buddy.stats().regions, 0U);
  EXPECT_EQ(buddy.stats().bytes_cached, 0U);
  EXPECT_EQ(upstream.bytes_in_use(), buddy.stats().bytes_from_upstream);
  // And release() drops what is cached with the regions, the caches' slots too.
  buddy.deallocate(buddy.allocate(64), 64);
  buddy.release();
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
  EXPECT_EQ(buddy.order_stats(0).blocks_cached, 0U);
  EXPECT_EQ(buddy.verify(), "");
  void* again = buddy.allocate(64);  // usable afterwards, with a cache again
  buddy.deallocate(again, 64);
  EXPECT_EQ(buddy.order_stats(0).blocks_cached, 1U);
}

// Cached blocks are free memory: poisoned under AddressSanitizer, filled in checked builds.
TEST(BuddyCache, CachedBlocksArePoisonedLikeFreeMemory) {
  buddy_resource buddy({.region_size = 4096, .min_block = 64});
  auto* p = static_cast<unsigned char*>(buddy.allocate(64));
  std::memset(p, 0x11, 64);
  buddy.deallocate(p, 64);
  ASSERT_EQ(buddy.order_stats(0).blocks_cached, 1U);
#if PMRKIT_HAS_ASAN
  EXPECT_TRUE(pmrkit::detail::is_poisoned(p));
  EXPECT_TRUE(pmrkit::detail::is_poisoned(p + 63));
#elif PMRKIT_CHECKED
  EXPECT_EQ(p[0], pmrkit::detail::retired_fill);  // read only where nothing poisons it
  EXPECT_EQ(p[63], pmrkit::detail::retired_fill);
#endif
  auto* q = static_cast<unsigned char*>(buddy.allocate(64));
  ASSERT_EQ(q, p);
#if PMRKIT_HAS_ASAN
  EXPECT_FALSE(pmrkit::detail::is_poisoned(q));
#endif
  q[0] = 1;  // usable again
  buddy.deallocate(q, 64);
}

#if PMRKIT_CHECKED
TEST(BuddyCache, CheckedBuildsReportADoubleFreeOfACachedBlock) {
  pmrkit::violation_recorder recorder;
  buddy_resource buddy({.region_size = 4096, .min_block = 64, .name = "cached"});
  buddy_resource other({.region_size = 4096, .min_block = 64});
  void* a = buddy.allocate(64);
  void* keep = buddy.allocate(64);
  buddy.deallocate(a, 64);
  ASSERT_EQ(buddy.order_stats(0).blocks_cached, 1U);
  buddy.deallocate(a, 64);  // a sits in the cache
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::double_free), 1U);
  EXPECT_EQ(recorder.violations().back().resource_name, "cached");
  EXPECT_EQ(buddy.order_stats(0).blocks_cached, 1U);  // not cached twice
  other.deallocate(a, 64);                            // a block of another buddy, cached there
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::foreign_pointer), 1U);
  buddy.deallocate(a, 128);  // a cached block freed as another size
  EXPECT_EQ(recorder.size(), 3U);
  EXPECT_EQ(buddy.order_stats(1).blocks_cached, 0U);
  EXPECT_EQ(buddy.verify(), "");
  EXPECT_EQ(buddy.allocate(64), a);  // the cache still holds it once
  EXPECT_EQ(buddy.order_stats(0).blocks_cached, 0U);
  buddy.deallocate(a, 64);
  buddy.deallocate(keep, 64);
  (void)buddy.coalesce();
  buddy.deallocate(keep, 64);  // merged into the tree now: still a double free
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::double_free), 3U);
  EXPECT_EQ(buddy.verify(), "");
  EXPECT_EQ(buddy.stats().largest_free_block, 4096U);
}

TEST(BuddyResource, CheckedBuildsReportMisuse) {
  pmrkit::violation_recorder recorder;
  buddy_resource buddy({.region_size = 4096, .min_block = 64});
  void* a = buddy.allocate(100);  // a 128-byte block
  void* b = buddy.allocate(64);
  int local = 0;
  buddy.deallocate(&local, 64);
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::foreign_pointer), 1U);
  buddy.deallocate(static_cast<std::byte*>(a) + 64, 64);  // inside a block in use
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::foreign_pointer), 2U);
  buddy.deallocate(a, 300);  // names a 512-byte block
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::size_mismatch), 1U);
  EXPECT_EQ(recorder.violations().back().expected_size, 128U);
  buddy.deallocate(b, 64);
  buddy.deallocate(b, 64);
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::double_free), 1U);
  EXPECT_EQ(recorder.violations().back().resource_name, "buddy");
  EXPECT_EQ(buddy.verify(), "");  // the misuse changed nothing
  buddy.deallocate(a, 100);
  EXPECT_EQ(recorder.size(), 4U);
  EXPECT_EQ(buddy.stats().largest_free_block, 4096U);
}
#endif

// The buffer is laid out at the first allocation (and again after release()); the figures
// must not wait for it: region_resource's stats read them right after construction.
TEST(BuddyResource, FiguresOfABufferAreRightBeforeItsFirstAllocationAndAfterRelease) {
  alignas(4096) static std::byte buffer[3 * 4096 + 512];
  buddy_resource buddy(std::span<std::byte>(buffer).subspan(512),  // not window-aligned
                       buddy_options{.region_size = 4096, .min_block = 64, .max_regions = 0},
                       std::pmr::new_delete_resource());
  const auto expect_whole = [&](const char* when) {
    const pmrkit::buddy_stats s = buddy.stats();
    EXPECT_EQ(s.capacity, 3 * 4096U) << when;
    EXPECT_EQ(s.bytes_free, 3 * 4096U) << when;
    EXPECT_EQ(s.largest_free_block, 4096U) << when;
    EXPECT_EQ(buddy.order_stats(6).free_blocks, 2U) << when;  // the two whole windows
    EXPECT_EQ(buddy.order_stats(3).free_blocks, 2U) << when;  // 512 B at both partial ends
  };
  expect_whole("before the first allocation");
  EXPECT_EQ(buddy.stats().regions, 0U);  // nothing laid out yet
  void* p = buddy.allocate(64);
  buddy.deallocate(p, 64);
  EXPECT_EQ(buddy.stats().largest_free_block, 4096U);  // p is cached: what merging it makes
  EXPECT_EQ(buddy.coalesce(), 1U);                     // the block sizes below are the merged ones
  expect_whole("laid out, everything free");
  EXPECT_EQ(buddy.stats().regions, 4U);  // a partial window, two whole ones, a partial one
  buddy.release();
  expect_whole("after release()");
  EXPECT_EQ(buddy.stats().regions, 0U);
}

}  // namespace
