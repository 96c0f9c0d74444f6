#include <pmr/region/cuda_registered_resource.hpp>

#include <pmr/core/align.hpp>
#include <pmr/core/error.hpp>
#include <pmr/core/options.hpp>
#include <pmr/core/upstream.hpp>

#include <pmr/core/violation.hpp>

#include "../os/pages.hpp"
#include "cuda_common.hpp"
#include "page_map.hpp"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <mutex>
#include <new>
#include <thread>
#include <vector>

namespace pmrkit {

struct cuda_registered_resource::state {
  std::mutex mutex;           // the table and the figures
  std::mutex upstream_mutex;  // calls to the upstream (taken after `mutex` when both are)
  detail::page_map blocks;
  cuda_registered_stats figures;
};

namespace {

constexpr std::size_t min_touch_share = std::size_t{4} << 20;  // bytes per touching thread
constexpr unsigned max_touch_threads = 1024;

/// Writes every page of [begin, end) (each byte written is the one read), so
/// each page is faulted in, writable, before cudaHostRegister pins it.
void touch_range(std::byte* begin, std::byte* end, std::size_t page) noexcept {
  for (std::byte* q = begin; q < end; q += page) {
    auto* byte = reinterpret_cast<volatile unsigned char*>(q);
    *byte = *byte;
  }
}

/// Touches [base, base + extent) with up to `max_threads` threads (the caller
/// one of them), each a share of at least min_touch_share bytes. A thread that
/// cannot be started leaves its share to the caller. Returns the threads that
/// touched.
unsigned touch_pages(std::byte* base, std::size_t extent, unsigned max_threads,
                     std::size_t page) noexcept {
  const std::size_t wanted =
      std::clamp<std::size_t>(extent / min_touch_share, 1, std::max(max_threads, 1U));
  const std::size_t share = align_up((extent + wanted - 1) / wanted, page);
  std::byte* const end = base + extent;
  std::vector<std::thread> workers;
  unsigned used = 1;
  try {
    workers.reserve(wanted - 1);
  } catch (...) {
    touch_range(base, end, page);
    return used;
  }
  for (std::byte* begin = base + share; begin < end; begin += share) {
    std::byte* const stop = std::min(end, begin + share);
    try {
      workers.emplace_back(touch_range, begin, stop, page);
      ++used;
    } catch (...) {
      touch_range(begin, stop, page);
    }
  }
  touch_range(base, std::min(end, base + share), page);
  for (std::thread& worker : workers)
    worker.join();
  return used;
}

std::uint64_t nanoseconds_between(std::chrono::steady_clock::time_point from,
                                  std::chrono::steady_clock::time_point to) noexcept {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(to - from).count());
}

unsigned resolve_touch_threads(unsigned asked) noexcept {
  if (asked != 0) return asked;
  const unsigned hardware = std::thread::hardware_concurrency();
  return hardware != 0 ? hardware : 1;
}

}  // namespace

cuda_registered_resource::cuda_registered_resource(cuda_registered_options options,
                                                   std::pmr::memory_resource* upstream)
    : name_(options.name),
      upstream_(require_upstream(upstream, "pmrkit::cuda_registered_resource")),
      touch_threads_(resolve_touch_threads(options.touch_threads)),
      register_flags_(cudaHostRegisterDefault | (options.portable ? cudaHostRegisterPortable : 0U) |
                      (options.mapped ? cudaHostRegisterMapped : 0U)),
      page_size_(detail::os::page_size()),
      state_(std::make_unique<state>()) {
  require_option(options.touch_threads <= max_touch_threads, "cuda_registered_resource",
                 "touch_threads", "must be at most 1024");
}

cuda_registered_resource::~cuda_registered_resource() {
  release();
}

void cuda_registered_resource::release() noexcept {
  const std::lock_guard lock(state_->mutex);
  for (const auto& [p, b] : state_->blocks.take_all()) {
    (void)cudaHostUnregister(p);
    const std::lock_guard upstream_lock(state_->upstream_mutex);
    upstream_->deallocate(p, b.extent, b.upstream_alignment);
  }
  (void)cudaGetLastError();
  cuda_registered_stats& f = state_->figures;
  f.bytes_in_use = 0;
  f.blocks_in_use = 0;
  f.bytes_from_upstream = 0;
  f.bytes_registered = 0;
}

