// detail::bump_chain, the chunk list under the chunked arena and the stack:
// its growth sequence, positions (tell / rewind_to, coordinates), LIFO pops
// across chunks, the least alignment of every chunk's start, and what goes
// back upstream.
#include <pmr/arena/detail/bump_chain.hpp>

#include <pmr/core/align.hpp>
#include <pmr/testing/test_resource.hpp>

#include <gtest/gtest.h>

#include <cstddef>
#include <memory_resource>
#include <vector>

namespace {

using pmrkit::detail::bump_chain;
using pmrkit::detail::chunk_header_size;

// One block of `bytes` at `alignment`, the fast path first, as an owner does.
std::byte* bump(bump_chain& chain, std::size_t bytes, std::size_t alignment = 16) {
  void* p = chain.try_bump(bytes, alignment);
  if (p == nullptr) p = chain.bump_in_next_chunk(bytes, alignment, "chain");
  return static_cast<std::byte*>(p);
}

std::vector<std::size_t> chunk_sizes(const pmrkit::test_resource& upstream) {
  std::vector<std::size_t> sizes;
  for (const pmrkit::block_info& block : upstream.leaks())
    sizes.push_back(block.size);
  return sizes;
}

TEST(BumpChain, ChunksFollowTheGrowthSequenceAndALargeBlockGetsItsOwnSize) {
  pmrkit::test_resource upstream("upstream");
  bump_chain chain({.initial = 1024, .max = 4096, .factor = 2}, 16, &upstream);
  EXPECT_EQ(chain.next_chunk_size(), 1024U);
  for (int i = 0; i < 4; ++i)
    (void)bump(chain, chain.next_chunk_size() - chunk_header_size);  // fills a chunk
  EXPECT_EQ(chunk_sizes(upstream), (std::vector<std::size_t>{1024, 2048, 4096, 4096}));
  (void)bump(chain, 10'000);  // larger than the growth size: a chunk of its own size
  EXPECT_EQ(chunk_sizes(upstream).back(), 10'000U + chunk_header_size);
  EXPECT_EQ(chain.chunk_count(), 5U);
  EXPECT_EQ(chain.bytes_from_upstream(), upstream.bytes_in_use());

  bump_chain constant({.initial = 512, .max = 4096, .factor = 1}, 16, &upstream);
  for (int i = 0; i < 3; ++i)
    (void)bump(constant, 400);
  EXPECT_EQ(constant.growth_size(), 512U);
}

TEST(BumpChain, TellAndRewindToReturnToAPositionKeepingTheChunks) {
  pmrkit::test_resource upstream("upstream");
  bump_chain chain({.initial = 1024, .max = 1024, .factor = 1}, 16, &upstream);
  std::byte* first = bump(chain, 112);
  const bump_chain::position mark = chain.tell();
  const bump_chain::coordinates at = chain.where();
  EXPECT_EQ(at.chunk, 0U);
  EXPECT_EQ(at.offset, 112U);
  std::byte* after = bump(chain, 112);
  for (int i = 0; i < 20; ++i)
    (void)bump(chain, 500);  // into later chunks
  const std::size_t chunks = chain.chunk_count();
  EXPECT_GT(chain.where().chunk, 0U);

  bump_chain::position found;
  ASSERT_TRUE(chain.position_at(at, found));
  EXPECT_EQ(found.chunk, mark.chunk);
  EXPECT_EQ(found.cursor, mark.cursor);
  EXPECT_FALSE(chain.position_at({.chunk = 100, .offset = 0}, found)) << "beyond the position";

  chain.rewind_to(mark);
  EXPECT_EQ(chain.used(), 112U);
  EXPECT_EQ(bump(chain, 112), after);
  EXPECT_EQ(chain.chunk_count(), chunks) << "kept";
  chain.reset();
  EXPECT_EQ(chain.used(), 0U);
  EXPECT_EQ(bump(chain, 112), first);
  EXPECT_EQ(upstream.stats().allocations, chunks) << "the same work again takes nothing new";
}

TEST(BumpChain, PopsUndoBumpsAcrossChunkBoundaries) {
  pmrkit::test_resource upstream("upstream");
  bump_chain chain({.initial = 1024, .max = 1024, .factor = 1}, 16, &upstream);
  std::vector<std::byte*> blocks;
  std::vector<bump_chain::position> before;
  for (int i = 0; i < 10; ++i) {
    before.push_back(chain.tell());
    blocks.push_back(bump(chain, 400));
  }
  EXPECT_GT(chain.chunk_count(), 3U);
  for (std::size_t i = blocks.size(); i-- > 0;) {
    ASSERT_TRUE(chain.pop(blocks[i], 400, blocks[i])) << i;
    if (i > 0) {
      EXPECT_EQ(chain.tell().cursor, before[i].cursor) << i;
    }
  }
  EXPECT_EQ(chain.used(), 0U);
  EXPECT_FALSE(chain.pop(blocks[0], 400, blocks[0])) << "not the newest any more";
}

TEST(BumpChain, ChunkStartsKeepTheLeastAlignment) {
  pmrkit::test_resource upstream("upstream");
  bump_chain chain({.initial = 1024, .max = 1024, .factor = 1}, 256, &upstream);
  std::byte* p = bump(chain, 256, 256);
  EXPECT_TRUE(pmrkit::is_aligned(p, 256));
  ASSERT_TRUE(chain.pop(p, 256, p));
  EXPECT_TRUE(pmrkit::is_aligned(chain.tell().cursor, 256)) << "back at the chunk's start";
  chain.reset();
  EXPECT_TRUE(pmrkit::is_aligned(chain.tell().cursor, 256));
  EXPECT_TRUE(pmrkit::is_aligned(chain.try_bump_at_cursor(256), 256));
}

TEST(BumpChain, ShrinkTrimAndReleaseSayWhatWentUpstream) {
  pmrkit::test_resource upstream("upstream");
  bump_chain chain({.initial = 1024, .max = 4096, .factor = 2}, 16, &upstream);
  for (int i = 0; i < 12; ++i)
    (void)bump(chain, 900);
  chain.reset();
  (void)bump(chain, 16);
  const std::size_t held = upstream.bytes_in_use();
  const std::size_t given = chain.shrink();
  EXPECT_EQ(given, held - 1024) << "every chunk after the current (first) one";
  EXPECT_EQ(upstream.bytes_in_use(), 1024U);
  EXPECT_EQ(chain.shrink(), 0U);
  for (int i = 0; i < 4; ++i)
    (void)bump(chain, 900);
  const std::size_t before_trim = upstream.bytes_in_use();
  EXPECT_EQ(chain.trim_to_first(), before_trim - 1024);
  EXPECT_EQ(chain.chunk_count(), 1U);
  chain.release();
  EXPECT_EQ(upstream.bytes_in_use(), 0U);
  EXPECT_EQ(chain.bytes_from_upstream(), 0U);
  EXPECT_EQ(chain.next_chunk_size(), 1024U) << "the growth starts again";
}

}  // namespace
