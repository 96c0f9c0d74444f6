#include <pmr/region/page_resource.hpp>

#include <pmr/core/align.hpp>
#include <pmr/core/error.hpp>
#include <pmr/core/log.hpp>
#include <pmr/core/options.hpp>
#include <pmr/core/violation.hpp>

#include <algorithm>
#include <cerrno>
#include <string>
#include <system_error>
#include <unordered_map>

#include "../os/pages.hpp"
#include "page_map.hpp"

namespace pmrkit {

std::string_view to_string(huge_page_mode mode) noexcept {
  switch (mode) {
    case huge_page_mode::none:
      return "none";
    case huge_page_mode::transparent:
      return "transparent";
    case huge_page_mode::explicit_pages:
      return "explicit";
  }
  return "unknown";
}

namespace {

std::size_t granule_of(huge_page_mode mode) noexcept {
  if (mode == huge_page_mode::none) return detail::os::page_size();
  return std::max(detail::os::explicit_huge_page_size, detail::os::page_size());
}

huge_page_mode checked_mode(huge_page_mode mode) {
  require_option(mode == huge_page_mode::none || mode == huge_page_mode::transparent ||
                     mode == huge_page_mode::explicit_pages,
                 "page_resource", "huge_pages", "must be none, transparent or explicit_pages");
  return mode;
}

/// The OS refused the pages: out_of_capacity, with what was asked and errno's text.
[[noreturn]] void refuse(std::size_t bytes, std::size_t alignment, std::string_view name,
                         std::size_t extent, const char* call, int error) {
  std::string detail = "the OS refused ";
  detail.append(std::to_string(extent)).append(" bytes of pages (").append(call).append("): ");
  detail.append(std::generic_category().message(error));
  throw allocation_error(failure_reason::out_of_capacity, bytes, alignment, name, detail);
}

}  // namespace

page_resource::page_resource(page_options options)
    : name_(options.name),
      mode_(checked_mode(options.huge_pages)),
      prefault_(options.prefault),
      transparent_available_(detail::os::transparent_huge_pages_enabled()),
      granule_(granule_of(mode_)),
      live_(std::make_unique<detail::page_map>()) {}

page_resource::~page_resource() {
  release();
}

void* page_resource::do_allocate(std::size_t bytes, std::size_t alignment) {
  check_request(bytes, alignment, name_);
  std::size_t extent = 0;
  if (!checked_block_extent(bytes, granule_, extent)) [[unlikely]] {
    throw_allocation_error(failure_reason::size_overflow, bytes, alignment, name_);
  }
  void* p = nullptr;
  bool huge = false;
  int huge_error = 0;
  if (mode_ == huge_page_mode::explicit_pages) {
    p = detail::os::map_huge(extent, alignment);
    huge = p != nullptr;
    if (!huge) huge_error = errno;
  }
  if (p == nullptr) {
    // The transparent modes align at the granule (2 MiB) so the kernel can use huge pages.
    const std::size_t map_alignment =
        mode_ == huge_page_mode::none ? alignment : std::max(alignment, granule_);
    p = detail::os::map(extent, map_alignment);
    if (p == nullptr) refuse(bytes, alignment, name_, extent, "mmap", errno);
    if (mode_ != huge_page_mode::none) (void)detail::os::advise_huge_pages(p, extent);
  }
  if (prefault_ && !detail::os::prefault(p, extent)) {
    const int error = errno;
    detail::os::release(p, extent);
    refuse(bytes, alignment, name_, extent, "prefault", error);
  }
  bool log_fallback = false;
  {
    std::unique_lock lock(mutex_);
    try {
      live_->insert(p,
                    {.extent = extent, .requested = bytes, .alignment = alignment, .huge = huge});
    } catch (...) {
      lock.unlock();
      detail::os::release(p, extent);
      throw allocation_error(failure_reason::out_of_capacity, bytes, alignment, name_,
                             "no memory to record the block");
    }
    page_stats& s = stats_;
    s.bytes_in_use += bytes;
    s.peak_bytes_in_use = std::max(s.peak_bytes_in_use, s.bytes_in_use);
    ++s.blocks_in_use;
    s.peak_blocks_in_use = std::max(s.peak_blocks_in_use, s.blocks_in_use);
    ++s.allocations;
    s.bytes_mapped += extent;
    s.peak_bytes_mapped = std::max(s.peak_bytes_mapped, s.bytes_mapped);
    if (huge) s.huge_page_bytes += extent;
    if (mode_ == huge_page_mode::explicit_pages && !huge) {
      ++s.huge_fallbacks;
      log_fallback = !fallback_logged_;
      fallback_logged_ = true;
    }
  }
  if (log_fallback) {
    std::string message = "'";
#ifdef _WIN32
    // The Windows page layer never maps large pages (they need SeLockMemoryPrivilege).
    (void)huge_error;
    message.append(name_).append(
        "': no explicit huge pages for a request of " + std::to_string(extent) +
        " bytes (Windows: large pages are not used); using the system's pages instead, for this "
        "and any later such request (stats().huge_fallbacks counts them)");
#else
    message.append(name_).append(
        "': no explicit huge pages for a request of " + std::to_string(extent) +
        " bytes (mmap "
        "MAP_HUGETLB: " +
        std::generic_category().message(huge_error) +
        "; see /proc/sys/vm/nr_hugepages); using transparent huge pages instead, for this and "
        "any later such request (stats().huge_fallbacks counts them)");
#endif
    log(log_level::warning, message);
  }
  return p;
}

void page_resource::do_deallocate(void* p, std::size_t bytes, std::size_t alignment) {
  detail::page_take taken;
  {
    const std::lock_guard lock(mutex_);
    ++stats_.deallocations;
    taken = live_->take(p, bytes, alignment);
    if (taken.block) {
      const detail::page_block& block = *taken.block;
      stats_.bytes_in_use -= block.requested;
      --stats_.blocks_in_use;
      stats_.bytes_mapped -= block.extent;
      if (block.huge) stats_.huge_page_bytes -= block.extent;
    }
  }
  if (const auto block = detail::settle(taken, name_)) detail::os::release(p, block->extent);
}

void page_resource::release() noexcept {
  std::unordered_map<void*, detail::page_block> all;
  {
    const std::lock_guard lock(mutex_);
    all = live_->take_all();
    stats_.bytes_in_use = 0;
    stats_.blocks_in_use = 0;
    stats_.bytes_mapped = 0;
    stats_.huge_page_bytes = 0;
  }
  for (const auto& [p, block] : all)
    detail::os::release(p, block.extent);
}

page_stats page_resource::stats() const noexcept {
  const std::lock_guard lock(mutex_);
  return stats_;
}

page_properties page_resource::properties() const noexcept {
  bool huge = false;
  if (mode_ == huge_page_mode::transparent) {
    huge = transparent_available_;
  } else if (mode_ == huge_page_mode::explicit_pages) {
    const std::lock_guard lock(mutex_);
    huge = stats_.huge_fallbacks == 0 || transparent_available_;
  }
  return {.host_accessible = true, .device_accessible = false, .locked = false, .huge_pages = huge};
}

std::string_view page_resource::backing() const noexcept {
  return properties().huge_pages ? "huge pages" : "pages";
}

}  // namespace pmrkit
