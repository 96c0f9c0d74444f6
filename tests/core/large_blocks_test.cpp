// large_blocks (core/detail): requests served by a block of their own from the upstream,
// tracked so they can all be given back; used by the pools and the buddy.
#include <pmr/core/detail/large_blocks.hpp>

#include <pmr/core/config.hpp>
#include <pmr/core/error.hpp>
#include <pmr/testing/violation_recorder.hpp>

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory_resource>
#include <new>
#include <utility>
#include <vector>

namespace {

using pmrkit::detail::large_blocks;

// Counts what it hands out; throws a plain std::bad_alloc when told to.
class counting_upstream final : public std::pmr::memory_resource {
 public:
  bool fail = false;
  std::size_t bytes_in_use = 0;
  std::size_t blocks_in_use = 0;
  std::byte* last_block = nullptr;  // the newest block handed out, and its size
  std::size_t last_bytes = 0;

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    if (fail) throw std::bad_alloc();
    void* p = std::pmr::new_delete_resource()->allocate(bytes, alignment);
    last_block = static_cast<std::byte*>(p);
    last_bytes = bytes;
    bytes_in_use += bytes;
    ++blocks_in_use;
    return p;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    bytes_in_use -= bytes;
    --blocks_in_use;
    std::pmr::new_delete_resource()->deallocate(p, bytes, alignment);
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }
};

// Found through memory_system's pool tier over page_resource: a zero-size block aligned to a
// page sat at the end of its upstream block, which was the first byte of the next page, another
// block's, so the pool took it for one of its own.
TEST(LargeBlocks, AZeroSizeBlockLiesInsideItsOwnUpstreamBlock) {
  counting_upstream upstream;
  large_blocks blocks;
  for (const std::size_t alignment : {std::size_t{8}, std::size_t{64}, std::size_t{4096}}) {
    auto* p = static_cast<std::byte*>(blocks.allocate(&upstream, 0, alignment, "large"));
    EXPECT_GE(p, upstream.last_block);
    EXPECT_LT(p, upstream.last_block + upstream.last_bytes) << "alignment " << alignment;
    blocks.deallocate(&upstream, p, 0, alignment, "large");
  }
  EXPECT_EQ(upstream.bytes_in_use, 0U);
  EXPECT_EQ(blocks.bytes_from_upstream(), 0U);
}

TEST(LargeBlocks, CountsBlocksBytesAndWhatTheUpstreamHolds) {
  counting_upstream upstream;
  large_blocks blocks;
  void* a = blocks.allocate(&upstream, 100000, 8, "large");
  void* b = blocks.allocate(&upstream, 3000, 64, "large");
  EXPECT_EQ(blocks.count(), 2U);
  EXPECT_EQ(blocks.bytes(), 103000U);
  EXPECT_EQ(blocks.bytes_from_upstream(), upstream.bytes_in_use);
  EXPECT_GT(blocks.bytes_from_upstream(), blocks.bytes());  // each block has a header
  blocks.deallocate(&upstream, a, 100000, 8, "large");
  EXPECT_EQ(blocks.count(), 1U);
  EXPECT_EQ(blocks.bytes(), 3000U);
  EXPECT_EQ(blocks.bytes_from_upstream(), upstream.bytes_in_use);
  blocks.deallocate(&upstream, b, 3000, 64, "large");
  EXPECT_EQ(blocks.count(), 0U);
  EXPECT_EQ(blocks.bytes_from_upstream(), 0U);
  EXPECT_EQ(upstream.bytes_in_use, 0U);
}

TEST(LargeBlocks, BlocksAreAlignedAndUsable) {
  counting_upstream upstream;
  large_blocks blocks;
  std::vector<std::pair<void*, std::size_t>> taken;
  for (std::size_t alignment = 1; alignment <= 8192; alignment *= 2) {
    void* p = blocks.allocate(&upstream, 1000 + alignment, alignment, "large");
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % alignment, 0U) << alignment;
    std::memset(p, 0xAB, 1000 + alignment);  // the whole block is the caller's
    taken.emplace_back(p, alignment);
  }
  for (auto [p, alignment] : taken)
    blocks.deallocate(&upstream, p, 1000 + alignment, alignment, "large");
  EXPECT_EQ(upstream.blocks_in_use, 0U);
}

TEST(LargeBlocks, ReleaseReturnsEveryBlockInAnyOrderOfAllocation) {
  counting_upstream upstream;
  large_blocks blocks;
  void* kept = nullptr;
  for (int i = 0; i < 10; ++i) {
    void* p = blocks.allocate(&upstream, 5000 + static_cast<std::size_t>(i), 16, "large");
    if (i == 4) kept = p;
  }
  blocks.deallocate(&upstream, kept, 5004, 16, "large");  // one from the middle of the list
  EXPECT_EQ(blocks.count(), 9U);
  blocks.release(&upstream);
  EXPECT_EQ(blocks.count(), 0U);
  EXPECT_EQ(blocks.bytes(), 0U);
  EXPECT_EQ(blocks.bytes_from_upstream(), 0U);
  EXPECT_EQ(upstream.blocks_in_use, 0U);
  void* again = blocks.allocate(&upstream, 10, 8, "large");  // usable after release
  blocks.deallocate(&upstream, again, 10, 8, "large");
}

TEST(LargeBlocks, FailuresAreAllocationErrorsNamingTheResource) {
  counting_upstream upstream;
  large_blocks blocks;
  upstream.fail = true;
  try {
    (void)blocks.allocate(&upstream, 100, 8, "named");
    FAIL() << "expected allocation_error";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::upstream_failed);
    EXPECT_EQ(e.resource_name(), "named");
    EXPECT_EQ(e.requested(), 100U);
  }
  upstream.fail = false;
  try {
    (void)blocks.allocate(&upstream, std::numeric_limits<std::size_t>::max() - 8, 8, "named");
    FAIL() << "expected allocation_error";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::size_overflow);
  }
  EXPECT_EQ(blocks.count(), 0U);
  EXPECT_EQ(upstream.blocks_in_use, 0U);
}

TEST(LargeBlocks, ForeignPointersAndSizeMismatchesAreViolations) {
  if (!PMRKIT_CHECKED) GTEST_SKIP() << "violations are reported in checked builds";
  counting_upstream upstream;
  large_blocks mine;
  large_blocks other;
  void* p = mine.allocate(&upstream, 4000, 16, "mine");
  void* q = other.allocate(&upstream, 4000, 16, "other");
  pmrkit::violation_recorder recorder;
  mine.deallocate(&upstream, q, 4000, 16, "mine");
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::foreign_pointer), 1U);
  mine.deallocate(&upstream, p, 4001, 16, "mine");
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::size_mismatch), 1U);
  EXPECT_EQ(mine.count(), 1U);  // both calls were ignored
  EXPECT_EQ(other.count(), 1U);
  mine.deallocate(&upstream, p, 4000, 16, "mine");
  other.release(&upstream);
  EXPECT_EQ(upstream.blocks_in_use, 0U);
}

}  // namespace
