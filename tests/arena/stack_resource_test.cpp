#include <pmr/arena/stack_resource.hpp>

#include <pmr/core/poison.hpp>
#include <pmr/core/reallocate.hpp>
#include <pmr/testing/test_resource.hpp>
#include <pmr/testing/violation_recorder.hpp>

#include "arena/carving_upstream.hpp"
#include "conformance/conformance.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <memory_resource>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace {

using pmrkit::arena_checkpoint;
using pmrkit::stack_options;
using pmrkit::stack_resource;
using pmrkit::stack_scope;
using pmrkit::test_resource;

struct stack_traits {
  using resource_type = stack_resource;
  static constexpr std::string_view name = "pmrkit::stack_resource";
  // Frees in LIFO order give every block back, so freed memory is reused.
  static constexpr pmrkit::conformance::capabilities caps{.lifo_only = true};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(stack_options{}, upstream);
  }
  static void release(resource_type& r) { r.release(); }
};

// Small constant chunks and no least alignment: many chunk boundaries, and
// every aligned request takes the slow path.
struct small_chunk_traits {
  using resource_type = stack_resource;
  static constexpr std::string_view name = "pmrkit::stack_resource (1 KiB constant, 1-byte)";
  static constexpr pmrkit::conformance::capabilities caps{.lifo_only = true};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(
        stack_options{.initial_chunk_size = 1024, .growth_factor = 1, .alignment = 1}, upstream);
  }
  static void release(resource_type& r) { r.release(); }
};

// Over a caller's buffer at an odd address, no least alignment: the suite's
// first blocks come from it, the rest from the upstream.
struct buffered_traits {
  using resource_type = stack_resource;
  static constexpr std::string_view name =
      "pmrkit::stack_resource (1000-byte buffer at an odd address, 1-byte)";
  static constexpr pmrkit::conformance::capabilities caps{.lifo_only = true};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    // Each stack its own buffer, kept until exit so that it outlives the stack.
    static std::vector<std::unique_ptr<std::byte[]>> buffers;
    std::byte* storage = buffers.emplace_back(std::make_unique<std::byte[]>(1001)).get();
    return std::make_unique<resource_type>(
        stack_options{.alignment = 1, .initial_buffer = {storage + 1, 1000}}, upstream);
  }
  static void release(resource_type& r) { r.release(); }
};

using stack_types = ::testing::Types<stack_traits, small_chunk_traits, buffered_traits>;
INSTANTIATE_TYPED_TEST_SUITE_P(stack, resource_conformance, stack_types,
                               pmrkit::conformance::traits_names);

constexpr pmrkit::test_options upstream_options{.name = "upstream"};

// The pops and rewinds of these tests must report nothing: a violation fails them.
class StackTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const auto& v : violations_.violations()) {
      ADD_FAILURE() << "unexpected violation: " << pmrkit::to_string(v.kind) << " on '"
                    << v.resource_name << "'";
    }
  }

  pmrkit::violation_recorder violations_;
};

class StackViolationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PMRKIT_CHECKED) GTEST_SKIP() << "violations are reported in checked builds";
  }

  pmrkit::violation_recorder recorder_;
};

TEST_F(StackTest, ShrinkReturnsCachedChunksAboveTheCurrentOne) {
  pmrkit::test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  stack_resource stack({}, &upstream);
  const pmrkit::arena_checkpoint start = stack.checkpoint();
  for (int i = 0; i < 100; ++i)
    (void)stack.allocate(512, 8);
  stack.rewind(start);
  void* low = stack.allocate(64, 8);
  EXPECT_GT(upstream.blocks_in_use(), 1U);
  stack.shrink();
  EXPECT_EQ(upstream.blocks_in_use(), 1U);
  stack.deallocate(low, 64, 8);
  stack.release();
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
}

TEST_F(StackTest, PopsTheTopBlock) {
  stack_resource stack({}, std::pmr::new_delete_resource());
  void* a = stack.allocate(64, 8);
  void* b = stack.allocate(64, 8);
  EXPECT_EQ(static_cast<std::byte*>(b), static_cast<std::byte*>(a) + 64);
  stack.deallocate(b, 64, 8);
  EXPECT_EQ(stack.allocate(64, 8), b) << "the popped block's memory serves the next request";
  stack.deallocate(b, 64, 8);
  stack.deallocate(a, 64, 8);
  EXPECT_EQ(stack.stats().bytes_in_use, 0U);
  EXPECT_EQ(stack.allocate(32, 8), a);
}

TEST_F(StackTest, PopReturnsToThePositionBeforeTheAllocation) {
  stack_resource stack({}, std::pmr::new_delete_resource());
  (void)stack.allocate(48, 16);
  const arena_checkpoint before = stack.checkpoint();
  void* p = stack.allocate(100, 16);
  EXPECT_GT(stack.checkpoint(), before);
  stack.deallocate(p, 100, 16);
  EXPECT_EQ(stack.checkpoint(), before);
}

TEST_F(StackTest, PopsAcrossChunkBoundaries) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  stack_resource stack({}, &upstream);
  const arena_checkpoint start = stack.checkpoint();
  std::vector<void*> blocks;
  std::vector<arena_checkpoint> before;
  while (stack.stats().chunk_count < 4) {
    before.push_back(stack.checkpoint());
    blocks.push_back(stack.allocate(1000, 16));
  }
  const std::size_t chunks = upstream.blocks_in_use();
  for (std::size_t i = blocks.size(); i-- > 0;) {
    stack.deallocate(blocks[i], 1000, 16);
    ASSERT_EQ(stack.checkpoint(), before[i]) << "after popping block " << i;
  }
  EXPECT_EQ(stack.checkpoint(), start);
  EXPECT_EQ(stack.stats().bytes_in_use, 0U);
  EXPECT_EQ(stack.stats().chunk_count, 4U) << "chunks stay cached";
  // The same sequence again lands on the same addresses, with nothing new from upstream.
  for (void* expected : blocks)
    EXPECT_EQ(stack.allocate(1000, 16), expected);
  EXPECT_EQ(upstream.blocks_in_use(), chunks);
  EXPECT_EQ(upstream.stats().allocations, chunks);
}

