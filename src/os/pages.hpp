// The OS page layer: reserving address space and committing pages on demand.
//
// Internal to pmrkit (not installed). The virtual-memory arena uses it now;
// shared memory (map_shared) uses it too, page sources and locked pages build on it later, so it
// only speaks in pages and says nothing of arenas. One implementation per OS: pages_posix.cpp
// (mmap, mprotect, madvise, munmap) and pages_windows.cpp (VirtualAlloc, VirtualFree); CMake
// compiles the one for the platform, and none when PMRKIT_ENABLE_VIRTUAL and
// PMRKIT_WITH_SHM are both OFF.
//
// Addresses and sizes passed in must be multiples of page_size(); reserve()
// rounds nothing. Reserved memory is inaccessible until committed; committed
// memory reads as zero the first time; decommitted memory is inaccessible
// again and its contents are gone (the physical pages go back to the OS).
//
// Thread safety: every function may be called from any thread; callers keep
// ranges they change to themselves.
#pragma once

#include <cstddef>

namespace pmrkit::detail::os {

/// The size of a page (the unit of commit and decommit), e.g. 4096.
[[nodiscard]] std::size_t page_size() noexcept;

/// The size of a transparent huge page (2 MiB on x86-64 Linux), or 0 where the
/// OS offers none to advise_huge_pages.
[[nodiscard]] std::size_t huge_page_size() noexcept;

/// Reserves `bytes` of address space, inaccessible and backed by nothing, at
/// an address that is a multiple of `alignment` (a power of two; 0 or anything
/// up to page_size() means page-aligned). Returns nullptr when the address
/// space or the OS refuses.
[[nodiscard]] void* reserve(std::size_t bytes, std::size_t alignment = 0) noexcept;

/// Makes [p, p + bytes) of a reservation readable and writable. Returns false,
/// changing nothing, when the OS has no memory to back it.
[[nodiscard]] bool commit(void* p, std::size_t bytes) noexcept;

/// Makes [p, p + bytes) of a reservation inaccessible again and gives its
/// physical pages back, so resident memory drops; the range stays reserved.
void decommit(void* p, std::size_t bytes) noexcept;

/// Gives back a whole reservation: `p` and `bytes` as reserve() took them.
void release(void* p, std::size_t bytes) noexcept;

/// Maps `bytes` of the shared memory object or file open as `fd` (from its
/// start, readable and writable, shared with every process that maps it), or
/// with fd == -1 a new anonymous shared mapping that the children this
/// process forks inherit. Returns nullptr and leaves errno when the OS
/// refuses. POSIX only; release() unmaps it.
[[nodiscard]] void* map_shared(int fd, std::size_t bytes) noexcept;

/// Maps `bytes` at exactly `address` (page-aligned): the object open as `fd`,
/// shared, or with fd == -1 private zeroed pages, readable and writable. With
/// `replace` the range must be this process's own reservation (or mapping) and
/// is replaced; without it the call fails, changing nothing, when any page of
/// the range is in use (MAP_FIXED_NOREPLACE). Returns false and leaves errno
/// (EEXIST for a range in use). POSIX only.
[[nodiscard]] bool map_at(void* address, std::size_t bytes, int fd, bool replace) noexcept;

/// Reserves `bytes` of inaccessible address space at `hint` if it is free,
/// else wherever the OS puts it; nullptr when it refuses. POSIX only.
[[nodiscard]] void* reserve_near(void* hint, std::size_t bytes) noexcept;

/// Asks for [p, p + bytes) to be backed by huge pages where they fit. A hint:
/// returns false when the OS does not support it or refuses.
bool advise_huge_pages(void* p, std::size_t bytes) noexcept;

/// True when address space can be reserved here (probes with one page).
[[nodiscard]] inline bool virtual_memory_available() noexcept {
  const std::size_t page = page_size();
  void* p = reserve(page);
  if (p == nullptr) return false;
  release(p, page);
  return true;
}

}  // namespace pmrkit::detail::os
