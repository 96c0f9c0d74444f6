// budget_resource: a limit on the bytes allocated through it, over any upstream.
//
// Each request reserves its bytes from the budget before the upstream is
// asked, with one compare-and-swap on the bytes in use, and the reservation is
// rolled back if the upstream throws. So concurrent callers can never take
// use past the limit, not even for an instant: a request that would is
// refused with `pmrkit::budget_exceeded` (an allocation_error, so a
// std::bad_alloc) carrying the budget's name, its limit and what remained.
//
// What is counted: the bytes callers ask for (`allocate(bytes, ...)`), not
// what the upstream makes of them (rounding, headers, chunks). Over a
// strategy it caps what its callers hold; under a strategy (the strategy's
// upstream) it caps what the strategy takes from the system, chunks included.
//
// Constructed as `budget_resource b;`, `b(upstream)`, `b(options)`,
// `b(options, upstream)`, `b({})` or `b({}, upstream)`; the default limit is
// 0, which refuses every request until set_limit() raises it.
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
// Thread safety: as its upstream's (the figures are relaxed atomics). With
// `threading = decorator_threading::serialized` it updates them with plain
// loads and stores, a few nanoseconds cheaper per call, for use over a
// single-threaded upstream or under synchronized_resource (see
// <pmr/decorator/threading.hpp>). A request racing with set_limit() may be
// judged against either limit.
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
#include <pmr/core/upstream.hpp>
#include <pmr/decorator/threading.hpp>

#include <concepts>
#include <cstddef>
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
  std::size_t peak_bytes_in_use = 0;  ///< the most bytes_in_use has been
  std::size_t limit = 0;              ///< the limit now
  std::size_t rejections = 0;  ///< requests refused for the budget (the upstream's failures aside)
};

class budget_resource final : public std::pmr::memory_resource {
 public:
  /// Throws std::invalid_argument when `upstream` is null.
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
  ~budget_resource() override = default;

  /// Changes the limit; takes effect for the requests that follow. Below the
  /// bytes in use it refuses every request until enough is freed.
  void set_limit(std::size_t bytes) noexcept { limit_.store(bytes); }

  // Observers.

  [[nodiscard]] std::size_t limit() const noexcept { return limit_.load(); }
  /// What a request may take now: the limit less the bytes in use, or 0.
  [[nodiscard]] std::size_t remaining() const noexcept {
    const std::size_t limit = limit_.load();
    const std::size_t in_use = in_use_.load();
    return in_use < limit ? limit - in_use : 0;
  }
  [[nodiscard]] budget_stats stats() const noexcept {
    return {.bytes_in_use = in_use_.load(),
            .peak_bytes_in_use = peak_.load(),
            .limit = limit_.load(),
            .rejections = rejections_.load()};
  }
  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  [[nodiscard]] std::pmr::memory_resource* upstream_resource() const noexcept { return upstream_; }
  [[nodiscard]] decorator_threading threading() const noexcept { return threading_; }

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    check_request(bytes, alignment, name_);
    const std::optional<std::size_t> in_use = in_use_.add_within(bytes, limit_.load(), threading_);
    if (!in_use) [[unlikely]] {
      refuse(bytes, alignment);
    }
    void* p = nullptr;
    try {
      p = upstream_->allocate(bytes, alignment);
    } catch (...) {
      in_use_.subtract(bytes, threading_);
      rethrow_upstream_failure(name_, bytes, alignment);
    }
    peak_.raise_to(*in_use, threading_);
    return p;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    upstream_->deallocate(p, bytes, alignment);
    // Saturating: a free with a wrong size (misuse the upstream may report and ignore) must not
    // wrap the use to a huge value that refuses every later request.
    in_use_.subtract_saturating(bytes, threading_);
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  /// Counts the rejection and throws budget_exceeded. Cold, out of line.
  [[noreturn]] void refuse(std::size_t bytes, std::size_t alignment);

  std::string name_;
  std::pmr::memory_resource* upstream_;
  decorator_threading threading_;
  detail::relaxed_counter<std::size_t> limit_;
  detail::relaxed_counter<std::size_t> in_use_;
  detail::relaxed_counter<std::size_t> peak_;
  detail::relaxed_counter<std::size_t> rejections_;
};

static_assert(std::is_base_of_v<std::pmr::memory_resource, budget_resource>);

}  // namespace pmrkit
