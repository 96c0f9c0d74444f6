// The OS page layer on Windows: VirtualAlloc reserves (MEM_RESERVE) and
// commits (MEM_COMMIT), VirtualFree decommits (MEM_DECOMMIT) and releases
// (MEM_RELEASE), VirtualLock and VirtualUnlock lock. Explicit huge pages
// (MEM_LARGE_PAGES, which need SeLockMemoryPrivilege) are not attempted:
// map_huge always refuses, and page_resource falls back.
#include "pages.hpp"

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>

#include <cerrno>
#include <cstdint>

namespace pmrkit::detail::os {

namespace {
SYSTEM_INFO query_system_info() noexcept {
  SYSTEM_INFO info;
  ::GetSystemInfo(&info);
  return info;
}

const SYSTEM_INFO& system_info() noexcept {
  static const SYSTEM_INFO info = query_system_info();
  return info;
}

void* reserve_at(void* address, std::size_t bytes) noexcept {
  return ::VirtualAlloc(address, bytes, MEM_RESERVE, PAGE_NOACCESS);
}
}  // namespace

std::size_t page_size() noexcept {
  return system_info().dwPageSize;
}

// Large pages on Windows need SeLockMemoryPrivilege and must be committed
// with the reservation (MEM_LARGE_PAGES), which rules out commit on demand.
std::size_t huge_page_size() noexcept {
  return 0;
}

void* reserve(std::size_t bytes, std::size_t alignment) noexcept {
  if (bytes == 0) return nullptr;
  // Reservations start on the allocation granularity (64 KiB) anyway.
  if (alignment <= system_info().dwAllocationGranularity) return reserve_at(nullptr, bytes);
  // MEM_RELEASE frees only whole reservations, so a larger one cannot be
  // trimmed as on POSIX: find an aligned address inside a larger reservation,
  // give it back and reserve exactly there. Another thread may take the
  // address in between; then try again.
  if (bytes > SIZE_MAX - alignment) return nullptr;
  for (int attempt = 0; attempt < 8; ++attempt) {
    void* probe = reserve_at(nullptr, bytes + alignment);
    if (probe == nullptr) return nullptr;
    const auto address = reinterpret_cast<std::uintptr_t>(probe);
    const std::uintptr_t aligned = (address + alignment - 1) & ~std::uintptr_t{alignment - 1};
    ::VirtualFree(probe, 0, MEM_RELEASE);
    if (void* p = reserve_at(reinterpret_cast<void*>(aligned), bytes)) return p;
  }
  return nullptr;
}

bool commit(void* p, std::size_t bytes) noexcept {
  return ::VirtualAlloc(p, bytes, MEM_COMMIT, PAGE_READWRITE) != nullptr;
}

void decommit(void* p, std::size_t bytes) noexcept {
  (void)::VirtualFree(p, bytes, MEM_DECOMMIT);
}

void release(void* p, std::size_t /*bytes*/) noexcept {
  (void)::VirtualFree(p, 0, MEM_RELEASE);
}

bool advise_huge_pages(void* /*p*/, std::size_t /*bytes*/) noexcept {
  return false;
}

void* map(std::size_t bytes, std::size_t alignment) noexcept {
  void* p = reserve(bytes, alignment);
  if (p == nullptr) {
    errno = ENOMEM;
    return nullptr;
  }
  if (!commit(p, bytes)) {
    release(p, bytes);
    errno = ENOMEM;
    return nullptr;
  }
  return p;
}

void* map_huge(std::size_t /*bytes*/, std::size_t /*alignment*/) noexcept {
  errno = ENOMEM;
  return nullptr;
}

bool transparent_huge_pages_enabled() noexcept {
  return false;
}

bool prefault(void* p, std::size_t bytes) noexcept {
  auto* bytes_at = static_cast<volatile unsigned char*>(p);
  const std::size_t page = page_size();
  for (std::size_t offset = 0; offset < bytes; offset += page)
    bytes_at[offset] = bytes_at[offset];
  return true;
}

bool lock(void* p, std::size_t bytes) noexcept {
  if (::VirtualLock(p, bytes) != 0) return true;
  errno = ENOMEM;
  return false;
}

void unlock(void* p, std::size_t bytes) noexcept {
  (void)::VirtualUnlock(p, bytes);
}

// VirtualLock may lock up to the process's minimum working set size.
std::size_t lock_limit() noexcept {
  SIZE_T minimum = 0;
  SIZE_T maximum = 0;
  if (::GetProcessWorkingSetSize(::GetCurrentProcess(), &minimum, &maximum) == 0) return SIZE_MAX;
  return static_cast<std::size_t>(minimum);
}

bool locked_bytes(std::size_t& /*bytes*/) noexcept {
  return false;
}

}  // namespace pmrkit::detail::os
