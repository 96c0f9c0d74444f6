// region_resource: typed regions over page sources (include/pmr/region/region_resource.hpp),
// and memory_type / memory_flags (memory_type.hpp).
#include <pmr/core/align.hpp>
#include <pmr/core/config.hpp>
#include <pmr/core/error.hpp>
#include <pmr/core/literals.hpp>
#include <pmr/region/locked_page_resource.hpp>
#include <pmr/region/memory_type.hpp>
#include <pmr/region/page_resource.hpp>
#include <pmr/region/region_resource.hpp>
#include <pmr/testing/test_resource.hpp>
#include <pmr/testing/violation_recorder.hpp>

#include "conformance/conformance.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <memory>
#include <memory_resource>
#include <stdexcept>
#include <string>
#include <vector>

#if PMRKIT_HAS_SHM
#include <sys/wait.h>
#include <unistd.h>
#endif

namespace {

using namespace pmrkit::literals;
using pmrkit::memory_flags;
using pmrkit::memory_type;
using pmrkit::region_resource;
using pmrkit::region_spec;
using pmrkit::region_strategy;

struct buddy_region_traits {
  using resource_type = region_resource;
  static constexpr std::string_view name = "pmrkit::region_resource (system, buddy, 64 MiB)";
  static constexpr pmrkit::conformance::capabilities caps{};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(region_spec{.capacity = 64_MiB}, upstream);
  }
};

struct pool_region_traits {
  using resource_type = region_resource;
  static constexpr std::string_view name = "pmrkit::region_resource (network, pool of 2 KiB)";
  static constexpr pmrkit::conformance::capabilities caps{
      .max_alignment = 64, .max_size = 2048, .serves_containers = false};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(
        region_spec{.capacity = 4_MiB, .type = memory_type::network}, upstream);
  }
};

struct arena_region_traits {
  using resource_type = region_resource;
  static constexpr std::string_view name = "pmrkit::region_resource (temporary, arena 64 MiB)";
  static constexpr pmrkit::conformance::capabilities caps{.reuses_memory = false};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(
        region_spec{.capacity = 64_MiB, .type = memory_type::temporary}, upstream);
  }
};

using region_types = ::testing::Types<buddy_region_traits, pool_region_traits, arena_region_traits>;
INSTANTIATE_TYPED_TEST_SUITE_P(region, resource_conformance, region_types,
                               pmrkit::conformance::traits_names);

using pmrkit::conformance::invalid_argument_of;

TEST(MemoryType, NamesRoundTrip) {
  for (const memory_type type : pmrkit::all_memory_types) {
    EXPECT_EQ(pmrkit::parse_memory_type(pmrkit::to_string(type)), type);
  }
  EXPECT_EQ(pmrkit::to_string(memory_type::temporary), "temporary");
  EXPECT_FALSE(pmrkit::parse_memory_type("Video").has_value());
  const memory_flags all = memory_flags::dma_capable | memory_flags::zero_fill |
                           memory_flags::huge_pages | memory_flags::critical;
  EXPECT_EQ(pmrkit::to_string(all), "dma_capable|zero_fill|huge_pages|critical");
  EXPECT_EQ(pmrkit::parse_memory_flags(pmrkit::to_string(all)), all);
  EXPECT_EQ(pmrkit::parse_memory_flags("zero_fill,critical"),
            memory_flags::zero_fill | memory_flags::critical);
  EXPECT_EQ(pmrkit::parse_memory_flags(""), memory_flags::none);
  EXPECT_EQ(pmrkit::to_string(memory_flags::none), "none");
  EXPECT_FALSE(pmrkit::parse_memory_flags("zero_fill|fast").has_value());
}

