// budget_resource: a limit on the bytes allocated through it, over any upstream.
//
// Each request reserves its bytes from the budget before the upstream is
// asked, and the reservation is rolled back if the upstream throws. Use
// never passes the limit, not even for an instant with concurrent callers: a
// request that would take it past is refused with `pmrkit::budget_exceeded`
// (an allocation_error, so a std::bad_alloc) carrying the budget's name, its
// limit and what remained for the request.
//
// What is counted: the bytes callers ask for (`allocate(bytes, ...)`), not
// what the upstream makes of them (rounding, headers, chunks). Over a
// strategy it caps what its callers hold; under a strategy (the strategy's
// upstream) it caps what the strategy takes from the system, chunks included.
//
// Constructed as `budget_resource b;`, `b(upstream)`, `b(options)`,
// `b(options, upstream)`, `b({})` or `b({}, upstream)`; the default limit is
// 0, which refuses every request of one byte or more until set_limit()
// raises it.
//
// Budgets nest by chaining: a per-tenant budget over a process budget. A
// request must fit both; the one that refuses it is named in the error, and
// the inner budget's reservation is rolled back when the outer refuses.
// `set_limit()` changes the limit at run time; lowering it below the bytes in
// use refuses new requests until enough is freed (frees always work).
//
// Choose it to bound what a component, a tenant or a request may take. It
// does not own or cache memory: it forwards every block.
//
// Thread safety: as its upstream's. By default (`threading =
// decorator_threading::concurrent`) a call makes no atomic read-modify-write
// on the way: each thread that calls the budget takes credit from the limit
// in batches (one read-modify-write per batch), serves its requests from
// that credit and puts what it frees back into it, with plain loads and
// stores. A thread's batch is min(64 KiB, limit / (16 × threads)), threads
// being those that called the budget and still run (`thread_credits()`) when
// it takes the batch; a thread keeps at most two batches of credit unused
// and gives back the rest, and an exiting thread gives back all of it. What
// a caller can rely on:
// - bytes in use plus the credit every thread holds never pass the limit
//   (unless set_limit() lowered it below them: then nothing more is taken);
// - a request is refused only when it exceeds the limit less the bytes in
//   use less the credit other threads hold unused (at most two of their
//   batches each). With one thread (the others exited, or never called the
//   budget) that is exactly `limit - bytes_in_use`, the rule of a budget
//   without credit: a request that fits is always served. The refusal's
//   `remaining()` is that amount: what the request could have had;
// - `stats()` and `remaining()` are exact once the threads are quiet
//   (`remaining()` being the limit less the bytes in use, of which other
//   threads' unused credit is not available to this thread);
//   `peak_bytes_in_use` is exact with one thread; with several, each thread
//   takes it after its allocations as the budget's reservations less its
//   own credit, so it is never below the true peak and at most the credit
//   the other threads held unused above it (calls in progress aside);
// - a request that set_limit() happens before (on the same thread, or on
//   one that synchronised with it) is judged against the new limit: credit
//   taken under the old one goes back first; a request racing with
//   set_limit() may be judged against either limit.
// With `threading = decorator_threading::serialized` it keeps one count,
// updated with plain loads and stores, for use over a single-threaded
// upstream or under synchronized_resource (see
// <pmr/decorator/threading.hpp>); every figure is exact.
//
// Example:
//   pmrkit::budget_resource process({.limit = 1_MiB, .name = "process"});
//   pmrkit::budget_resource tenant({.limit = 64_KiB, .name = "tenant-a"}, &process);
//   void* p = tenant.allocate(60_KiB);
//   try {
//     (void)tenant.allocate(8_KiB);
//   } catch (const pmrkit::budget_exceeded& e) {
//     assert(e.resource_name() == "tenant-a" && e.remaining() == 4_KiB);
//   }
//   tenant.deallocate(p, 60_KiB);
//   assert(tenant.stats().peak_bytes_in_use == 60_KiB && process.stats().bytes_in_use == 0);
#pragma once

#include <pmr/core/align.hpp>
#include <pmr/core/detail/relaxed_counter.hpp>
#include <pmr/core/detail/thread_shards.hpp>
#include <pmr/core/upstream.hpp>
#include <pmr/decorator/threading.hpp>

#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace pmrkit {

