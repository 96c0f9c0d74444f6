#include <pmr/arena/chunked_arena_resource.hpp>

#include <pmr/core/poison.hpp>
#include <pmr/core/reallocate.hpp>
#include <pmr/testing/test_resource.hpp>
#include <pmr/testing/violation_recorder.hpp>

#include "arena/carving_upstream.hpp"
#include "conformance/conformance.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <memory_resource>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace {

using pmrkit::chunked_arena_options;
using pmrkit::chunked_arena_resource;
using pmrkit::test_resource;

struct chunked_arena_traits {
  using resource_type = chunked_arena_resource;
  static constexpr std::string_view name = "pmrkit::chunked_arena_resource";
  // An arena frees only its most recent block; the rest waits for reset.
  static constexpr pmrkit::conformance::capabilities caps{.reuses_memory = false};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(chunked_arena_options{}, upstream);
  }
  static void release(resource_type& r) { r.release(); }
};

struct constant_growth_traits {
  using resource_type = chunked_arena_resource;
  static constexpr std::string_view name = "pmrkit::chunked_arena_resource (constant, 1-byte)";
  static constexpr pmrkit::conformance::capabilities caps{.reuses_memory = false};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(
        chunked_arena_options{.initial_chunk_size = 1024, .growth_factor = 1, .alignment = 1},
        upstream);
  }
  static void release(resource_type& r) { r.release(); }
};

using arena_types = ::testing::Types<chunked_arena_traits, constant_growth_traits>;
INSTANTIATE_TYPED_TEST_SUITE_P(chunked_arena, resource_conformance, arena_types,
                               pmrkit::conformance::traits_names);

constexpr pmrkit::test_options upstream_options{.name = "upstream"};

// The sizes of the chunks the arena holds, oldest first, as the upstream saw them.
std::vector<std::size_t> chunk_sizes(const test_resource& upstream) {
  std::vector<std::size_t> sizes;
  for (const pmrkit::block_info& block : upstream.leaks())
    sizes.push_back(block.size);
  return sizes;
}

TEST(ChunkedArena, FiftySmallAllocationsFitInOneFourKiBChunk) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  chunked_arena_resource arena({}, &upstream);
  for (int i = 0; i < 50; ++i)
    (void)arena.allocate(32, 8);
  EXPECT_EQ(chunk_sizes(upstream), std::vector<std::size_t>{4096});
  EXPECT_EQ(arena.stats().chunk_count, 1U);
}

TEST(ChunkedArena, FiveThousandSmallAllocationsGrowFourToThirtyTwoKiB) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  chunked_arena_resource arena({.alignment = 8}, &upstream);
  for (int i = 0; i < 5000; ++i)
    (void)arena.allocate(8, 8);
  EXPECT_EQ(chunk_sizes(upstream), (std::vector<std::size_t>{4096, 8192, 16384, 32768}));
  EXPECT_EQ(arena.stats().current_chunk_size, 65536U);
}

TEST(ChunkedArena, GrowthDoublesUpToTheMaximumThenStays) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  chunked_arena_resource arena({}, &upstream);
  // 130 blocks of 1 KiB: the five chunks 4..64 KiB hold 119, the rest needs a sixth.
  for (int i = 0; i < 130; ++i)
    (void)arena.allocate(1024, 16);
  EXPECT_EQ(chunk_sizes(upstream),
            (std::vector<std::size_t>{4096, 8192, 16384, 32768, 65536, 65536}));
}

TEST(ChunkedArena, ConstantGrowthKeepsTheInitialSize) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  chunked_arena_resource arena({.initial_chunk_size = 1024, .growth_factor = 1}, &upstream);
  for (int i = 0; i < 100; ++i)
    (void)arena.allocate(64, 16);
  for (std::size_t size : chunk_sizes(upstream))
    EXPECT_EQ(size, 1024U);
  EXPECT_EQ(arena.stats().current_chunk_size, 1024U);
}