cuda_registered_stats cuda_registered_resource::stats() const noexcept {
  const std::lock_guard lock(state_->mutex);
  return state_->figures;
}

void* cuda_registered_resource::do_allocate(std::size_t bytes, std::size_t alignment) {
  check_request(bytes, alignment, name_);
  std::size_t extent = 0;
  if (!checked_align_up(std::max<std::size_t>(bytes, 1), page_size_, extent)) [[unlikely]] {
    throw_allocation_error(failure_reason::size_overflow, bytes, alignment, name_);
  }
  const std::size_t upstream_alignment = std::max(alignment, page_size_);
  void* base = nullptr;
  {
    const std::lock_guard upstream_lock(state_->upstream_mutex);
    base = allocate_from_upstream(upstream_, extent, upstream_alignment, name_, bytes, alignment);
  }
  auto give_back = [&]() noexcept {
    const std::lock_guard upstream_lock(state_->upstream_mutex);
    upstream_->deallocate(base, extent, upstream_alignment);
  };

  const auto start = std::chrono::steady_clock::now();
  const unsigned threads =
      touch_pages(static_cast<std::byte*>(base), extent, touch_threads_, page_size_);
  const auto touched = std::chrono::steady_clock::now();
  const cudaError_t error = cudaHostRegister(base, extent, register_flags_);
  const auto registered = std::chrono::steady_clock::now();

  const std::lock_guard lock(state_->mutex);
  cuda_registered_stats& f = state_->figures;
  f.last_registration_bytes = extent;
  f.last_touch_ns = nanoseconds_between(start, touched);
  f.last_register_ns = nanoseconds_between(touched, registered);
  f.last_touch_threads = threads;
  if (error != cudaSuccess) {
    ++f.cuda_failures;
    give_back();
    detail::cuda::throw_cuda_error("cudaHostRegister", error, bytes, alignment, name_);
  }
  try {
    state_->blocks.insert(base, {.extent = extent,
                                 .requested = bytes,
                                 .alignment = alignment,
                                 .upstream_alignment = upstream_alignment});
  } catch (const std::bad_alloc&) {
    (void)cudaHostUnregister(base);
    give_back();
    throw allocation_error(failure_reason::out_of_capacity, bytes, alignment, name_,
                           "no memory for the table of registered blocks");
  }
  f.bytes_in_use += bytes;
  f.peak_bytes_in_use = std::max(f.peak_bytes_in_use, f.bytes_in_use);
  ++f.blocks_in_use;
  f.peak_blocks_in_use = std::max(f.peak_blocks_in_use, f.blocks_in_use);
  f.bytes_from_upstream += extent;
  f.peak_bytes_from_upstream = std::max(f.peak_bytes_from_upstream, f.bytes_from_upstream);
  f.bytes_registered += extent;
  ++f.registrations;
  ++f.allocations;
  return base;
}

void cuda_registered_resource::do_deallocate(void* p, std::size_t bytes, std::size_t alignment) {
  detail::page_take taken;
  {
    const std::lock_guard lock(state_->mutex);
    ++state_->figures.deallocations;
    taken = state_->blocks.take(p, bytes, alignment);
    if (taken.block) {
      cuda_registered_stats& f = state_->figures;
      f.bytes_in_use -= taken.block->requested;
      --f.blocks_in_use;
      f.bytes_from_upstream -= taken.block->extent;
      f.bytes_registered -= taken.block->extent;
    }
  }
  const auto block = detail::settle(taken, name_);
  if (!block) return;
  // Outside the table's lock: unregistering waits for the device and may take a while.
  if (cudaHostUnregister(p) != cudaSuccess) (void)cudaGetLastError();
  const std::lock_guard upstream_lock(state_->upstream_mutex);
  upstream_->deallocate(p, block->extent, block->upstream_alignment);
}

}  // namespace pmrkit
