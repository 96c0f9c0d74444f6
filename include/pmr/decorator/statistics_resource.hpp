// statistics_resource: counts what goes through it to any upstream.
//
// It keeps, for its whole lifetime, the allocations and deallocations, the
// bytes in use and their peak, the total bytes allocated, and a histogram of
// request sizes in power-of-two buckets: bucket 0 counts requests of 0 or 1
// byte, bucket i (1..64) those of 2^(i-1)+1 to 2^i bytes, i.e. bucket
// `std::bit_width(bytes - 1)`. Bytes are the requested ones.
//
// `stats()` returns the lifetime figures (`statistics_stats`, unsigned, named
// as every pmrkit stats() names them). Constructed as `statistics_resource s;`,
// `s(upstream)`, `s(options)`, `s(options, upstream)`, `s({})` or
// `s({}, upstream)`.
//
// Scoped counters, as RMM's statistics_resource_adaptor: `push_counters()`
// starts a frame with counters of its own, which the following calls update
// (the lifetime counters go on too); `pop_counters()` ends it, returns its
// counters and adds them into the frame below, whose peak becomes the larger
// of its own and its bytes at the push plus the popped frame's peak. A frame's
// bytes in use are those allocated less those freed since its push, so they
// are negative when it freed older blocks (`allocation_counters` is signed
// for that reason; it is a frame's account, not a stats()).
//
// Observers: `add_observer(o)` has `o.on_allocate(p, bytes, alignment)` called
// after every successful allocation and `o.on_deallocate(...)` before every
// deallocation (the block is still valid), on the calling thread, in the
// order they were added. Hooks are noexcept: a block is never lost to one.
//
// Choose it to see what a component allocates (tests, tuning, telemetry);
// it forwards every block and costs nothing but its counters: with no frame
// and no observer, the upstream call and a few plain loads and stores.
//
// Thread safety: the resource is exactly as thread-safe as its upstream, and
// by default (`threading = decorator_threading::concurrent`) its counting
// makes no atomic read-modify-write on the way: each thread that calls it
// gets a shard of its own (allocations per histogram bucket, bytes
// allocated, deallocations, bytes freed), written by that thread alone with
// relaxed loads and stores. `stats()` and `histogram()` add up the shards of
// the threads that still run and what exited threads left: a thread folds
// its shard into the resource as it exits (under a mutex; a resource
// destroyed first is never touched by the threads that used it;
// `thread_shards()` counts the threads holding one). So every
// count and byte total, and bytes_in_use, is exact once the threads that
// call the resource are quiet, whether they still run or exited; read while
// they allocate, a snapshot is not atomic across its fields or threads.
//
// The peak: a thread counts its net bytes (allocated less freed) on its own
// and folds them into a shared total each time it has allocated, or freed,
// another `peak_batch` bytes (one read-modify-write per batch of calls, as a
// Linux percpu_counter does), so its drift from what it folded stays within
// peak_batch either way. The peak is taken just before each free, from the
// shared total plus the calling thread's drift, and at each fold. So it is
// exact when no more than one thread has a drift: with one thread, or with
// threads that take turns and exit (their drift folded as they exit), and
// with `peak_batch = 0` (every call folds: one read-modify-write per call).
// With T threads holding a drift, the reported peak is within
// (T - 1) × peak_batch bytes of the true peak, either way (calls in progress
// at the moment of the peak aside).
//
// `threading = decorator_threading::serialized` keeps one set of counters,
// updated with loads and stores, for calls that never overlap (see
// <pmr/decorator/threading.hpp>); every figure is exact.
//
// `push_counters`, `pop_counters`, `add_observer` and `remove_observer`
// change the frame stack and the observer list without a lock: they must not
// overlap each other or any allocate or deallocate (call them between
// phases, while no other thread uses the resource). A frame's counters are
// updated with read-modify-writes in the concurrent mode, so they are exact
// too. Observers are called concurrently when the resource is used
// concurrently.
//
// Example:
//   pmrkit::statistics_resource statistics;  // upstream: the default resource
//   statistics.push_counters();
//   {
//     std::pmr::vector<int> v(100, &statistics);
//   }
//   const pmrkit::allocation_counters frame = statistics.pop_counters();
//   assert(frame.allocations == 1 && frame.bytes_in_use == 0);
//   assert(frame.peak_bytes_in_use == 400 && frame.total_bytes == 400);
//   assert(statistics.histogram()[pmrkit::statistics_resource::histogram_bucket(400)] == 1);
#pragma once