TEST_F(StackTest, LifoSequenceOfMixedRequestsPopsBackToTheStart) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  stack_resource stack({.initial_chunk_size = 1024, .max_chunk_size = 8192}, &upstream);
  struct block {
    void* pointer;
    std::size_t size;
    std::size_t alignment;
  };
  const arena_checkpoint start = stack.checkpoint();
  std::size_t allocations_after_first_round = 0;
  for (int round = 0; round < 3; ++round) {
    std::vector<block> blocks;
    std::uint32_t state = 12345;
    for (int i = 0; i < 500; ++i) {
      state = state * 1103515245U + 12345U;
      const std::size_t size = (state >> 8) % 3000;
      const std::size_t alignment = std::size_t{1} << ((state >> 20) % 10);
      void* p = stack.allocate(size, alignment);
      ASSERT_TRUE(pmrkit::is_aligned(p, alignment));
      std::memset(p, i & 0xFF, size);
      blocks.push_back({p, size, alignment});
      if (i % 4 == 3) {  // pop one now and then
        stack.deallocate(blocks.back().pointer, blocks.back().size, blocks.back().alignment);
        blocks.pop_back();
      }
    }
    for (auto b = blocks.rbegin(); b != blocks.rend(); ++b)
      stack.deallocate(b->pointer, b->size, b->alignment);
    EXPECT_EQ(stack.stats().bytes_in_use, 0U);
    EXPECT_EQ(stack.checkpoint(), start);
    if (round == 0) allocations_after_first_round = upstream.stats().allocations;
  }
  EXPECT_EQ(upstream.stats().allocations, allocations_after_first_round)
      << "the same work again reuses the chunks";
}

TEST_F(StackTest, OverAlignedBlocksPopBackToTheExactPosition) {
  stack_resource stack({}, std::pmr::new_delete_resource());
  void* small = stack.allocate(24, 8);
  const arena_checkpoint before = stack.checkpoint();
  void* aligned = stack.allocate(100, 256);
  EXPECT_TRUE(pmrkit::is_aligned(aligned, 256));
  stack.deallocate(aligned, 100, 256);
  EXPECT_EQ(stack.checkpoint(), before) << "the padding before the block is given back too";
  EXPECT_TRUE(stack.try_resize(small, 24, 40, 8)) << "the block below is the newest again";
  stack.deallocate(small, 40, 8);
  EXPECT_EQ(stack.stats().bytes_in_use, 0U);
}

TEST_F(StackTest, CheckpointsCompareInAllocationOrder) {
  stack_resource stack({.initial_chunk_size = 1024}, std::pmr::new_delete_resource());
  std::vector<arena_checkpoint> markers{stack.checkpoint()};
  for (int i = 0; i < 20; ++i) {
    (void)stack.allocate(200, 8);  // crosses into later chunks
    markers.push_back(stack.checkpoint());
  }
  for (std::size_t i = 1; i < markers.size(); ++i)
    EXPECT_LT(markers[i - 1], markers[i]) << i;
  EXPECT_EQ(stack.checkpoint(), markers.back());
  EXPECT_GT(stack.stats().chunk_count, 2U);
}

TEST_F(StackTest, RewindFreesEverythingAfterTheMarkerAndKeepsChunks) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  stack_resource stack({}, &upstream);
  (void)stack.allocate(100, 8);
  const arena_checkpoint marker = stack.checkpoint();
  void* first_after = stack.allocate(100, 8);
  for (int i = 0; i < 300; ++i)
    (void)stack.allocate(100, 8);    // into later chunks
  (void)stack.allocate(200'000, 8);  // and a chunk of its own size
  const std::size_t chunks = upstream.blocks_in_use();
  stack.rewind(marker);
  EXPECT_EQ(stack.checkpoint(), marker);
  EXPECT_EQ(upstream.blocks_in_use(), chunks) << "chunks are kept after a rewind";
  EXPECT_EQ(stack.allocate(100, 8), first_after);
  for (int i = 0; i < 300; ++i)
    (void)stack.allocate(100, 8);
  (void)stack.allocate(200'000, 8);
  EXPECT_EQ(upstream.blocks_in_use(), chunks) << "and serve the same work again";
  EXPECT_EQ(upstream.stats().allocations, chunks);
}

TEST_F(StackTest, RewindWithinAChunkReusesTheSameAddresses) {
  stack_resource stack({}, std::pmr::new_delete_resource());
  (void)stack.allocate(10, 8);
  const arena_checkpoint marker = stack.checkpoint();
  void* a = stack.allocate(30, 8);
  void* b = stack.allocate(30, 8);
  stack.rewind(marker);
  EXPECT_EQ(stack.allocate(30, 8), a);
  EXPECT_EQ(stack.allocate(30, 8), b);
  stack.rewind(marker);
  stack.rewind(marker);  // rewinding to the position itself changes nothing
  EXPECT_EQ(stack.checkpoint(), marker);
}

TEST_F(StackTest, RewindToTheStartKeepsTheFirstChunkForTheNextAllocation) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  stack_resource stack({}, &upstream);
  const arena_checkpoint start = stack.checkpoint();
  void* first = stack.allocate(64, 16);
  EXPECT_GT(stack.checkpoint(), start);
  stack.rewind(start);
  EXPECT_EQ(stack.checkpoint(), start) << "the start has one marker";
  EXPECT_EQ(stack.allocate(64, 16), first);
  stack.deallocate(first, 64, 16);
  EXPECT_EQ(stack.checkpoint(), start);
  EXPECT_EQ(upstream.stats().allocations, 1U);
}

TEST_F(StackTest, ScopeRewindsOnExit) {
  stack_resource stack({}, std::pmr::new_delete_resource());
  (void)stack.allocate(64, 8);
  const arena_checkpoint outside = stack.checkpoint();
  void* inside = nullptr;
  {
    stack_scope scope(stack);
    EXPECT_EQ(scope.marker(), outside);
    EXPECT_EQ(&scope.stack(), &stack);
    inside = stack.allocate(5000, 8);  // in a chunk of its own
    (void)stack.allocate(64, 8);
  }
  EXPECT_EQ(stack.checkpoint(), outside);
  EXPECT_EQ(stack.allocate(5000, 8), inside);
}