TEST(RegionResource, TypesHaveTheirDefaults) {
  const region_spec video = region_spec::for_type(memory_type::video, 1_MiB);
  EXPECT_EQ(video.alignment, 256U);
  EXPECT_EQ(video.strategy, region_strategy::buddy);
  EXPECT_EQ(video.backing, "pages");
  EXPECT_EQ(video.name, "video");
  const region_spec audio = region_spec::for_type(memory_type::audio, 1_MiB);
  EXPECT_EQ(audio.alignment, 64U);
  EXPECT_EQ(audio.strategy, region_strategy::pool);
  EXPECT_EQ(audio.block_size, 4096U);
  EXPECT_TRUE(pmrkit::has_flag(audio.flags, memory_flags::dma_capable));
  EXPECT_EQ(audio.backing, "locked_pages");
  const region_spec network = region_spec::for_type(memory_type::network, 1_MiB);
  EXPECT_EQ(network.alignment, 64U);
  EXPECT_EQ(network.strategy, region_strategy::pool);
  EXPECT_EQ(network.block_size, 2048U);
  EXPECT_EQ(region_spec::for_type(memory_type::temporary, 1_MiB).strategy, region_strategy::arena);
  EXPECT_EQ(region_spec::for_type(memory_type::shared, 1_MiB).strategy,
            region_strategy::shared_segment);
  EXPECT_EQ(region_spec::for_type(memory_type::shared, 1_MiB).backing, "shared_memory");
  EXPECT_EQ(region_spec::for_type(memory_type::system, 1_MiB).alignment, alignof(std::max_align_t));
  // What the caller says wins over the type.
  const region_spec spec = region_spec{.capacity = 1_MiB,
                                       .alignment = 4096,
                                       .type = memory_type::video,
                                       .strategy = region_strategy::pool,
                                       .name = "frames"}
                               .resolved();
  EXPECT_EQ(spec.alignment, 4096U);
  EXPECT_EQ(spec.strategy, region_strategy::pool);
  EXPECT_EQ(spec.block_size, 4096U);
  EXPECT_EQ(spec.name, "frames");
}

TEST(RegionResource, ConstructedTheWaysEveryResourceIs) {
  pmrkit::test_resource upstream("upstream");
  {
    region_resource a;
    region_resource b(&upstream);
    region_resource c(region_spec{.capacity = 64_KiB});
    region_resource d(region_spec{.capacity = 64_KiB}, &upstream);
    region_resource e({});
    region_resource f({}, &upstream);
    EXPECT_EQ(a.stats().capacity, 1_MiB);
    EXPECT_EQ(b.upstream_resource(), &upstream);
    EXPECT_EQ(c.stats().capacity, 64_KiB);
    EXPECT_EQ(upstream.blocks_in_use(), 3U);  // b, d and f took their regions
    EXPECT_EQ(a.name(), "system");
    EXPECT_EQ(b.backing(), "upstream");
  }
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
}

TEST(RegionResource, BadSpecsNameTheField) {
  EXPECT_EQ(invalid_argument_of([] { region_resource r({.capacity = 0}); }),
            "pmrkit::region_resource: capacity must not be 0");
  EXPECT_EQ(invalid_argument_of([] { region_resource r({.alignment = 48}); }),
            "pmrkit::region_resource: alignment must be a power of two no greater than 4096");
  EXPECT_EQ(invalid_argument_of([] {
              region_resource r(
                  {.capacity = 4_KiB, .block_size = 8_KiB, .strategy = region_strategy::pool});
            }),
            "pmrkit::region_resource: block_size must not exceed the capacity");
  EXPECT_EQ(invalid_argument_of([] {
              region_resource r(
                  {.type = memory_type::video, .strategy = region_strategy::shared_segment});
            }),
            "pmrkit::region_resource: strategy must be shared_segment exactly when the type is "
            "shared");
  EXPECT_EQ(invalid_argument_of([] { region_resource r({}, nullptr); }),
            "pmrkit::region_resource: upstream must not be null");
}

