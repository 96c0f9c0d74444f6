#include <pmr/arena/chunked_arena_resource.hpp>

#include <pmr/core/poison.hpp>
#include <pmr/core/reallocate.hpp>
#include <pmr/testing/test_resource.hpp>
#include <pmr/testing/violation_recorder.hpp>

#include "arena/carving_upstream.hpp"
#include "conformance/conformance.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <memory_resource>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <variant>
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

// Over a caller's buffer at an odd address: the suite's first blocks come from
// it, the rest from the upstream, and bytes_from_upstream never counts it.
struct buffered_traits {
  using resource_type = chunked_arena_resource;
  static constexpr std::string_view name =
      "pmrkit::chunked_arena_resource (1000-byte buffer at an odd address)";
  static constexpr pmrkit::conformance::capabilities caps{.reuses_memory = false};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    // Each arena its own buffer, kept until exit so that it outlives the arena.
    static std::vector<std::unique_ptr<std::byte[]>> buffers;
    std::byte* storage = buffers.emplace_back(std::make_unique<std::byte[]>(1001)).get();
    return std::make_unique<resource_type>(
        chunked_arena_options{.initial_buffer = {storage + 1, 1000}}, upstream);
  }
  static void release(resource_type& r) { r.release(); }
};

using arena_types = ::testing::Types<chunked_arena_traits, constant_growth_traits, buffered_traits>;
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

TEST(ChunkedArena, APointersLeastAlignmentPacksMapNodesAndAlignsLargerRequests) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  chunked_arena_resource arena({.alignment = alignof(void*)}, &upstream);
  // std::map<int, int>'s 40-byte nodes at a pointer's alignment: 40 bytes apart, not 48.
  auto* first = static_cast<std::byte*>(arena.allocate(40, alignof(void*)));
  auto* second = static_cast<std::byte*>(arena.allocate(40, alignof(void*)));
  EXPECT_EQ(second - first, 40);
  // The cursor 8 bytes past a 16-byte boundary (the first chunk's blocks start 16-aligned).
  auto* third = static_cast<std::byte*>(arena.allocate(8, alignof(void*)));
  EXPECT_EQ(third, second + 40);
  ASSERT_TRUE(pmrkit::is_aligned(first, 16));
  // Above the least alignment: aligned (the cursor is aligned up first, skipping 8
  // bytes), and the newest block still rolls back to where it began.
  auto* aligned = static_cast<std::byte*>(arena.allocate(24, 16));
  EXPECT_EQ(aligned, third + 16);
  const std::size_t in_use = arena.stats().bytes_in_use;
  arena.deallocate(aligned, 24, 16);
  EXPECT_EQ(arena.stats().bytes_in_use, in_use - 24);
  EXPECT_EQ(arena.allocate(8, alignof(void*)), aligned) << "rolled back to the block's start";
  EXPECT_EQ(arena.stats().bytes_from_upstream, upstream.bytes_in_use());
}

TEST(ChunkedArenaBuffer, TheStandardsBufferConstructorServesFromTheBufferFirst) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  alignas(std::max_align_t) std::byte buffer[256];
  chunked_arena_resource arena(buffer, sizeof buffer, &upstream);
  EXPECT_EQ(arena.name(), "chunked_arena");
  EXPECT_EQ(arena.options().initial_buffer.data(), buffer);
  EXPECT_EQ(arena.options().initial_buffer.size(), sizeof buffer);
  EXPECT_EQ(arena.options().initial_chunk_size, chunked_arena_options{}.initial_chunk_size);
  void* p = arena.allocate(200, 8);
  EXPECT_TRUE(p >= static_cast<void*>(buffer) && p < static_cast<void*>(buffer + sizeof buffer));
  EXPECT_EQ(upstream.bytes_in_use(), 0U);
  (void)arena.allocate(200, 8);  // beyond the buffer: a chunk from the upstream
  EXPECT_GT(upstream.bytes_in_use(), 0U);
  arena.release();
  EXPECT_EQ(upstream.bytes_in_use(), 0U);
  // Two arguments: the default resource upstream.
  chunked_arena_resource defaulted(buffer, sizeof buffer);
  EXPECT_EQ(defaulted.upstream_resource(), std::pmr::get_default_resource());
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

// --- An initial buffer from the caller ----------------------------------------------------------

// The buffer's bytes as the arena's option wants them.
template <std::size_t N>
std::span<std::byte> bytes_of(unsigned char (&buffer)[N], std::size_t offset = 0,
                              std::size_t size = N) {
  return std::as_writable_bytes(std::span(buffer)).subspan(offset, size);
}