TEST(ChunkedArena, LargeRequestGetsItsOwnChunkWithoutInflatingLaterChunks) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  chunked_arena_resource arena({}, &upstream);
  void* small = arena.allocate(16, 8);
  void* large = arena.allocate(50'000, 8);
  EXPECT_TRUE(arena.owns(large));
  // The rest of the first chunk still serves small blocks.
  void* next_small = arena.allocate(16, 8);
  EXPECT_EQ(static_cast<std::byte*>(next_small), static_cast<std::byte*>(small) + 16);
  while (arena.stats().chunk_count < 3)
    (void)arena.allocate(512, 8);
  const auto sizes = chunk_sizes(upstream);
  ASSERT_EQ(sizes.size(), 3U);
  EXPECT_EQ(sizes[0], 4096U);
  EXPECT_EQ(sizes[1], 50'000U + pmrkit::detail::chunk_header_size);
  EXPECT_EQ(sizes[2], 16384U) << "the large chunk counted as the 8 KiB step";
}

TEST(ChunkedArena, ResetKeepsChunksAndGrowthSoASecondPassTakesNothingFromUpstream) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  chunked_arena_resource arena({}, &upstream);
  const auto pass = [&] {
    std::pmr::vector<std::pmr::string> words(&arena);
    for (int i = 0; i < 2000; ++i)
      words.emplace_back("a word long enough to allocate its buffer");
    (void)arena.allocate(100'000, 64);
  };
  pass();
  const auto first = upstream.stats();
  const std::size_t grown = arena.stats().current_chunk_size;
  arena.reset();
  EXPECT_EQ(arena.stats().bytes_in_use, 0U);
  EXPECT_EQ(arena.stats().current_chunk_size, grown);
  pass();
  EXPECT_EQ(upstream.stats().allocations, first.allocations);
  EXPECT_EQ(upstream.stats().bytes_in_use, first.bytes_in_use);
}

TEST(ChunkedArena, ClearKeepsOnlyTheFirstChunkAndReleaseReturnsEverything) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  chunked_arena_resource arena({}, &upstream);
  for (int i = 0; i < 100; ++i)
    (void)arena.allocate(512, 8);
  (void)arena.allocate(100'000, 8);
  EXPECT_GT(upstream.blocks_in_use(), 2U);
  arena.clear();
  EXPECT_EQ(chunk_sizes(upstream), std::vector<std::size_t>{4096});
  (void)arena.allocate(64, 8);
  arena.release();
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
  EXPECT_EQ(arena.stats().current_chunk_size, 4096U) << "release starts the growth again";
  (void)arena.allocate(64, 8);
  EXPECT_EQ(upstream.blocks_in_use(), 1U);
}

TEST(ChunkedArena, ShrinkReturnsKeptChunksNotInUse) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  chunked_arena_resource arena({}, &upstream);
  for (int i = 0; i < 100; ++i)
    (void)arena.allocate(512, 8);
  (void)arena.allocate(100'000, 8);
  arena.reset();
  void* kept = arena.allocate(64, 8);  // in the first chunk
  arena.shrink();
  EXPECT_EQ(chunk_sizes(upstream), std::vector<std::size_t>{4096});
  EXPECT_TRUE(arena.owns(kept));
  for (int i = 0; i < 100; ++i)
    (void)arena.allocate(512, 8);  // grows again
  EXPECT_GT(upstream.blocks_in_use(), 1U);
}

TEST(ChunkedArena, MostRecentBlockIsRolledBackOthersAreNot) {
  chunked_arena_resource arena({}, std::pmr::new_delete_resource());
  void* a = arena.allocate(40, 8);
  void* b = arena.allocate(40, 8);
  arena.deallocate(a, 40, 8);  // not the most recent: a no-op
  arena.deallocate(b, 40, 8);  // rolled back
  EXPECT_EQ(arena.allocate(40, 8), b);
}

TEST(ChunkedArena, ReallocateGrowsTheMostRecentBlockInPlace) {
  chunked_arena_resource arena({}, std::pmr::new_delete_resource());
  auto* text = static_cast<char*>(arena.allocate(16, 1));
  std::memcpy(text, "0123456789abcde", 16);
  void* grown = pmrkit::reallocate(arena, text, 16, 1000, 1);
  EXPECT_EQ(grown, text);
  void* after = arena.allocate(8, 1);
  EXPECT_GE(static_cast<char*>(after), text + 1000);
  // No longer the most recent: it moves, keeping its contents.
  void* moved = pmrkit::reallocate(arena, grown, 1000, 2000, 1);
  EXPECT_NE(moved, grown);
  EXPECT_EQ(std::memcmp(moved, "0123456789abcde", 16), 0);
}

TEST(ChunkedArena, CheckpointsOrderAndRewindFreesLaterAllocations) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  chunked_arena_resource arena({}, &upstream);
  (void)arena.allocate(100, 8);
  const pmrkit::arena_checkpoint marker = arena.checkpoint();
  void* first_after = arena.allocate(100, 8);
  for (int i = 0; i < 200; ++i)
    (void)arena.allocate(100, 8);    // into later chunks
  (void)arena.allocate(200'000, 8);  // and a large one
  EXPECT_GT(arena.checkpoint(), marker);
  const std::size_t chunks = upstream.blocks_in_use();
  arena.rewind(marker);
  EXPECT_EQ(arena.checkpoint(), marker);
  EXPECT_EQ(arena.allocate(100, 8), first_after);
  EXPECT_EQ(upstream.blocks_in_use(), chunks) << "chunks are kept after a rewind";
  for (int i = 0; i < 200; ++i)
    (void)arena.allocate(100, 8);
  (void)arena.allocate(200'000, 8);
  EXPECT_EQ(upstream.blocks_in_use(), chunks) << "and serve the same work again";
}

TEST(ChunkedArena, StaleCheckpointIsAViolationAndIsIgnored) {
  if (!PMRKIT_CHECKED) GTEST_SKIP() << "violations are reported in checked builds";
  pmrkit::violation_recorder recorder;
  chunked_arena_resource arena({.name = "frame"}, std::pmr::new_delete_resource());
  chunked_arena_resource other({}, std::pmr::new_delete_resource());
  (void)arena.allocate(10, 8);
  const pmrkit::arena_checkpoint early = arena.checkpoint();
  (void)arena.allocate(10, 8);
  const pmrkit::arena_checkpoint late = arena.checkpoint();
  arena.rewind(early);
  arena.rewind(late);  // beyond the current position
  arena.rewind(other.checkpoint());
  arena.reset();
  arena.rewind(early);  // before the reset
  arena.rewind(pmrkit::arena_checkpoint{});
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::stale_checkpoint), 4U);
  EXPECT_EQ(recorder.violations().front().resource_name, "frame");
  EXPECT_NE(arena.allocate(10, 8), nullptr);
}

