// pressure_resource: a decorator that turns memory use into pressure levels
// (none, low, medium, high, critical), tells subscribers when the level
// rises, and rescues an allocation the upstream refused.
//
// Every request goes to the upstream unchanged; the decorator counts the bytes
// in use and derives a level from them. The level comes from one of two
// sources (`pressure_options::source`):
//   - own_usage (the default): this resource's bytes in use against
//     `capacity`, updated on every allocate and deallocate;
//   - system: the machine's or container's memory, from cgroup v2
//     (`/sys/fs/cgroup/memory.current` against `memory.max`) when it is
//     limited, else from `/proc/meminfo` (MemTotal - MemAvailable against
//     MemTotal). The files are read at construction, on `refresh()`, and once
//     `system_sample_bytes` bytes have been allocated or freed through the
//     resource since the last reading, never on every call. `system_root`
//     moves the files (tests point it at fake ones).
// The level is the highest whose threshold the usage reaches, a threshold
// being a percentage of the capacity rounded up to whole bytes (a result
// within floating-point error of a whole number is that number): with
// capacity 1000 and the default thresholds 50/70/85/95 %, 499 bytes in use
// are none, 500 low, 700 medium, 850 high, 950 and more critical. It is not a
// budget: usage may pass 100 % (pair it with a budget decorator to refuse).
//
// `on_pressure(threshold, callback)` subscribes; the returned
// `pressure_subscription` unsubscribes when destroyed. A callback is called
// with a `pressure_event` on each upward transition to a level at or above
// its threshold (a jump from none to high is one call, with level high), and
// once with level none when the level falls back to none after having reached
// its threshold. Downward steps that stay above none are not announced.
//
// When the upstream throws std::bad_alloc, the resource calls every
// subscriber with level critical and `upstream_failed` set (they may free
// memory), gives the emergency reserve (`emergency_reserve` bytes taken from
// the upstream at construction) back to the upstream, and, if a callback ran
// or the reserve was given back, retries the request once. If that fails too,
// or nothing could have changed, the upstream's allocation_error propagates
// (a plain std::bad_alloc becomes one with reason upstream_failed); the
// resource is unchanged and usable. The reserve is taken again on a
// deallocate once the level is below high and, since it was given back (or
// since the last failed attempt), at least `emergency_reserve` bytes were
// freed through the resource; `rearm()` tries at once. Re-arming never throws.
//
// Callbacks run on the thread whose allocate, deallocate or refresh caused the
// transition, outside every lock of the resource, so they may allocate and
// free through it and subscribe or unsubscribe. Transitions that a callback
// causes on its own thread are delivered after it returns, not inside it (in
// order; past 16 waiting, the newest replaces the last one queued), and
// an allocation a callback makes that the upstream refuses does not call the
// callbacks again (it still uses the reserve and the one retry): recursion is
// bounded. Callbacks must not throw; an exception escaping one is logged
// through the log hook and dropped.
//
// Choose it to shed caches before memory runs out (see lru_cache), to log or
// shed load at thresholds, or to survive a transient upstream failure.
//
// Thread safety: as thread-safe as its upstream (docs/contract.md): counters
// and the level are atomics, always updated with read-modify-writes (it has
// no `threading` option), subscriptions are guarded by a mutex. Callbacks
// of different threads may run concurrently, and transitions found by
// different threads may be delivered in either order. Unsubscribing waits for
// the subscriber's calls running on other threads, so do not destroy a
// subscription while holding a lock its callback takes.
//
// Example:
//   pmrkit::pressure_resource pressure({.capacity = 1000});
//   pmrkit::pressure_level seen = pmrkit::pressure_level::none;
//   pmrkit::pressure_subscription subscription = pressure.on_pressure(
//       pmrkit::pressure_level::high, [&](const pmrkit::pressure_event& e) { seen = e.level; });
//   void* p = pressure.allocate(900);  // 90 % of the capacity
//   assert(pressure.level() == pmrkit::pressure_level::high && seen == pressure.level());
//   pressure.deallocate(p, 900);
//   assert(seen == pmrkit::pressure_level::none);
#pragma once

