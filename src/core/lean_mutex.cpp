#include <pmr/core/detail/lean_mutex.hpp>

#include <thread>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace pmrkit::detail {

namespace {

// Tries before a waiting thread sleeps: a lock held for an upstream call is
// usually free again within them.
constexpr int spins = 64;

void relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Sleeps while `word` holds `value`, for max_sleep at most; wakes early when woken.
void sleep_while(std::atomic<std::uint32_t>& word, std::uint32_t value) noexcept {
#if defined(__linux__)
  constexpr auto nanoseconds =
      std::chrono::duration_cast<std::chrono::nanoseconds>(lean_mutex::max_sleep).count();
  const timespec timeout{0, static_cast<long>(nanoseconds)};
  // The atomic is a plain 32-bit word, which is what the kernel compares with `value`.
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT_PRIVATE, value, &timeout,
          nullptr, 0);
#else
  if (word.load(std::memory_order_relaxed) == value)
    std::this_thread::sleep_for(lean_mutex::max_sleep);
#endif
}

void wake_one(std::atomic<std::uint32_t>& word) noexcept {
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE_PRIVATE, 1, nullptr,
          nullptr, 0);
#else
  (void)word;  // sleepers look again after max_sleep
#endif
}

}  // namespace

void lean_mutex::lock_contended() noexcept {
  for (int i = 0; i < spins; ++i) {
    relax();
    if (state_.load(std::memory_order_relaxed) == free && try_lock()) return;
  }
  // Announce a sleeper: whoever unlocks next wakes one. Taken this way the lock stays marked,
  // so this thread's unlock wakes the next sleeper in turn (or none, harmlessly).
  while (state_.exchange(locked_with_sleepers, std::memory_order_acquire) != free)
    sleep_while(state_, locked_with_sleepers);
}

void lean_mutex::unlock_and_wake() noexcept {
  state_.store(free, std::memory_order_release);
  wake_one(state_);
}

}  // namespace pmrkit::detail