TEST_F(StackTest, NestedScopes) {
  stack_resource stack({}, std::pmr::new_delete_resource());
  stack_scope outer(stack);
  void* a = stack.allocate(100, 16);
  arena_checkpoint after_a;
  void* b = nullptr;
  {
    stack_scope middle(stack);
    after_a = stack.checkpoint();
    b = stack.allocate(100, 16);
    {
      stack_scope inner(stack);
      (void)stack.allocate(3000, 16);
      (void)stack.allocate(3000, 16);
    }
    EXPECT_GT(stack.checkpoint(), after_a);
    EXPECT_EQ(stack.allocate(100, 16), static_cast<std::byte*>(b) + 112);
  }
  EXPECT_EQ(stack.checkpoint(), after_a);
  EXPECT_EQ(stack.allocate(100, 16), b);
  EXPECT_NE(a, b);
}

TEST_F(StackTest, FrameLoopTakesFromUpstreamOnlyInTheFirstFrames) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  stack_resource stack({}, &upstream);
  std::vector<std::size_t> allocations_after_frame;
  for (int frame = 0; frame < 50; ++frame) {
    stack_scope scope(stack);
    std::pmr::vector<int> ids(&stack);
    ids.reserve(1000);
    for (int i = 0; i < 1000; ++i)
      ids.push_back(i + frame);
    {
      stack_scope nested(stack);
      for (int i = 0; i < 40; ++i)
        (void)stack.allocate(static_cast<std::size_t>(100 + (i * 37 + frame) % 900), 16);
    }
    void* scratch = stack.allocate(20'000, 64);
    stack.deallocate(scratch, 20'000, 64);
    ASSERT_EQ(ids.back(), 999 + frame);
    allocations_after_frame.push_back(upstream.stats().allocations);
  }
  EXPECT_GT(allocations_after_frame.front(), 0U);
  EXPECT_EQ(allocations_after_frame[2], allocations_after_frame.back())
      << "frames after the first few take nothing from the upstream";
  EXPECT_EQ(stack.stats().bytes_in_use, 0U);
  EXPECT_GE(stack.stats().peak_bytes_in_use, 4000U + 20'000U);
}

TEST_F(StackTest, ResetKeepsChunksReleaseReturnsThem) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  stack_resource stack({}, &upstream);
  for (int i = 0; i < 100; ++i)
    (void)stack.allocate(512, 8);
  const std::size_t chunks = upstream.blocks_in_use();
  const std::size_t grown = stack.stats().current_chunk_size;
  stack.reset();
  EXPECT_EQ(stack.stats().bytes_in_use, 0U);
  EXPECT_EQ(stack.stats().current_chunk_size, grown);
  EXPECT_EQ(upstream.blocks_in_use(), chunks);
  for (int i = 0; i < 100; ++i)
    (void)stack.allocate(512, 8);
  EXPECT_EQ(upstream.stats().allocations, chunks) << "a second pass takes nothing new";
  stack.release();
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
  EXPECT_EQ(stack.stats().current_chunk_size, 4096U) << "release starts the growth again";
  void* p = stack.allocate(64, 8);
  EXPECT_TRUE(stack.owns(p));
  EXPECT_EQ(upstream.blocks_in_use(), 1U);
}

TEST_F(StackTest, TopBlockGrowsInPlace) {
  stack_resource stack({}, std::pmr::new_delete_resource());
  (void)stack.allocate(16, 8);
  auto* text = static_cast<char*>(stack.allocate(16, 1));
  std::memcpy(text, "0123456789abcde", 16);
  void* grown = pmrkit::reallocate(stack, text, 16, 1000, 1);
  EXPECT_EQ(grown, text);
  void* shrunk = pmrkit::reallocate(stack, grown, 1000, 40, 1);
  EXPECT_EQ(shrunk, text);
  EXPECT_EQ(std::memcmp(shrunk, "0123456789abcde", 16), 0);
  void* after = stack.allocate(8, 1);
  EXPECT_EQ(static_cast<char*>(after), text + 48) << "shrinking gave the tail back";
  // Only the newest block resizes in place, and only within its chunk.
  EXPECT_FALSE(stack.try_resize(text, 40, 80, 1));
  EXPECT_FALSE(stack.try_resize(after, 8, 100'000, 1));
  EXPECT_TRUE(stack.try_resize(after, 8, 0, 1));
  stack.deallocate(after, 0, 1);
  stack.deallocate(shrunk, 40, 1);
}

TEST_F(StackTest, InvalidOptionsNameTheField) {
  const auto message_of = [](stack_options options,
                             std::pmr::memory_resource* upstream) -> std::string {
    try {
      stack_resource stack(options, upstream);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "";
  };
  auto* upstream = std::pmr::new_delete_resource();
  EXPECT_NE(message_of({.initial_chunk_size = 16}, upstream).find("initial_chunk_size"),
            std::string::npos);
  EXPECT_NE(message_of({.initial_chunk_size = 8192, .max_chunk_size = 4096}, upstream)
                .find("max_chunk_size"),
            std::string::npos);
  EXPECT_NE(message_of({.alignment = 24}, upstream).find("alignment"), std::string::npos);
  EXPECT_NE(message_of({.alignment = 8192}, upstream).find("alignment"), std::string::npos);
  EXPECT_NE(message_of({}, nullptr).find("upstream"), std::string::npos);
  EXPECT_EQ(message_of({}, upstream), "");
}

TEST_F(StackTest, BadRequestsThrowAllocationErrorAndChangeNothing) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  stack_resource stack({.name = "frame stack"}, &upstream);
  (void)stack.allocate(100, 8);
  const arena_checkpoint before = stack.checkpoint();
  const auto reason_of = [&](std::size_t bytes, std::size_t alignment) {
    try {
      (void)stack.allocate(bytes, alignment);
    } catch (const pmrkit::allocation_error& e) {
      if (e.reason() != pmrkit::failure_reason::injected_failure) {  // the upstream's own
        EXPECT_EQ(e.resource_name(), "frame stack");
        EXPECT_EQ(e.requested(), bytes);
        EXPECT_EQ(e.alignment(), alignment);
      }
      return e.reason();
    }
    ADD_FAILURE() << "allocate(" << bytes << ", " << alignment << ") did not throw";
    return pmrkit::failure_reason::out_of_capacity;
  };
  EXPECT_EQ(reason_of(8, 3), pmrkit::failure_reason::bad_alignment);
  EXPECT_EQ(reason_of(8, 0), pmrkit::failure_reason::bad_alignment);
  EXPECT_EQ(reason_of(std::numeric_limits<std::size_t>::max() - 10, 16),
            pmrkit::failure_reason::size_overflow);
  upstream.set_allocation_limit(0);
  EXPECT_EQ(reason_of(10'000, 8), pmrkit::failure_reason::injected_failure);
  EXPECT_EQ(stack.checkpoint(), before);
  EXPECT_NE(stack.allocate(16, 8), nullptr) << "the current chunk still serves";
  EXPECT_NE(stack.allocate(10'000, 8), nullptr) << "and the upstream again";
}

TEST_F(StackTest, BlocksHonourTheMinimumAlignmentOption) {
  stack_resource stack({.alignment = 64}, std::pmr::new_delete_resource());
  std::vector<void*> blocks;
  for (int i = 0; i < 100; ++i) {
    blocks.push_back(stack.allocate(3, 1));
    EXPECT_TRUE(pmrkit::is_aligned(blocks.back(), 64));
  }
  for (auto p = blocks.rbegin(); p != blocks.rend(); ++p)
    stack.deallocate(*p, 3, 1);
  EXPECT_EQ(stack.stats().bytes_in_use, 0U);
}

TEST_F(StackTest, StatsAccountForUseWasteAndPeak) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  stack_resource stack({}, &upstream);
  EXPECT_EQ(stack.stats().chunk_count, 0U);
  {
    stack_scope scope(stack);
    for (int i = 0; i < 3; ++i)
      (void)stack.allocate(1000, 16);
    const pmrkit::arena_stats stats = stack.stats();
    EXPECT_EQ(stats.bytes_from_upstream, upstream.bytes_in_use());
    EXPECT_EQ(stats.bytes_reserved, stats.bytes_from_upstream);
    EXPECT_EQ(stats.bytes_in_use, 3024U) << "each 1000 rounded up to 16";
    EXPECT_EQ(stats.bytes_in_use + stats.bytes_available + stats.waste, stats.bytes_from_upstream);
    EXPECT_EQ(stats.waste, pmrkit::detail::chunk_header_size);
  }
  const pmrkit::arena_stats stats = stack.stats();
  EXPECT_EQ(stats.bytes_in_use, 0U);
  EXPECT_EQ(stats.peak_bytes_in_use, 3024U) << "noted when the scope rewound";
  EXPECT_EQ(stats.chunk_count, 1U);
}

TEST_F(StackTest, EqualityIsIdentityAndObserversAnswer) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  stack_resource stack({.name = "scratch"}, &upstream);
  stack_resource other({}, &upstream);
  EXPECT_TRUE(stack.is_equal(stack));
  EXPECT_FALSE(stack.is_equal(other));
  EXPECT_EQ(stack.name(), "scratch");
  EXPECT_EQ(other.name(), "stack");
  EXPECT_EQ(stack.options().name, "scratch");
  EXPECT_EQ(stack.upstream_resource(), &upstream);
  void* p = stack.allocate(8);
  int local = 0;
  EXPECT_TRUE(stack.owns(p));
  EXPECT_FALSE(stack.owns(&local));
  EXPECT_FALSE(other.owns(p));
  stack.deallocate(p, 8);
}

// --- Misuse -----------------------------------------------------------------------------------

TEST_F(StackViolationTest, OutOfOrderFreeIsAViolation) {
  stack_resource stack({.name = "lifo"}, std::pmr::new_delete_resource());
  void* a = stack.allocate(32, 8);
  void* b = stack.allocate(32, 8);
  const arena_checkpoint top = stack.checkpoint();
  stack.deallocate(a, 32, 8);  // b is the top
  ASSERT_EQ(recorder_.count(pmrkit::violation_kind::out_of_order), 1U);
  EXPECT_EQ(recorder_.violations().front().resource_name, "lifo");
  EXPECT_EQ(recorder_.violations().front().pointer, a);
  EXPECT_EQ(stack.checkpoint(), top) << "the call was ignored";
  stack.deallocate(b, 32, 8);
  stack.deallocate(a, 32, 8);
  EXPECT_EQ(recorder_.size(), 1U) << "and the stack stayed usable";
  EXPECT_EQ(stack.stats().bytes_in_use, 0U);
}

TEST_F(StackViolationTest, SizeOrAlignmentMismatchOnAPopIsAViolation) {
  stack_resource stack({}, std::pmr::new_delete_resource());
  void* p = stack.allocate(48, 8);
  stack.deallocate(p, 32, 8);
  stack.deallocate(p, 48, 16);
  ASSERT_EQ(recorder_.count(pmrkit::violation_kind::size_mismatch), 1U);
  EXPECT_EQ(recorder_.violations()[0].expected_size, 48U);
  EXPECT_EQ(recorder_.count(pmrkit::violation_kind::alignment_mismatch), 1U);
  stack.deallocate(p, 48, 8);
  EXPECT_EQ(recorder_.size(), 2U);
  EXPECT_EQ(stack.stats().bytes_in_use, 0U);
}

TEST_F(StackViolationTest, ForeignPointerAndDoubleFreeAreViolations) {
  stack_resource stack({}, std::pmr::new_delete_resource());
  int local = 0;
  stack.deallocate(&local, sizeof local, alignof(int));
  void* a = stack.allocate(16, 8);
  void* b = stack.allocate(16, 8);
  stack.deallocate(b, 16, 8);
  stack.deallocate(b, 16, 8);  // popped already
  EXPECT_EQ(recorder_.count(pmrkit::violation_kind::foreign_pointer), 2U);
  EXPECT_EQ(stack.allocate(16, 8), b);
  stack.deallocate(b, 16, 8);
  stack.deallocate(a, 16, 8);
  EXPECT_EQ(recorder_.size(), 2U);
}

TEST_F(StackViolationTest, StaleCheckpointIsAViolation) {
  stack_resource stack({.name = "frames"}, std::pmr::new_delete_resource());
  stack_resource other({}, std::pmr::new_delete_resource());
  (void)stack.allocate(10, 8);
  const arena_checkpoint early = stack.checkpoint();
  (void)stack.allocate(10, 8);
  const arena_checkpoint late = stack.checkpoint();
  stack.rewind(early);
  stack.rewind(late);  // beyond the current top
  stack.rewind(other.checkpoint());
  stack.rewind(arena_checkpoint{});
  EXPECT_EQ(recorder_.count(pmrkit::violation_kind::stale_checkpoint), 3U);
  EXPECT_EQ(recorder_.violations().front().resource_name, "frames");
  EXPECT_EQ(stack.checkpoint(), early) << "the stale rewinds were ignored";

  const arena_checkpoint before_reset = stack.checkpoint();
  stack.reset();
  stack.rewind(before_reset);
  const arena_checkpoint before_release = stack.checkpoint();
  (void)stack.allocate(10, 8);
  stack.release();
  stack.rewind(before_release);
  EXPECT_EQ(recorder_.count(pmrkit::violation_kind::stale_checkpoint), 5U);
  EXPECT_NE(stack.allocate(10, 8), nullptr);
}

TEST_F(StackViolationTest, MarkerFreedByAPopAndOvergrownIsStale) {
  stack_resource stack({}, std::pmr::new_delete_resource());
  void* a = stack.allocate(32, 16);
  const arena_checkpoint inside_a = stack.checkpoint();
  stack.deallocate(a, 32, 16);
  void* b = stack.allocate(64, 16);  // covers the marker's position
  stack.rewind(inside_a);            // would cut b in half
  EXPECT_EQ(recorder_.count(pmrkit::violation_kind::stale_checkpoint), 1U);
  stack.deallocate(b, 64, 16);
  EXPECT_EQ(recorder_.size(), 1U);
}

// In every build a free out of LIFO order changes nothing: the block waits
// for its scope (checked builds also report it).
TEST(StackOutOfOrder, FreeOfABlockBelowTheTopIsIgnored) {
  pmrkit::violation_recorder recorder;
  stack_resource stack({}, std::pmr::new_delete_resource());
  auto* a = static_cast<char*>(stack.allocate(32, 8));
  auto* b = static_cast<char*>(stack.allocate(32, 8));
  std::memset(b, 'b', 32);
  const arena_checkpoint top = stack.checkpoint();
  stack.deallocate(a, 32, 8);
  EXPECT_EQ(stack.checkpoint(), top);
  auto* c = static_cast<char*>(stack.allocate(32, 8));
  EXPECT_EQ(c, b + 32) << "b is still in use";
  EXPECT_EQ(b[31], 'b');
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::out_of_order), PMRKIT_CHECKED ? 1U : 0U);
}

TEST(StackOutOfOrder, GrowingVectorKeepsItsContentsAndTheScopeFreesTheRest) {
  pmrkit::violation_recorder recorder;
  stack_resource stack({}, std::pmr::new_delete_resource());
  {
    stack_scope scope(stack);
    std::pmr::vector<int> v(&stack);
    for (int i = 0; i < 5000; ++i)
      v.push_back(i);  // each regrowth frees the old buffer below the new one
    (void)stack.allocate(64, 8);
    for (int i = 0; i < 5000; ++i)
      ASSERT_EQ(v[static_cast<std::size_t>(i)], i);
  }
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::out_of_order) > 0, PMRKIT_CHECKED != 0);
  EXPECT_EQ(stack.stats().bytes_in_use, 0U) << "the scope took everything back";
}

// Unchecked builds ignore such a marker too, rather than walk off the chain.
TEST(StackStaleMarkers, MarkerOfAChunkMovedByAnInsertionIsStale) {
  if (!PMRKIT_CHECKED) {
    GTEST_SKIP()
        << "unchecked builds keep no marker history: a marker is judged by its place alone";
  }

  pmrkit::violation_recorder recorder;
  stack_resource stack({.initial_chunk_size = 1024, .growth_factor = 1},
                       std::pmr::new_delete_resource());
  void* a = stack.allocate(900, 16);  // chunk 0
  void* b = stack.allocate(900, 16);  // chunk 1
  const arena_checkpoint in_b = stack.checkpoint();
  stack.deallocate(b, 900, 16);
  // Chunk 1 is too small for this: a new chunk goes between chunks 0 and 1,
  // taking index 1, and the position lies in it, past the marker's offset.
  void* big = stack.allocate(5000, 16);
  ASSERT_GT(stack.checkpoint(), in_b);
  stack.rewind(in_b);
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::stale_checkpoint), PMRKIT_CHECKED ? 1U : 0U);
  stack.deallocate(big, 5000, 16);
  stack.deallocate(a, 900, 16);
  EXPECT_EQ(stack.stats().bytes_in_use, 0U);
}

