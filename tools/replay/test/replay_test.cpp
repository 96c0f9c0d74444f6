// pmrkit-replay's parts: the profile of a known workload, exact; replaying it
// reproduces what the strategy did when the workload ran on it directly.
#include "../replay.hpp"
#include "../profile.hpp"
#include "../strategies.hpp"

#include <pmr/decorator/statistics_resource.hpp>
#include <pmr/decorator/trace_resource.hpp>
#include <pmr/pool/multipool_resource.hpp>
#include <pmr/pool/pool_resource.hpp>

#include <gtest/gtest.h>

#include <cstddef>
#include <functional>
#include <memory_resource>
#include <thread>
#include <vector>

namespace {

using namespace pmrkit::replay;

/// A workload over `r`: 300 blocks of mixed sizes, freed in a scrambled order,
/// then 100 freed newest first.
void mixed_workload(std::pmr::memory_resource& r) {
  std::vector<std::pair<void*, std::size_t>> held;
  for (std::size_t i = 0; i < 300; ++i) {
    const std::size_t bytes = 16 + (i * 37) % 500;
    held.emplace_back(r.allocate(bytes, 16), bytes);
  }
  for (std::size_t k = 0; k < 200; ++k) {
    const std::size_t i = (k * 7) % held.size();
    r.deallocate(held[i].first, held[i].second, 16);
    held.erase(held.begin() + static_cast<std::ptrdiff_t>(i));
  }
  while (!held.empty()) {
    r.deallocate(held.back().first, held.back().second, 16);
    held.pop_back();
  }
}

pmrkit::trace record(const std::function<void(std::pmr::memory_resource&)>& workload) {
  pmrkit::trace_resource traced;
  workload(traced);
  return traced.recorded();
}

TEST(ReplayProfile, CountsAKnownWorkloadExactly) {
  pmrkit::trace_resource r;
  void* a = r.allocate(100, 8);
  void* b = r.allocate(200, 64);
  void* c = r.allocate(300, 8);
  r.deallocate(c, 300, 8);  // newest: LIFO
  r.deallocate(a, 100, 8);  // oldest: FIFO
  void* d = r.allocate(50, 8);
  r.deallocate(d, 50, 8);    // newest: LIFO
  r.deallocate(b, 200, 64);  // the only one live: both
  void* e = r.allocate(7, 1);
  const pmrkit::trace t = r.recorded();  // e is never freed in the trace
  r.deallocate(e, 7, 1);
  const trace_profile p = profile_of(t);
  EXPECT_EQ(p.records, 9u);
  EXPECT_EQ(p.allocations, 5u);
  EXPECT_EQ(p.deallocations, 4u);
  EXPECT_EQ(p.never_freed, 1u);
  EXPECT_EQ(p.threads, 1u);
  EXPECT_EQ(p.peak_live_bytes, 600u);
  EXPECT_EQ(p.peak_live_blocks, 3u);
  EXPECT_EQ(p.bytes_allocated, 657u);
  EXPECT_EQ(p.smallest, 7u);
  EXPECT_EQ(p.largest, 300u);
  EXPECT_EQ(p.distinct_sizes, 5u);
  EXPECT_EQ(p.max_alignment, 64u);
  EXPECT_EQ(p.lifo_frees, 3u);
  EXPECT_EQ(p.fifo_frees, 2u);
  EXPECT_EQ(p.size_buckets[7], 1u);  // 65..128 bytes: the 100
  EXPECT_EQ(p.size_buckets[6], 1u);  // 33..64: the 50
  EXPECT_EQ(p.alignment_buckets[6], 1u);
}

TEST(Replay, ReproducesWhatTheStrategyHeldWhenTheWorkloadRanOnIt) {
  // Directly: the workload on a multipool over a counting upstream.
  pmrkit::statistics_resource direct_upstream(
      {.threading = pmrkit::decorator_threading::serialized}, std::pmr::new_delete_resource());
  {
    pmrkit::multipool_resource pools(&direct_upstream);
    mixed_workload(pools);
  }
  const pmrkit::trace t = record(mixed_workload);
  const trace_profile p = profile_of(t);
  EXPECT_EQ(p.allocations, 300u);
  EXPECT_EQ(p.deallocations, 300u);
  const replay_result r = replay_once(t, p, *find_strategy("multipool"), {});
  ASSERT_TRUE(r.served) << r.failure;
  EXPECT_EQ(r.events, 600u);
  EXPECT_EQ(r.peak_upstream, direct_upstream.stats().peak_bytes_in_use);
}

TEST(Replay, APoolServesOneSizeAndRefusesMixedSizes) {
  const pmrkit::trace mixed = record(mixed_workload);
  const strategy& pool = *find_strategy("pool");
  EXPECT_EQ(pool.refuses(profile_of(mixed), {}),
            "cannot serve: 300 distinct sizes (16 B to 515 B); a pool serves one size (set "
            "pool.block_size to round every request up)");
  EXPECT_TRUE(pool.refuses(profile_of(mixed), {{"block_size", "515"}}).empty());

  const pmrkit::trace one_size = record([](std::pmr::memory_resource& r) {
    std::vector<void*> held;
    for (int i = 0; i < 1000; ++i)
      held.push_back(r.allocate(48, 16));
    for (void* q : held)
      r.deallocate(q, 48, 16);
  });
  const trace_profile p = profile_of(one_size);
  EXPECT_TRUE(pool.refuses(p, {}).empty());
  const replay_result r = replay_once(one_size, p, pool, {});
  ASSERT_TRUE(r.served) << r.failure;
  // The pool's chunks, 64 blocks doubling: 64+128+256+512 blocks of 48 bytes cover 1000.
  pmrkit::statistics_resource direct({.threading = pmrkit::decorator_threading::serialized},
                                     std::pmr::new_delete_resource());
  {
    pmrkit::pool_resource direct_pool({.block_size = 48}, &direct);
    std::vector<void*> held;
    for (int i = 0; i < 1000; ++i)
      held.push_back(direct_pool.allocate(48, 16));
    for (void* q : held)
      direct_pool.deallocate(q, 48, 16);
  }
  EXPECT_EQ(r.peak_upstream, direct.stats().peak_bytes_in_use);
}

TEST(Replay, AStackServesOnlyNewestFirstFrees) {
  const strategy& stack = *find_strategy("stack");
  const pmrkit::trace lifo = record([](std::pmr::memory_resource& r) {
    std::vector<std::pair<void*, std::size_t>> held;
    for (std::size_t i = 0; i < 50; ++i)
      held.emplace_back(r.allocate(8 + i, 8), 8 + i);
    while (!held.empty()) {
      r.deallocate(held.back().first, held.back().second, 8);
      held.pop_back();
    }
  });
  const trace_profile p = profile_of(lifo);
  EXPECT_EQ(p.lifo_frees, 50u);
  EXPECT_TRUE(stack.refuses(p, {}).empty());
  EXPECT_TRUE(replay_once(lifo, p, stack, {}).served);
  EXPECT_EQ(stack.refuses(profile_of(record(mixed_workload)), {}).substr(0, 14), "cannot serve: ");
}

TEST(Replay, UnderTooSmallABudgetTheReplayFailsNamingTheRecord) {
  const pmrkit::trace t = record(mixed_workload);
  const trace_profile p = profile_of(t);
  const replay_result r = replay_once(t, p, *find_strategy("multipool"), {}, 1000);
  EXPECT_FALSE(r.served);
  EXPECT_EQ(r.failure.substr(0, 9), "record 0 ");
}

TEST(Replay, TheSmallestCapacityServesAndOneGranuleLessDoesNot) {
  const pmrkit::trace t = record(mixed_workload);
  const trace_profile p = profile_of(t);
  const strategy& buddy = *find_strategy("buddy");
  const settings small_regions{{"region_size", "64K"}};
  const replay_result full = replay_once(t, p, buddy, small_regions);
  ASSERT_TRUE(full.served);
  int replays = 0;
  const std::uint64_t fit =
      smallest_capacity(t, p, buddy, small_regions, full.peak_upstream, 1, replays);
  EXPECT_GT(replays, 0);
  EXPECT_GE(fit, p.peak_live_bytes);
  EXPECT_TRUE(replay_once(t, p, buddy, small_regions, fit).served);
  EXPECT_FALSE(replay_once(t, p, buddy, small_regions, fit - 1).served);
}

TEST(Replay, ThreadsReplayTheirOwnRecordsAndWaitForAllocationsOnOthers) {
  // Recorded on two threads: the main thread allocates, the worker frees what it allocated and
  // allocates blocks the main thread frees afterwards.
  pmrkit::trace_resource traced;
  std::vector<void*> from_main;
  std::vector<void*> from_worker;
  for (int i = 0; i < 500; ++i)
    from_main.push_back(traced.allocate(24 + i % 100, 8));
  std::thread worker([&] {
    for (std::size_t i = 0; i < from_main.size(); ++i) {
      traced.deallocate(from_main[i], 24 + i % 100, 8);
      from_worker.push_back(traced.allocate(64, 16));
    }
  });
  worker.join();
  for (void* p : from_worker)
    traced.deallocate(p, 64, 16);
  const pmrkit::trace t = traced.recorded();
  const trace_profile p = profile_of(t);
  ASSERT_EQ(p.threads, 2u);
  EXPECT_EQ(p.cross_thread_frees, 1000u);
  for (const char* name : {"concurrent_pool", "multipool", "malloc"}) {
    SCOPED_TRACE(name);
    const replay_result r = replay_threads(t, p, *find_strategy(name), {});
    EXPECT_TRUE(r.served) << r.failure;
    EXPECT_EQ(r.events, 2000u);
  }
}

TEST(Replay, SizesParseWithSuffixesAndBadOnesNameTheField) {
  EXPECT_EQ(parse_size("4096", "f"), 4096u);
  EXPECT_EQ(parse_size("64K", "f"), 65536u);
  EXPECT_EQ(parse_size("2M", "f"), std::size_t{2} << 20);
  EXPECT_EQ(parse_size("1GiB", "f"), std::size_t{1} << 30);
  try {
    (void)parse_size("12Q", "buddy.region_size");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(),
                 "buddy.region_size: \"12Q\" is not a byte count (a number, optionally with K, M "
                 "or G)");
  }
}

}  // namespace
