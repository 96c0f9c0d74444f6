#include <pmr/core/detail/lean_mutex.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <latch>
#include <mutex>
#include <thread>
#include <vector>

namespace {

using pmrkit::detail::lean_mutex;

TEST(LeanMutex, TryLockTakesOnlyAFreeLock) {
  lean_mutex mutex;
  EXPECT_TRUE(mutex.try_lock());
  EXPECT_FALSE(mutex.try_lock());
  mutex.unlock();
  EXPECT_TRUE(mutex.try_lock());
  mutex.unlock();
}

// Plain (non-atomic) increments under the lock: a lost one, or a data race for ThreadSanitizer,
// would mean two holders at once. Eight threads on a machine with fewer cores also exercise the
// sleeping path.
TEST(LeanMutex, ExcludesEveryOtherHolder) {
  constexpr int threads = 8;
  constexpr std::size_t per_thread = 100'000;
  lean_mutex mutex;
  std::size_t counter = 0;
  std::latch start(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      start.arrive_and_wait();
      for (std::size_t i = 0; i < per_thread; ++i) {
        const std::lock_guard lock(mutex);
        ++counter;
      }
    });
  }
  for (std::thread& worker : workers)
    worker.join();
  EXPECT_EQ(counter, threads * per_thread);
}

// A waiter that goes to sleep is woken, or looks again, once the holder lets go: it gets the
// lock, and sees what the holder wrote under it.
TEST(LeanMutex, AWaiterGetsTheLockOnceTheHolderLetsGo) {
  for (int round = 0; round < 50; ++round) {
    lean_mutex mutex;
    int value = 0;
    std::atomic<bool> released{false};
    mutex.lock();
    std::latch waiting(1);
    std::thread waiter([&] {
      waiting.count_down();
      mutex.lock();  // spins, then sleeps: the holder lets go only after some yields
      EXPECT_TRUE(released.load());
      EXPECT_EQ(value, 1);
      value = 2;
      mutex.unlock();
    });
    waiting.wait();
    for (int i = 0; i < 100; ++i)
      std::this_thread::yield();  // give the waiter time to reach its sleep (not required)
    value = 1;
    released.store(true);
    mutex.unlock();
    waiter.join();
    mutex.lock();
    EXPECT_EQ(value, 2);
    mutex.unlock();
  }
}

}  // namespace
