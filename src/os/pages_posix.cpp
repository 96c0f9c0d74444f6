// The OS page layer on Linux and other POSIX systems: mmap reserves with
// PROT_NONE, mprotect commits, madvise(MADV_DONTNEED) plus PROT_NONE
// decommits, munmap releases.
#include "pages.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>

#if !defined(MAP_ANONYMOUS) && defined(MAP_ANON)
#define MAP_ANONYMOUS MAP_ANON
#endif

namespace pmrkit::detail::os {

namespace {
std::size_t query_page_size() noexcept {
  const long size = ::sysconf(_SC_PAGESIZE);
  return size > 0 ? static_cast<std::size_t>(size) : 4096;
}

std::size_t query_huge_page_size() noexcept {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  std::FILE* file = std::fopen("/sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "r");
  if (file == nullptr) return 0;
  unsigned long long size = 0;
  const int read = std::fscanf(file, "%llu", &size);
  std::fclose(file);
  return read == 1 ? static_cast<std::size_t>(size) : 0;
#else
  return 0;
#endif
}

void* map_inaccessible(std::size_t bytes) noexcept {
  // Not MAP_NORESERVE: the kernel then charges commit when mprotect makes
  // pages writable, so a commit the system cannot back fails there, cleanly,
  // instead of the process being killed when it touches the page.
  void* p = ::mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}
}  // namespace

std::size_t page_size() noexcept {
  static const std::size_t size = query_page_size();
  return size;
}

std::size_t huge_page_size() noexcept {
  static const std::size_t size = query_huge_page_size();
  return size;
}

void* reserve(std::size_t bytes, std::size_t alignment) noexcept {
  const std::size_t page = page_size();
  if (bytes == 0) return nullptr;
  if (alignment <= page) return map_inaccessible(bytes);
  // Over-reserve, then unmap the misaligned head and the tail beyond `bytes`.
  const std::size_t slack = alignment - page;
  if (bytes > SIZE_MAX - slack) return nullptr;
  auto* raw = static_cast<std::byte*>(map_inaccessible(bytes + slack));
  if (raw == nullptr) return nullptr;
  const auto address = reinterpret_cast<std::uintptr_t>(raw);
  const std::size_t head = (alignment - (address & (alignment - 1))) & (alignment - 1);
  if (head != 0) ::munmap(raw, head);
  if (slack - head != 0) ::munmap(raw + head + bytes, slack - head);
  return raw + head;
}

void* map_shared(int fd, std::size_t bytes) noexcept {
  const int flags = fd == -1 ? MAP_SHARED | MAP_ANONYMOUS : MAP_SHARED;
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, flags, fd, 0);
  return p == MAP_FAILED ? nullptr : p;
}

bool map_at(void* address, std::size_t bytes, int fd, bool replace) noexcept {
#if defined(MAP_FIXED_NOREPLACE)
  const int fixed = replace ? MAP_FIXED : MAP_FIXED_NOREPLACE;
#else
  const int fixed = replace ? MAP_FIXED : 0;  // a hint, checked below
#endif
  const int flags = (fd == -1 ? MAP_PRIVATE | MAP_ANONYMOUS : MAP_SHARED) | fixed;
  void* p = ::mmap(address, bytes, PROT_READ | PROT_WRITE, flags, fd, 0);
  if (p == MAP_FAILED) return false;
  if (p != address) {  // a kernel without MAP_FIXED_NOREPLACE took it as a hint
    ::munmap(p, bytes);
    errno = EEXIST;
    return false;
  }
  return true;
}

void* reserve_near(void* hint, std::size_t bytes) noexcept {
  void* p = ::mmap(hint, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

bool commit(void* p, std::size_t bytes) noexcept {
  return ::mprotect(p, bytes, PROT_READ | PROT_WRITE) == 0;
}

void decommit(void* p, std::size_t bytes) noexcept {
#if defined(MADV_DONTNEED)
  (void)::madvise(p, bytes, MADV_DONTNEED);
#endif
  // Inaccessible again, as on Windows: a use after decommit faults instead of
  // reading zeros. (The commit charge stays until release.)
  (void)::mprotect(p, bytes, PROT_NONE);
}

void release(void* p, std::size_t bytes) noexcept {
  (void)::munmap(p, bytes);
}

bool advise_huge_pages([[maybe_unused]] void* p, [[maybe_unused]] std::size_t bytes) noexcept {
#if defined(MADV_HUGEPAGE)
  return ::madvise(p, bytes, MADV_HUGEPAGE) == 0;
#else
  return false;
#endif
}

}  // namespace pmrkit::detail::os