bool inside(const void* p, std::size_t n, std::span<std::byte> buffer) {
  const auto* b = static_cast<const std::byte*>(p);
  return b >= buffer.data() && b + n <= buffer.data() + buffer.size();
}

TEST(ChunkedArenaBuffer, EveryByteOfTheBufferServesBlocks) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  alignas(64) unsigned char storage[64];
  chunked_arena_resource arena({.initial_buffer = bytes_of(storage)}, &upstream);
  EXPECT_EQ(arena.allocate(64, 16), storage) << "no header inside the buffer";
  EXPECT_EQ(upstream.stats().allocations, 0U);
  void* next = arena.allocate(1, 1);
  EXPECT_FALSE(inside(next, 1, bytes_of(storage)));
  EXPECT_EQ(upstream.blocks_in_use(), 1U);
}

TEST(ChunkedArenaBuffer, BlocksOfAlignmentOneFillItExactly) {
  // As libstdc++'s monotonic_buffer_resource test: 1 + 1 + 2 + ... + 256 = 512 bytes.
  alignas(16) unsigned char storage[512];
  chunked_arena_resource arena({.alignment = 1, .initial_buffer = bytes_of(storage)},
                               std::pmr::null_memory_resource());
  auto* previous = static_cast<unsigned char*>(arena.allocate(1, 1));
  EXPECT_EQ(previous, storage);
  std::size_t previous_size = 1;
  for (std::size_t size = 1; size <= 256; size *= 2) {
    auto* p = static_cast<unsigned char*>(arena.allocate(size, 1));
    EXPECT_EQ(p, previous + previous_size);
    previous = p;
    previous_size = size;
  }
  EXPECT_THROW((void)arena.allocate(1, 1), std::bad_alloc) << "full, and no upstream";
}

TEST(ChunkedArenaBuffer, AnyAddressWorksAndBlocksAreAlignedInside) {
  alignas(64) unsigned char storage[1100];
  for (std::size_t offset = 0; offset < 64; offset += 7) {
    const std::span<std::byte> buffer = bytes_of(storage, offset, 1024);
    chunked_arena_resource arena({.initial_buffer = buffer}, std::pmr::null_memory_resource());
    for (std::size_t alignment : {1U, 8U, 16U, 64U, 128U}) {
      void* p = arena.allocate(24, alignment);
      EXPECT_TRUE(pmrkit::is_aligned(p, std::max<std::size_t>(alignment, 16))) << offset;
      EXPECT_TRUE(inside(p, 24, buffer)) << offset;
      EXPECT_TRUE(arena.owns(p));
    }
  }
}

TEST(ChunkedArenaBuffer, ZeroSizedOrTinyBuffersPassRequestsOn) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  unsigned char storage[40];
  std::memset(storage, 0x5A, sizeof storage);
  {
    chunked_arena_resource none({.initial_buffer = bytes_of(storage, 0, 0)}, &upstream);
    EXPECT_EQ(none.stats().bytes_reserved, 0U);
    (void)none.allocate(1, 1);
    EXPECT_EQ(chunk_sizes(upstream), std::vector<std::size_t>{4096}) << "the initial size";
  }
  // Fewer bytes than the least alignment needs: nothing fits, nothing breaks.
  const std::span<std::byte> tiny = bytes_of(storage, 17, 5);
  {
    chunked_arena_resource arena({.alignment = 16, .initial_buffer = tiny}, &upstream);
    void* p = arena.allocate(1, 1);
    EXPECT_FALSE(inside(p, 1, tiny));
    EXPECT_EQ(upstream.blocks_in_use(), 1U);
    arena.reset();
    EXPECT_EQ(arena.allocate(1, 1), p) << "the first chunk serves again";
  }
  for (std::size_t i = 0; i < sizeof storage; ++i) {
    if (i < 17 || i >= 22) {
      ASSERT_EQ(storage[i], 0x5A) << "outside the buffer, at " << i;
    }
  }
}