TEST(RegionResource, BuddyRegionCoalescesAndReportsFragmentation) {
  pmrkit::page_resource pages;
  region_resource video({.capacity = 1_MiB, .type = memory_type::video}, &pages);
  EXPECT_EQ(video.backing(), "pages");
  {
    const auto s = video.stats();
    EXPECT_EQ(s.capacity, 1_MiB);
    EXPECT_EQ(s.bytes_free, 1_MiB);
    EXPECT_EQ(s.largest_free_block, 1_MiB);
    EXPECT_EQ(s.fragmentation_percent, 0.0);
    EXPECT_EQ(s.bytes_from_upstream, 1_MiB);
  }
  std::vector<void*> blocks;
  for (int i = 0; i < 4; ++i)
    blocks.push_back(video.allocate(256_KiB));
  EXPECT_THROW((void)video.allocate(1), pmrkit::allocation_error);
  for (void* p : blocks) {
    EXPECT_TRUE(video.owns(p));
    EXPECT_TRUE(pmrkit::is_aligned(p, 256));
  }
  // Free the first and the third: 512 KiB free in two 256 KiB blocks that are no buddies.
  video.deallocate(blocks[0], 256_KiB);
  video.deallocate(blocks[2], 256_KiB);
  auto s = video.stats();
  EXPECT_EQ(s.bytes_in_use, 512_KiB);
  EXPECT_EQ(s.bytes_free, 512_KiB);
  EXPECT_EQ(s.largest_free_block, 256_KiB);
  EXPECT_DOUBLE_EQ(s.fragmentation_percent, 50.0);
  EXPECT_EQ(s.peak_bytes_in_use, 1_MiB);
  EXPECT_EQ(s.blocks_in_use, 2U);
  EXPECT_EQ(s.failures, 1U);
  try {
    (void)video.allocate(512_KiB);
    ADD_FAILURE() << "a 512 KiB block does not fit";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::out_of_capacity);
    EXPECT_EQ(e.resource_name(), "video");
  }
  video.deallocate(blocks[1], 256_KiB);
  video.deallocate(blocks[3], 256_KiB);
  s = video.stats();
  EXPECT_EQ(s.largest_free_block, 1_MiB);
  EXPECT_EQ(s.fragmentation_percent, 0.0);
  // Larger than the region: refused, not passed to the upstream.
  EXPECT_THROW((void)video.allocate(2_MiB), pmrkit::allocation_error);
  EXPECT_EQ(pages.stats().blocks_in_use, 1U);
}

TEST(RegionResource, ACapacityThatIsNoPowerOfTwoIsUsedWhole) {
  pmrkit::test_resource upstream("upstream");
  region_resource r({.capacity = 3_MiB}, &upstream);
  EXPECT_EQ(r.stats().capacity, 3_MiB);
  EXPECT_EQ(r.stats().largest_free_block, 2_MiB);
  void* big = r.allocate(2_MiB);
  void* more = r.allocate(1_MiB);
  EXPECT_TRUE(r.owns(big) && r.owns(more));
  EXPECT_EQ(r.stats().bytes_free, 0U);
  r.deallocate(more, 1_MiB);
  r.deallocate(big, 2_MiB);
}

TEST(RegionResource, PoolRegionServesFixedBuffersAndRefusesTheRest) {
  pmrkit::test_resource upstream("upstream");
  region_resource packets({.capacity = 64_KiB, .type = memory_type::network}, &upstream);
  const auto s = packets.stats();
  EXPECT_EQ(s.capacity % 2048, 0U);
  EXPECT_GE(s.capacity, 60_KiB);  // the chunk's trailer takes a little
  const std::size_t blocks = s.capacity / 2048;
  std::vector<void*> held;
  for (std::size_t i = 0; i < blocks; ++i) {
    void* p = packets.allocate(1500);
    EXPECT_TRUE(pmrkit::is_aligned(p, 64));
    EXPECT_TRUE(packets.owns(p));
    held.push_back(p);
  }
  EXPECT_EQ(packets.stats().largest_free_block, 0U);
  EXPECT_THROW((void)packets.allocate(64), pmrkit::allocation_error);  // full
  packets.deallocate(held.back(), 1500);
  held.pop_back();
  EXPECT_EQ(packets.stats().largest_free_block, 2048U);
  EXPECT_THROW((void)packets.allocate(4096), pmrkit::allocation_error);     // larger than a block
  EXPECT_THROW((void)packets.allocate(64, 128), pmrkit::allocation_error);  // more aligned
  for (void* p : held)
    packets.deallocate(p, 1500);
  EXPECT_EQ(packets.stats().bytes_in_use, 0U);
  EXPECT_EQ(upstream.blocks_in_use(), 1U);  // the region, taken once
}

