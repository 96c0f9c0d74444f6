// The OS page layer on Linux and other POSIX systems: mmap reserves with
// PROT_NONE, mprotect commits, madvise(MADV_DONTNEED) plus PROT_NONE
// decommits, munmap releases; mmap with MAP_HUGETLB maps explicit huge pages,
// madvise(MADV_POPULATE_WRITE) prefaults, mlock and munlock lock.
#include "pages.hpp"

#include <sys/mman.h>
#include <sys/resource.h>
#if defined(__linux__)
#include <sys/syscall.h>
#endif
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

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

/// mmap of `bytes` with `protection` and `flags` (private, anonymous), aligned
/// to `alignment` by over-mapping and unmapping the head and the tail, in
/// steps of `unit` (the page, or the huge page for MAP_HUGETLB, which unmaps
/// only whole huge pages). nullptr and errno when the OS refuses.
void* map_aligned(std::size_t bytes, std::size_t alignment, std::size_t unit, int protection,
                  int flags) noexcept {
  if (bytes == 0) {
    errno = EINVAL;
    return nullptr;
  }
  if (alignment <= unit) {
    void* p = ::mmap(nullptr, bytes, protection, flags, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
  }
  const std::size_t slack = alignment - unit;
  if (bytes > SIZE_MAX - slack) {
    errno = ENOMEM;
    return nullptr;
  }
  void* mapped = ::mmap(nullptr, bytes + slack, protection, flags, -1, 0);
  if (mapped == MAP_FAILED) return nullptr;
  auto* raw = static_cast<std::byte*>(mapped);
  const auto address = reinterpret_cast<std::uintptr_t>(raw);
  const std::size_t head = (alignment - (address & (alignment - 1))) & (alignment - 1);
  if (head != 0) ::munmap(raw, head);
  if (slack - head != 0) ::munmap(raw + head + bytes, slack - head);
  return raw + head;
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

void* map(std::size_t bytes, std::size_t alignment) noexcept {
  return map_aligned(bytes, alignment, page_size(), PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS);
}

void* map_huge([[maybe_unused]] std::size_t bytes,
               [[maybe_unused]] std::size_t alignment) noexcept {
#if defined(MAP_HUGETLB)
#if defined(MAP_HUGE_SHIFT)
  const int size_flag = 21 << MAP_HUGE_SHIFT;  // MAP_HUGE_2MB: log2(2 MiB)
#else
  const int size_flag = 0;  // the default huge page size
#endif
  if (bytes % explicit_huge_page_size != 0) {
    errno = EINVAL;
    return nullptr;
  }
  return map_aligned(bytes, alignment, explicit_huge_page_size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | size_flag);
#else
  errno = ENOTSUP;
  return nullptr;
#endif
}

bool transparent_huge_pages_enabled() noexcept {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  std::FILE* file = std::fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
  if (file == nullptr) return false;
  char text[128] = {};
  const bool read = std::fgets(text, sizeof text, file) != nullptr;
  std::fclose(file);
  // "always [madvise] never": the selected mode is in brackets.
  return read && std::strstr(text, "[never]") == nullptr &&
         (std::strstr(text, "[always]") != nullptr || std::strstr(text, "[madvise]") != nullptr);
#else
  return false;
#endif
}

bool prefault(void* p, std::size_t bytes) noexcept {
#if defined(__linux__)
#if !defined(MADV_POPULATE_WRITE)
#define MADV_POPULATE_WRITE 23  // Linux 5.14; older kernels answer EINVAL
#endif
  if (::madvise(p, bytes, MADV_POPULATE_WRITE) == 0) return true;
  if (errno != EINVAL) return false;  // ENOMEM, EFAULT, EHWPOISON: no memory for the pages
#endif
  // One write per page, of the byte already there.
  auto* bytes_at = static_cast<volatile unsigned char*>(p);
  const std::size_t page = page_size();
  for (std::size_t offset = 0; offset < bytes; offset += page)
    bytes_at[offset] = bytes_at[offset];
  return true;
}

// On Linux the system calls themselves: AddressSanitizer intercepts mlock and munlock and makes
// them do nothing ("AddressSanitizer ignores mlock"), which would leave a sanitized build's
// locked pages unlocked; locking these ranges is harmless to it.
bool lock(void* p, std::size_t bytes) noexcept {
#if defined(__linux__) && defined(SYS_mlock)
  return ::syscall(SYS_mlock, p, bytes) == 0;
#else
  return ::mlock(p, bytes) == 0;
#endif
}

void unlock(void* p, std::size_t bytes) noexcept {
#if defined(__linux__) && defined(SYS_munlock)
  (void)::syscall(SYS_munlock, p, bytes);
#else
  (void)::munlock(p, bytes);
#endif
}

std::size_t lock_limit() noexcept {
  struct rlimit limit {};
  if (::getrlimit(RLIMIT_MEMLOCK, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return SIZE_MAX;
  return limit.rlim_cur > SIZE_MAX ? SIZE_MAX : static_cast<std::size_t>(limit.rlim_cur);
}

bool locked_bytes([[maybe_unused]] std::size_t& bytes) noexcept {
#if defined(__linux__)
  std::FILE* file = std::fopen("/proc/self/status", "r");
  if (file == nullptr) return false;
  char line[256];
  bool found = false;
  while (std::fgets(line, sizeof line, file) != nullptr) {
    unsigned long long kib = 0;
    if (std::sscanf(line, "VmLck: %llu kB", &kib) == 1) {
      bytes = static_cast<std::size_t>(kib) * 1024;
      found = true;
      break;
    }
  }
  std::fclose(file);
  return found;
#else
  return false;
#endif
}

}  // namespace pmrkit::detail::os
