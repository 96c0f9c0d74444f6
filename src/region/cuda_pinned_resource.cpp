#include <pmr/region/cuda_pinned_resource.hpp>

#include <pmr/core/align.hpp>
#include <pmr/core/error.hpp>
#include <pmr/core/violation.hpp>

#include "../os/pages.hpp"
#include "cuda_common.hpp"
#include "page_map.hpp"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <limits>
#include <mutex>
#include <new>

namespace pmrkit {

struct cuda_pinned_resource::state {
  std::mutex mutex;
  detail::page_map blocks;
  cuda_pinned_stats figures;
};

namespace {

unsigned host_alloc_flags(const cuda_pinned_options& options) noexcept {
  unsigned flags = cudaHostAllocDefault;
  if (options.portable) flags |= cudaHostAllocPortable;
  if (options.mapped) flags |= cudaHostAllocMapped;
  if (options.write_combined) flags |= cudaHostAllocWriteCombined;
  return flags;
}

}  // namespace

cuda_pinned_resource::cuda_pinned_resource(cuda_pinned_options options)
    : name_(options.name),
      options_(options),
      page_size_(detail::os::page_size()),
      state_(std::make_unique<state>()) {
  options_.name = name_;
}

cuda_pinned_resource::~cuda_pinned_resource() {
  release();
}

void cuda_pinned_resource::release() noexcept {
  const std::lock_guard lock(state_->mutex);
  for (const auto& [p, b] : state_->blocks.take_all())
    (void)cudaFreeHost(b.base);
  (void)cudaGetLastError();
  state_->figures.bytes_in_use = 0;
  state_->figures.blocks_in_use = 0;
  state_->figures.bytes_pinned = 0;
}

cuda_pinned_stats cuda_pinned_resource::stats() const noexcept {
  const std::lock_guard lock(state_->mutex);
  return state_->figures;
}

void* cuda_pinned_resource::do_allocate(std::size_t bytes, std::size_t alignment) {
  check_request(bytes, alignment, name_);
  // Whole pages; above a page of alignment, room to align inside the block.
  const std::size_t slack = alignment > page_size_ ? alignment : 0;
  std::size_t extent = 0;
  if (!checked_align_up(std::max<std::size_t>(bytes, 1), page_size_, extent) ||
      extent > std::numeric_limits<std::size_t>::max() - slack) [[unlikely]] {
    throw_allocation_error(failure_reason::size_overflow, bytes, alignment, name_);
  }
  extent += slack;
  const unsigned flags = host_alloc_flags(options_);

  void* base = nullptr;
  cudaError_t error = cudaHostAlloc(&base, extent, flags);
  if (error == cudaSuccess && slack == 0 && !is_aligned(base, alignment)) {
    // Not page-aligned after all (never seen): free it and ask for room to align.
    (void)cudaFreeHost(base);
    base = nullptr;
    if (extent > std::numeric_limits<std::size_t>::max() - alignment) [[unlikely]] {
      throw_allocation_error(failure_reason::size_overflow, bytes, alignment, name_);
    }
    extent += alignment;
    error = cudaHostAlloc(&base, extent, flags);
  }
  if (error != cudaSuccess) {
    {
      const std::lock_guard lock(state_->mutex);
      ++state_->figures.cuda_failures;
    }
    detail::cuda::throw_cuda_error("cudaHostAlloc", error, bytes, alignment, name_);
  }
  void* const p = align_pointer(static_cast<std::byte*>(base), alignment);

  const std::lock_guard lock(state_->mutex);
  try {
    state_->blocks.insert(
        p, {.extent = extent, .requested = bytes, .alignment = alignment, .base = base});
  } catch (const std::bad_alloc&) {
    (void)cudaFreeHost(base);
    throw allocation_error(failure_reason::out_of_capacity, bytes, alignment, name_,
                           "no memory for the table of pinned blocks");
  }
  cuda_pinned_stats& f = state_->figures;
  f.bytes_in_use += bytes;
  f.peak_bytes_in_use = std::max(f.peak_bytes_in_use, f.bytes_in_use);
  ++f.blocks_in_use;
  f.peak_blocks_in_use = std::max(f.peak_blocks_in_use, f.blocks_in_use);
  f.bytes_pinned += extent;
  f.peak_bytes_pinned = std::max(f.peak_bytes_pinned, f.bytes_pinned);
  ++f.allocations;
  return p;
}

void cuda_pinned_resource::do_deallocate(void* p, std::size_t bytes, std::size_t alignment) {
  detail::page_take taken;
  {
    const std::lock_guard lock(state_->mutex);
    ++state_->figures.deallocations;
    taken = state_->blocks.take(p, bytes, alignment);
    if (taken.block) {
      cuda_pinned_stats& f = state_->figures;
      f.bytes_in_use -= taken.block->requested;
      --f.blocks_in_use;
      f.bytes_pinned -= taken.block->extent;
    }
  }
  const auto block = detail::settle(taken, name_);
  if (!block) return;
  // Outside the lock: cudaFreeHost synchronises with the device and may take a while.
  if (cudaFreeHost(block->base) != cudaSuccess) (void)cudaGetLastError();
}

}  // namespace pmrkit
