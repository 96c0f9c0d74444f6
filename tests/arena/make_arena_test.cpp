#include <pmr/arena/make_arena.hpp>

#include <pmr/core/log.hpp>
#include <pmr/testing/test_resource.hpp>

#include <gtest/gtest.h>

#include <memory_resource>
#include <string>
#include <vector>

namespace {

using pmrkit::arena_strategy;

std::vector<std::string> warnings;

void record_warnings(pmrkit::log_level level, std::string_view message) {
  if (level == pmrkit::log_level::warning) warnings.emplace_back(message);
}

// Records the log hook's warnings for the test's lifetime.
class MakeArena : public ::testing::Test {
 protected:
  void SetUp() override {
    warnings.clear();
    previous_ = pmrkit::set_log_handler(&record_warnings);
  }
  void TearDown() override { pmrkit::set_log_handler(previous_); }

 private:
  pmrkit::log_handler previous_ = nullptr;
};

// Far beyond any address space: reserving it fails at run time.
constexpr std::size_t impossible_reserve = std::size_t{1} << 62;

TEST_F(MakeArena, DefaultPicksVirtualMemoryWhereAvailableElseChainedWithoutWarning) {
  const auto arena = pmrkit::make_arena({.max_reserve = std::size_t{1} << 30});
  const arena_strategy expected = pmrkit::vmem_arena_resource::available()
                                      ? arena_strategy::virtual_memory
                                      : arena_strategy::chained;
  EXPECT_EQ(arena->strategy(), expected);
  EXPECT_TRUE(warnings.empty());
}

TEST_F(MakeArena, ChainedIsAChunkedArenaWithTheConfiguredGrowth) {
  pmrkit::test_resource upstream({.name = "upstream"}, std::pmr::new_delete_resource());
  const auto arena = pmrkit::make_arena({.initial_size = 1024,
                                         .growth_factor = 1,
                                         .strategy = arena_strategy::chained,
                                         .name = "requests"},
                                        &upstream);
  ASSERT_EQ(arena->strategy(), arena_strategy::chained);
  EXPECT_EQ(arena->name(), "requests");
  EXPECT_EQ(arena->upstream_resource(), &upstream);
  for (int i = 0; i < 40; ++i)
    (void)arena->allocate(100, 8);
  for (const pmrkit::block_info& chunk : upstream.leaks())
    EXPECT_EQ(chunk.size, 1024U);
  EXPECT_GT(upstream.blocks_in_use(), 1U);
  EXPECT_TRUE(warnings.empty());
}

TEST_F(MakeArena, VirtualIsAVirtualMemoryArenaOverflowingToTheUpstream) {
  if (!pmrkit::vmem_arena_resource::available()) GTEST_SKIP() << "no virtual memory here";
  pmrkit::test_resource upstream({.name = "overflow"}, std::pmr::new_delete_resource());
  const auto arena = pmrkit::make_arena(
      {.max_reserve = 1 << 20, .strategy = arena_strategy::virtual_memory}, &upstream);
  ASSERT_EQ(arena->strategy(), arena_strategy::virtual_memory);
  (void)arena->allocate(512 << 10, 8);
  (void)arena->allocate(768 << 10, 8);  // beyond the 1 MiB reservation
  EXPECT_EQ(upstream.blocks_in_use(), 1U);
  arena->release();
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
}

TEST_F(MakeArena, FailedReservationFallsBackToChainedAndWarns) {
  for (const std::optional<arena_strategy> strategy :
       {std::optional<arena_strategy>{}, std::optional{arena_strategy::virtual_memory}}) {
    warnings.clear();
    const auto arena = pmrkit::make_arena(
        {.max_reserve = impossible_reserve, .strategy = strategy, .name = "frames"});
    EXPECT_EQ(arena->strategy(), arena_strategy::chained);
    if (pmrkit::vmem_arena_resource::available() || strategy.has_value()) {
      ASSERT_EQ(warnings.size(), 1U);
      EXPECT_NE(warnings[0].find("'frames'"), std::string::npos) << warnings[0];
      EXPECT_NE(warnings[0].find("using a chunked arena"), std::string::npos) << warnings[0];
    }
    std::pmr::vector<int> numbers({1, 2, 3}, arena.get());
    EXPECT_EQ(numbers.back(), 3);
  }
}

TEST_F(MakeArena, WithoutTheVirtualMemoryLayerAnExplicitRequestWarns) {
  if (PMRKIT_HAS_VIRTUAL_MEMORY) GTEST_SKIP() << "built with PMRKIT_ENABLE_VIRTUAL=ON";
  const auto arena = pmrkit::make_arena({.strategy = arena_strategy::virtual_memory});
  EXPECT_EQ(arena->strategy(), arena_strategy::chained);
  ASSERT_EQ(warnings.size(), 1U);
  EXPECT_NE(warnings[0].find("no virtual memory layer"), std::string::npos);
}

TEST_F(MakeArena, InvalidOptionsNameTheField) {
  try {
    (void)pmrkit::make_arena({.initial_size = 8, .strategy = arena_strategy::chained});
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("initial_chunk_size"), std::string::npos);
  }
}

TEST_F(MakeArena, ThePortServesContainersAndCheckpoints) {
  for (const arena_strategy strategy : {arena_strategy::chained, arena_strategy::virtual_memory}) {
    const auto arena = pmrkit::make_arena({.max_reserve = 1 << 26, .strategy = strategy});
    const pmrkit::arena_checkpoint start = arena->checkpoint();
    {
      std::pmr::vector<std::pmr::string> words(arena.get());
      for (int i = 0; i < 1000; ++i)
        words.emplace_back("a string that allocates its buffer");
      EXPECT_GT(arena->checkpoint(), start);
    }
    arena->rewind(start);
    EXPECT_EQ(arena->checkpoint(), start);
    arena->reset();
    EXPECT_EQ(arena->stats().bytes_in_use, 0U);
  }
}

}  // namespace
