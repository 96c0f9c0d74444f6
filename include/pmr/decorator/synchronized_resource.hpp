// synchronized_resource: a mutex around any upstream, so that any strategy
// can be shared between threads.
//
// Every allocate and deallocate takes one lock, then forwards to the
// upstream; `locked(f)` runs `f()` under the same lock, for what else must
// not overlap the upstream's calls (its stats(), shrink() or release()).
// `stats().contended_locks` counts the calls that found the lock taken and
// had to wait: when it grows with the calls, the lock is the bottleneck.
//
// The lock is a detail::lean_mutex (<pmr/core/detail/lean_mutex.hpp>): one
// locked instruction per lock and unlock, inline, where std::mutex makes two
// and calls the C library twice (about 10 ns more per allocate and
// deallocate pair on the development machine). A thread that finds it taken
// spins briefly, then sleeps until woken; an unlock racing with its
// announcement may miss it, and then it looks again after at most 100 µs.
// Not fair: under heavy contention a thread may wait for several others.
//
// Constructed as `synchronized_resource s;`, `s(upstream)`, `s(options)`,
// `s(options, upstream)`, `s({})` or `s({}, upstream)`. It has no
// `threading` option: its one figure is updated under its lock.
//
// Choose it to share a single-threaded strategy (a pool, an arena, a budget
// or statistics in `serialized` mode) between a few threads. Under heavy
// contention prefer concurrent_pool_resource, whose threads rarely meet.
//
// Thread safety: every member may be called from any thread at once. The
// upstream must not be used directly while others use it through this.
//
// Example:
//   pmrkit::multipool_resource pools;
//   pmrkit::synchronized_resource shared(&pools);
//   std::thread worker([&] { std::pmr::vector<int> v(1000, &shared); });
//   {
//     std::pmr::vector<int> v(1000, &shared);
//   }
//   worker.join();
//   assert(shared.locked([&] { return pools.stats().blocks_in_use; }) == 0);
#pragma once

#include <pmr/core/align.hpp>
#include <pmr/core/detail/lean_mutex.hpp>
#include <pmr/core/upstream.hpp>

#include <concepts>
#include <cstddef>
#include <functional>
#include <memory_resource>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace pmrkit {

struct synchronized_options {
  std::string_view name = "synchronized";  ///< shown in errors (copied)
};

struct synchronized_stats {
  std::size_t contended_locks = 0;  ///< calls that had to wait for the lock
};

class synchronized_resource final : public std::pmr::memory_resource {
 public:
  /// Throws std::invalid_argument when `upstream` is null.
  explicit synchronized_resource(
      synchronized_options options = {},
      std::pmr::memory_resource* upstream = std::pmr::get_default_resource());
  /// The default options over `upstream` (a template, so that `{}` never
  /// reads as a null upstream).
  template <std::convertible_to<std::pmr::memory_resource*> Upstream>
  explicit synchronized_resource(Upstream upstream)
      : synchronized_resource(synchronized_options{}, upstream) {}
  /// Not copyable. Declared on a non-const reference so that `{}` does not
  /// convert to it and `synchronized_resource s({})` means the default options.
  synchronized_resource(synchronized_resource&) = delete;
  synchronized_resource& operator=(const synchronized_resource&) = delete;
  ~synchronized_resource() override = default;

  /// Runs `f()` with the lock held and returns what it returns; throws what
  /// `f` throws. `f` must not call this resource (allocate, deallocate,
  /// stats): the lock is not recursive.
  template <class Function>
  decltype(auto) locked(Function&& f) {
    const guard lock(*this);
    return std::invoke(std::forward<Function>(f));
  }

  // Observers.

  /// Takes the lock (not from inside locked()).
  [[nodiscard]] synchronized_stats stats() const noexcept;
  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  [[nodiscard]] std::pmr::memory_resource* upstream_resource() const noexcept { return upstream_; }

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    check_request(bytes, alignment, name_);
    const guard lock(*this);
    try {
      return upstream_->allocate(bytes, alignment);
    } catch (...) {
      rethrow_upstream_failure(name_, bytes, alignment);
    }
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    const guard lock(*this);
    upstream_->deallocate(p, bytes, alignment);
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  /// Holds the lock; a lock that has to wait counts as contended.
  class guard {
   public:
    explicit guard(synchronized_resource& resource) : mutex_(resource.mutex_) {
      if (!mutex_.try_lock()) [[unlikely]] {
        resource.lock_contended();
      }
    }
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;
    ~guard() { mutex_.unlock(); }

   private:
    detail::lean_mutex& mutex_;
  };

  /// Waits for the lock and counts the wait. Out of line.
  void lock_contended();

  std::string name_;
  std::pmr::memory_resource* upstream_;
  mutable detail::lean_mutex mutex_;
  std::size_t contended_locks_ = 0;  // under mutex_
};

static_assert(std::is_base_of_v<std::pmr::memory_resource, synchronized_resource>);

}  // namespace pmrkit
