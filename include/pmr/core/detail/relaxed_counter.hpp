// relaxed_counter: a figure a decorator keeps (bytes in use, a peak, a
// count), as a relaxed atomic that any thread may read at any time.
//
// A building block of the decorators (budget_resource, statistics_resource,
// fallback_resource, pressure_resource's peak): each update takes the decorator's
// `decorator_threading` (<pmr/decorator/threading.hpp>, where the trade-off is
// explained). With `concurrent` an update is an atomic read-modify-write;
// with `serialized` it is a relaxed load and a relaxed store, for callers
// that never overlap. `add_within` is the budget's reservation (never past a
// limit, not even for an instant), `raise_to` a running maximum (a peak).
//
// Thread safety: with `concurrent`, any member may be called from several
// threads at once; with `serialized`, updates must not overlap each other,
// reads (`load`) may overlap anything.
//
// Example:
//   const auto mode = pmrkit::decorator_threading::concurrent;
//   pmrkit::detail::relaxed_counter<std::size_t> in_use;
//   pmrkit::detail::relaxed_counter<std::size_t> peak;
//   peak.raise_to(in_use.add(100, mode), mode);
//   in_use.subtract(100, mode);
//   assert(in_use.load() == 0 && peak.load() == 100);
//   assert(in_use.add_within(60, 100, mode) == 60u);
//   assert(!in_use.add_within(60, 100, mode) && in_use.load() == 60);  // 120 > 100: refused
#pragma once

#include <pmr/decorator/threading.hpp>

#include <atomic>
#include <concepts>
#include <optional>

namespace pmrkit::detail {

/// An integer in a relaxed atomic, updated as `decorator_threading` says.
template <std::integral T>
class relaxed_counter {
 public:
  relaxed_counter() noexcept = default;
  explicit relaxed_counter(T initial) noexcept : value_(initial) {}
  relaxed_counter(const relaxed_counter&) = delete;
  relaxed_counter& operator=(const relaxed_counter&) = delete;

  [[nodiscard]] T load() const noexcept { return value_.load(std::memory_order_relaxed); }
  void store(T value) noexcept { value_.store(value, std::memory_order_relaxed); }

  /// Adds `n` (wrapping for unsigned T) and returns the new value.
  T add(T n, decorator_threading threading) noexcept {
    if (threading == decorator_threading::concurrent) {
      return static_cast<T>(value_.fetch_add(n, std::memory_order_relaxed) + n);
    }
    const T value = static_cast<T>(load() + n);
    store(value);
    return value;
  }

  /// Subtracts `n` (wrapping for unsigned T) and returns the new value.
  T subtract(T n, decorator_threading threading) noexcept {
    if (threading == decorator_threading::concurrent) {
      return static_cast<T>(value_.fetch_sub(n, std::memory_order_relaxed) - n);
    }
    const T value = static_cast<T>(load() - n);
    store(value);
    return value;
  }

  /// Subtracts `n`, stopping at 0 instead of wrapping (a caller's misuse, a
  /// free larger than what is counted, must not make the value huge). With
  /// concurrent callers the value may read wrapped for an instant before the
  /// excess is added back. For unsigned T.
  void subtract_saturating(T n, decorator_threading threading) noexcept {
    if (threading == decorator_threading::concurrent) {
      const T old = value_.fetch_sub(n, std::memory_order_relaxed);
      if (old < n) [[unlikely]]
        value_.fetch_add(static_cast<T>(n - old), std::memory_order_relaxed);
      return;
    }
    const T value = load();
    store(value < n ? T{} : static_cast<T>(value - n));
  }

  /// Adds `n` and returns the new value, unless that would exceed `limit`:
  /// then nothing changes and it returns nullopt. The value never exceeds
  /// `limit` at any instant, even with concurrent callers. For values >= 0.
  [[nodiscard]] std::optional<T> add_within(T n, T limit, decorator_threading threading) noexcept {
    T current = load();
    for (;;) {
      if (current > limit || n > limit - current) return std::nullopt;
      const T value = static_cast<T>(current + n);
      if (threading == decorator_threading::serialized) {
        store(value);
        return value;
      }
      if (value_.compare_exchange_weak(current, value, std::memory_order_relaxed)) return value;
    }
  }

  /// Raises the value to `candidate` when that is larger (a running maximum).
  /// Only a load when it is not, which is the common case for a peak.
  void raise_to(T candidate, decorator_threading threading) noexcept {
    T current = load();
    if (candidate <= current) return;
    if (threading == decorator_threading::serialized) {
      store(candidate);
      return;
    }
    while (candidate > current &&
           !value_.compare_exchange_weak(current, candidate, std::memory_order_relaxed)) {
    }
  }

 private:
  std::atomic<T> value_{};
};

}  // namespace pmrkit::detail