struct budget_options {
  std::size_t limit = 0;  ///< bytes callers may hold at once (0 refuses all)
  decorator_threading threading = decorator_threading::concurrent;
  std::string_view name = "budget";  ///< shown in budget_exceeded (copied)
};

struct budget_stats {
  std::size_t bytes_in_use = 0;       ///< bytes requested and not yet freed
  std::size_t peak_bytes_in_use = 0;  ///< the most bytes_in_use has been (see the header)
  std::size_t limit = 0;              ///< the limit now
  std::size_t rejections = 0;  ///< requests refused for the budget (the upstream's failures aside)
};

namespace detail {
/// One thread's credit of a budget_resource (concurrent threading): bytes
/// reserved from the limit for this thread and not in use. Written by that
/// thread alone; stats() reads `credit` and `peak` from other threads.
struct alignas(64) budget_shard : thread_shard {
  relaxed_counter<std::size_t> credit;
  relaxed_counter<std::size_t> peak;  ///< the most bytes in use this thread saw
  /// The limit's epoch the credit was taken under; 0: none may be used.
  std::uint64_t epoch = 0;
  std::size_t batch = 0;      ///< taken beyond a request when the credit runs out
  std::size_t most_kept = 0;  ///< 2 * batch: above it, frees go back to the budget
};
}  // namespace detail

class budget_resource final : public std::pmr::memory_resource {
 public:
  /// Throws std::invalid_argument when `upstream` is null, std::bad_alloc
  /// when the bookkeeping cannot be allocated.
  explicit budget_resource(budget_options options = {},
                           std::pmr::memory_resource* upstream = std::pmr::get_default_resource());
  /// The default options over `upstream` (a template, so that `{}` never
  /// reads as a null upstream).
  template <std::convertible_to<std::pmr::memory_resource*> Upstream>
  explicit budget_resource(Upstream upstream) : budget_resource(budget_options{}, upstream) {}
  /// Not copyable. Declared on a non-const reference so that `{}` does not
  /// convert to it and `budget_resource b({})` means the default options.
  budget_resource(budget_resource&) = delete;
  budget_resource& operator=(const budget_resource&) = delete;
  /// Only when no other thread uses it any more; threads that used it may
  /// still run, or exit meanwhile.
  ~budget_resource() override;

  /// Changes the limit; takes effect for the requests that follow (see the
  /// header). Below the bytes in use it refuses every request until enough
  /// is freed.
  void set_limit(std::size_t bytes) noexcept {
    limit_.store(bytes);
    epoch_.fetch_add(1, std::memory_order_release);  // the threads' credit is void
  }

  // Observers.

