// The allocator's area of a segment, as shm_segment sees it: formatted once
// by the creator, checked by every open. Defined with shm_resource
// (src/shm/shm_resource.cpp), which owns the layout. Internal to pmrkit.
#pragma once

#include <cstddef>
#include <span>

namespace pmrkit::detail::shm {

/// Builds an empty allocator over `area` (the segment starts at `segment_base`;
/// every position is kept as an offset from it). Throws shm_error (system_error)
/// when the process-shared lock cannot be made.
void format_heap(std::byte* segment_base, std::span<std::byte> area);

/// Null when the allocator state at `area` is one format_heap built (its magic,
/// version and geometry agree with the area), else what is wrong.
[[nodiscard]] const char* check_heap(const std::byte* segment_base,
                                     std::span<const std::byte> area) noexcept;

/// The smallest allocator area format_heap accepts.
[[nodiscard]] std::size_t min_heap_bytes() noexcept;

}  // namespace pmrkit::detail::shm