TEST(ChunkedArena, ForeignPointerAndWrongRollbackSizeAreViolations) {
  if (!PMRKIT_CHECKED) GTEST_SKIP() << "violations are reported in checked builds";
  pmrkit::violation_recorder recorder;
  chunked_arena_resource arena({}, std::pmr::new_delete_resource());
  int local = 0;
  arena.deallocate(&local, sizeof local, alignof(int));
  void* p = arena.allocate(48, 8);
  arena.deallocate(p, 32, 8);
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::foreign_pointer), 1U);
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::size_mismatch), 1U);
}

TEST(ChunkedArena, RequestsAboveTheSizeLimitThrowOutOfCapacity) {
  chunked_arena_resource arena({.size_limit = 1000}, std::pmr::new_delete_resource());
  try {
    (void)arena.allocate(1001, 8);
    FAIL();
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::out_of_capacity);
    EXPECT_EQ(e.resource_name(), "chunked_arena");
  }
  EXPECT_NE(arena.allocate(1000, 8), nullptr);
}

TEST(ChunkedArena, BlocksHonourTheMinimumAlignmentOption) {
  chunked_arena_resource arena({.alignment = 64}, std::pmr::new_delete_resource());
  for (int i = 0; i < 20; ++i) {
    EXPECT_TRUE(pmrkit::is_aligned(arena.allocate(3, 1), 64));
  }
}