  [[nodiscard]] std::size_t limit() const noexcept { return limit_.load(); }
  /// The limit less the bytes in use, or 0 (see the header for what other
  /// threads' credit leaves of it to a request).
  [[nodiscard]] std::size_t remaining() const noexcept;
  /// Exact once the threads are quiet (see the header).
  [[nodiscard]] budget_stats stats() const noexcept;
  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  [[nodiscard]] std::pmr::memory_resource* upstream_resource() const noexcept { return upstream_; }
  [[nodiscard]] decorator_threading threading() const noexcept { return threading_; }
  /// Threads that hold credit now: they called the budget and still run
  /// (always 0 with serialized threading).
  [[nodiscard]] std::size_t thread_credits() const noexcept { return credits_.count(); }

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    check_request(bytes, alignment, name_);
    if (threading_ == decorator_threading::serialized) {
      return allocate_serialized(bytes, alignment);
    }
    return allocate_from_credit(bytes, alignment);
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    upstream_->deallocate(p, bytes, alignment);
    if (threading_ == decorator_threading::serialized) {
      // Saturating: a free with a wrong size (misuse the upstream may report and ignore) must
      // not wrap the use to a huge value that refuses every later request.
      reserved_.subtract_saturating(bytes, decorator_threading::serialized);
      return;
    }
    // Into the credit whatever its epoch: a request checks it before using any.
    detail::budget_shard* shard = credits_.cached();
    if (shard != nullptr) [[likely]] {
      const std::size_t credit = shard->credit.load();
      if (credit <= shard->most_kept && bytes <= shard->most_kept - credit) [[likely]] {
        shard->credit.store(credit + bytes);
        return;
      }
    }
    deallocate_slow(bytes);
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  // One count, reserved before the upstream is asked: the serialized mode (loads and stores, as
  // a budget always did), and a thread without a shard (read-modify-writes).
  template <decorator_threading Threading>
  void* allocate_reserving(std::size_t bytes, std::size_t alignment) {
    const std::optional<std::size_t> in_use = reserved_.add_within(bytes, limit_.load(), Threading);
    if (!in_use) [[unlikely]] {
      refuse(bytes, alignment, remaining());
    }
    void* p = nullptr;
    try {
      p = upstream_->allocate(bytes, alignment);
    } catch (...) {
      reserved_.subtract(bytes, Threading);
      rethrow_upstream_failure(name_, bytes, alignment);
    }
    // Without a shard the threads' credit is included: never below the bytes in use.
    peak_.raise_to(*in_use, Threading);
    return p;
  }
  void* allocate_serialized(std::size_t bytes, std::size_t alignment) {
    return allocate_reserving<decorator_threading::serialized>(bytes, alignment);
  }
  // The calling thread's credit serves the request, or the slow path does.
  void* allocate_from_credit(std::size_t bytes, std::size_t alignment) {
    detail::budget_shard* shard = credits_.cached();
    if (shard != nullptr && shard->epoch == epoch_.load(std::memory_order_relaxed)) [[likely]] {
      const std::size_t credit = shard->credit.load();
      if (bytes <= credit) [[likely]] {
        return allocate_on_credit(*shard, credit, bytes, alignment);
      }
    }
    return allocate_slow(bytes, alignment);
  }
  // `bytes` of `shard`'s `credit` (at least that) spent on an upstream block; back if that fails.
  void* allocate_on_credit(detail::budget_shard& shard, std::size_t credit, std::size_t bytes,
                           std::size_t alignment) {
    shard.credit.store(credit - bytes);
    void* p = nullptr;
    try {
      p = upstream_->allocate(bytes, alignment);
    } catch (...) {
      give_back_credit(shard, bytes);
      rethrow_upstream_failure(name_, bytes, alignment);
    }
    note_peak(shard);
    return p;
  }
  // After a request served from `shard`'s credit: everything reserved less this thread's
  // credit is the bytes in use plus the other threads' credit (exact with one thread).
  void note_peak(detail::budget_shard& shard) noexcept {
    const std::size_t reserved = reserved_.load();
    const std::size_t credit = shard.credit.load();
    if (reserved >= credit && reserved - credit > shard.peak.load()) {
      shard.peak.store(reserved - credit);
    }
  }

  // Slow paths (source file).
  void* allocate_slow(std::size_t bytes, std::size_t alignment);
  void take_credit(detail::budget_shard& shard, std::size_t bytes, std::size_t alignment);
  void deallocate_slow(std::size_t bytes) noexcept;
  void give_back_credit(detail::budget_shard& shard, std::size_t bytes) noexcept;
  void return_credit(detail::budget_shard& shard, std::size_t bytes) noexcept;
  [[nodiscard]] std::size_t batch_for(std::size_t limit) const noexcept;
  /// Counts the rejection and throws budget_exceeded. Cold, out of line.
  [[noreturn]] void refuse(std::size_t bytes, std::size_t alignment, std::size_t remaining);
  // An exiting thread's credit back to the budget, its peak kept (under the credits' mutex).
  static void retire_credit(void* self, detail::thread_shard& shard) noexcept;

  // What the fast paths read and the serialized one writes, in one cache line. (The slow paths
  // write reserved_ once per batch: rarely enough for it to share the line.)
  std::pmr::memory_resource* upstream_;
  decorator_threading threading_;
  detail::relaxed_counter<std::size_t> limit_;
  // Bytes in use plus the threads' credit, never past the limit it was reserved under.
  detail::relaxed_counter<std::size_t> reserved_;
  // Serialized: the peak. Concurrent: exited threads' and calls without credit.
  detail::relaxed_counter<std::size_t> peak_;
  std::atomic<std::uint64_t> epoch_{1};  // counts set_limit() calls: credit of another is void
  detail::thread_shards<detail::budget_shard> credits_;
  detail::relaxed_counter<std::size_t> rejections_;
  std::string name_;
};

static_assert(std::is_base_of_v<std::pmr::memory_resource, budget_resource>);

}  // namespace pmrkit
