// Poisoning freed arena memory for AddressSanitizer, in checked builds.
//
// Resources that free in bulk (reset, clear, rewind, a stack pop) hand memory
// back without the upstream knowing, so AddressSanitizer cannot see a use of
// it. In checked builds (`PMRKIT_CHECKED`) they call `retire` on such memory:
// it is filled with `retired_fill` and, when compiled with
// -fsanitize=address, poisoned, so a later read or write is reported as a
// use-after-poison. `revive` unpoisons memory about to be handed out again,
// and must be called on a whole chunk before it goes back upstream. In
// unchecked builds both compile to nothing.
//
// Thread safety: pure functions over the given bytes.
//
// Example:
//   std::vector<std::byte> chunk(256);
//   pmrkit::detail::retire(chunk.data(), chunk.size());  // no use allowed now
//   pmrkit::detail::revive(chunk.data(), chunk.size());  // handed out again
#pragma once

#include <pmr/core/config.hpp>

#include <cstddef>
#include <cstring>

#if defined(__SANITIZE_ADDRESS__)
#define PMRKIT_HAS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PMRKIT_HAS_ASAN 1
#endif
#endif
#ifndef PMRKIT_HAS_ASAN
#define PMRKIT_HAS_ASAN 0
#endif

#if PMRKIT_HAS_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace pmrkit::detail {

/// The byte freed arena memory is filled with in checked builds.
inline constexpr unsigned char retired_fill = 0xDB;

/// Checked builds: fill [p, p + n) with retired_fill and poison it for ASan.
inline void retire([[maybe_unused]] void* p, [[maybe_unused]] std::size_t n) noexcept {
#if PMRKIT_CHECKED
  if (n == 0) return;
#if PMRKIT_HAS_ASAN
  // Parts of the range may be poisoned already (padding, an earlier retire).
  ASAN_UNPOISON_MEMORY_REGION(p, n);
#endif
  std::memset(p, retired_fill, n);
#if PMRKIT_HAS_ASAN
  ASAN_POISON_MEMORY_REGION(p, n);
#endif
#endif
}

/// Checked builds under ASan: unpoison [p, p + n) before it is used again.
inline void revive([[maybe_unused]] void* p, [[maybe_unused]] std::size_t n) noexcept {
#if PMRKIT_CHECKED && PMRKIT_HAS_ASAN
  ASAN_UNPOISON_MEMORY_REGION(p, n);
#endif
}

}  // namespace pmrkit::detail
