// locked_page_resource: pages locked in RAM and prefaulted, over an upstream
// that gives pages, for buffers a device reads by DMA.
//
// Each request is rounded up to whole pages (to the upstream's granule when
// the upstream is a page source: 2 MiB over a huge page_resource) and taken
// from the upstream at page alignment or more; every page is then faulted in
// for writing and locked (mlock; VirtualLock on Windows), so it is resident
// and stays so. On deallocate the block is zeroed (`zero_on_free`, on by
// default: locked buffers often hold keys or device data), unlocked, and only
// then given back upstream. `release()` does the same for every block still
// allocated, and the destructor calls it.
//
// The lock limit. The process may lock RLIMIT_MEMLOCK's soft limit (`ulimit
// -l`, often 8 MiB; `stats().lock_limit`, SIZE_MAX when unlimited). Before
// asking the upstream, a request is judged against it: when the bytes the
// process has locked (VmLck in /proc/self/status on Linux, at least what this
// resource holds) plus the request would pass the limit, it is refused with
// an `allocation_error` (out_of_capacity) that names the limit, the bytes
// already locked and what was asked ("RLIMIT_MEMLOCK is 8388608 bytes, 8 MiB
// locked in this process, asked 1 MiB ..."), and `stats().refusals` counts
// it. This holds even for a process with CAP_IPC_LOCK, which the kernel
// would let pass the limit: the soft limit is the budget, deterministic
// everywhere; raise it (setrlimit, ulimit -l) to lock more. When mlock itself
// fails (another thread or library locked meanwhile), the upstream block is
// given back and the same error is thrown. After a refusal nothing leaks and
// the resource is usable.
//
// Constructed as every resource with an upstream: `locked_page_resource r;`,
// `r(upstream)`, `r(options)`, `r(options, upstream)`, `r({})`, `r({},
// upstream)`; the default upstream is std::pmr::get_default_resource(), and
// `locked_page_resource locked({}, &huge_pages)` over a huge page_resource
// gives locked huge pages. `bytes_in_use` counts the bytes requested;
// `bytes_from_upstream` (= `bytes_locked`) the rounded blocks.
//
// Choose it for host buffers a NIC, a sound card or an accelerator reads by
// DMA, and for memory that must never be paged out. For CUDA copies at full
// speed, use cuda_pinned_resource or cuda_registered_resource instead.
//
// Thread safety: safe to share between threads (a mutex guards the block map,
// the figures and the limit check; the upstream, prefault, mlock and zeroing
// run outside it). Two resources judging requests at the same moment may
// together pass the limit by one request when the process has CAP_IPC_LOCK.
//
// Example:
//   static_assert(
//       pmrkit::has_property<pmrkit::locked_page_resource, pmrkit::property::locked>);
//   pmrkit::page_resource pages;
//   pmrkit::locked_page_resource locked({}, &pages);
//   const pmrkit::locked_page_stats before = locked.stats();
//   if (before.lock_limit - before.bytes_locked >= 1_MiB) {
//     auto* buffer = static_cast<unsigned char*>(locked.allocate(10000));
//     buffer[0] = 42;  // resident: no page fault
//     const std::size_t held = locked.stats().bytes_locked;
//     assert(held >= 10000 && held % locked.granule() == 0);
//     assert(locked.properties().locked && !locked.properties().huge_pages);
//     locked.deallocate(buffer, 10000);  // zeroed, unlocked, unmapped
//   }
//   assert(locked.stats().bytes_locked == 0 && pages.stats().bytes_mapped == 0);
#pragma once

#include <pmr/region/page_source.hpp>

#include <concepts>
#include <cstddef>
#include <memory>
#include <memory_resource>
#include <mutex>
#include <string>
#include <string_view>