#include <pmr/core/align.hpp>
#include <pmr/core/detail/relaxed_counter.hpp>
#include <pmr/core/upstream.hpp>

#include <array>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <memory_resource>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace pmrkit {

enum class pressure_level : unsigned char { none, low, medium, high, critical };

/// The lower-case name of `level`, e.g. "critical".
[[nodiscard]] std::string_view to_string(pressure_level level) noexcept;

/// Where the level comes from.
enum class pressure_source : unsigned char {
  own_usage,  ///< this resource's bytes in use against `capacity`
  system,     ///< cgroup v2 memory.current/memory.max, else /proc/meminfo
};

struct pressure_options {
  /// The bytes in use that count as 100 % (own_usage; must be > 0 there,
  /// ignored for the system source).
  std::size_t capacity = 0;
  /// Thresholds in percent of the capacity: 0 < low < medium < high <
  /// critical <= 100.
  double low_percent = 50;
  double medium_percent = 70;
  double high_percent = 85;
  double critical_percent = 95;
  /// Bytes taken from the upstream at construction and given back when the
  /// upstream fails; 0: none.
  std::size_t emergency_reserve = 0;
  pressure_source source = pressure_source::own_usage;
  /// System source: the directory holding sys/fs/cgroup and proc (copied).
  std::string_view system_root = "/";
  /// System source: re-read the files once this many bytes were allocated or
  /// freed since the last reading; 0: only on refresh().
  std::size_t system_sample_bytes = std::size_t{1} << 20;
  std::string_view name = "pressure";  ///< shown in errors and logs (copied)
};

/// What a subscriber is told.
struct pressure_event {
  pressure_level level = pressure_level::none;     ///< the new level
  pressure_level previous = pressure_level::none;  ///< the level before
  std::size_t bytes_in_use = 0;                    ///< own usage, or the system's bytes in use
  std::size_t capacity = 0;                        ///< the capacity the level was measured against
  std::size_t requested = 0;     ///< the request that caused it (0: a free or refresh)
  bool upstream_failed = false;  ///< the upstream refused `requested`: free what you can
};

using pressure_callback = std::function<void(const pressure_event&)>;

struct pressure_stats {
  std::size_t bytes_in_use = 0;       ///< bytes handed out and not yet freed
  std::size_t peak_bytes_in_use = 0;  ///< the most bytes_in_use has been
  pressure_level level = pressure_level::none;
  std::size_t measured_bytes = 0;     ///< the bytes the level was last computed from
  std::size_t measured_capacity = 0;  ///< the capacity it was computed against
  /// "own usage", "cgroup v2", "/proc/meminfo", or "unavailable" (system
  /// source without readable files: the level stays none).
  std::string_view measured_from;
  std::size_t transitions = 0;        ///< level changes
  std::size_t upstream_failures = 0;  ///< requests the upstream refused (retries included)
  std::size_t retries = 0;            ///< requests tried again after callbacks or the reserve
  std::size_t failures = 0;           ///< allocate calls that threw to the caller
  bool reserve_armed = false;         ///< the emergency reserve is held
  std::size_t reserve_releases = 0;   ///< times the reserve went back to the upstream
  std::size_t rearms = 0;             ///< times it was taken again
};

/// Memory figures of the machine or the cgroup.
struct system_memory {
  std::size_t bytes_in_use = 0;
  std::size_t capacity = 0;
  std::string_view from;  ///< "cgroup v2" or "/proc/meminfo"
};

/// Reads `root`/sys/fs/cgroup/memory.current and memory.max (when memory.max
/// is a number), else `root`/proc/meminfo; nullopt when neither can be read.
[[nodiscard]] std::optional<system_memory> read_system_memory(std::string_view root = "/");

namespace detail {
struct pressure_subscriber;
struct pressure_notice;
}  // namespace detail