TEST(ChunkedArenaBuffer, UsedFirstAndNeverGivenToTheUpstream) {
  pmrkit::violation_recorder recorder;  // a foreign block given to the upstream would show here
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  alignas(16) unsigned char storage[256];
  {
    chunked_arena_resource arena({.initial_buffer = bytes_of(storage)}, &upstream);
    for (int i = 0; i < 16; ++i)
      EXPECT_TRUE(inside(arena.allocate(16, 16), 16, bytes_of(storage)));
    EXPECT_EQ(upstream.stats().allocations, 0U);
    (void)arena.allocate(16, 16);
    EXPECT_EQ(upstream.blocks_in_use(), 1U);
    arena.release();
    EXPECT_EQ(upstream.blocks_in_use(), 0U);
    (void)arena.allocate(100'000, 16);  // a dedicated chunk
    (void)arena.allocate(16, 16);
  }
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
  EXPECT_EQ(upstream.stats().deallocations, upstream.stats().allocations);
  EXPECT_TRUE(recorder.violations().empty());
  EXPECT_TRUE(upstream.errors().empty());
}

TEST(ChunkedArenaBuffer, ResetClearAndReleaseMakeItCurrentAgain) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  alignas(16) unsigned char storage[512];
  chunked_arena_resource arena({.initial_buffer = bytes_of(storage)}, &upstream);
  const auto fill_past_the_buffer = [&] {
    for (int i = 0; i < 100; ++i)
      (void)arena.allocate(64, 16);
  };
  fill_past_the_buffer();
  const std::size_t chunks = upstream.blocks_in_use();
  ASSERT_GE(chunks, 2U);
  arena.reset();
  EXPECT_EQ(arena.allocate(32, 16), storage) << "reset";
  EXPECT_EQ(upstream.blocks_in_use(), chunks) << "reset keeps every chunk";
  fill_past_the_buffer();
  arena.clear();
  EXPECT_EQ(upstream.blocks_in_use(), 0U) << "clear keeps the buffer, the first chunk";
  EXPECT_EQ(arena.allocate(32, 16), storage) << "clear";
  fill_past_the_buffer();
  arena.release();
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
  EXPECT_EQ(arena.allocate(32, 16), storage) << "release";
}

TEST(ChunkedArenaBuffer, ShrinkNeverCountsIt) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  alignas(16) unsigned char storage[512];
  chunked_arena_resource arena({.initial_buffer = bytes_of(storage)}, &upstream);
  for (int i = 0; i < 100; ++i)
    (void)arena.allocate(64, 16);
  (void)arena.allocate(100'000, 16);
  const std::size_t held = upstream.bytes_in_use();
  arena.reset();
  EXPECT_EQ(arena.shrink(), held) << "every upstream byte, and not one of the buffer's";
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
  EXPECT_EQ(arena.allocate(32, 16), storage);
}

TEST(ChunkedArenaBuffer, OwnsItsBlocksOnly) {
  alignas(16) unsigned char storage[320];
  const std::span<std::byte> buffer = bytes_of(storage, 16, 256);
  chunked_arena_resource arena({.initial_buffer = buffer}, std::pmr::new_delete_resource());
  void* p = arena.allocate(48, 16);
  EXPECT_TRUE(arena.owns(p));
  EXPECT_TRUE(arena.owns(buffer.data() + 255));
  EXPECT_FALSE(arena.owns(storage));
  EXPECT_FALSE(arena.owns(buffer.data() + 256));
}

TEST(ChunkedArenaBuffer, TheMostRecentBlockRollsBackAndResizesInside) {
  alignas(16) unsigned char storage[256];
  const std::span<std::byte> buffer = bytes_of(storage);
  chunked_arena_resource arena({.initial_buffer = buffer}, std::pmr::new_delete_resource());
  void* a = arena.allocate(32, 16);
  void* b = arena.allocate(32, 16);
  arena.deallocate(b, 32, 16);
  EXPECT_EQ(arena.allocate(32, 16), b) << "rolled back";
  arena.deallocate(b, 32, 16);
  EXPECT_EQ(arena.stats().bytes_in_use, 32U);
  (void)a;
  auto* text = static_cast<char*>(arena.allocate(16, 1));
  std::memcpy(text, "0123456789abcde", 16);
  EXPECT_TRUE(arena.try_resize(text, 16, 200, 1)) << "grows in place up to the buffer's end";
  EXPECT_EQ(pmrkit::reallocate(arena, text, 200, 224, 1), text);
  EXPECT_FALSE(arena.try_resize(text, 224, 240, 1)) << "not past the buffer's end";
  void* moved = pmrkit::reallocate(arena, text, 224, 1000, 1);
  EXPECT_FALSE(inside(moved, 1000, buffer));
  EXPECT_EQ(std::memcmp(moved, "0123456789abcde", 16), 0);
  EXPECT_FALSE(arena.try_resize(text, 224, 8, 1)) << "no longer the most recent";
}