TEST(StackDeathTest, UseAfterRewindIsCaughtUnderAsan) {
  if (!PMRKIT_CHECKED || !PMRKIT_HAS_ASAN) {
    GTEST_SKIP() << "needs a checked build under AddressSanitizer (the asan preset)";
  }
  EXPECT_DEATH(
      {
        stack_resource stack({}, std::pmr::new_delete_resource());
        const arena_checkpoint start = stack.checkpoint();
        auto* p = static_cast<volatile char*>(stack.allocate(64, 8));
        stack.rewind(start);
        p[0] = 'x';
      },
      "use-after-poison");
  EXPECT_DEATH(
      {
        stack_resource stack({}, std::pmr::new_delete_resource());
        (void)stack.allocate(64, 8);
        auto* p = static_cast<volatile char*>(stack.allocate(64, 8));
        stack.deallocate(const_cast<char*>(p), 64, 8);
        p[1] = 'x';
      },
      "use-after-poison");
}

TEST(StackCheckedBuild, PoppedMemoryIsFilledWithThePattern) {
  if (!PMRKIT_CHECKED || PMRKIT_HAS_ASAN) GTEST_SKIP() << "checked builds without ASan";
  stack_resource stack({}, std::pmr::new_delete_resource());
  (void)stack.allocate(64, 8);
  auto* p = static_cast<unsigned char*>(stack.allocate(64, 8));
  std::memset(p, 1, 64);
  stack.deallocate(p, 64, 8);
  for (int i = 0; i < 64; ++i)
    ASSERT_EQ(p[i], pmrkit::detail::retired_fill);
}