#include <pmr/core/align.hpp>
#include <pmr/core/detail/relaxed_counter.hpp>
#include <pmr/core/detail/thread_shards.hpp>
#include <pmr/core/upstream.hpp>
#include <pmr/decorator/threading.hpp>

#include <array>
#include <bit>
#include <concepts>
#include <cstddef>
#include <limits>
#include <memory>
#include <memory_resource>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace pmrkit {

struct statistics_options {
  /// Bytes a thread allocates, or frees, between two folds of its count into
  /// the shared total the peak is taken from (concurrent threading): the peak
  /// may be off by (threads - 1) × this. 0 folds every call: an exact peak,
  /// at one atomic read-modify-write per call.
  std::size_t peak_batch = std::size_t{64} << 10;
  decorator_threading threading = decorator_threading::concurrent;
  std::string_view name = "statistics";  ///< shown in errors (copied)
};

/// The figures over the resource's lifetime (`stats()`).
struct statistics_stats {
  std::size_t allocations = 0;        ///< successful allocate calls
  std::size_t deallocations = 0;      ///< deallocate calls
  std::size_t bytes_in_use = 0;       ///< bytes allocated and not yet freed
  std::size_t peak_bytes_in_use = 0;  ///< the most bytes_in_use has been (see the header)
  std::size_t total_bytes = 0;        ///< bytes ever allocated
};

/// The counters of a frame (`pop_counters()`): signed, since a frame may free
/// blocks allocated before it was pushed.
struct allocation_counters {
  std::size_t allocations = 0;           ///< successful allocate calls
  std::size_t deallocations = 0;         ///< deallocate calls
  std::ptrdiff_t bytes_in_use = 0;       ///< bytes allocated less bytes freed
  std::ptrdiff_t peak_bytes_in_use = 0;  ///< the most bytes_in_use has been (0 at the start)
  std::size_t total_bytes = 0;           ///< bytes allocated
};

/// Told about every allocation and deallocation of the statistics_resources
/// it is added to. Override what you need; the hooks must not throw.
class allocation_observer {
 public:
  virtual ~allocation_observer() = default;
  /// After the upstream returned `p` for `bytes` at `alignment`.
  virtual void on_allocate(void* /*p*/, std::size_t /*bytes*/, std::size_t /*alignment*/) noexcept {
  }
  /// Before `p` goes back to the upstream.
  virtual void on_deallocate(void* /*p*/, std::size_t /*bytes*/,
                             std::size_t /*alignment*/) noexcept {}

 protected:
  allocation_observer() = default;
  allocation_observer(const allocation_observer&) = default;
  allocation_observer& operator=(const allocation_observer&) = default;
};

namespace detail {
/// The counters of one frame.
///
/// Bytes in use are the bytes allocated less the bytes freed, two counters
/// that only allocation, respectively deallocation, writes. The peak is taken
/// where it can be reached: just before a deallocation, and when the counters
/// are read. So the allocation path reads nothing the deallocation path
/// writes (reading a counter just stored on the other path costs more than
/// all the updates together).
class counter_frame {
 public:
  void on_allocate(std::size_t bytes, decorator_threading threading) noexcept {
    allocations_.add(1, threading);
    allocated_bytes_.add(bytes, threading);
  }
  void on_deallocate(std::size_t bytes, decorator_threading threading) noexcept {
    deallocations_.add(1, threading);
    const std::size_t freed_before = freed_bytes_.add(bytes, threading) - bytes;
    peak_.raise_to(static_cast<std::ptrdiff_t>(allocated_bytes_.load() - freed_before), threading);
  }
  [[nodiscard]] allocation_counters load() const noexcept {
    const std::size_t allocated = allocated_bytes_.load();
    const auto in_use = static_cast<std::ptrdiff_t>(allocated - freed_bytes_.load());
    const std::ptrdiff_t peak = peak_.load();
    return {.allocations = allocations_.load(),
            .deallocations = deallocations_.load(),
            .bytes_in_use = in_use,
            .peak_bytes_in_use = peak < in_use ? in_use : peak,
            .total_bytes = allocated};
  }
  /// Adds the counters of a frame that ran on top of this one.
  void absorb(const allocation_counters& popped) noexcept;

 private:
  relaxed_counter<std::size_t> allocations_;
  relaxed_counter<std::size_t> allocated_bytes_;
  relaxed_counter<std::size_t> deallocations_;
  relaxed_counter<std::size_t> freed_bytes_;
  relaxed_counter<std::ptrdiff_t> peak_;  // as of the last deallocation; see load()
};

/// The lifetime counters of one thread (concurrent threading), or of the
/// resource itself: every call's (serialized), or what exited threads and
/// calls without a shard left (concurrent, updated with read-modify-writes).
/// A thread's own shard is written by that thread alone, with loads and
/// stores; stats() reads it from other threads.
struct alignas(64) statistics_shard : thread_shard {
  static constexpr std::size_t buckets = std::numeric_limits<std::size_t>::digits + 1;

