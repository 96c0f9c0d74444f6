// chunk_growth: how big the next chunk a resource takes from its upstream is.
//
// The arenas, the stack and the pools all take memory from their upstream in
// chunks that start at an initial size and grow by a factor up to a maximum
// (factor 1: every chunk the same size). Their options say it the same way:
// `growth_factor` (1 to 16, default 2) with the initial and maximum sizes in
// the resource's own unit (`initial_chunk_size` / `max_chunk_size` in bytes
// for the arenas and the stack, `initial_blocks` / `max_blocks_per_chunk` in
// blocks for the pools). This is the one sequence behind all of them.
//
// Thread safety: a value type.
//
// Example:
//   constexpr pmrkit::detail::chunk_growth growth{.initial = 4096, .max = 65536, .factor = 2};
//   static_assert(growth.after(4096) == 8192 && growth.after(65536) == 65536);
#pragma once

#include <pmr/core/options.hpp>

#include <algorithm>
#include <cstddef>
#include <limits>
#include <string>
#include <string_view>

namespace pmrkit::detail {

/// The largest growth_factor an options struct may ask for.
inline constexpr std::size_t max_growth_factor = 16;

struct chunk_growth {
  std::size_t initial = 4096;  ///< the first chunk, in the owner's unit
  std::size_t max = 65536;     ///< growth stops here
  std::size_t factor = 2;      ///< each chunk this many times the one before; 1: constant

  /// The size that follows `size`: `size * factor`, at most `max` (never overflowing).
  [[nodiscard]] constexpr std::size_t after(std::size_t size) const noexcept {
    if (size >= max) return max;
    // No division where the product cannot overflow (a validated factor, any size a chunk
    // has): an arena built per call computes this in its constructor.
    constexpr std::size_t no_overflow = std::numeric_limits<std::size_t>::max() / max_growth_factor;
    if (factor <= max_growth_factor && size <= no_overflow) return std::min(size * factor, max);
    return size > max / factor ? max : size * factor;
  }
};

/// Checks a growth from an options struct: `initial` at least `min_initial`,
/// `max` at least `initial`, `factor` between 1 and 16. Throws
/// std::invalid_argument (throw_invalid_option) naming `class_name` and the
/// options' field names. Returns `growth`.
inline chunk_growth validated_growth(chunk_growth growth, std::size_t min_initial,
                                     std::string_view class_name, std::string_view initial_field,
                                     std::string_view max_field) {
  if (growth.initial < min_initial) {
    throw_invalid_option(class_name, initial_field,
                         min_initial == 1 ? std::string("must not be 0")
                                          : "must be at least " + std::to_string(min_initial));
  }
  require_option(growth.max >= growth.initial, class_name, max_field,
                 "must be at least the initial size");
  require_option(growth.factor >= 1 && growth.factor <= max_growth_factor, class_name,
                 "growth_factor", "must be between 1 and 16");
  return growth;
}

}  // namespace pmrkit::detail
