// page_resource: whole pages straight from the OS, the root of a chain.
//
// Every allocate maps pages of its own (mmap of private anonymous memory;
// VirtualAlloc on Windows, through pmrkit's OS page layer), rounded up to the
// granule and aligned to the request's alignment, however large (a power of
// two beyond the page is honoured by over-mapping and trimming). Every
// deallocate unmaps them. It has no upstream: the OS is its memory, so its
// forms are `page_resource r;`, `r(options)` and `r({})`, and it has no
// `upstream_resource()` and no `bytes_from_upstream` (docs/contract.md §2).
//
// Huge pages on request (`page_options::huge_pages`):
//   - `transparent`: sizes rounded to 2 MiB, mappings aligned to 2 MiB and
//     advised with madvise(MADV_HUGEPAGE), so the kernel backs them with
//     transparent huge pages where it can;
//   - `explicit_pages`: mmap with MAP_HUGETLB (2 MiB pages, sizes rounded to
//     2 MiB), from the pool the system reserved (/proc/sys/vm/nr_hugepages).
//     When it has too few (the mmap fails), that request falls back to
//     transparent huge pages: `stats().huge_fallbacks` counts such requests
//     and the first one is logged through the log hook (<pmr/core/log.hpp>).
// `prefault` faults every page in when it is mapped (MADV_POPULATE_WRITE, or
// a write per page), so the first touch costs no page fault.
//
// What is counted: `bytes_in_use` is the bytes callers asked for (as the
// decorators count); `bytes_mapped` what the OS holds for them, each block
// rounded up to the granule (a 1-byte request maps a page, or 2 MiB in the
// huge modes; a request of 0 bytes maps one granule too). `huge_page_bytes`
// is the part of `bytes_mapped` in explicit huge pages.
//
// Errors: an alignment that is not a power of two is `allocation_error`
// bad_alignment; a size whose rounding overflows, size_overflow; the OS's
// refusal, out_of_capacity with the errno text. Misuse on deallocation (a
// foreign pointer, a double free among the last frees, a size or alignment
// other than the allocation's) is reported in checked builds to the violation
// handler and the call ignored. `release()` unmaps every block, and the
// destructor calls it.
//
// Choose it as the upstream of a region, a buddy or a pool that takes large
// regions once (whole pages, optionally huge or prefaulted), or under
// locked_page_resource for locked huge pages. Not for small blocks: every
// request is at least a page and a system call.
//
// Thread safety: safe to share between threads (a mutex guards the block map
// and the figures; the OS calls run outside it).
//
// Example:
//   pmrkit::page_resource pages;
//   void* p = pages.allocate(10000, 64_KiB);  // whole pages, 64 KiB-aligned
//   assert(reinterpret_cast<std::uintptr_t>(p) % 65536 == 0);
//   const pmrkit::page_stats s = pages.stats();
//   assert(s.bytes_in_use == 10000 && s.bytes_mapped >= 10000);
//   assert(s.bytes_mapped % pages.granule() == 0);
//   pages.deallocate(p, 10000, 64_KiB);
//   // Explicit huge pages, or transparent ones where none are reserved:
//   pmrkit::page_resource huge({.huge_pages = pmrkit::huge_page_mode::explicit_pages});
//   void* big = huge.allocate(3_MiB);
//   assert(big != nullptr && huge.granule() == 2_MiB);
//   const pmrkit::page_stats h = huge.stats();
//   assert(h.bytes_mapped == 4_MiB);
//   assert(h.huge_page_bytes == 4_MiB || h.huge_fallbacks == 1);
//   huge.release();  // unmaps `big`
//   assert(huge.stats().bytes_mapped == 0);
#pragma once

#include <pmr/region/page_source.hpp>

#include <cstddef>
#include <memory>
#include <memory_resource>
#include <mutex>
#include <string>
#include <string_view>

namespace pmrkit {

namespace detail {
class page_map;
}

/// Which pages page_resource maps.
enum class huge_page_mode : unsigned char {
  none,           ///< the system's pages (4 KiB on x86-64)
  transparent,    ///< 2 MiB-aligned mappings advised with MADV_HUGEPAGE
  explicit_pages  ///< MAP_HUGETLB 2 MiB pages; transparent where none are reserved
};

/// The lower-case name of `mode`: "none", "transparent", "explicit".
[[nodiscard]] std::string_view to_string(huge_page_mode mode) noexcept;

struct page_options {
  huge_page_mode huge_pages = huge_page_mode::none;
  bool prefault = false;            ///< fault every page in when it is mapped
  std::string_view name = "pages";  ///< shown in errors, violations and logs (copied)
};

struct page_stats {
  std::size_t bytes_in_use = 0;        ///< bytes requested and not yet freed
  std::size_t peak_bytes_in_use = 0;   ///< the most bytes_in_use has been
  std::size_t blocks_in_use = 0;       ///< blocks handed out and not yet freed
  std::size_t peak_blocks_in_use = 0;  ///< the most blocks_in_use has been
  std::size_t allocations = 0;         ///< allocate calls that returned a block
  std::size_t deallocations = 0;       ///< deallocate calls
  std::size_t bytes_mapped = 0;        ///< what the OS holds for the blocks (granule-rounded)
  std::size_t peak_bytes_mapped = 0;   ///< the most bytes_mapped has been
  std::size_t huge_page_bytes = 0;     ///< of bytes_mapped, in explicit huge pages (MAP_HUGETLB)
  std::size_t huge_fallbacks = 0;      ///< explicit requests served by transparent huge pages
};

class page_resource final : public page_source {
 public:
  /// Throws std::invalid_argument when `options.huge_pages` is no huge_page_mode.
  explicit page_resource(page_options options = {});
  /// Not copyable. Declared on a non-const reference so that `page_resource r({})`
  /// means the default options.
  page_resource(page_resource&) = delete;
  page_resource& operator=(const page_resource&) = delete;
  /// Unmaps every block (release()).
  ~page_resource() override;

  /// Unmaps every block still allocated; the resource stays usable.
  void release() noexcept;

  [[nodiscard]] page_stats stats() const noexcept;
  /// Host accessible; huge_pages when huge pages were asked for and are
  /// given: explicit ones, or transparent ones where the kernel has them on
  /// (for `explicit_pages` that fell back, transparent ones).
  [[nodiscard]] page_properties properties() const noexcept override;
  /// "huge pages" when properties().huge_pages, else "pages".
  [[nodiscard]] std::string_view backing() const noexcept override;
  /// The page size, or 2 MiB in the huge modes.
  [[nodiscard]] std::size_t granule() const noexcept override { return granule_; }
  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  /// The options it was built with (`name` refers to the resource's copy).
  [[nodiscard]] page_options options() const noexcept {
    return {.huge_pages = mode_, .prefault = prefault_, .name = name_};
  }

  friend void get_property(const page_resource&, property::host_accessible) noexcept {}

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override;
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override;
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  std::string name_;
  huge_page_mode mode_;
  bool prefault_;
  bool transparent_available_;  // the kernel gives transparent huge pages to advised ranges
  std::size_t granule_;
  mutable std::mutex mutex_;
  std::unique_ptr<detail::page_map> live_;  // guarded by mutex_
  page_stats stats_;                        // guarded by mutex_
  bool fallback_logged_ = false;            // guarded by mutex_
};

}  // namespace pmrkit
