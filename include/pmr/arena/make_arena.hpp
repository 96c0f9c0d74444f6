// make_arena: choose an arena strategy at run time, behind the arena port.
//
// `make_arena(options)` returns a `std::unique_ptr<arena_resource>`: a
// `vmem_arena_resource` when virtual memory is wanted and available, else a
// `chunked_arena_resource`. With no strategy named it prefers virtual memory
// where this build has it (CMake `PMRKIT_ENABLE_VIRTUAL`) and uses the
// chunked arena elsewhere, silently: that is what the default means. It falls
// back to the chunked arena with a warning through the log hook (log.hpp)
// when virtual memory was named but this build or system has none, and
// whenever reserving the address range fails at run time (named or by
// default). The upstream serves the chunks of a chunked arena and the
// overflow of a virtual one.
//
// Choose it when the strategy is configuration (a server flag, a platform
// difference); construct a strategy directly when it is not.
//
// Thread safety: make_arena may be called from any thread; the arena it
// returns is single-threaded.
//
// Example:
//   std::unique_ptr<pmrkit::arena_resource> arena = pmrkit::make_arena({.max_reserve = 1_GiB});
//   std::unique_ptr<pmrkit::arena_resource> chained =
//       pmrkit::make_arena({.growth_factor = 1, .strategy = pmrkit::arena_strategy::chained});
//   assert(chained->strategy() == pmrkit::arena_strategy::chained);
//   std::pmr::vector<int> numbers({1, 2, 3}, arena.get());
//   assert(arena->strategy() == pmrkit::arena_strategy::virtual_memory ||
//          !pmrkit::vmem_arena_resource::available());
#pragma once

#include <pmr/arena/arena_resource.hpp>
#include <pmr/arena/chunked_arena_resource.hpp>
#include <pmr/arena/vmem_arena_resource.hpp>

#include <cstddef>
#include <memory>
#include <memory_resource>
#include <optional>
#include <string_view>

namespace pmrkit {

/// What make_arena makes (the options of "an arena", whichever strategy).
struct arena_options {
  /// Chained: the first chunk's size. Virtual: the commit step (at least 64 KiB).
  std::size_t initial_size = 4096;
  /// Virtual: the address space to reserve.
  std::size_t max_reserve = vmem_arena_options{}.reserve;
  /// Chained: 1 to 16, how chunk sizes grow (up to 64 KiB or initial_size,
  /// whichever is larger); 1 keeps them at initial_size.
  std::size_t growth_factor = 2;
  /// Empty: virtual memory where available, else chained.
  std::optional<arena_strategy> strategy = std::nullopt;
  std::string_view name = "arena";  ///< shown in errors and violations (copied)
};

/// An arena as `options` ask. Throws std::invalid_argument naming the field
/// when the chosen strategy rejects the options, and allocation_error when
/// no arena can be made.
[[nodiscard]] std::unique_ptr<arena_resource> make_arena(
    const arena_options& options = {},
    std::pmr::memory_resource* upstream = std::pmr::get_default_resource());

}  // namespace pmrkit
