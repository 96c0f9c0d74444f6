// lean_mutex: a mutex with one locked instruction per lock and unlock pair,
// for locks held a few dozen nanoseconds (synchronized_resource's).
//
// lock() is a compare-and-swap from free to locked (inline); unlock() is a
// relaxed load and a release store when nobody announced a wait, where
// std::mutex makes a second locked instruction and two calls into the C
// library. A thread that finds the lock taken spins briefly, then announces
// itself in the lock word and sleeps (a futex on Linux, a short sleep
// elsewhere); an unlock that sees the announcement wakes one sleeper.
//
// The price of the plain store: an unlock that read "no sleeper" just before
// a thread announced itself does not wake it. So a sleeper never sleeps
// longer than `max_sleep` (100 µs) before it looks again: it cannot be
// forgotten, only late by at most that, and only when its announcement
// races with an unlock. Not fair, not recursive; lock(), try_lock() and
// unlock() meet the standard's Lockable requirements (std::lock_guard works).
//
// Thread safety: a mutex; unlock() only by the thread that holds it.
//
// Example:
//   pmrkit::detail::lean_mutex mutex;
//   int counter = 0;
//   std::thread other([&] { mutex.lock(); ++counter; mutex.unlock(); });
//   mutex.lock();
//   ++counter;
//   mutex.unlock();
//   other.join();
//   assert(counter == 2 && mutex.try_lock() && !mutex.try_lock());
//   mutex.unlock();
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace pmrkit::detail {

class lean_mutex {
 public:
  /// How long a thread that waits sleeps at most before it looks at the lock again.
  static constexpr std::chrono::microseconds max_sleep{100};

  lean_mutex() noexcept = default;
  lean_mutex(const lean_mutex&) = delete;
  lean_mutex& operator=(const lean_mutex&) = delete;

  [[nodiscard]] bool try_lock() noexcept {
    std::uint32_t expected = free;
    return state_.compare_exchange_strong(expected, locked, std::memory_order_acquire,
                                          std::memory_order_relaxed);
  }
  void lock() noexcept {
    if (!try_lock()) [[unlikely]] {
      lock_contended();
    }
  }
  /// Waits for the lock (what lock() does when try_lock() fails). Out of line.
  void lock_contended() noexcept;
  void unlock() noexcept {
    if (state_.load(std::memory_order_relaxed) == locked) [[likely]] {
      state_.store(free, std::memory_order_release);
      return;
    }
    unlock_and_wake();
  }

 private:
  static constexpr std::uint32_t free = 0;
  static constexpr std::uint32_t locked = 1;
  static constexpr std::uint32_t locked_with_sleepers = 2;  // someone may sleep on the word

  void unlock_and_wake() noexcept;

  std::atomic<std::uint32_t> state_{free};
};

}  // namespace pmrkit::detail
