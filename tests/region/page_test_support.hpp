// What the page source tests read from the OS: page faults, residency, mapping flags, huge
// page reservations, the lock limit and locked bytes (Linux /proc; the tests that need them
// skip elsewhere).
#pragma once

#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace page_test {

inline std::size_t page_size() {
  return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

/// Minor page faults of this process so far.
inline long minor_faults() {
  struct rusage usage {};
  ::getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

/// Writes one byte per page, with no sanitizer instrumentation (whose shadow reads would fault
/// too): the faults counted around it are the block's own.
#if defined(__clang__) || defined(__GNUC__)
__attribute__((no_sanitize("address", "undefined", "thread")))
#endif
inline void
touch_pages(void* p, std::size_t bytes, unsigned char value) {
  auto* at = static_cast<volatile unsigned char*>(p);
  const std::size_t page = page_size();
  for (std::size_t offset = 0; offset < bytes; offset += page)
    at[offset] = value;
}

/// Minor faults taken by touching every page of [p, p + bytes) once.
inline long faults_to_touch(void* p, std::size_t bytes) {
  const long before = minor_faults();
  touch_pages(p, bytes, 1);
  return minor_faults() - before;
}

/// True when [p, p + bytes) is mapped (mincore answers; ENOMEM means unmapped).
inline bool is_mapped(void* p, std::size_t bytes) {
  std::vector<unsigned char> residency((bytes + page_size() - 1) / page_size());
  return ::mincore(p, bytes, residency.data()) == 0;
}

/// How many pages of [p, p + bytes) are resident.
inline std::size_t resident_pages(void* p, std::size_t bytes) {
  std::vector<unsigned char> residency((bytes + page_size() - 1) / page_size());
  if (::mincore(p, bytes, residency.data()) != 0) return 0;
  std::size_t resident = 0;
  for (unsigned char r : residency)
    resident += r & 1U;
  return resident;
}

/// The VmFlags of the mapping holding `p` (/proc/self/smaps: "hg" = advised MADV_HUGEPAGE,
/// "ht" = hugetlb, "lo" = locked), or nullopt.
inline std::optional<std::string> vm_flags(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  const auto address = reinterpret_cast<std::uintptr_t>(p);
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    unsigned long long start = 0;
    unsigned long long end = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> start >> dash >> end && dash == '-') {
      inside = address >= start && address < end;
      continue;
    }
    if (inside && line.rfind("VmFlags:", 0) == 0) return line.substr(8) + " ";
  }
  return std::nullopt;
}

/// A field of /proc/meminfo or /proc/self/status in kB, as bytes (nullopt when absent).
inline std::optional<std::size_t> proc_kib(const char* file, const std::string& field) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) != 0) continue;
    std::istringstream value(line.substr(field.size() + 1));
    unsigned long long number = 0;
    if (value >> number)
      return static_cast<std::size_t>(number) * (field == "HugePages_Free" ? 1 : 1024);
  }
  return std::nullopt;
}

/// Free explicit huge pages of the default size (HugePages_Free), 0 when unknown.
inline std::size_t free_huge_pages() {
  return proc_kib("/proc/meminfo", "HugePages_Free").value_or(0);
}

/// The bytes this process has locked (VmLck).
inline std::size_t locked_bytes() {
  return proc_kib("/proc/self/status", "VmLck").value_or(0);
}

/// Sets RLIMIT_MEMLOCK's soft limit for the guard's life and restores it after.
class memlock_limit_guard {
 public:
  explicit memlock_limit_guard(rlim_t soft) {
    ::getrlimit(RLIMIT_MEMLOCK, &saved_);
    struct rlimit changed = saved_;
    changed.rlim_cur = soft;
    if (changed.rlim_max != RLIM_INFINITY && soft > changed.rlim_max) changed.rlim_max = soft;
    ok_ = ::setrlimit(RLIMIT_MEMLOCK, &changed) == 0;
  }
  memlock_limit_guard(const memlock_limit_guard&) = delete;
  memlock_limit_guard& operator=(const memlock_limit_guard&) = delete;
  ~memlock_limit_guard() { ::setrlimit(RLIMIT_MEMLOCK, &saved_); }
  [[nodiscard]] bool ok() const { return ok_; }

 private:
  struct rlimit saved_ {};
  bool ok_ = false;
};

}  // namespace page_test