namespace pmrkit {

namespace detail {
class page_map;
}

struct locked_page_options {
  bool zero_on_free = true;                ///< zero each block before unlocking and giving it back
  std::string_view name = "locked_pages";  ///< shown in errors and violations (copied)
};

struct locked_page_stats {
  std::size_t bytes_in_use = 0;              ///< bytes requested and not yet freed
  std::size_t peak_bytes_in_use = 0;         ///< the most bytes_in_use has been
  std::size_t blocks_in_use = 0;             ///< blocks handed out and not yet freed
  std::size_t peak_blocks_in_use = 0;        ///< the most blocks_in_use has been
  std::size_t bytes_from_upstream = 0;       ///< the rounded blocks held from the upstream
  std::size_t peak_bytes_from_upstream = 0;  ///< the most bytes_from_upstream has been
  std::size_t allocations = 0;               ///< allocate calls that returned a block
  std::size_t deallocations = 0;             ///< deallocate calls
  std::size_t bytes_locked = 0;              ///< bytes this resource holds locked now
  std::size_t peak_bytes_locked = 0;         ///< the most bytes_locked has been
  std::size_t lock_limit = 0;  ///< RLIMIT_MEMLOCK's soft limit now (SIZE_MAX: unlimited)
  std::size_t refusals = 0;    ///< requests refused for the lock limit (or by mlock)
};

class locked_page_resource final : public page_source {
 public:
  /// Throws std::invalid_argument when `upstream` is null.
  explicit locked_page_resource(
      locked_page_options options = {},
      std::pmr::memory_resource* upstream = std::pmr::get_default_resource());
  /// The default options over `upstream` (a template, so that `{}` never
  /// reads as a null upstream).
  template <std::convertible_to<std::pmr::memory_resource*> Upstream>
  explicit locked_page_resource(Upstream upstream)
      : locked_page_resource(locked_page_options{}, upstream) {}
  /// Not copyable. Declared on a non-const reference so that `{}` does not
  /// convert to it.
  locked_page_resource(locked_page_resource&) = delete;
  locked_page_resource& operator=(const locked_page_resource&) = delete;
  /// Gives every block back upstream (release()).
  ~locked_page_resource() override;

  /// Zeroes (zero_on_free), unlocks and gives back upstream every block still
  /// allocated; the resource stays usable.
  void release() noexcept;

  [[nodiscard]] locked_page_stats stats() const noexcept;
  /// Host accessible and locked; huge_pages when the upstream is a page
  /// source whose pages are.
  [[nodiscard]] page_properties properties() const noexcept override;
  /// "locked pages".
  [[nodiscard]] std::string_view backing() const noexcept override { return "locked pages"; }
  /// The page size, or the upstream's granule when it is a larger page source's.
  [[nodiscard]] std::size_t granule() const noexcept override { return granule_; }
  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  /// The options it was built with (`name` refers to the resource's copy).
  [[nodiscard]] locked_page_options options() const noexcept {
    return {.zero_on_free = zero_on_free_, .name = name_};
  }
  [[nodiscard]] std::pmr::memory_resource* upstream_resource() const noexcept { return upstream_; }

  friend void get_property(const locked_page_resource&, property::host_accessible) noexcept {}
  friend void get_property(const locked_page_resource&, property::locked) noexcept {}

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override;
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override;
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  /// The alignment asked of the upstream for a request of `alignment`.
  [[nodiscard]] std::size_t upstream_alignment(std::size_t alignment) const noexcept {
    return alignment > granule_ ? alignment : granule_;
  }
  /// Zeroes (zero_on_free), unlocks and gives back one block.
  void give_back(void* p, std::size_t extent, std::size_t alignment) noexcept;
  /// Throws the refusal for the lock limit (counts it first).
  [[noreturn]] void refuse(std::size_t bytes, std::size_t alignment, std::size_t extent,
                           std::size_t limit, std::size_t locked, int error);

  std::string name_;
  std::pmr::memory_resource* upstream_;
  const page_source* upstream_source_;  // the upstream when it is a page source
  bool zero_on_free_;
  std::size_t granule_;
  mutable std::mutex mutex_;
  std::unique_ptr<detail::page_map> live_;  // guarded by mutex_
  locked_page_stats stats_;                 // guarded by mutex_ (lock_limit read on demand)
  std::size_t pending_ = 0;  // guarded by mutex_: bytes admitted, not yet locked or refused
};

}  // namespace pmrkit
