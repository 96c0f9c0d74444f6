// cuda_pinned_resource: page-locked host memory from the CUDA runtime
// (cudaHostAlloc / cudaFreeHost), the memory a GPU copies from and to at full
// DMA speed and asynchronously.
//
// A root page source: it has no upstream; every block is one cudaHostAlloc of
// whole pages (the granule is the host page size), freed with cudaFreeHost
// when it is deallocated, by release() or by the destructor. Any power-of-two
// alignment is served: cudaHostAlloc's memory is page-aligned, and a larger
// alignment is met by asking for that much more and handing out the aligned
// address inside (the resource remembers the base). Constructed as
// `cuda_pinned_resource r;`, `r(options)` or `r({})` (no upstream: the CUDA
// runtime is where its memory comes from).
//
// Failures are `allocation_error`s, never a plain std::bad_alloc: a
// non-power-of-two alignment is `bad_alignment`; a size whose rounding
// overflows `size_overflow`; cudaErrorMemoryAllocation `out_of_capacity`;
// every other CUDA error (no device, no driver, a driver too old, ...)
// `upstream_failed`, the CUDA runtime standing where an upstream would. The
// message ends with the CUDA call, the error's name and its string, e.g.
// "...; cudaHostAlloc: cudaErrorNoDevice: no CUDA-capable device is
// detected". The resource is unchanged after a failure.
//
// Misuse on deallocation (checked builds): a pointer it never handed out
// (`foreign_pointer`), one freed twice (`double_free`, among the last 64
// freed), a size or alignment other than the allocation's (`size_mismatch`,
// `alignment_mismatch`) go to the violation handler, and the call is ignored.
//
// Properties: host accessible, device accessible (copies by DMA; with
// `mapped`, kernels through cudaHostGetDevicePointer), locked; `backing()` is
// "cuda pinned". Each cudaHostAlloc costs on the order of a millisecond, so
// put a pool or a region over it (as the example does) rather than allocating
// per request.
//
// Thread safety: safe to share between threads (the CUDA runtime is, and the
// table of blocks is locked).
//
// Example:
//   static_assert(pmrkit::has_property<pmrkit::cuda_pinned_resource, pmrkit::property::locked>);
//   static_assert(pmrkit::has_property<pmrkit::cuda_pinned_resource,
//                                      pmrkit::property::device_accessible>);
//   pmrkit::cuda_pinned_resource pinned({.write_combined = false, .name = "staging"});
//   assert(pinned.properties().locked && pinned.backing() == "cuda pinned");
//   if (pmrkit::cuda_device_count() > 0) {
//     pmrkit::pool_resource buffers({.block_size = 64_KiB}, &pinned);  // pinned chunks
//     void* buffer = buffers.allocate(64_KiB);  // cudaMemcpyAsync from it runs at DMA speed
//     buffers.deallocate(buffer, 64_KiB);
//   } else {
//     std::string what;
//     try {
//       (void)pinned.allocate(4096);
//     } catch (const pmrkit::allocation_error& e) {  // "...; cudaHostAlloc: cudaError...: ..."
//       what = e.what();
//     }
//     assert(what.find("cudaHostAlloc: cudaError") != std::string::npos);
//     assert(pinned.stats().blocks_in_use == 0);
//   }
#pragma once

#include <pmr/region/cuda_device.hpp>
#include <pmr/region/page_source.hpp>

#include <cstddef>
#include <memory>
#include <memory_resource>
#include <string>
#include <string_view>

namespace pmrkit {

/// How cuda_pinned_resource asks cudaHostAlloc for memory (its flags).
struct cuda_pinned_options {
  bool portable = true;  ///< cudaHostAllocPortable: pinned for every CUDA context
  bool mapped = true;    ///< cudaHostAllocMapped: kernels may use it (device pointer)
  bool write_combined =
      false;  ///< cudaHostAllocWriteCombined: fast to write and copy, slow to read
  std::string_view name = "cuda_pinned";  ///< shown in errors and violations (copied)
};

/// The figures of a cuda_pinned_resource; the names mean what docs/contract.md says.
struct cuda_pinned_stats {
  std::size_t bytes_in_use = 0;  ///< bytes requested by callers and not yet freed
  std::size_t peak_bytes_in_use = 0;
  std::size_t blocks_in_use = 0;
  std::size_t peak_blocks_in_use = 0;
  std::size_t bytes_pinned = 0;       ///< bytes cudaHostAlloc holds for them (whole pages)
  std::size_t peak_bytes_pinned = 0;  ///< the most bytes_pinned has been
  std::size_t allocations = 0;        ///< allocate calls that returned a block
  std::size_t deallocations = 0;      ///< deallocate calls
  std::size_t cuda_failures = 0;      ///< allocate calls the CUDA runtime refused
};

class cuda_pinned_resource final : public page_source {
 public:
  /// Nothing is asked of the CUDA runtime until the first allocation.
  explicit cuda_pinned_resource(cuda_pinned_options options = {});
  /// Not copyable. Declared on a non-const reference so that `{}` does not
  /// convert to it and `cuda_pinned_resource r({})` means the default options.
  cuda_pinned_resource(cuda_pinned_resource&) = delete;
  cuda_pinned_resource& operator=(const cuda_pinned_resource&) = delete;
  /// Frees every block still allocated (release()).
  ~cuda_pinned_resource() override;

  /// Frees every block with cudaFreeHost; the resource stays usable.
  void release() noexcept;

  [[nodiscard]] cuda_pinned_stats stats() const noexcept;
  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  /// The options it was built with (`name` refers to the resource's own copy).
  [[nodiscard]] cuda_pinned_options options() const noexcept { return options_; }

  [[nodiscard]] page_properties properties() const noexcept override {
    return {.host_accessible = true, .device_accessible = true, .locked = true};
  }
  [[nodiscard]] std::string_view backing() const noexcept override { return "cuda pinned"; }
  [[nodiscard]] std::size_t granule() const noexcept override { return page_size_; }

  friend void get_property(const cuda_pinned_resource&, property::host_accessible) noexcept {}
  friend void get_property(const cuda_pinned_resource&, property::device_accessible) noexcept {}
  friend void get_property(const cuda_pinned_resource&, property::locked) noexcept {}

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override;
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override;
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  struct state;  // the table of blocks and the figures, under a lock (src/region)

  std::string name_;
  cuda_pinned_options options_;
  std::size_t page_size_;
  std::unique_ptr<state> state_;
};

}  // namespace pmrkit
