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
// and no observer, the upstream call and four counter updates.
//
// Thread safety: the counters are relaxed atomics, so the resource is exactly
// as thread-safe as its upstream; `threading = decorator_threading::serialized`
// updates them with loads and stores instead of read-modify-writes (a few
// nanoseconds per call) when the calls never overlap (see
// <pmr/decorator/threading.hpp>). `stats()` and `histogram()` may be called at
// any time from any thread; taken while other threads allocate, a snapshot is
// not atomic across its fields, and it is exact once they stop.
// `push_counters`, `pop_counters`, `add_observer` and `remove_observer` change
// the frame stack and the observer list without a lock: they must not overlap
// each other or any allocate or deallocate (call them between phases, while no
// other thread uses the resource). Observers are called concurrently when the
// resource is used concurrently.
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
  decorator_threading threading = decorator_threading::concurrent;
  std::string_view name = "statistics";  ///< shown in errors (copied)
};

/// The figures over the resource's lifetime (`stats()`).
struct statistics_stats {
  std::size_t allocations = 0;        ///< successful allocate calls
  std::size_t deallocations = 0;      ///< deallocate calls
  std::size_t bytes_in_use = 0;       ///< bytes allocated and not yet freed
  std::size_t peak_bytes_in_use = 0;  ///< the most bytes_in_use has been
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
/// The counters of the lifetime or of one frame.
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
    add_bytes(bytes, threading);
  }
  /// An allocation's bytes, without counting the allocation (the lifetime
  /// counters count allocations in the histogram).
  void add_bytes(std::size_t bytes, decorator_threading threading) noexcept {
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
}  // namespace detail

class statistics_resource final : public std::pmr::memory_resource {
 public:
  /// Buckets of the size histogram: 0 and 1 byte, then one per power of two up to 2^64.
  static constexpr std::size_t histogram_buckets = std::numeric_limits<std::size_t>::digits + 1;
  using histogram_type = std::array<std::size_t, histogram_buckets>;

  /// The histogram bucket of a request of `bytes`: bit_width(bytes - 1), 0 for 0 bytes.
  [[nodiscard]] static constexpr std::size_t histogram_bucket(std::size_t bytes) noexcept {
    return static_cast<std::size_t>(std::bit_width(bytes - static_cast<std::size_t>(bytes != 0)));
  }

  /// Throws std::invalid_argument when `upstream` is null.
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

  /// The lifetime figures.
  [[nodiscard]] statistics_stats stats() const noexcept;
  /// Allocations per request size: see histogram_bucket().
  [[nodiscard]] histogram_type histogram() const noexcept;
  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  [[nodiscard]] std::pmr::memory_resource* upstream_resource() const noexcept { return upstream_; }
  [[nodiscard]] decorator_threading threading() const noexcept { return threading_; }

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
      count_allocation<decorator_threading::serialized>(bytes);
    } else if (path_ == update_path::concurrent) {
      count_allocation<decorator_threading::concurrent>(bytes);
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
      lifetime_.on_deallocate(bytes, decorator_threading::serialized);
    } else {
      lifetime_.on_deallocate(bytes, decorator_threading::concurrent);
    }
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  /// What do_allocate and do_deallocate do besides forwarding.
  enum class update_path : unsigned char {
    concurrent,  // the lifetime counters, with read-modify-writes
    serialized,  // the lifetime counters, with loads and stores
    hooked,      // and a frame or observers: out of line
  };

  template <decorator_threading Threading>
  void count_allocation(std::size_t bytes) noexcept {
    lifetime_.add_bytes(bytes, Threading);
    histogram_[histogram_bucket(bytes)].add(1, Threading);  // the allocation count too
  }
  // The counting, the frame and the observers, out of line.
  void allocated_hooked(void* p, std::size_t bytes, std::size_t alignment) noexcept;
  void deallocate_hooked(void* p, std::size_t bytes, std::size_t alignment);
  void choose_path() noexcept;

  std::string name_;
  std::pmr::memory_resource* upstream_;
  decorator_threading threading_;
  update_path path_;
  detail::counter_frame lifetime_;
  std::array<detail::relaxed_counter<std::size_t>, histogram_buckets> histogram_;
  // The frames and observers are bookkeeping of the decorator, not allocations
  // it serves: they live on the global heap, where they are not counted.
  std::vector<std::unique_ptr<detail::counter_frame>> frames_;  // the newest last
  std::vector<allocation_observer*> observers_;
};

static_assert(std::is_base_of_v<std::pmr::memory_resource, statistics_resource>);

}  // namespace pmrkit
