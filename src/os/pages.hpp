// The OS page layer: reserving address space and committing pages on demand.
//
// Internal to pmrkit (not installed). The virtual-memory arena, shared memory (map_shared) and
// the page sources (page_resource: map, map_huge, prefault; locked_page_resource: lock, unlock,
// lock_limit, locked_bytes) use it, so it only speaks in pages and says nothing of arenas or
// resources. One implementation per OS: pages_posix.cpp (mmap, mprotect, madvise, mlock, munmap)
// and pages_windows.cpp (VirtualAlloc, VirtualFree, VirtualLock; no huge pages, no shared
// mappings, no locked_bytes: see each function); CMake compiles the one for the
// platform on every UNIX or WIN32 system (PMRKIT_ENABLE_VIRTUAL only decides whether
// vmem_arena_resource uses it).
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

#ifndef _WIN32
// map_shared, map_at and reserve_near: POSIX only (file descriptors, fork, MAP_FIXED). Their one
// user, the shared-memory family, is built only on POSIX systems, so pages_windows.cpp does not
// define them and Windows code cannot call them.

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
#endif

/// Asks for [p, p + bytes) to be backed by huge pages where they fit. A hint:
/// returns false when the OS does not support it or refuses.
bool advise_huge_pages(void* p, std::size_t bytes) noexcept;

/// The size of an explicit huge page as map_huge() maps them: 2 MiB.
inline constexpr std::size_t explicit_huge_page_size = std::size_t{2} << 20;

/// Maps `bytes` (a multiple of page_size()) of private pages, readable,
/// writable and zeroed, at an address that is a multiple of `alignment` (a
/// power of two; up to page_size() means page-aligned). Returns nullptr and
/// leaves errno (ENOMEM when the size and alignment overflow) when the OS
/// refuses. release() unmaps it.
[[nodiscard]] void* map(std::size_t bytes, std::size_t alignment = 0) noexcept;

/// As map(), with explicit huge pages of explicit_huge_page_size
/// (MAP_HUGETLB | MAP_HUGE_2MB): `bytes` is a multiple of 2 MiB, the address
/// a multiple of 2 MiB and of `alignment`. Returns nullptr and leaves errno
/// when the system has too few huge pages reserved (ENOMEM; see
/// /proc/sys/vm/nr_hugepages) or has none at all (Windows: always, large pages
/// need a privilege). release() unmaps it.
[[nodiscard]] void* map_huge(std::size_t bytes, std::size_t alignment = 0) noexcept;

/// True when the kernel gives transparent huge pages to ranges advised with
/// advise_huge_pages (Linux: /sys/kernel/mm/transparent_hugepage/enabled is
/// "always" or "madvise").
[[nodiscard]] bool transparent_huge_pages_enabled() noexcept;

/// Faults in every page of [p, p + bytes) (page-aligned, readable and
/// writable) for writing, keeping its contents, so the first access costs no
/// fault: MADV_POPULATE_WRITE where the kernel has it, else one write per
/// page. Returns false and leaves errno when the OS has no memory for them.
[[nodiscard]] bool prefault(void* p, std::size_t bytes) noexcept;

/// Locks the pages of [p, p + bytes) in RAM (mlock; VirtualLock), faulting
/// them in. Returns false and leaves errno (EPERM or ENOMEM past
/// RLIMIT_MEMLOCK without CAP_IPC_LOCK, EAGAIN) when the OS refuses.
[[nodiscard]] bool lock(void* p, std::size_t bytes) noexcept;

/// Unlocks the pages of [p, p + bytes) (munlock; VirtualUnlock).
void unlock(void* p, std::size_t bytes) noexcept;

/// The most bytes this process may lock: RLIMIT_MEMLOCK's soft limit
/// (Windows: the minimum working set size), SIZE_MAX when unlimited.
[[nodiscard]] std::size_t lock_limit() noexcept;

/// The bytes this process has locked now, as the kernel counts them against
/// lock_limit() (Linux: VmLck in /proc/self/status). False, leaving `bytes`
/// alone, where the OS does not say.
[[nodiscard]] bool locked_bytes(std::size_t& bytes) noexcept;

/// True when address space can be reserved here (probes with one page).
[[nodiscard]] inline bool virtual_memory_available() noexcept {
  const std::size_t page = page_size();
  void* p = reserve(page);
  if (p == nullptr) return false;
  release(p, page);
  return true;
}

}  // namespace pmrkit::detail::os