/// Keeps a callback subscribed; unsubscribes when destroyed or reset. Movable.
/// Destroy it before the resource, or let the resource's destructor detach it.
class pressure_subscription {
 public:
  pressure_subscription() noexcept = default;
  pressure_subscription(pressure_subscription&& other) noexcept = default;
  pressure_subscription& operator=(pressure_subscription&& other) noexcept;
  pressure_subscription(const pressure_subscription&) = delete;
  pressure_subscription& operator=(const pressure_subscription&) = delete;
  ~pressure_subscription() { unsubscribe(); }

  /// Stops the calls: when it returns, the callback runs on no other thread
  /// and will not be called again. Idempotent.
  void unsubscribe() noexcept;
  /// Subscribed to a live resource.
  [[nodiscard]] bool active() const noexcept;

 private:
  friend class pressure_resource;
  explicit pressure_subscription(std::shared_ptr<detail::pressure_subscriber> subscriber) noexcept
      : subscriber_(std::move(subscriber)) {}

  std::shared_ptr<detail::pressure_subscriber> subscriber_;
};

class pressure_resource final : public std::pmr::memory_resource {
 public:
  /// Throws std::invalid_argument naming the field for invalid options
  /// ("capacity", "low_percent", ...) or a null `upstream`, and what the
  /// upstream throws when the emergency reserve cannot be taken.
  /// The default options are invalid (capacity 0 with own usage): the
  /// forms without options compile, as for every decorator, and throw.
  explicit pressure_resource(pressure_options options = {}, std::pmr::memory_resource* upstream =
                                                                std::pmr::get_default_resource());
  /// The default options over `upstream` (a template, so that `{}` never
  /// reads as a null upstream).
  template <std::convertible_to<std::pmr::memory_resource*> Upstream>
  explicit pressure_resource(Upstream upstream) : pressure_resource(pressure_options{}, upstream) {}
  /// Not copyable. Declared on a non-const reference so that `{}` does not
  /// convert to it and `pressure_resource p({})` means the default options.
  pressure_resource(pressure_resource&) = delete;
  pressure_resource& operator=(const pressure_resource&) = delete;
  /// Gives the reserve back and detaches the subscriptions. Blocks still
  /// allocated are the upstream's and stay with it.
  ~pressure_resource() override;

  // Subscriptions.

  /// Calls `callback` on each rise to a level >= `threshold` and on the
  /// return to none. Throws std::invalid_argument for threshold none or an
  /// empty callback, std::bad_alloc when out of memory.
  [[nodiscard]] pressure_subscription on_pressure(pressure_level threshold,
                                                  pressure_callback callback);

  // Level.

  [[nodiscard]] pressure_level level() const noexcept {
    return level_.load(std::memory_order_acquire);
  }
  /// Re-reads the system figures (system source) or recomputes the level from
  /// the bytes in use, delivers any transition, and returns the level.
  pressure_level refresh() noexcept;
  /// Tries to take the emergency reserve again now, whatever the level;
  /// returns whether it is held. Never throws.
  bool rearm() noexcept;

  // Observers.

  [[nodiscard]] pressure_stats stats() const noexcept;
  [[nodiscard]] std::size_t bytes_in_use() const noexcept {
    return in_use_.load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] pressure_source source() const noexcept { return source_; }
  /// The smallest byte count at `level` (own usage), e.g. 500 for low with
  /// capacity 1000; 0 for none.
  [[nodiscard]] std::size_t threshold_bytes(pressure_level level) const noexcept;
  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  [[nodiscard]] std::pmr::memory_resource* upstream_resource() const noexcept { return upstream_; }

 private:
  friend class pressure_subscription;
  using thresholds = std::array<std::size_t, 4>;  // low, medium, high, critical

