// Poisoning freed memory for AddressSanitizer, in checked or sanitizer builds.
//
// Resources that free in bulk (reset, clear, rewind, a stack pop) hand memory
// back without the upstream knowing, and pools keep freed blocks for the next
// request, so AddressSanitizer cannot see a use of such memory. They call
// `retire` on it: in checked builds (`PMRKIT_CHECKED`) it is filled with
// `retired_fill`, and when compiled with AddressSanitizer (checked or not) it
// is poisoned, so a later read or write is reported as a use-after-poison.
// `revive` unpoisons memory about to be handed out again, and must be called
// on a whole chunk before it goes back upstream. `poison` poisons without the
// fill (a free-list link written into a retired block, poisoned again after
// the write). `is_poisoned` tells whether a byte is poisoned (always false
// without ASan). Builds neither checked nor under ASan compile all of them to
// nothing.
//
// Thread safety: pure functions over the given bytes.
//
// Example:
//   std::vector<std::byte> chunk(256);
//   pmrkit::detail::retire(chunk.data(), chunk.size());  // no use allowed now
//   assert(pmrkit::detail::is_poisoned(chunk.data()) == (PMRKIT_HAS_ASAN != 0));
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

/// The byte freed memory is filled with in checked builds.
inline constexpr unsigned char retired_fill = 0xDB;

/// Checked builds: fill [p, p + n) with retired_fill. Under ASan: poison it.
inline void retire([[maybe_unused]] void* p, [[maybe_unused]] std::size_t n) noexcept {
#if PMRKIT_CHECKED
  if (n == 0) return;
#if PMRKIT_HAS_ASAN
  // Parts of the range may be poisoned already (padding, an earlier retire).
  ASAN_UNPOISON_MEMORY_REGION(p, n);
#endif
  std::memset(p, retired_fill, n);
#endif
#if PMRKIT_HAS_ASAN
  ASAN_POISON_MEMORY_REGION(p, n);
#endif
}

/// Under ASan: poison [p, p + n), leaving its bytes as they are.
inline void poison([[maybe_unused]] void* p, [[maybe_unused]] std::size_t n) noexcept {
#if PMRKIT_HAS_ASAN
  ASAN_POISON_MEMORY_REGION(p, n);
#endif
}

/// Under ASan: unpoison [p, p + n) before it is used again.
inline void revive([[maybe_unused]] void* p, [[maybe_unused]] std::size_t n) noexcept {
#if PMRKIT_HAS_ASAN
  ASAN_UNPOISON_MEMORY_REGION(p, n);
#endif
}

/// Under ASan: whether the byte at `p` is poisoned; false without ASan.
[[nodiscard]] inline bool is_poisoned([[maybe_unused]] const void* p) noexcept {
#if PMRKIT_HAS_ASAN
  return __asan_address_is_poisoned(p) != 0;
#else
  return false;
#endif
}

}  // namespace pmrkit::detail
