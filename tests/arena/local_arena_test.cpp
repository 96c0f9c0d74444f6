#include <pmr/arena/local_arena.hpp>

#include <pmr/core/reallocate.hpp>
#include <pmr/testing/test_resource.hpp>

#include "conformance/conformance.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <memory>
#include <memory_resource>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using pmrkit::chunked_arena_options;
using pmrkit::local_arena;
using pmrkit::test_resource;

struct local_arena_traits {
  using resource_type = local_arena<1024>;
  static constexpr std::string_view name = "pmrkit::local_arena<1024>";
  static constexpr pmrkit::conformance::capabilities caps{.reuses_memory = false};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(chunked_arena_options{}, upstream);
  }
  static void release(resource_type& r) { r.release(); }
};

using local_types = ::testing::Types<local_arena_traits>;
INSTANTIATE_TYPED_TEST_SUITE_P(local_arena, resource_conformance, local_types,
                               pmrkit::conformance::traits_names);

bool inside(const void* p, const local_arena<256>& arena) {
  const auto* byte = static_cast<const std::byte*>(p);
  const auto* self = reinterpret_cast<const std::byte*>(&arena);
  return byte >= self && byte < self + sizeof arena;
}

TEST(LocalArena, AWorkloadThatFitsTakesNothingFromTheUpstream) {
  // The null resource throws on any request.
  local_arena<256> arena(std::pmr::null_memory_resource());
  std::vector<void*> blocks;
  for (int i = 0; i < 8; ++i)
    blocks.push_back(arena.allocate(32, 8));
  for (void* p : blocks)
    EXPECT_TRUE(inside(p, arena)) << "the buffer is the object's";
  EXPECT_THROW((void)arena.allocate(1), std::bad_alloc) << "full: the upstream was asked";
  const pmrkit::arena_stats s = arena.stats();
  EXPECT_EQ(s.bytes_from_upstream, 0U);
  EXPECT_EQ(s.bytes_in_use, 256U);
  EXPECT_EQ(s.bytes_reserved, 256U);
}

TEST(LocalArena, BeyondTheBufferChunksComeFromTheUpstreamAndGoBack) {
  test_resource upstream("upstream");
  {
    local_arena<256> arena({.initial_chunk_size = 1024}, &upstream);
    void* a = arena.allocate(200);
    void* b = arena.allocate(200);  // does not fit the buffer's rest
    EXPECT_TRUE(inside(a, arena));
    EXPECT_FALSE(inside(b, arena));
    EXPECT_EQ(upstream.blocks_in_use(), 1U);
    EXPECT_TRUE(arena.owns(a) && arena.owns(b));
    arena.reset();
    EXPECT_TRUE(inside(arena.allocate(200), arena)) << "reset: the buffer is current again";
    arena.clear();
    EXPECT_EQ(upstream.blocks_in_use(), 0U) << "clear: the upstream chunks go back";
    EXPECT_TRUE(inside(arena.allocate(8), arena));
    (void)arena.allocate(500);
    arena.release();
    EXPECT_EQ(upstream.blocks_in_use(), 0U);
    EXPECT_TRUE(inside(arena.allocate(8), arena)) << "release: the buffer is current again";
  }
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
}

TEST(LocalArena, CheckpointsRollbackAndReallocateForwardToTheArena) {
  local_arena<256> arena(std::pmr::null_memory_resource());
  void* below = arena.allocate(16);
  const pmrkit::arena_checkpoint mark = arena.checkpoint();
  void* p = arena.allocate(32);
  void* grown = pmrkit::reallocate(arena, p, 32, 64, alignof(std::max_align_t));
  EXPECT_EQ(grown, p) << "the most recent block grows in place";
  arena.rewind(mark);
  EXPECT_EQ(arena.allocate(16), p);
  arena.deallocate(p, 16);  // the most recent block rolls back
  EXPECT_EQ(arena.checkpoint(), mark);
  (void)below;
}

TEST(LocalArena, ItsOwnBufferOnlyAndItsOwnName) {
  std::byte elsewhere[64];
  try {
    local_arena<128> arena({.initial_buffer = elsewhere});
    FAIL() << "a second buffer was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("initial_buffer"), std::string::npos) << e.what();
  }
  local_arena<128> plain;
  EXPECT_EQ(plain.name(), "local_arena");
  EXPECT_EQ(plain.options().initial_buffer.size(), 128U);
  local_arena<128> braced({});
  EXPECT_EQ(braced.name(), "local_arena");
  local_arena<128> over(std::pmr::new_delete_resource());  // the form without options to copy
  EXPECT_EQ(over.name(), "local_arena");
  EXPECT_EQ(over.options().name, "local_arena");
  EXPECT_EQ(over.options().initial_buffer.size(), 128U);
  EXPECT_EQ(over.upstream_resource(), std::pmr::new_delete_resource());
  std::string transient = "scratch";
  local_arena<128> named({.name = transient});
  transient = "overwritten";  // the arena keeps its own copy of a caller's name
  EXPECT_EQ(named.name(), "scratch");
  EXPECT_EQ(named.options().name, "scratch");
  EXPECT_EQ(local_arena<128>::buffer_size, 128U);
  EXPECT_EQ(plain.strategy(), pmrkit::arena_strategy::chained);
  EXPECT_EQ(&plain.inner().options(), &plain.options());
}

TEST(LocalArena, ContainersThatFitStayInTheObject) {
  local_arena<1024> arena(std::pmr::null_memory_resource());
  std::pmr::vector<std::pmr::string> words(&arena);
  words.reserve(8);
  for (const char* w : {"alpha", "beta", "a string too long for the small-string buffer"})
    words.emplace_back(w);
  EXPECT_EQ(words[2], "a string too long for the small-string buffer");
  EXPECT_EQ(arena.stats().bytes_from_upstream, 0U);
}

}  // namespace
