#include <pmr/decorator/guarded_resource.hpp>

#include <pmr/core/align.hpp>
#include <pmr/core/error.hpp>
#include <pmr/core/options.hpp>
#include <pmr/core/upstream.hpp>
#include <pmr/core/violation.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

#include "../os/pages.hpp"

namespace pmrkit {

std::string_view to_string(guard_position position) noexcept {
  switch (position) {
    case guard_position::after:
      return "after";
    case guard_position::before:
      return "before";
  }
  return "unknown";
}

namespace {

/// What the padding around a block is filled with, and checked for on deallocate.
constexpr unsigned char padding_fill = 0xAB;

/// The most blocks the quarantine may hold (each is one or two of the process's mappings).
constexpr std::size_t max_quarantine_blocks = 65536;

guard_position checked_position(guard_position position) {
  require_option(position == guard_position::after || position == guard_position::before,
                 "guarded_resource", "position", "must be after or before");
  return position;
}

std::size_t checked_quarantine(std::size_t blocks) {
  require_option(blocks <= max_quarantine_blocks, "guarded_resource", "quarantine_blocks",
                 "must be at most 65536");
  return blocks;
}

bool all_padding(const std::byte* from, const std::byte* to) noexcept {
  return std::all_of(from, to, [](std::byte b) { return b == std::byte{padding_fill}; });
}

/// The OS refused: out_of_capacity, with what was asked and errno's text.
[[noreturn]] void refuse(std::size_t bytes, std::size_t alignment, std::string_view name,
                         std::size_t extent, const char* call, int error) {
  std::string detail = "the OS refused ";
  detail.append(std::to_string(extent)).append(" bytes of pages (").append(call).append("): ");
  detail.append(std::generic_category().message(error != 0 ? error : ENOMEM));
  throw allocation_error(failure_reason::out_of_capacity, bytes, alignment, name, detail);
}

}  // namespace

void* guarded_resource::counting_upstream::do_allocate(std::size_t bytes, std::size_t alignment) {
  void* p = upstream->allocate(bytes, alignment);
  in_use += bytes;
  peak = std::max(peak, in_use);
  return p;
}

void guarded_resource::counting_upstream::do_deallocate(void* p, std::size_t bytes,
                                                        std::size_t alignment) {
  upstream->deallocate(p, bytes, alignment);
  in_use -= bytes;
}

guarded_resource::guarded_resource(guarded_options options, std::pmr::memory_resource* upstream)
    : name_(options.name),
      position_(checked_position(options.position)),
      quarantine_limit_(checked_quarantine(options.quarantine_blocks)),
      page_(detail::os::page_size()),
      counted_(require_upstream(upstream, "pmrkit::guarded_resource")),
      blocks_(&counted_),
      quarantine_(&counted_) {}

guarded_resource::~guarded_resource() {
  release();
}

void* guarded_resource::do_allocate(std::size_t bytes, std::size_t alignment) {
  check_request(bytes, alignment, name_);
  // The data pages: the block rounded up to whole pages (none for 0 bytes).
  std::size_t data_bytes = 0;
  const std::size_t align = std::max(alignment, page_);
  std::size_t extent = 0;
  bool fits = checked_align_up(bytes, page_, data_bytes);
  if (fits) {
    // after:  [data pages][guard]            the reservation aligned to `align`
    // before: [lead][guard][data pages, at least one reserved page]; lead + guard = `align`
    fits = position_ == guard_position::after
               ? checked_add(data_bytes, page_, extent)
               : checked_add(align, std::max(data_bytes, page_), extent);
  }
  if (!fits) [[unlikely]] {
    throw_allocation_error(failure_reason::size_overflow, bytes, alignment, name_);
  }
  errno = 0;
  auto* base = static_cast<std::byte*>(detail::os::reserve(extent, align > page_ ? align : 0));
  if (base == nullptr) [[unlikely]] {
    refuse(bytes, alignment, name_, extent, "reserve", errno);
  }
  std::byte* data = base;
  std::byte* start = base;
  if (position_ == guard_position::after) {
    // The end as close to the guard page as the alignment allows: less than min(A, page) bytes.
    start = base + (data_bytes - bytes) / alignment * alignment;
  } else {
    data = base + align;
    start = data;
  }
  if (data_bytes != 0) {
    errno = 0;
    if (!detail::os::commit(data, data_bytes)) [[unlikely]] {
      const int error = errno;
      detail::os::release(base, extent);
      refuse(bytes, alignment, name_, data_bytes, "commit", error);
    }
    std::memset(data, padding_fill, static_cast<std::size_t>(start - data));
    std::memset(start + bytes, padding_fill,
                static_cast<std::size_t>(data + data_bytes - (start + bytes)));
  }
  try {
    const std::lock_guard lock(mutex_);
    if (quarantine_.capacity() < quarantine_limit_) quarantine_.reserve(quarantine_limit_);
    blocks_.emplace(start, block{.base = base,
                                 .extent = extent,
                                 .data = data,
                                 .committed = data_bytes,
                                 .requested = bytes,
                                 .alignment = alignment,
                                 .quarantined = false});
    stats_.bytes_in_use += bytes;
    stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
    ++stats_.blocks_in_use;
    stats_.peak_blocks_in_use = std::max(stats_.peak_blocks_in_use, stats_.blocks_in_use);
    ++stats_.allocations;
    stats_.bytes_mapped += extent;
    stats_.peak_bytes_mapped = std::max(stats_.peak_bytes_mapped, stats_.bytes_mapped);
    ++stats_.guard_pages;
  } catch (...) {
    detail::os::release(base, extent);
    rethrow_upstream_failure(name_, bytes, alignment);
  }
  return start;
}

void guarded_resource::do_deallocate(void* p, std::size_t bytes, std::size_t alignment) {
  std::array<violation, 2> found{};
  std::size_t found_count = 0;
  const auto report = [&](violation_kind kind, std::size_t expected_size,
                          std::size_t expected_alignment) {
    found[found_count++] =
        violation{kind, name_, p, bytes, alignment, expected_size, expected_alignment};
  };
  {
    const std::lock_guard lock(mutex_);
    ++stats_.deallocations;
    const auto at = blocks_.find(p);
    if (at == blocks_.end()) {
      report(violation_kind::foreign_pointer, 0, 0);
    } else if (block& b = at->second; b.quarantined) {
      report(violation_kind::double_free, b.requested, b.alignment);
    } else if (b.requested != bytes) {
      report(violation_kind::size_mismatch, b.requested, b.alignment);
    } else if (b.alignment != alignment) {
      report(violation_kind::alignment_mismatch, b.requested, b.alignment);
    } else {
      const auto* start = static_cast<const std::byte*>(p);
      if (b.committed != 0) {
        if (!all_padding(b.data, start)) {
          report(violation_kind::buffer_underrun, b.requested, b.alignment);
        }
        if (!all_padding(start + bytes, b.data + b.committed)) {
          report(violation_kind::buffer_overrun, b.requested, b.alignment);
        }
        detail::os::decommit(b.data, b.committed);
      }
      stats_.bytes_in_use -= b.requested;
      --stats_.blocks_in_use;
      stats_.bytes_mapped -= b.extent;
      --stats_.guard_pages;
      if (quarantine_limit_ == 0) {
        detail::os::release(b.base, b.extent);
        blocks_.erase(at);
      } else {
        b.quarantined = true;
        ++stats_.quarantined_blocks;
        stats_.quarantined_bytes += b.extent;
        if (quarantine_.size() < quarantine_limit_) {
          quarantine_.push_back(p);  // within the capacity allocate reserved: no allocation
        } else {
          const auto oldest = blocks_.find(quarantine_[next_quarantined_]);
          detail::os::release(oldest->second.base, oldest->second.extent);
          --stats_.quarantined_blocks;
          stats_.quarantined_bytes -= oldest->second.extent;
          blocks_.erase(oldest);
          quarantine_[next_quarantined_] = p;
          next_quarantined_ = (next_quarantined_ + 1) % quarantine_limit_;
        }
      }
    }
  }
  for (std::size_t i = 0; i < found_count; ++i)
    report_violation(found[i]);
}

void guarded_resource::release() noexcept {
  const std::lock_guard lock(mutex_);
  for (const auto& [p, b] : blocks_)
    detail::os::release(b.base, b.extent);
  table(&counted_).swap(blocks_);
  std::pmr::vector<const void*>(&counted_).swap(quarantine_);
  next_quarantined_ = 0;
  stats_.bytes_in_use = 0;
  stats_.blocks_in_use = 0;
  stats_.bytes_mapped = 0;
  stats_.guard_pages = 0;
  stats_.quarantined_blocks = 0;
  stats_.quarantined_bytes = 0;
}

guarded_stats guarded_resource::stats() const noexcept {
  const std::lock_guard lock(mutex_);
  guarded_stats s = stats_;
  s.bytes_from_upstream = counted_.in_use;
  s.peak_bytes_from_upstream = counted_.peak;
  return s;
}

}  // namespace pmrkit