  relaxed_counter<std::size_t> allocated_bytes;
  relaxed_counter<std::size_t> freed_bytes;
  relaxed_counter<std::size_t> deallocations;
  /// The most bytes in use this thread saw (see the header on the peak).
  relaxed_counter<std::ptrdiff_t> peak;
  // Only the owning thread reads these. allocated_bytes - freed_bytes as last folded into the
  // resource's total (wrapping), and when to fold next: once allocated_bytes or freed_bytes
  // has grown by the batch since, so the drift stays within it either way.
  std::size_t folded = 0;
  std::size_t fold_when_allocated = 0;  // a new shard folds on its first call
  std::size_t fold_when_freed = 0;
  std::array<relaxed_counter<std::size_t>, buckets> allocations;  // per histogram bucket
};
}  // namespace detail

class statistics_resource final : public std::pmr::memory_resource {
 public:
  /// Buckets of the size histogram: 0 and 1 byte, then one per power of two up to 2^64.
  static constexpr std::size_t histogram_buckets = detail::statistics_shard::buckets;
  using histogram_type = std::array<std::size_t, histogram_buckets>;

  /// The histogram bucket of a request of `bytes`: bit_width(bytes - 1), 0 for 0 bytes.
  [[nodiscard]] static constexpr std::size_t histogram_bucket(std::size_t bytes) noexcept {
    return static_cast<std::size_t>(std::bit_width(bytes - static_cast<std::size_t>(bytes != 0)));
  }

  /// Throws std::invalid_argument when `upstream` is null, std::bad_alloc
  /// when the bookkeeping cannot be allocated.
  explicit statistics_resource(
      statistics_options options = {},
      std::pmr::memory_resource* upstream = std::pmr::get_default_resource());
  /// The default options over `upstream` (a template, so that `{}` never
  /// reads as a null upstream).
  template <std::convertible_to<std::pmr::memory_resource*> Upstream>
  explicit statistics_resource(Upstream upstream)
      : statistics_resource(statistics_options{}, upstream) {}
  /// Not copyable. Declared on a non-const reference so that `{}` does not
  /// convert to it and `statistics_resource s({})` means the default options.
  statistics_resource(statistics_resource&) = delete;
  statistics_resource& operator=(const statistics_resource&) = delete;
  /// Only when no other thread uses it any more; threads that used it may
  /// still run, or exit meanwhile.
  ~statistics_resource() override;

  // Frames (not concurrently with allocations: see the thread safety above).

  /// Starts a frame: the following calls count in it until pop_counters().
  /// Throws std::bad_alloc when the frame cannot be stored.
  void push_counters();
  /// Ends the newest frame, adds its counters into the frame below (if any) and
  /// returns them. Throws std::logic_error when no frame was pushed.
  allocation_counters pop_counters();
  /// Frames pushed and not yet popped.
  [[nodiscard]] std::size_t frame_depth() const noexcept { return frames_.size(); }

  // Observers (not concurrently with allocations: see the thread safety above).

  /// `observer` must stay alive until it is removed or the resource is destroyed.
  void add_observer(allocation_observer& observer);
  /// Returns false when `observer` was not added.
  bool remove_observer(allocation_observer& observer) noexcept;

  // Observers of the resource.

  /// The lifetime figures: the sum over the threads' shards (see the header).
  [[nodiscard]] statistics_stats stats() const noexcept;
  /// Allocations per request size: see histogram_bucket().
  [[nodiscard]] histogram_type histogram() const noexcept;
  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  [[nodiscard]] std::pmr::memory_resource* upstream_resource() const noexcept { return upstream_; }
  [[nodiscard]] decorator_threading threading() const noexcept { return threading_; }
  [[nodiscard]] std::size_t peak_batch() const noexcept { return peak_batch_; }
  /// Threads that hold a shard now: they called the resource and still run
  /// (always 0 with serialized threading).
  [[nodiscard]] std::size_t thread_shards() const noexcept { return shards_.count(); }

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    check_request(bytes, alignment, name_);
    void* p = nullptr;
    try {
      p = upstream_->allocate(bytes, alignment);
    } catch (...) {
      rethrow_upstream_failure(name_, bytes, alignment);
    }
    // One branch on the way: the updates below are specialised for the mode.
    if (path_ == update_path::serialized) {
      count_allocation<false>(own_, bytes);
    } else if (path_ == update_path::concurrent) {
      if (detail::statistics_shard* shard = shards_.cached()) [[likely]] {
        count_allocation<true>(*shard, bytes);
      } else {
        count_lifetime_allocation(bytes);
      }
    } else {
      allocated_hooked(p, bytes, alignment);
    }
    return p;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    if (path_ == update_path::hooked) [[unlikely]] {
      deallocate_hooked(p, bytes, alignment);
      return;
    }
    upstream_->deallocate(p, bytes, alignment);
    if (path_ == update_path::serialized) {
      count_deallocation<false>(own_, bytes);
    } else if (detail::statistics_shard* shard = shards_.cached()) [[likely]] {
      count_deallocation<true>(*shard, bytes);
    } else {
      count_lifetime_deallocation(bytes);
    }
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  /// What do_allocate and do_deallocate do besides forwarding.
  enum class update_path : unsigned char {
    concurrent,  // the calling thread's shard
    serialized,  // own_, with loads and stores
    hooked,      // and a frame or observers: out of line
  };

