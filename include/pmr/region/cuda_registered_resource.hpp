// cuda_registered_resource: pages from any upstream, registered with the CUDA
// runtime (cudaHostRegister) so a GPU copies from and to them at full DMA
// speed.
//
// Locking pages in RAM (mlock, locked_page_resource) keeps them resident but
// does not tell the GPU's driver about them: copies from such memory still go
// through the driver's staging buffers (measured ~10-17 GB/s against ~55 GB/s
// registered on an H200). Registration pins the pages and maps them for the
// device. Each request is rounded up to whole pages and asked of the upstream
// at page alignment (or the request's, if larger); the pages are touched
// first, in parallel (`touch_threads` threads, each taking at least 4 MiB),
// because registering a large range faults every page in on one thread
// otherwise; then cudaHostRegister registers the block. Deallocation
// unregisters it (cudaHostUnregister) before the pages go back upstream.
// `stats()` says how long the last registration took, split into the touch
// and the cudaHostRegister call.
//
// Choose it to make a pool you already have (a page_resource's pages, a
// locked_page_resource's, a buffer from elsewhere) DMA-fast, or when you
// want the pages' kind (huge, locked) and pinning both; for pinned memory
// from nothing, cuda_pinned_resource is simpler. Registration is slow (about
// a millisecond plus the touch per block): put a pool or a region over it.
//
// Failures are `allocation_error`s: a non-power-of-two alignment is
// `bad_alignment`, a size whose rounding overflows `size_overflow`, the
// upstream's failure reaches the caller as the contract says, and a CUDA
// error is `out_of_capacity` (cudaErrorMemoryAllocation) or `upstream_failed`
// (any other: no device, no driver, ...) whose message ends with
// "cudaHostRegister: <error name>: <error string>"; the upstream's block goes
// back before the error is thrown, so nothing leaks and the resource is
// unchanged. Misuse on deallocation (checked builds) is reported as by
// cuda_pinned_resource (foreign pointer, double free, size or alignment
// mismatch) and the call is ignored.
//
// Constructed the six ways of docs/contract.md: `r;`, `r(upstream)`,
// `r(options)`, `r(options, upstream)`, `r({})`, `r({}, upstream)`; the
// upstream defaults to std::pmr::get_default_resource(). release() and the
// destructor unregister and return every block.
//
// Thread safety: safe to share between threads, whatever the upstream (its
// calls are made under a lock of their own; touching and registering are
// not).
//
// Example:
//   static_assert(pmrkit::has_property<pmrkit::cuda_registered_resource,
//                                      pmrkit::property::device_accessible>);
//   pmrkit::test_resource pages("pages");  // a page_resource or locked_page_resource in practice
//   pmrkit::cuda_registered_resource registered({.touch_threads = 4, .name = "dma"}, &pages);
//   assert(registered.properties().locked && registered.backing() == "cuda registered");
//   try {
//     void* block = registered.allocate(8_MiB);  // touched by 2 threads (4 MiB each), registered
//     const pmrkit::cuda_registered_stats s = registered.stats();
//     assert(s.bytes_registered == 8_MiB && s.last_touch_threads == 2);
//     registered.deallocate(block, 8_MiB);  // unregistered, back to `pages`
//   } catch (const pmrkit::allocation_error& e) {  // no GPU: "...; cudaHostRegister: cudaError..."
//     assert(pmrkit::cuda_device_count() == 0);
//     assert(std::string_view(e.what()).find("cudaHostRegister: ") != std::string_view::npos);
//   }
//   assert(pages.blocks_in_use() == 0);
#pragma once

#include <pmr/region/cuda_device.hpp>
#include <pmr/region/page_source.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <memory_resource>
#include <string>
#include <string_view>