TEST(ChunkedArenaBuffer, CheckpointsRewindIntoTheBuffer) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  alignas(16) unsigned char storage[256];
  chunked_arena_resource arena({.initial_buffer = bytes_of(storage)}, &upstream);
  (void)arena.allocate(64, 16);
  const pmrkit::arena_checkpoint marker = arena.checkpoint();
  const auto* where = std::get_if<pmrkit::chunked_arena_marker>(&marker.where());
  ASSERT_NE(where, nullptr);
  EXPECT_EQ(where->chunk, 0U) << "the buffer is the first chunk";
  EXPECT_EQ(where->offset, 64U);
  void* first_after = arena.allocate(64, 16);
  for (int i = 0; i < 200; ++i)
    (void)arena.allocate(64, 16);  // into upstream chunks
  (void)arena.allocate(100'000, 16);
  const auto later = std::get<pmrkit::chunked_arena_marker>(arena.checkpoint().where());
  EXPECT_GE(later.chunk, 1U);
  const std::size_t chunks = upstream.blocks_in_use();
  arena.rewind(marker);
  EXPECT_EQ(arena.checkpoint(), marker);
  EXPECT_EQ(arena.stats().bytes_in_use, 64U);
  EXPECT_EQ(arena.allocate(64, 16), first_after);
  EXPECT_EQ(upstream.blocks_in_use(), chunks) << "kept for reuse";
}

TEST(ChunkedArenaBuffer, TheFirstUpstreamChunkGrowsFromTheBuffersSize) {
  // As the standard's next_buffer_size: growth_factor times the buffer, within
  // [initial_chunk_size, max_chunk_size], again after release().
  const auto first_chunk = [](chunked_arena_options options, std::size_t buffer_size) {
    test_resource upstream(upstream_options, std::pmr::new_delete_resource());
    std::vector<std::byte> buffer(buffer_size);
    options.initial_buffer = buffer;
    chunked_arena_resource arena(options, &upstream);
    std::vector<std::size_t> sizes;
    for (int pass = 0; pass < 2; ++pass) {
      const std::size_t announced = arena.stats().current_chunk_size;
      while (upstream.blocks_in_use() == 0)
        (void)arena.allocate(16, 16);
      sizes.push_back(chunk_sizes(upstream).front());
      EXPECT_EQ(sizes.back(), announced) << "stats().current_chunk_size said so";
      arena.release();
    }
    EXPECT_EQ(sizes[0], sizes[1]) << "release starts the growth from the buffer again";
    return sizes[0];
  };
  EXPECT_EQ(first_chunk({}, 16384), 32768U);
  EXPECT_EQ(first_chunk({}, 64), 4096U) << "at least initial_chunk_size";
  EXPECT_EQ(first_chunk({}, 1 << 20), 65536U) << "at most max_chunk_size";
  EXPECT_EQ(first_chunk({.initial_chunk_size = 1024, .growth_factor = 4}, 1000), 4000U);
  EXPECT_EQ(first_chunk({.initial_chunk_size = 1024, .growth_factor = 1}, 3000), 3000U)
      << "constant growth: the buffer's size";
  EXPECT_EQ(
      first_chunk({.initial_chunk_size = 1024, .max_chunk_size = 1024, .growth_factor = 1}, 3000),
      1024U);
}

TEST(ChunkedArenaBuffer, StatsCountItAsCapacityNeverAsUpstreamBytes) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  alignas(16) unsigned char storage[1024 + 8];
  const std::span<std::byte> buffer = bytes_of(storage, 8, 1024);  // 8 bytes of padding first
  chunked_arena_resource arena({.initial_buffer = buffer}, &upstream);
  auto stats = arena.stats();
  EXPECT_EQ(stats.bytes_from_upstream, 0U);
  EXPECT_EQ(stats.chunk_count, 0U) << "no chunk from the upstream";
  EXPECT_EQ(stats.bytes_reserved, 1024U);
  EXPECT_EQ(stats.bytes_available, 1016U);
  EXPECT_EQ(stats.waste, 8U) << "the alignment padding";
  for (int i = 0; i < 10; ++i)
    (void)arena.allocate(100, 16);  // 112 bytes each: 9 in the buffer
  stats = arena.stats();
  EXPECT_EQ(stats.bytes_from_upstream, upstream.bytes_in_use());
  EXPECT_EQ(stats.chunk_count, 1U);
  EXPECT_EQ(stats.bytes_in_use, 10 * 112U);
  EXPECT_EQ(stats.bytes_reserved, upstream.bytes_in_use() + 1024U);
  EXPECT_EQ(stats.bytes_in_use + stats.bytes_available + stats.waste, stats.bytes_reserved);
  EXPECT_EQ(stats.waste, 8U + (1016U - 9 * 112U) + pmrkit::detail::chunk_header_size)
      << "padding, the buffer's tail, the chunk's header";
  arena.release();
  stats = arena.stats();
  EXPECT_EQ(stats.bytes_from_upstream, 0U);
  EXPECT_EQ(stats.bytes_available, 1016U);
  EXPECT_EQ(stats.peak_bytes_in_use, 10 * 112U);
}

