// Alignment and size arithmetic every strategy needs, in one place.
//
// Rounding a size up to an alignment can overflow std::size_t; these helpers
// report that instead of wrapping, so a resource can turn it into an
// `allocation_error` with reason `size_overflow`. `check_request` is the one
// validation every `do_allocate` starts with.
//
// Thread safety: pure functions.
//
// Example:
//   std::size_t rounded = 0;
//   const bool fits = pmrkit::checked_align_up(100, 64, rounded);
//   assert(fits && rounded == 128);
//   pmrkit::check_request(100, 64, "my_resource");  // alignment 48 would throw allocation_error
#pragma once

#include <pmr/core/error.hpp>

#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>

namespace pmrkit {

/// True when `value` is a power of two (zero is not).
[[nodiscard]] constexpr bool is_power_of_two(std::size_t value) noexcept {
  // Not std::has_single_bit: without -mpopcnt it becomes a library call.
  return value != 0 && (value & (value - 1)) == 0;
}

/// Rounds `value` up to a multiple of `alignment` (a power of two). Returns
/// false, leaving `result` untouched, when the result does not fit std::size_t.
[[nodiscard]] constexpr bool checked_align_up(std::size_t value, std::size_t alignment,
                                              std::size_t& result) noexcept {
  const std::size_t mask = alignment - 1;
  if (value > std::numeric_limits<std::size_t>::max() - mask) return false;
  result = (value + mask) & ~mask;
  return true;
}

/// Rounds `value` up to a multiple of `alignment` (a power of two); the caller
/// guarantees no overflow.
[[nodiscard]] constexpr std::size_t align_up(std::size_t value, std::size_t alignment) noexcept {
  return (value + alignment - 1) & ~(alignment - 1);
}

/// `a + b`, or false when the sum does not fit std::size_t.
[[nodiscard]] constexpr bool checked_add(std::size_t a, std::size_t b,
                                         std::size_t& result) noexcept {
  if (a > std::numeric_limits<std::size_t>::max() - b) return false;
  result = a + b;
  return true;
}

/// `a * b`, or false when the product does not fit std::size_t.
[[nodiscard]] constexpr bool checked_multiply(std::size_t a, std::size_t b,
                                              std::size_t& result) noexcept {
  if (b != 0 && a > std::numeric_limits<std::size_t>::max() / b) return false;
  result = a * b;
  return true;
}

/// The smallest power of two >= `value` (1 for 0), or 0 when none fits.
[[nodiscard]] constexpr std::size_t next_power_of_two(std::size_t value) noexcept {
  if (value <= 1) return 1;
  if (value > (std::size_t{1} << (std::numeric_limits<std::size_t>::digits - 1))) return 0;
  return std::bit_ceil(value);
}

/// floor(log2(value)) for value > 0.
[[nodiscard]] constexpr unsigned log2_floor(std::size_t value) noexcept {
  return static_cast<unsigned>(std::bit_width(value)) - 1U;
}

/// What a bump allocator consumes for a block of `bytes`: at least one byte
/// (so every block has its own address), rounded up to `granule` (a power of
/// two) so the position stays aligned. The caller guarantees no overflow
/// (`bytes` at most half of std::size_t's range); see checked_block_extent.
[[nodiscard]] constexpr std::size_t block_extent(std::size_t bytes, std::size_t granule) noexcept {
  return align_up(bytes + static_cast<std::size_t>(bytes == 0), granule);
}

/// block_extent with an overflow check: false, leaving `result` untouched,
/// when the extent does not fit std::size_t.
[[nodiscard]] constexpr bool checked_block_extent(std::size_t bytes, std::size_t granule,
                                                  std::size_t& result) noexcept {
  return checked_align_up(bytes + static_cast<std::size_t>(bytes == 0), granule, result);
}

/// True when `pointer` is a multiple of `alignment` (a power of two).
[[nodiscard]] inline bool is_aligned(const void* pointer, std::size_t alignment) noexcept {
  return (reinterpret_cast<std::uintptr_t>(pointer) & (alignment - 1)) == 0;
}

/// `pointer` rounded up to `alignment` (a power of two); no overflow check.
[[nodiscard]] inline std::byte* align_pointer(std::byte* pointer, std::size_t alignment) noexcept {
  const auto address = reinterpret_cast<std::uintptr_t>(pointer);
  const auto padding = (alignment - (address & (alignment - 1))) & (alignment - 1);
  return pointer + padding;
}

/// True when a block of `bytes` can exist: at most PTRDIFF_MAX bytes, the
/// largest object C++ allows (pointer differences must fit), so that rounding
/// it up to any power-of-two alignment never overflows std::size_t. A larger
/// request can never be served, and some upstreams mishandle it instead of
/// failing: libstdc++'s aligned operator new (under
/// std::pmr::new_delete_resource()) rounds it up, wraps and hands back a tiny
/// block; AddressSanitizer's allocator aborts.
[[nodiscard]] constexpr bool object_size_fits(std::size_t bytes) noexcept {
  return bytes <= static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max());
}

/// The checks every `do_allocate` starts with: the alignment must be a power
/// of two (else `allocation_error` with `bad_alignment`), and the size at
/// most PTRDIFF_MAX (`object_size_fits`; else `size_overflow`).
inline void check_request(std::size_t bytes, std::size_t alignment,
                          std::string_view resource_name) {
  if (!is_power_of_two(alignment)) [[unlikely]] {
    throw_allocation_error(failure_reason::bad_alignment, bytes, alignment, resource_name);
  }
  if (!object_size_fits(bytes)) [[unlikely]] {
    throw_allocation_error(failure_reason::size_overflow, bytes, alignment, resource_name);
  }
}

}  // namespace pmrkit
