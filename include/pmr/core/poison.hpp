// Poisoning freed memory for AddressSanitizer and Valgrind's memcheck, in
// checked or sanitizer builds.
//
// Resources that free in bulk (reset, clear, rewind, a stack pop) hand memory
// back without the upstream knowing, and pools keep freed blocks for the next
// request, so neither AddressSanitizer nor memcheck can see a use of such
// memory. They call `retire` on it: in checked builds (`PMRKIT_CHECKED`) it is
// filled with `retired_fill`; compiled with AddressSanitizer (checked or not)
// it is poisoned, so a later read or write is reported as a use-after-poison;
// in checked builds with memcheck's client requests (below) it is marked
// inaccessible (`VALGRIND_MAKE_MEM_NOACCESS`), so memcheck reports an invalid
// read or write. `revive` makes memory about to be handed out again
// accessible, its contents undefined to memcheck (`VALGRIND_MAKE_MEM_UNDEFINED`:
// reading them before writing them is reported, as for fresh heap memory), and
// must be called on a whole chunk before it goes back upstream. `poison` makes
// bytes inaccessible without the fill, and `unpoison` accessible again with
// their contents as they are (`VALGRIND_MAKE_MEM_DEFINED`): a resource's own
// read or write of what it keeps in a free block (a free-list link) is wrapped
// in the two, where `revive` would leave the link undefined to memcheck.
// `is_poisoned` tells whether a byte is poisoned for AddressSanitizer (always
// false without ASan; memcheck's state is not consulted). Builds neither
// checked nor under ASan compile all of them to nothing.
//
// Memcheck's client requests (`<valgrind/memcheck.h>`, Debian's `valgrind`
// package) are a few instructions each and do nothing outside Valgrind, but
// still cost those instructions, so they are compiled into checked builds only.
// `PMRKIT_WITH_VALGRIND` (config.hpp) decides, fixed when pmrkit is built
// (the CMake option of that name: AUTO, the default, turns them on in checked
// builds where the header is found; ON requires it; OFF), so the library and
// every program built against it agree: memory retired by inline code in one
// may be revived by the other. A program built where the header is missing
// against a library built with it fails to compile, saying so.
// `PMRKIT_HAS_MEMCHECK` says which (0 or 1).
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

// Memcheck's client requests: as config.hpp's PMRKIT_WITH_VALGRIND says.
#if PMRKIT_WITH_VALGRIND
#if !__has_include(<valgrind/memcheck.h>)
#error \
    "pmrkit was built with PMRKIT_WITH_VALGRIND (memcheck client requests): <valgrind/memcheck.h> is needed (Debian: the valgrind package)"
#endif
#define PMRKIT_HAS_MEMCHECK 1
#else
#define PMRKIT_HAS_MEMCHECK 0
#endif

#if PMRKIT_HAS_MEMCHECK
#include <valgrind/memcheck.h>
#endif

/// 1 when freed memory is poisoned for some tool (ASan or memcheck), so that a
/// resource must unpoison its own links in free blocks before reading them.
#define PMRKIT_POISONS_MEMORY (PMRKIT_HAS_ASAN || PMRKIT_HAS_MEMCHECK)

namespace pmrkit::detail {

/// The byte freed memory is filled with in checked builds.
inline constexpr unsigned char retired_fill = 0xDB;

/// Makes [p, p + n) inaccessible (ASan, memcheck), leaving its bytes as they are.
inline void poison([[maybe_unused]] void* p, [[maybe_unused]] std::size_t n) noexcept {
#if PMRKIT_HAS_ASAN
  ASAN_POISON_MEMORY_REGION(p, n);
#endif
#if PMRKIT_HAS_MEMCHECK
  (void)VALGRIND_MAKE_MEM_NOACCESS(p, n);
#endif
}

/// Makes [p, p + n) accessible again with its bytes as they are (memcheck:
/// defined): the resource itself reads or writes what it keeps there.
inline void unpoison([[maybe_unused]] void* p, [[maybe_unused]] std::size_t n) noexcept {
#if PMRKIT_HAS_ASAN
  ASAN_UNPOISON_MEMORY_REGION(p, n);
#endif
#if PMRKIT_HAS_MEMCHECK
  (void)VALGRIND_MAKE_MEM_DEFINED(p, n);
#endif
}

/// Makes [p, p + n) accessible before it is handed out or given back
/// upstream; memcheck sees its contents as undefined.
inline void revive([[maybe_unused]] void* p, [[maybe_unused]] std::size_t n) noexcept {
#if PMRKIT_HAS_ASAN
  ASAN_UNPOISON_MEMORY_REGION(p, n);
#endif
#if PMRKIT_HAS_MEMCHECK
  (void)VALGRIND_MAKE_MEM_UNDEFINED(p, n);
#endif
}

/// Checked builds: fill [p, p + n) with retired_fill. Under ASan: poison it;
/// with memcheck's client requests: mark it inaccessible.
inline void retire([[maybe_unused]] void* p, [[maybe_unused]] std::size_t n) noexcept {
#if PMRKIT_CHECKED
  if (n == 0) return;
  revive(p, n);  // parts of the range may be poisoned already (padding, an earlier retire)
  std::memset(p, retired_fill, n);
#endif
  poison(p, n);
}

/// Under ASan: whether the byte at `p` is poisoned; false without ASan (memcheck's
/// view of the byte is not consulted).
[[nodiscard]] inline bool is_poisoned([[maybe_unused]] const void* p) noexcept {
#if PMRKIT_HAS_ASAN
  return __asan_address_is_poisoned(p) != 0;
#else
  return false;
#endif
}

}  // namespace pmrkit::detail