// --- Markers never depend on the upstream's addresses (issue 12, bug 1) ----------------------

using pmrkit_test::carving_upstream;

class StackMarkers : public ::testing::TestWithParam<carving_upstream::direction> {};

INSTANTIATE_TEST_SUITE_P(Upstreams, StackMarkers,
                         ::testing::Values(carving_upstream::direction::rising,
                                           carving_upstream::direction::falling),
                         [](const auto& info) {
                           return info.param == carving_upstream::direction::rising ? "rising"
                                                                                    : "falling";
                         });

// A marker after one large block is valid after a second one.
TEST_P(StackMarkers, ValidMarkerAfterASecondLargeBlock) {
  pmrkit::violation_recorder recorder;
  carving_upstream upstream(GetParam());
  stack_resource stack({}, &upstream);
  (void)stack.allocate(16, 8);
  (void)stack.allocate(200'000, 8);  // L0, a chunk of its own
  const arena_checkpoint marker = stack.checkpoint();
  (void)stack.allocate(200'000, 8);  // L1
  EXPECT_GT(stack.checkpoint(), marker);
  stack.rewind(marker);
  EXPECT_EQ(recorder.size(), 0U);
  EXPECT_EQ(stack.checkpoint(), marker);
  const std::size_t allocations = upstream.allocations();
  (void)stack.allocate(200'000, 8);  // L1's chunk again
  EXPECT_EQ(upstream.allocations(), allocations);
}

// A marker freed by an earlier rewind stays stale after a larger block, and
// no block in use is handed out again.
TEST_P(StackMarkers, StaleMarkerAfterALargerBlockIsIgnored) {
  pmrkit::violation_recorder recorder;
  carving_upstream upstream(GetParam());
  stack_resource stack({}, &upstream);
  (void)stack.allocate(16, 8);
  void* l0 = stack.allocate(200'000, 8);  // kept live
  std::memset(l0, 0xA0, 200'000);
  const arena_checkpoint m0 = stack.checkpoint();
  (void)stack.allocate(200'000, 8);  // L1
  const arena_checkpoint m1 = stack.checkpoint();
  stack.rewind(m0);  // m1 is stale now
  void* l2 = stack.allocate(300'000, 8);
  stack.rewind(m1);
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::stale_checkpoint), PMRKIT_CHECKED ? 1U : 0U);
  void* next = stack.allocate(200'000, 8);
  EXPECT_FALSE(pmrkit_test::overlap(next, 200'000, l0, 200'000)) << "L0 is in use";
  EXPECT_FALSE(pmrkit_test::overlap(next, 200'000, l2, 300'000)) << "L2 is in use";
  EXPECT_EQ(static_cast<unsigned char*>(l0)[199'999], 0xA0);
  stack.deallocate(next, 200'000, 8);
  stack.deallocate(l2, 300'000, 8);
  EXPECT_EQ(recorder.size(), PMRKIT_CHECKED ? 1U : 0U) << "the pops were in order";
}

// Same chunk, same offset, another history: stale in every build.
TEST(StackStaleMarkers, MarkerFreedByARewindAndRegrownPastIsStale) {
  if (!PMRKIT_CHECKED) {
    GTEST_SKIP()
        << "unchecked builds keep no marker history: a marker is judged by its place alone";
  }

  pmrkit::violation_recorder recorder;
  stack_resource stack({}, std::pmr::new_delete_resource());
  const arena_checkpoint start = stack.checkpoint();
  (void)stack.allocate(32, 16);
  const arena_checkpoint after_a = stack.checkpoint();
  stack.rewind(start);
  void* b = stack.allocate(64, 16);  // covers after_a's position
  stack.rewind(after_a);             // would cut b in half
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::stale_checkpoint), PMRKIT_CHECKED ? 1U : 0U);
  stack.deallocate(b, 64, 16);
  EXPECT_EQ(stack.checkpoint(), start) << "b was still the newest block";
}

// --- The least alignment survives pops, resets and rewinds (bug 2) -----------------------------

TEST_F(StackTest, LeastAlignmentSurvivesPopResetAndRewindToTheStart) {
  stack_resource stack({.alignment = 64}, std::pmr::new_delete_resource());
  void* p = stack.allocate(32, 64);
  EXPECT_TRUE(pmrkit::is_aligned(p, 64));
  stack.deallocate(p, 32, 64);
  p = stack.allocate(32, 64);
  EXPECT_TRUE(pmrkit::is_aligned(p, 64)) << "after a pop";
  stack.deallocate(p, 32, 64);
  stack.reset();
  p = stack.allocate(32, 64);
  EXPECT_TRUE(pmrkit::is_aligned(p, 64)) << "after reset";
  stack.deallocate(p, 32, 64);
  const arena_checkpoint start = stack.checkpoint();
  (void)stack.allocate(32, 64);
  stack.rewind(start);
  p = stack.allocate(3, 1);
  EXPECT_TRUE(pmrkit::is_aligned(p, 64)) << "after a rewind to the start";
  stack.deallocate(p, 3, 1);
}

// --- reallocate keeps LIFO order (bug 5) --------------------------------------------------------

TEST_F(StackTest, ReallocateOfTheNewestBlockBeyondItsChunkKeepsLifoOrder) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  stack_resource stack({}, &upstream);
  void* below = stack.allocate(100, 8);
  const arena_checkpoint before = stack.checkpoint();
  auto* text = static_cast<char*>(stack.allocate(1000, 8));
  std::memcpy(text, "0123456789abcde", 16);
  // 10 000 bytes do not fit the 4 KiB chunk: the block moves to a new one.
  auto* moved = static_cast<char*>(pmrkit::reallocate(stack, text, 1000, 10'000, 8));
  EXPECT_NE(moved, text);
  EXPECT_EQ(std::memcmp(moved, "0123456789abcde", 16), 0);
  moved[9'999] = 'z';
  stack.deallocate(moved, 10'000, 8);  // the newest block: it pops
  EXPECT_EQ(stack.checkpoint(), before) << "the old block went with it";
  stack.deallocate(below, 100, 8);
  EXPECT_EQ(stack.stats().bytes_in_use, 0U);
}

TEST_F(StackTest, ReallocateOfTheFirstBlockOfAChunkMovesAndPops) {
  stack_resource stack({.initial_chunk_size = 1024, .max_chunk_size = 1024},
                       std::pmr::new_delete_resource());
  void* a = stack.allocate(900, 16);  // chunk 0
  const arena_checkpoint before = stack.checkpoint();
  void* b = stack.allocate(900, 16);  // chunk 1, its first block
  std::memset(b, 'b', 900);
  auto* moved = static_cast<unsigned char*>(pmrkit::reallocate(stack, b, 900, 5000, 16));
  EXPECT_EQ(moved[899], 'b');
  stack.deallocate(moved, 5000, 16);
  EXPECT_EQ(stack.checkpoint(), before);
  stack.deallocate(a, 900, 16);
  EXPECT_EQ(stack.stats().bytes_in_use, 0U);
}

// The fuzzer's stack regressions (fuzz/regressions/stack/): a reallocate of the first block of the
// first chunk, over-aligned, whose new size needs another chunk, read the old block after the retry
// of the over-aligned bump had poisoned its first bytes (the link written where the block began);
// and a reallocate that fails put the block back at another address (over-aligned: the retry went
// through the link, the original had none), so it was lost and its free reported foreign.

TEST_F(StackTest, ReallocateOfAnOverAlignedFirstBlockIntoANewChunkCopiesItsBytes) {
  stack_resource stack({.initial_chunk_size = 1024, .max_chunk_size = 1024, .alignment = 1},
                       std::pmr::new_delete_resource());
  // The first block of the first chunk, aligned beyond the least alignment.
  auto* b = static_cast<unsigned char*>(stack.allocate(600, 16));
  std::memset(b, 'b', 600);
  auto* moved = static_cast<unsigned char*>(pmrkit::reallocate(stack, b, 600, 5000, 16));
  ASSERT_NE(moved, b);
  for (std::size_t i = 0; i < 600; ++i)
    ASSERT_EQ(moved[i], 'b') << "byte " << i;
  stack.deallocate(moved, 5000, 16);
  EXPECT_EQ(stack.stats().bytes_in_use, 0U);
}

TEST_F(StackTest, AFailedReallocateOfTheNewestBlockLeavesItWhereItWas) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  stack_resource stack({.initial_chunk_size = 1024, .max_chunk_size = 1024, .alignment = 1},
                       &upstream);
  void* below = stack.allocate(100, 1);
  const arena_checkpoint after_below = stack.checkpoint();
  for (const std::size_t alignment : {std::size_t{1}, std::size_t{8}, std::size_t{64}}) {
    SCOPED_TRACE(alignment);
    auto* b = static_cast<unsigned char*>(stack.allocate(50, alignment));
    std::memset(b, 'b', 50);
    const arena_checkpoint with_b = stack.checkpoint();
    // Too large to be asked of anyone, and then refused by the upstream.
    EXPECT_THROW((void)pmrkit::reallocate(stack, b, 50, std::numeric_limits<std::size_t>::max() - 8,
                                          alignment),
                 pmrkit::allocation_error);
    upstream.set_allocation_limit(0);
    EXPECT_THROW((void)pmrkit::reallocate(stack, b, 50, 100'000, alignment),
                 pmrkit::allocation_error);
    upstream.set_allocation_limit(-1);
    EXPECT_EQ(stack.checkpoint(), with_b) << "nothing changed, markers after b still valid";
    EXPECT_EQ(std::count(b, b + 50, 'b'), 50);
    stack.rewind(with_b);                // still a valid marker: no violation
    stack.deallocate(b, 50, alignment);  // still the newest block
    EXPECT_EQ(stack.checkpoint(), after_below);
  }
  // The same for the first block of a chunk, over-aligned (no link before it).
  stack.deallocate(below, 100, 1);
  stack_resource fresh({.alignment = 1}, &upstream);
  auto* first = static_cast<unsigned char*>(fresh.allocate(0, 8));
  upstream.set_allocation_limit(0);
  EXPECT_THROW((void)pmrkit::reallocate(fresh, first, 0, 100'000, 8), pmrkit::allocation_error);
  upstream.set_allocation_limit(-1);
  fresh.deallocate(first, 0, 8);  // still the newest block
  EXPECT_EQ(fresh.stats().bytes_in_use, 0U);
  EXPECT_EQ(stack.stats().bytes_in_use, 0U);
}

// --- A caller's initial buffer ------------------------------------------------------------------

TEST_F(StackTest, AWorkloadThatFitsTheBufferTakesNothingFromTheUpstream) {
  alignas(64) std::byte buffer[1024];
  // The null resource throws on any request: the buffer must serve everything.
  stack_resource stack({.initial_buffer = buffer}, std::pmr::null_memory_resource());
  for (int frame = 0; frame < 3; ++frame) {
    stack_scope scope(stack);
    void* a = stack.allocate(400, 16);
    void* b = stack.allocate(300, 64);
    void* c = stack.allocate(200, 8);
    for (void* p : {a, b, c}) {
      EXPECT_GE(static_cast<std::byte*>(p), buffer);
      EXPECT_LT(static_cast<std::byte*>(p), buffer + sizeof buffer);
    }
    stack.deallocate(c, 200, 8);
    void* again = stack.allocate(200, 8);
    EXPECT_EQ(again, c) << "the popped block's bytes are the next one's";
  }
  EXPECT_THROW((void)stack.allocate(2000), std::bad_alloc) << "beyond it: the upstream";
  const pmrkit::arena_stats s = stack.stats();
  EXPECT_EQ(s.bytes_from_upstream, 0U);
  EXPECT_EQ(s.chunk_count, 0U);
  EXPECT_EQ(s.bytes_in_use, 0U);
  EXPECT_EQ(s.bytes_reserved, sizeof buffer);
  EXPECT_EQ(s.bytes_available + s.waste, sizeof buffer);
}

TEST_F(StackTest, PopsAndRewindsCrossFromChunksBackIntoTheBuffer) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  std::byte storage[513];
  stack_resource stack(
      {.initial_chunk_size = 1024, .alignment = 1, .initial_buffer = {storage + 1, 512}},
      &upstream);
  auto* a = static_cast<std::byte*>(stack.allocate(500, 1));
  EXPECT_EQ(a, storage + 1) << "every byte of the buffer serves blocks, at any address";
  const arena_checkpoint in_buffer = stack.checkpoint();
  void* b = stack.allocate(100, 1);  // does not fit the 12 bytes left: the first chunk
  EXPECT_FALSE(b >= storage && b < storage + sizeof storage);
  EXPECT_EQ(upstream.stats().blocks_in_use, 1U);
  stack.deallocate(b, 100, 1);
  EXPECT_EQ(stack.checkpoint(), in_buffer) << "popped back into the buffer";
  void* c = stack.allocate(12, 1);
  EXPECT_EQ(c, storage + 501) << "the buffer's tail, after the pop";
  void* d = stack.allocate(700, 16);
  stack.rewind(in_buffer);
  EXPECT_EQ(stack.allocate(12, 1), c);
  (void)d;
  stack.reset();
  EXPECT_EQ(stack.allocate(1, 1), storage + 1) << "reset: the buffer is current again";
  stack.release();
  EXPECT_EQ(upstream.stats().blocks_in_use, 0U) << "release: every chunk goes back";
  EXPECT_EQ(stack.allocate(1, 1), storage + 1) << "release: the buffer is current again";
  EXPECT_EQ(stack.shrink(), 0U) << "shrink never counts the buffer";
}

TEST_F(StackTest, TheFirstUpstreamChunkGrowsFromTheBuffersSize) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  std::byte buffer[4096];
  stack_resource stack(
      {.initial_chunk_size = 1024, .max_chunk_size = 65536, .initial_buffer = buffer}, &upstream);
  void* a = stack.allocate(4000);
  void* b = stack.allocate(1000);  // the buffer is full: the first chunk, twice the buffer
  EXPECT_EQ(stack.stats().bytes_from_upstream, 8192U);
  stack.deallocate(b, 1000);
  stack.deallocate(a, 4000);
}

TEST(StackConstruction, ANullBufferWithASizeIsRejectedNamingTheField) {
  try {
    stack_resource stack({.initial_buffer = {static_cast<std::byte*>(nullptr), 16}});
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("initial_buffer"), std::string::npos) << e.what();
  }
  stack_resource empty({.initial_buffer = {}});  // empty: none
  EXPECT_EQ(empty.stats().bytes_reserved, 0U);
}

// --- Constructed the obvious ways (issue 12, bug 6) ---------------------------------------------

static_assert(std::is_default_constructible_v<stack_resource>);
static_assert(std::is_constructible_v<stack_resource, std::pmr::memory_resource*>);
static_assert(std::is_constructible_v<stack_resource, test_resource*>);
static_assert(std::is_constructible_v<stack_resource, stack_options>);
static_assert(std::is_constructible_v<stack_resource, stack_options, std::pmr::memory_resource*>);
static_assert(std::is_constructible_v<stack_resource, stack_options, test_resource*>);
static_assert(!std::is_copy_constructible_v<stack_resource> &&
              !std::is_move_constructible_v<stack_resource>);

TEST(StackConstruction, TheSixWays) {
  test_resource upstream("upstream");
  stack_resource a;
  stack_resource b(&upstream);
  stack_resource c(stack_options{.name = "c"});
  stack_resource d(stack_options{}, &upstream);
  stack_resource e({});  // the default options, not a null upstream
  stack_resource f({}, &upstream);
  EXPECT_EQ(a.upstream_resource(), std::pmr::get_default_resource());
  EXPECT_EQ(b.upstream_resource(), &upstream);
  EXPECT_EQ(c.upstream_resource(), std::pmr::get_default_resource());
  EXPECT_EQ(c.name(), "c");
  EXPECT_EQ(d.upstream_resource(), &upstream);
  EXPECT_EQ(e.upstream_resource(), std::pmr::get_default_resource());
  EXPECT_EQ(f.upstream_resource(), &upstream);
  EXPECT_THROW(stack_resource g({}, static_cast<std::pmr::memory_resource*>(nullptr)),
               std::invalid_argument);
}

// Found by the stack's fuzz harness (fuzz/regressions/stack/scope-on-empty-stack): a scope
// or a rewind on a stack that had never allocated dereferenced its missing chunk.
TEST(StackResource, AScopeOnAStackThatNeverAllocatedRewindsNothing) {
  pmrkit::test_resource upstream("upstream");
  pmrkit::stack_resource stack({}, &upstream);
  { const pmrkit::stack_scope scope(stack); }
  stack.rewind(stack.checkpoint());
  EXPECT_EQ(stack.stats().bytes_in_use, 0U);
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
  void* p = stack.allocate(64);  // and it still works
  stack.deallocate(p, 64);
}

}  // namespace