  [[nodiscard]] static pressure_level level_for(std::size_t used,
                                                const thresholds& bounds) noexcept {
    return static_cast<pressure_level>(
        static_cast<int>(used >= bounds[0]) + static_cast<int>(used >= bounds[1]) +
        static_cast<int>(used >= bounds[2]) + static_cast<int>(used >= bounds[3]));
  }

  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    check_request(bytes, alignment, name_);
    void* p = nullptr;
    try {
      p = upstream_->allocate(bytes, alignment);
    } catch (const std::bad_alloc&) {
      p = allocate_after_failure(bytes, alignment);  // rethrows when it cannot help
    }
    const std::size_t used = in_use_.fetch_add(bytes) + bytes;
    peak_.raise_to(used, decorator_threading::concurrent);
    after_change(used, bytes, bytes);
    return p;
  }

  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    upstream_->deallocate(p, bytes, alignment);
    const std::size_t used = in_use_.fetch_sub(bytes) - bytes;
    after_change(used, bytes, 0);
    if (reserve_bytes_ != 0 && reserve_.load(std::memory_order_relaxed) == nullptr) [[unlikely]] {
      note_freed_while_disarmed(bytes);
    }
  }

  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  // After in_use_ changed to `used` by `bytes`; `requested` is 0 for a free.
  void after_change(std::size_t used, std::size_t bytes, std::size_t requested) noexcept {
    if (source_ == pressure_source::own_usage) {
      if (level_for(used, bounds_) != level_.load()) [[unlikely]] {
        update_level(requested);
      }
    } else if (system_sample_bytes_ != 0 &&
               traffic_.fetch_add(bytes, std::memory_order_relaxed) + bytes >= system_sample_bytes_)
        [[unlikely]] {
      sample_system(requested, false);
    }
  }

  void* allocate_after_failure(std::size_t bytes, std::size_t alignment);
  void update_level(std::size_t requested) noexcept;
  void sample_system(std::size_t requested, bool forced) noexcept;
  std::size_t deliver(const detail::pressure_notice& notice) noexcept;
  std::size_t call_subscribers(const detail::pressure_notice& notice) noexcept;
  bool release_reserve() noexcept;
  void note_freed_while_disarmed(std::size_t bytes) noexcept;
  bool try_rearm() noexcept;
  void unsubscribe(detail::pressure_subscriber& subscriber) noexcept;

  std::string name_;
  std::pmr::memory_resource* upstream_;
  pressure_source source_;
  std::size_t capacity_;
  std::array<double, 4> percents_;
  thresholds bounds_;  // own usage: the byte thresholds of low..critical
  std::size_t reserve_bytes_;
  std::string system_root_;
  std::size_t system_sample_bytes_;

  std::atomic<std::size_t> in_use_{0};
  detail::relaxed_counter<std::size_t> peak_;
  std::atomic<pressure_level> level_{pressure_level::none};
  std::atomic<std::size_t> traffic_{0};  // system source: bytes since the last reading

  // Guards the level's transitions; never held while a callback runs.
  mutable std::mutex state_mutex_;
  pressure_level peak_since_none_ = pressure_level::none;
  std::size_t measured_bytes_ = 0;
  std::size_t measured_capacity_ = 0;
  std::string_view measured_from_;
  pressure_level system_level_ = pressure_level::none;

  std::atomic<std::size_t> transitions_{0};
  std::atomic<std::size_t> upstream_failures_{0};
  std::atomic<std::size_t> retries_{0};
  std::atomic<std::size_t> failures_{0};
  std::atomic<std::size_t> reserve_releases_{0};
  std::atomic<std::size_t> rearms_{0};

  std::atomic<void*> reserve_{nullptr};
  std::atomic<bool> rearming_{false};
  std::atomic<std::size_t> freed_since_release_{0};

  // Subscribers, ordered by id; never held while a callback runs.
  mutable std::mutex subscribers_mutex_;
  std::vector<std::shared_ptr<detail::pressure_subscriber>> subscribers_;
  std::uint64_t next_id_ = 1;
};

static_assert(std::is_base_of_v<std::pmr::memory_resource, pressure_resource>);

}  // namespace pmrkit