TEST(RegionResource, ArenaRegionResetsAndRefusesPastItsCapacity) {
  pmrkit::test_resource upstream("upstream");
  region_resource scratch({.capacity = 64_KiB, .type = memory_type::temporary}, &upstream);
  const std::size_t capacity = scratch.stats().capacity;
  EXPECT_GT(capacity, 60_KiB);
  EXPECT_EQ(scratch.stats().largest_free_block, capacity);
  void* a = scratch.allocate(40_KiB);
  EXPECT_TRUE(scratch.owns(a));
  EXPECT_THROW((void)scratch.allocate(40_KiB), pmrkit::allocation_error);
  EXPECT_EQ(scratch.stats().bytes_in_use, 40_KiB);
  scratch.reset();
  EXPECT_EQ(scratch.stats().bytes_in_use, 0U);
  void* b = scratch.allocate(40_KiB);
  EXPECT_EQ(a, b);  // the same memory again
  EXPECT_EQ(upstream.blocks_in_use(), 1U);
  region_resource buddy({.capacity = 64_KiB});
  EXPECT_THROW(buddy.reset(), std::logic_error);
}

TEST(RegionResource, ZeroFillHandsOutZeroedBlocks) {
  region_resource r({.capacity = 64_KiB, .flags = memory_flags::zero_fill});
  auto* p = static_cast<unsigned char*>(r.allocate(4096));
  std::memset(p, 0xAB, 4096);
  r.deallocate(p, 4096);
  auto* q = static_cast<unsigned char*>(r.allocate(4096));
  EXPECT_EQ(p, q);
  EXPECT_TRUE(std::all_of(q, q + 4096, [](unsigned char c) { return c == 0; }));
  r.deallocate(q, 4096);
}

TEST(RegionResource, DmaCapableLocksThePagesWhateverTheUpstream) {
  pmrkit::page_resource pages;
  region_resource plain({.capacity = 256_KiB}, &pages);
  EXPECT_FALSE(plain.locked());
  region_resource dma({.capacity = 256_KiB, .flags = memory_flags::dma_capable}, &pages);
  EXPECT_TRUE(dma.locked());
  EXPECT_EQ(dma.backing(), "locked pages");
  // Over a locked page source the region locks nothing more itself.
  pmrkit::locked_page_resource locked({}, &pages);
  region_resource audio({.capacity = 256_KiB, .type = memory_type::audio}, &locked);
  EXPECT_TRUE(audio.locked());
  EXPECT_EQ(audio.backing(), "locked pages");
  EXPECT_EQ(locked.stats().bytes_locked, 256_KiB);
  void* buffer = audio.allocate(4096);
  EXPECT_TRUE(pmrkit::is_aligned(buffer, 64));
  audio.deallocate(buffer, 4096);
}

TEST(RegionResource, HugePagesAreAskedForOverThePlainPages) {
  pmrkit::page_resource pages;
  region_resource r({.capacity = 4_MiB, .flags = memory_flags::huge_pages}, &pages);
  // The OS may decline the hint (no transparent huge pages): huge_pages() says what it did.
  if (std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled").good()) {
    EXPECT_TRUE(r.huge_pages());  // the kernel has them: MADV_HUGEPAGE is accepted
  }
  void* p = r.allocate(2_MiB);
  std::memset(p, 1, 2_MiB);
  r.deallocate(p, 2_MiB);
}

TEST(RegionResource, MisuseOnDeallocationReachesTheViolationHandler) {
  if (!PMRKIT_CHECKED) GTEST_SKIP() << "unchecked build: misuse is not detected";
  pmrkit::violation_recorder recorder;
  region_resource r({.capacity = 64_KiB});
  void* p = r.allocate(100);
  r.deallocate(p, 100);
  r.deallocate(p, 100);
  ASSERT_EQ(recorder.violations().size(), 1U);
  EXPECT_EQ(recorder.violations()[0].kind, pmrkit::violation_kind::double_free);
  EXPECT_EQ(recorder.violations()[0].resource_name, "system");
}

#if PMRKIT_HAS_SHM
TEST(RegionResource, SharedRegionIsASegmentThatForkedChildrenShare) {
  region_resource shared({.capacity = 1_MiB, .type = memory_type::shared});
  EXPECT_EQ(shared.backing(), "shared memory");
  EXPECT_EQ(shared.stats().bytes_from_upstream, 0U);
  auto* counter = static_cast<int*>(shared.allocate(sizeof(int)));
  *counter = 41;
  EXPECT_TRUE(shared.owns(counter));
  const pid_t child = fork();
  ASSERT_NE(child, -1);
  if (child == 0) {
    *counter += 1;
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_EQ(*counter, 42);
  shared.deallocate(counter, sizeof(int));
  EXPECT_GT(shared.stats().capacity, 0U);
}
#endif

}  // namespace