namespace pmrkit {

struct cuda_registered_options {
  /// Threads that touch a block's pages before it is registered (0: one per
  /// hardware thread; at most 1024); each takes at least 4 MiB of the block.
  unsigned touch_threads = 0;
  bool portable = true;  ///< cudaHostRegisterPortable: pinned for every CUDA context
  bool mapped = true;    ///< cudaHostRegisterMapped: kernels may use it (device pointer)
  std::string_view name = "cuda_registered";  ///< shown in errors and violations (copied)
};

/// The figures of a cuda_registered_resource; the names mean what docs/contract.md says.
struct cuda_registered_stats {
  std::size_t bytes_in_use = 0;  ///< bytes requested by callers and not yet freed
  std::size_t peak_bytes_in_use = 0;
  std::size_t blocks_in_use = 0;
  std::size_t peak_blocks_in_use = 0;
  std::size_t bytes_from_upstream = 0;  ///< what the upstream holds for them (whole pages)
  std::size_t peak_bytes_from_upstream = 0;
  std::size_t bytes_registered = 0;  ///< bytes registered with CUDA now
  std::size_t registrations = 0;     ///< successful cudaHostRegister calls, ever
  std::size_t allocations = 0;       ///< allocate calls that returned a block
  std::size_t deallocations = 0;     ///< deallocate calls
  std::size_t cuda_failures = 0;     ///< allocate calls the CUDA runtime refused
  // The last block set up (registered or refused):
  std::size_t last_registration_bytes = 0;  ///< its size in whole pages
  std::uint64_t last_touch_ns = 0;          ///< touching its pages, in nanoseconds
  std::uint64_t last_register_ns = 0;       ///< the cudaHostRegister call, in nanoseconds
  unsigned last_touch_threads = 0;          ///< threads that touched it (the caller included)
};

class cuda_registered_resource final : public page_source {
 public:
  /// Throws std::invalid_argument when `upstream` is null or touch_threads is
  /// above 1024. Nothing is asked of the CUDA runtime until the first allocation.
  explicit cuda_registered_resource(
      cuda_registered_options options = {},
      std::pmr::memory_resource* upstream = std::pmr::get_default_resource());
  /// The default options over `upstream` (a template, so that `{}` never
  /// reads as a null upstream).
  template <std::convertible_to<std::pmr::memory_resource*> Upstream>
  explicit cuda_registered_resource(Upstream upstream)
      : cuda_registered_resource(cuda_registered_options{}, upstream) {}
  /// Not copyable. Declared on a non-const reference so that `{}` does not
  /// convert to it and `cuda_registered_resource r({})` means the default options.
  cuda_registered_resource(cuda_registered_resource&) = delete;
  cuda_registered_resource& operator=(const cuda_registered_resource&) = delete;
  /// Unregisters and returns every block (release()).
  ~cuda_registered_resource() override;

  /// Unregisters every block and gives its pages back upstream; the resource
  /// stays usable.
  void release() noexcept;

  [[nodiscard]] cuda_registered_stats stats() const noexcept;
  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  [[nodiscard]] std::pmr::memory_resource* upstream_resource() const noexcept { return upstream_; }
  /// The threads a block is touched by at most (touch_threads, 0 resolved).
  [[nodiscard]] unsigned touch_threads() const noexcept { return touch_threads_; }

  [[nodiscard]] page_properties properties() const noexcept override {
    return {.host_accessible = true, .device_accessible = true, .locked = true};
  }
  [[nodiscard]] std::string_view backing() const noexcept override { return "cuda registered"; }
  [[nodiscard]] std::size_t granule() const noexcept override { return page_size_; }

  friend void get_property(const cuda_registered_resource&, property::host_accessible) noexcept {}
  friend void get_property(const cuda_registered_resource&, property::device_accessible) noexcept {}
  friend void get_property(const cuda_registered_resource&, property::locked) noexcept {}

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override;
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override;
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  struct state;  // the table of blocks, the figures and the locks (src/region)

  std::string name_;
  std::pmr::memory_resource* upstream_;
  unsigned touch_threads_;
  unsigned register_flags_;
  std::size_t page_size_;
  std::unique_ptr<state> state_;
};

}  // namespace pmrkit