TEST(ChunkedArenaBuffer, OptionsKeepItAndANullBufferWithASizeIsRejected) {
  alignas(16) unsigned char storage[64];
  chunked_arena_resource arena({.initial_buffer = bytes_of(storage)});
  EXPECT_EQ(arena.options().initial_buffer.data(), bytes_of(storage).data());
  EXPECT_EQ(arena.options().initial_buffer.size(), 64U);
  try {
    chunked_arena_resource bad({.initial_buffer = {static_cast<std::byte*>(nullptr), 16}});
    FAIL() << "a null buffer with a size";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()),
              "pmrkit::chunked_arena_resource: initial_buffer must not have a null data pointer "
              "with a nonzero size");
  }
  chunked_arena_resource empty({.initial_buffer = {static_cast<std::byte*>(nullptr), 0}});
  EXPECT_NE(empty.allocate(8, 8), nullptr);
}

TEST(ChunkedArenaBuffer, FreedPartsAreFilledInCheckedBuilds) {
  if (!PMRKIT_CHECKED || PMRKIT_HAS_ASAN) GTEST_SKIP() << "checked builds without ASan";
  alignas(16) unsigned char storage[256];
  chunked_arena_resource arena({.initial_buffer = bytes_of(storage)},
                               std::pmr::new_delete_resource());
  auto* p = static_cast<unsigned char*>(arena.allocate(64, 16));
  std::memset(p, 1, 64);
  arena.reset();
  for (int i = 0; i < 64; ++i)
    ASSERT_EQ(p[i], pmrkit::detail::retired_fill);
}

TEST(ChunkedArenaBuffer, FreedPartsArePoisonedAndAllOfItRevivedAtTheEnd) {
  if (!PMRKIT_CHECKED || !PMRKIT_HAS_ASAN) {
    GTEST_SKIP() << "needs a checked build under AddressSanitizer (the asan preset)";
  }
  alignas(16) unsigned char storage[256];
  {
    chunked_arena_resource arena({.initial_buffer = bytes_of(storage, 3, 250)},
                                 std::pmr::new_delete_resource());
    EXPECT_TRUE(pmrkit::detail::is_poisoned(storage + 100)) << "free until handed out";
    auto* p = static_cast<unsigned char*>(arena.allocate(64, 16));
    EXPECT_FALSE(pmrkit::detail::is_poisoned(p + 63));
    arena.deallocate(p, 64, 16);
    EXPECT_TRUE(pmrkit::detail::is_poisoned(p)) << "rolled back";
    p = static_cast<unsigned char*>(arena.allocate(64, 16));
    (void)arena.allocate(1000, 16);  // to the upstream
    arena.reset();
    EXPECT_TRUE(pmrkit::detail::is_poisoned(p)) << "reset";
    (void)arena.allocate(64, 16);
    arena.release();
    EXPECT_TRUE(pmrkit::detail::is_poisoned(p)) << "release";
  }
  for (std::size_t i = 0; i < sizeof storage; ++i)
    ASSERT_FALSE(pmrkit::detail::is_poisoned(storage + i)) << "the caller's again, at " << i;
}

TEST(ChunkedArenaBufferDeathTest, UseAfterResetInTheBufferIsCaughtUnderAddressSanitizer) {
  if (!PMRKIT_CHECKED || !PMRKIT_HAS_ASAN) {
    GTEST_SKIP() << "needs a checked build under AddressSanitizer (the asan preset)";
  }
  EXPECT_DEATH(
      {
        alignas(16) unsigned char storage[256];
        chunked_arena_resource arena({.initial_buffer = bytes_of(storage)},
                                     std::pmr::new_delete_resource());
        auto* p = static_cast<volatile char*>(arena.allocate(64, 8));
        arena.reset();
        p[0] = 'x';
      },
      "use-after-poison");
}

TEST(ChunkedArenaBuffer, ContainersOverAStackBuffer) {
  alignas(16) unsigned char storage[4096];
  chunked_arena_resource arena({.initial_buffer = bytes_of(storage)},
                               std::pmr::null_memory_resource());
  for (int round = 0; round < 3; ++round) {
    {
      std::pmr::vector<int> numbers(&arena);
      numbers.reserve(500);
      for (int i = 0; i < 500; ++i)
        numbers.push_back(i);
      ASSERT_EQ(numbers[499], 499);
      EXPECT_TRUE(arena.owns(numbers.data()));
    }
    arena.reset();
  }
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
