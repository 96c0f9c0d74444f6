#include <pmr/region/locked_page_resource.hpp>

#include <pmr/core/align.hpp>
#include <pmr/core/error.hpp>
#include <pmr/core/upstream.hpp>
#include <pmr/core/violation.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <system_error>
#include <unordered_map>

#include "../os/pages.hpp"
#include "page_map.hpp"

namespace pmrkit {

namespace {

/// "8388608 bytes (8 MiB)": bytes, and in a larger unit where it reads better.
std::string describe_bytes(std::size_t bytes) {
  std::string text = std::to_string(bytes) + " bytes";
  constexpr std::size_t kib = 1024;
  constexpr std::size_t mib = kib * 1024;
  if (bytes >= mib && bytes % mib == 0) {
    text += " (" + std::to_string(bytes / mib) + " MiB)";
  } else if (bytes >= kib && bytes % kib == 0) {
    text += " (" + std::to_string(bytes / kib) + " KiB)";
  }
  return text;
}

/// The bytes the process has locked, as the kernel counts them, or at least `own`.
std::size_t process_locked(std::size_t own) noexcept {
  std::size_t locked = 0;
  if (!detail::os::locked_bytes(locked)) return own;
  return std::max(locked, own);
}

}  // namespace

locked_page_resource::locked_page_resource(locked_page_options options,
                                           std::pmr::memory_resource* upstream)
    : name_(options.name),
      upstream_(require_upstream(upstream, "pmrkit::locked_page_resource")),
      upstream_source_(dynamic_cast<const page_source*>(upstream)),
      zero_on_free_(options.zero_on_free),
      granule_(std::max(detail::os::page_size(),
                        upstream_source_ != nullptr ? upstream_source_->granule() : 0)),
      live_(std::make_unique<detail::page_map>()) {}

locked_page_resource::~locked_page_resource() {
  release();
}

void locked_page_resource::refuse(std::size_t bytes, std::size_t alignment, std::size_t extent,
                                  std::size_t limit, std::size_t locked, int error) {
  std::string detail;
  if (error != 0) {
    detail = "mlock refused " + describe_bytes(extent) + ": " +
             std::generic_category().message(error) + "; ";
  }
  detail += "RLIMIT_MEMLOCK is ";
  detail += limit == SIZE_MAX ? std::string("unlimited") : describe_bytes(limit);
  detail += ", " + describe_bytes(locked) + " locked in this process, asked " +
            describe_bytes(extent) + "; raise the limit (ulimit -l, setrlimit) to lock more";
  throw allocation_error(failure_reason::out_of_capacity, bytes, alignment, name_, detail);
}

void* locked_page_resource::do_allocate(std::size_t bytes, std::size_t alignment) {
  check_request(bytes, alignment, name_);
  std::size_t extent = 0;
  if (!checked_block_extent(bytes, granule_, extent)) [[unlikely]] {
    throw_allocation_error(failure_reason::size_overflow, bytes, alignment, name_);
  }
  const std::size_t limit = detail::os::lock_limit();
  {
    std::unique_lock lock(mutex_);
    if (limit != SIZE_MAX) {
      const std::size_t locked = process_locked(stats_.bytes_locked);
      const std::size_t committed = locked > SIZE_MAX - pending_ ? SIZE_MAX : locked + pending_;
      if (extent > limit || committed > limit - extent) {
        ++stats_.refusals;
        lock.unlock();
        refuse(bytes, alignment, extent, limit, committed, 0);
      }
    }
    pending_ += extent;
  }
  const std::size_t upstream_alignment = this->upstream_alignment(alignment);
  void* p = nullptr;
  try {
    p = upstream_->allocate(extent, upstream_alignment);
  } catch (...) {
    {
      const std::lock_guard lock(mutex_);
      pending_ -= extent;
    }
    rethrow_upstream_failure(name_, bytes, alignment);
  }
  // Fault every page in for writing, then lock it: resident from here on.
  if (!detail::os::prefault(p, extent) || !detail::os::lock(p, extent)) {
    const int error = errno;
    detail::os::unlock(p, extent);  // in case part of it was locked
    upstream_->deallocate(p, extent, upstream_alignment);
    std::size_t locked = 0;
    {
      const std::lock_guard lock(mutex_);
      pending_ -= extent;
      ++stats_.refusals;
      locked = process_locked(stats_.bytes_locked);
    }
    refuse(bytes, alignment, extent, limit, locked, error);
  }
  {
    std::unique_lock lock(mutex_);
    pending_ -= extent;
    try {
      live_->insert(p, {.extent = extent, .requested = bytes, .alignment = alignment});
    } catch (...) {
      lock.unlock();
      detail::os::unlock(p, extent);
      upstream_->deallocate(p, extent, upstream_alignment);
      throw allocation_error(failure_reason::out_of_capacity, bytes, alignment, name_,
                             "no memory to record the block");
    }
    locked_page_stats& s = stats_;
    s.bytes_in_use += bytes;
    s.peak_bytes_in_use = std::max(s.peak_bytes_in_use, s.bytes_in_use);
    ++s.blocks_in_use;
    s.peak_blocks_in_use = std::max(s.peak_blocks_in_use, s.blocks_in_use);
    s.bytes_from_upstream += extent;
    s.peak_bytes_from_upstream = std::max(s.peak_bytes_from_upstream, s.bytes_from_upstream);
    s.bytes_locked += extent;
    s.peak_bytes_locked = std::max(s.peak_bytes_locked, s.bytes_locked);
    ++s.allocations;
  }
  return p;
}

void locked_page_resource::give_back(void* p, std::size_t extent, std::size_t alignment) noexcept {
  if (zero_on_free_) std::memset(p, 0, extent);
  detail::os::unlock(p, extent);
  upstream_->deallocate(p, extent, upstream_alignment(alignment));
}

void locked_page_resource::do_deallocate(void* p, std::size_t bytes, std::size_t alignment) {
  detail::page_take taken;
  {
    const std::lock_guard lock(mutex_);
    ++stats_.deallocations;
    taken = live_->take(p, bytes, alignment);
    if (taken.block) {
      const detail::page_block& block = *taken.block;
      stats_.bytes_in_use -= block.requested;
      --stats_.blocks_in_use;
      stats_.bytes_from_upstream -= block.extent;
      stats_.bytes_locked -= block.extent;
    }
  }
  if (const auto block = detail::settle(taken, name_))
    give_back(p, block->extent, block->alignment);
}

void locked_page_resource::release() noexcept {
  std::unordered_map<void*, detail::page_block> all;
  {
    const std::lock_guard lock(mutex_);
    all = live_->take_all();
    stats_.bytes_in_use = 0;
    stats_.blocks_in_use = 0;
    stats_.bytes_from_upstream = 0;
    stats_.bytes_locked = 0;
  }
  for (const auto& [p, block] : all)
    give_back(p, block.extent, block.alignment);
}

locked_page_stats locked_page_resource::stats() const noexcept {
  locked_page_stats s;
  {
    const std::lock_guard lock(mutex_);
    s = stats_;
  }
  s.lock_limit = detail::os::lock_limit();
  return s;
}

page_properties locked_page_resource::properties() const noexcept {
  return {.host_accessible = true,
          .device_accessible = false,
          .locked = true,
          .huge_pages = upstream_source_ != nullptr && upstream_source_->properties().huge_pages};
}

}  // namespace pmrkit
