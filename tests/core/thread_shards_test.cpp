#include <pmr/core/detail/thread_shards.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <latch>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace {

using pmrkit::detail::thread_shard;
using pmrkit::detail::thread_shards;

struct count_shard : thread_shard {
  std::atomic<std::size_t> calls{0};  // written by its thread, read by for_each
  void count() {
    calls.store(calls.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
};

/// An owner: what exited threads left, and how many retired.
struct counter {
  counter() : shards(this, &retire) {}
  static void retire(void* self, thread_shard& shard) noexcept {
    auto& owner = *static_cast<counter*>(self);
    owner.retired_calls += static_cast<count_shard&>(shard).calls.load();
    ++owner.retired;
  }
  void count() {
    count_shard* shard = shards.cached();
    if (shard == nullptr) shard = shards.of_this_thread();
    ASSERT_NE(shard, nullptr);
    shard->count();
  }
  /// Live shards' calls plus the retired ones'.
  std::size_t total() {
    const std::lock_guard lock(shards.mutex());
    std::size_t sum = retired_calls;
    shards.for_each([&](const count_shard& shard) { sum += shard.calls.load(); });
    return sum;
  }
  std::size_t retired_calls = 0;      // under shards.mutex()
  std::size_t retired = 0;            // likewise
  thread_shards<count_shard> shards;  // last: closed first
};

TEST(ThreadShards, EachThreadGetsItsOwnShardFoundAgainThroughTheTable) {
  counter c;
  EXPECT_EQ(c.shards.cached(), nullptr);
  count_shard* mine = c.shards.of_this_thread();
  ASSERT_NE(mine, nullptr);
  EXPECT_EQ(c.shards.cached(), mine);
  EXPECT_EQ(c.shards.of_this_thread(), mine);
  count_shard* theirs = nullptr;
  std::thread([&] { theirs = c.shards.of_this_thread(); }).join();
  EXPECT_NE(theirs, nullptr);
  EXPECT_NE(theirs, mine);
  EXPECT_EQ(c.shards.count(), 1U);  // the other thread's went back as it exited
  EXPECT_EQ(c.retired, 1U);
}

TEST(ThreadShards, LiveShardsAndRetiredOnesAddUpExactly) {
  constexpr int threads = 4;
  constexpr std::size_t calls = 1000;
  counter c;
  std::latch counted(threads + 1);
  std::latch checked(1);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      for (std::size_t i = 0; i < calls; ++i)
        c.count();
      counted.count_down();
      checked.wait();  // alive, quiet
    });
  }
  counted.arrive_and_wait();
  EXPECT_EQ(c.shards.count(), static_cast<std::size_t>(threads));
  EXPECT_EQ(c.total(), threads * calls);
  EXPECT_EQ(c.retired, 0U);
  checked.count_down();
  for (std::thread& worker : workers)
    worker.join();
  EXPECT_EQ(c.shards.count(), 0U);
  EXPECT_EQ(c.retired, static_cast<std::size_t>(threads));
  EXPECT_EQ(c.total(), threads * calls);
}

TEST(ThreadShards, AnOwnerDestroyedFirstIsNeverTouchedByTheThreadsThatUsedIt) {
  auto c = std::make_unique<counter>();
  std::latch used(1);
  std::latch destroyed(1);
  std::thread worker([&] {
    c->count();
    used.count_down();
    destroyed.wait();
    // Its table still names the dead owner's id, which is never given again: a new owner is
    // not mistaken for it, and the registry forgets the dead one when it makes the new shard.
    counter next;
    EXPECT_EQ(next.shards.cached(), nullptr);
    next.count();
    EXPECT_EQ(next.total(), 1U);
  });  // exits with a registry that named a destroyed owner (ASan: no use after free)
  used.wait();
  EXPECT_EQ(c->total(), 1U);
  c.reset();
  destroyed.count_down();
  worker.join();
}

TEST(ThreadShards, MoreOwnersThanTableEntriesAreFoundThroughTheRegistry) {
  constexpr std::size_t owners = 3 * pmrkit::detail::thread_shard_cache_entries + 1;
  std::vector<std::unique_ptr<counter>> all;
  for (std::size_t i = 0; i < owners; ++i)
    all.push_back(std::make_unique<counter>());
  for (int round = 0; round < 3; ++round) {
    for (const auto& c : all)
      c->count();
  }
  for (const auto& c : all) {
    EXPECT_EQ(c->shards.count(), 1U);  // one shard each, found again every round
    EXPECT_EQ(c->total(), 3U);
  }
}

TEST(ThreadShards, AThreadThatUsesManyOwnersOneAfterAnotherKeepsWorking) {
  std::thread([] {
    for (int i = 0; i < 1000; ++i) {
      counter c;  // each destroyed before the next: the registry prunes the dead ones
      c.count();
      c.count();
      ASSERT_EQ(c.total(), 2U);
    }
  }).join();
}

}  // namespace