  // One call counted in `shard` with loads and stores: the calling thread's
  // own shard (Sharded: its drift past peak_batch_ is folded), or own_ when
  // the calls never overlap.
  template <bool Sharded>
  void count_allocation(detail::statistics_shard& shard, std::size_t bytes) noexcept {
    constexpr auto plain = decorator_threading::serialized;
    shard.allocations[histogram_bucket(bytes)].add(1, plain);
    const std::size_t allocated = shard.allocated_bytes.add(bytes, plain);
    if constexpr (Sharded) {
      if (allocated > shard.fold_when_allocated) [[unlikely]] {
        fold(shard);
      }
    }
  }
  template <bool Sharded>
  void count_deallocation(detail::statistics_shard& shard, std::size_t bytes) noexcept {
    constexpr auto plain = decorator_threading::serialized;
    const std::size_t freed = shard.freed_bytes.load();
    // The bytes in use peak just before a free: the threads' shared total
    // plus this thread's drift from it (exact when no other thread drifts).
    const auto drift = static_cast<std::ptrdiff_t>(shard.allocated_bytes.load() - freed -
                                                   (Sharded ? shard.folded : 0));
    const std::ptrdiff_t in_use = Sharded ? folded_.load() + drift : drift;
    if (in_use > shard.peak.load()) shard.peak.store(in_use);
    shard.freed_bytes.store(freed + bytes);
    shard.deallocations.add(1, plain);
    if constexpr (Sharded) {
      if (freed + bytes > shard.fold_when_freed) [[unlikely]] {
        fold(shard);
      }
    }
  }
  // Out of line: a thread's drift into folded_ (one read-modify-write).
  void fold(detail::statistics_shard& shard) noexcept;
  // The lifetime counting when the fast path cannot: a shard not in the
  // thread's table, no shard (read-modify-writes on own_), any mode.
  void count_lifetime_allocation(std::size_t bytes) noexcept;
  void count_lifetime_deallocation(std::size_t bytes) noexcept;
  // The counting, the frame and the observers, out of line.
  void allocated_hooked(void* p, std::size_t bytes, std::size_t alignment) noexcept;
  void deallocate_hooked(void* p, std::size_t bytes, std::size_t alignment);
  void choose_path() noexcept;
  // An exiting thread's shard, folded into own_ (under the shards' mutex).
  static void retire_shard(void* self, detail::thread_shard& shard) noexcept;
  // own_ and every live shard, added up (under the shards' mutex).
  template <class Visit>
  void for_each_shard(Visit&& visit) const;

  // Read on the fast path.
  std::pmr::memory_resource* upstream_;
  update_path path_;
  detail::thread_shards<detail::statistics_shard> shards_;
  decorator_threading threading_;
  std::size_t peak_batch_;
  std::string name_;
  // Serialized: every call's counters. Concurrent: what exited threads and
  // calls without a shard counted, with read-modify-writes.
  detail::statistics_shard own_;
  // Concurrent: the net bytes the threads folded, exited threads' and calls
  // without a shard included; bytes in use are this plus each thread's drift.
  alignas(64) detail::relaxed_counter<std::ptrdiff_t> folded_;
  // The frames and observers are bookkeeping of the decorator, not allocations
  // it serves: they live on the global heap, where they are not counted.
  std::vector<std::unique_ptr<detail::counter_frame>> frames_;  // the newest last
  std::vector<allocation_observer*> observers_;
};

static_assert(std::is_base_of_v<std::pmr::memory_resource, statistics_resource>);

}  // namespace pmrkit