TEST(ChunkedArena, StatsAccountForUseWasteAndPeak) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  chunked_arena_resource arena({}, &upstream);
  for (int i = 0; i < 3; ++i)
    (void)arena.allocate(1000, 16);
  auto stats = arena.stats();
  EXPECT_EQ(stats.bytes_from_upstream, upstream.bytes_in_use());
  EXPECT_EQ(stats.bytes_in_use, 3024U) << "each block takes its size rounded up to 16";
  EXPECT_EQ(stats.bytes_in_use + stats.bytes_available + stats.waste, stats.bytes_from_upstream);
  EXPECT_EQ(stats.waste, pmrkit::detail::chunk_header_size);
  (void)arena.allocate(2000, 16);  // does not fit the first chunk: its tail is wasted
  stats = arena.stats();
  EXPECT_EQ(stats.chunk_count, 2U);
  EXPECT_GT(stats.waste, 2 * pmrkit::detail::chunk_header_size);
  arena.reset();
  stats = arena.stats();
  EXPECT_EQ(stats.bytes_in_use, 0U);
  EXPECT_GE(stats.peak_bytes_in_use, 5000U);
}

TEST(ChunkedArena, InvalidOptionsNameTheField) {
  const auto field_of = [](chunked_arena_options options) -> std::string {
    try {
      chunked_arena_resource arena(options, std::pmr::new_delete_resource());
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(field_of({.initial_chunk_size = 16}).find("initial_chunk_size"), std::string::npos);
  EXPECT_NE(field_of({.initial_chunk_size = 8192, .max_chunk_size = 4096}).find("max_chunk_size"),
            std::string::npos);
  EXPECT_NE(field_of({.alignment = 24}).find("alignment"), std::string::npos);
  EXPECT_NE(field_of({.alignment = 8192}).find("alignment"), std::string::npos);
  EXPECT_EQ(field_of({}), "");
}

TEST(ChunkedArena, UpstreamFailureLeavesTheArenaUsable) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  chunked_arena_resource arena({}, &upstream);
  (void)arena.allocate(4000, 8);
  upstream.set_allocation_limit(0);
  EXPECT_THROW((void)arena.allocate(4000, 8), pmrkit::allocation_error);
  EXPECT_NE(arena.allocate(16, 8), nullptr) << "the current chunk still serves";
  EXPECT_NE(arena.allocate(4000, 8), nullptr) << "and the upstream again";
}

TEST(ChunkedArena, MapOnTheArenaWorksAcrossResets) {
  chunked_arena_resource arena({}, std::pmr::new_delete_resource());
  for (int round = 0; round < 3; ++round) {
    {
      std::pmr::map<int, int> map(&arena);
      for (int i = 0; i < 10'000; ++i)
        map.emplace(i * 7919 % 10'000, i);
      ASSERT_EQ(map.size(), 10'000U);
      ASSERT_EQ(map.begin()->first, 0);
    }
    arena.reset();
  }
}

TEST(ChunkedArenaDeathTest, UseAfterResetIsCaughtUnderAddressSanitizer) {
  if (!PMRKIT_CHECKED || !PMRKIT_HAS_ASAN) {
    GTEST_SKIP() << "needs a checked build under AddressSanitizer (the asan preset)";
  }
  EXPECT_DEATH(
      {
        chunked_arena_resource arena({}, std::pmr::new_delete_resource());
        auto* p = static_cast<volatile char*>(arena.allocate(64, 8));
        arena.reset();
        p[0] = 'x';
      },
      "use-after-poison");
}

TEST(ChunkedArena, ResetMemoryIsFilledWithThePatternInCheckedBuilds) {
  if (!PMRKIT_CHECKED || PMRKIT_HAS_ASAN) GTEST_SKIP() << "checked builds without ASan";
  chunked_arena_resource arena({}, std::pmr::new_delete_resource());
  auto* p = static_cast<unsigned char*>(arena.allocate(64, 8));
  std::memset(p, 1, 64);
  arena.reset();
  for (int i = 0; i < 64; ++i)
    ASSERT_EQ(p[i], pmrkit::detail::retired_fill);
}

// --- Markers never depend on the upstream's addresses (issue 12, bug 1) ----------------------

using pmrkit_test::carving_upstream;

class ChunkedArenaMarkers : public ::testing::TestWithParam<carving_upstream::direction> {};

INSTANTIATE_TEST_SUITE_P(Upstreams, ChunkedArenaMarkers,
                         ::testing::Values(carving_upstream::direction::rising,
                                           carving_upstream::direction::falling),
                         [](const auto& info) {
                           return info.param == carving_upstream::direction::rising ? "rising"
                                                                                    : "falling";
                         });

// A marker taken after one dedicated chunk is valid after a second one, and
// rewinding to it keeps the second for reuse (it failed with falling
// addresses when markers compared the newest dedicated chunk's address).
TEST_P(ChunkedArenaMarkers, ValidMarkerAfterASecondLargeBlock) {
  pmrkit::violation_recorder recorder;
  carving_upstream upstream(GetParam());
  chunked_arena_resource arena({}, &upstream);
  (void)arena.allocate(16, 8);
  (void)arena.allocate(200'000, 8);  // L0
  const pmrkit::arena_checkpoint marker = arena.checkpoint();
  (void)arena.allocate(200'000, 8);  // L1
  EXPECT_GT(arena.checkpoint(), marker);
  arena.rewind(marker);
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::stale_checkpoint), 0U);
  EXPECT_EQ(arena.checkpoint(), marker);
  const std::size_t allocations = upstream.allocations();
  (void)arena.allocate(200'000, 8);  // L1 again, kept by the rewind
  EXPECT_EQ(upstream.allocations(), allocations);
}

// A marker freed by an earlier rewind stays stale after a larger block, and
// no live dedicated chunk is handed out again (it failed with rising
// addresses: every dedicated chunk, L0 included, went to the kept list).
TEST_P(ChunkedArenaMarkers, StaleMarkerNeverFreesALiveLargeBlock) {
  pmrkit::violation_recorder recorder;
  carving_upstream upstream(GetParam());
  chunked_arena_resource arena({}, &upstream);
  (void)arena.allocate(16, 8);
  void* l0 = arena.allocate(200'000, 8);  // kept live
  std::memset(l0, 0xA0, 200'000);
  const pmrkit::arena_checkpoint m0 = arena.checkpoint();
  (void)arena.allocate(200'000, 8);  // L1
  const pmrkit::arena_checkpoint m1 = arena.checkpoint();
  arena.rewind(m0);  // m1 is stale now
  void* l2 = arena.allocate(300'000, 8);
  arena.rewind(m1);
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::stale_checkpoint), PMRKIT_CHECKED ? 1U : 0U);
  for (int i = 0; i < 4; ++i) {
    void* next = arena.allocate(200'000, 8);
    EXPECT_FALSE(pmrkit_test::overlap(next, 200'000, l0, 200'000)) << "L0 is in use";
    EXPECT_FALSE(pmrkit_test::overlap(next, 200'000, l2, 300'000)) << "L2 is in use";
  }
  EXPECT_EQ(static_cast<unsigned char*>(l0)[199'999], 0xA0);
}

// A marker of the same chunk and offset but another history is stale in
// every build: the position was freed by a rewind and re-grown past.
TEST(ChunkedArenaStaleMarkers, MarkerFreedByARewindAndRegrownPastIsStale) {
  if (!PMRKIT_CHECKED) {
    GTEST_SKIP()
        << "unchecked builds keep no marker history: a marker is judged by its place alone";
  }

  pmrkit::violation_recorder recorder;
  chunked_arena_resource arena({}, std::pmr::new_delete_resource());
  const pmrkit::arena_checkpoint start = arena.checkpoint();
  (void)arena.allocate(32, 8);
  const pmrkit::arena_checkpoint after_a = arena.checkpoint();
  arena.rewind(start);
  auto* b = static_cast<unsigned char*>(arena.allocate(64, 8));  // covers after_a's position
  std::memset(b, 0xB0, 64);
  arena.rewind(after_a);  // would cut b in half
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::stale_checkpoint), PMRKIT_CHECKED ? 1U : 0U);
  auto* c = static_cast<unsigned char*>(arena.allocate(16, 8));
  EXPECT_FALSE(pmrkit_test::overlap(c, 16, b, 64));
  EXPECT_EQ(b[40], 0xB0);
}

// --- The least alignment survives rollbacks, resets and rewinds (bug 2) ------------------------

TEST(ChunkedArena, LeastAlignmentSurvivesRollbackResetAndRewindToTheStart) {
  chunked_arena_resource arena({.alignment = 64}, std::pmr::new_delete_resource());
  void* p = arena.allocate(32, 64);
  EXPECT_TRUE(pmrkit::is_aligned(p, 64));
  arena.deallocate(p, 32, 64);
  EXPECT_TRUE(pmrkit::is_aligned(arena.allocate(32, 64), 64)) << "after a rollback";
  arena.reset();
  EXPECT_TRUE(pmrkit::is_aligned(arena.allocate(32, 64), 64)) << "after reset";
  arena.rewind(arena.checkpoint());
  const pmrkit::arena_checkpoint again = arena.checkpoint();
  (void)arena.allocate(32, 64);
  arena.rewind(again);
  EXPECT_TRUE(pmrkit::is_aligned(arena.allocate(32, 64), 64)) << "after a rewind";
  arena.reset();
  const pmrkit::arena_checkpoint start = arena.checkpoint();
  (void)arena.allocate(32, 64);
  arena.rewind(start);
  EXPECT_TRUE(pmrkit::is_aligned(arena.allocate(3, 1), 64)) << "after a rewind to the start";
}

// --- Constructed the obvious ways (issue 12, bug 6) ---------------------------------------------

static_assert(std::is_default_constructible_v<chunked_arena_resource>);
static_assert(std::is_constructible_v<chunked_arena_resource, std::pmr::memory_resource*>);
static_assert(std::is_constructible_v<chunked_arena_resource, test_resource*>);
static_assert(std::is_constructible_v<chunked_arena_resource, chunked_arena_options>);
static_assert(std::is_constructible_v<chunked_arena_resource, chunked_arena_options,
                                      std::pmr::memory_resource*>);
static_assert(
    std::is_constructible_v<chunked_arena_resource, chunked_arena_options, test_resource*>);
static_assert(!std::is_copy_constructible_v<chunked_arena_resource> &&
              !std::is_move_constructible_v<chunked_arena_resource>);

TEST(ChunkedArenaConstruction, TheSixWays) {
  test_resource upstream("upstream");
  chunked_arena_resource a;
  chunked_arena_resource b(&upstream);
  chunked_arena_resource c(chunked_arena_options{.name = "c"});
  chunked_arena_resource d(chunked_arena_options{}, &upstream);
  chunked_arena_resource e({});  // the default options, not a null upstream
  chunked_arena_resource f({}, &upstream);
  EXPECT_EQ(a.upstream_resource(), std::pmr::get_default_resource());
  EXPECT_EQ(b.upstream_resource(), &upstream);
  EXPECT_EQ(c.upstream_resource(), std::pmr::get_default_resource());
  EXPECT_EQ(c.name(), "c");
  EXPECT_EQ(d.upstream_resource(), &upstream);
  EXPECT_EQ(e.upstream_resource(), std::pmr::get_default_resource());
  EXPECT_EQ(f.upstream_resource(), &upstream);
  EXPECT_THROW(chunked_arena_resource g({}, static_cast<std::pmr::memory_resource*>(nullptr)),
               std::invalid_argument);
}

}  // namespace
