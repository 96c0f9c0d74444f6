// page_resource: the conformance suite, alignment beyond a page, sizes, the OS's refusal,
// transparent and explicit huge pages (the fallback counted and logged once), prefault (page
// faults on first touch), release and the destructor unmapping, checked-build violations,
// properties, threads.
#include <pmr/core/config.hpp>
#include <pmr/core/error.hpp>
#include <pmr/core/log.hpp>
#include <pmr/region/page_resource.hpp>
#include <pmr/testing/violation_recorder.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "conformance/conformance.hpp"
#include "page_test_support.hpp"

namespace {

using pmrkit::huge_page_mode;
using pmrkit::page_resource;

constexpr std::size_t kib = 1024;
constexpr std::size_t mib = 1024 * kib;
constexpr std::size_t huge_page = 2 * mib;

// No upstream: the OS is its memory (make() ignores the suite's upstream).
struct page_traits {
  using resource_type = page_resource;
  static constexpr std::string_view name = "pmrkit::page_resource";
  static constexpr pmrkit::conformance::capabilities caps{.survives_upstream_failures = false,
                                                          .max_alignment = mib};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource*) {
    return std::make_unique<resource_type>(pmrkit::page_options{});
  }
  static void release(resource_type& r) { r.release(); }
};

struct prefaulted_page_traits {
  using resource_type = page_resource;
  static constexpr std::string_view name = "pmrkit::page_resource (prefault)";
  static constexpr pmrkit::conformance::capabilities caps{.survives_upstream_failures = false};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource*) {
    return std::make_unique<resource_type>(pmrkit::page_options{.prefault = true});
  }
  static void release(resource_type& r) { r.release(); }
};

using page_types = ::testing::Types<page_traits, prefaulted_page_traits>;
INSTANTIATE_TYPED_TEST_SUITE_P(pages, resource_conformance, page_types,
                               pmrkit::conformance::traits_names);

// What a page source says of itself, at compile time and at run time.
static_assert(pmrkit::has_property<page_resource, pmrkit::property::host_accessible>);
static_assert(!pmrkit::has_property<page_resource, pmrkit::property::device_accessible>);
static_assert(!pmrkit::has_property<page_resource, pmrkit::property::locked>);
static_assert(std::is_base_of_v<pmrkit::page_source, page_resource>);
static_assert(!std::is_copy_constructible_v<page_resource>);
static_assert(!std::is_move_constructible_v<page_resource>);
static_assert(!std::is_constructible_v<page_resource, std::pmr::memory_resource*>,
              "no upstream: the OS is its memory");

bool aligned(const void* p, std::size_t alignment) {
  return reinterpret_cast<std::uintptr_t>(p) % alignment == 0;
}

TEST(PageResource, ConstructedWithoutAnUpstream) {
  page_resource a;
  page_resource b({});
  page_resource c(pmrkit::page_options{.prefault = true, .name = "c"});
  page_resource d({.huge_pages = huge_page_mode::transparent});
  EXPECT_EQ(a.name(), "pages");
  EXPECT_EQ(c.name(), "c");
  EXPECT_TRUE(c.options().prefault);
  EXPECT_EQ(c.options().name, "c");
  EXPECT_EQ(d.options().huge_pages, huge_page_mode::transparent);
  EXPECT_EQ(a.granule(), page_test::page_size());
  EXPECT_EQ(d.granule(), huge_page);
  EXPECT_FALSE(a == b);
  EXPECT_TRUE(a == a);
}

TEST(PageResource, BadOptionsNameTheField) {
  try {
    page_resource r({.huge_pages = static_cast<huge_page_mode>(7)});
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(),
                 "pmrkit::page_resource: huge_pages must be none, transparent or explicit_pages");
  }
}

TEST(PageResource, PropertiesAndBacking) {
  page_resource pages;
  const pmrkit::page_properties p = pages.properties();
  EXPECT_TRUE(p.host_accessible);
  EXPECT_FALSE(p.device_accessible);
  EXPECT_FALSE(p.locked);
  EXPECT_FALSE(p.huge_pages);
  EXPECT_EQ(pages.backing(), "pages");
  std::pmr::memory_resource* any = &pages;
  ASSERT_TRUE(pmrkit::page_properties_of(any).has_value());
  EXPECT_TRUE(pmrkit::page_properties_of(any)->host_accessible);
  EXPECT_EQ(pmrkit::to_string(huge_page_mode::explicit_pages), "explicit");
}

TEST(PageResource, WholePagesCountedAsRequestedAndAsMapped) {
  page_resource pages;
  const std::size_t page = pages.granule();
  void* a = pages.allocate(1);
  void* b = pages.allocate(page + 1, 8);
  void* zero = pages.allocate(0, 1);
  EXPECT_TRUE(aligned(a, page) && aligned(b, page) && aligned(zero, page));
  pmrkit::page_stats s = pages.stats();
  EXPECT_EQ(s.bytes_in_use, 1 + page + 1);
  EXPECT_EQ(s.blocks_in_use, 3U);
  EXPECT_EQ(s.bytes_mapped, page + 2 * page + page) << "a request of 0 bytes maps one page";
  EXPECT_EQ(s.allocations, 3U);
  EXPECT_EQ(s.huge_page_bytes, 0U);
  std::memset(b, 0x5a, page + 1);  // the whole rounded block is writable
  pages.deallocate(b, page + 1, 8);
  pages.deallocate(a, 1);
  pages.deallocate(zero, 0, 1);
  s = pages.stats();
  EXPECT_EQ(s.bytes_in_use, 0U);
  EXPECT_EQ(s.bytes_mapped, 0U);
  EXPECT_EQ(s.blocks_in_use, 0U);
  EXPECT_EQ(s.deallocations, 3U);
  EXPECT_EQ(s.peak_bytes_mapped, 4 * page);
  EXPECT_EQ(s.peak_blocks_in_use, 3U);
  EXPECT_EQ(s.peak_bytes_in_use, page + 2);
}

TEST(PageResource, AnyPowerOfTwoAlignmentBeyondThePage) {
  page_resource pages;
  for (std::size_t alignment : {8 * kib, 64 * kib, 2 * mib, 64 * mib}) {
    void* p = pages.allocate(100, alignment);
    EXPECT_TRUE(aligned(p, alignment)) << p << " for alignment " << alignment;
    EXPECT_EQ(pages.stats().bytes_mapped, pages.granule()) << "the slack is unmapped";
    EXPECT_TRUE(page_test::is_mapped(p, pages.granule()));
    pages.deallocate(p, 100, alignment);
    EXPECT_FALSE(page_test::is_mapped(p, pages.granule()));
  }
}

TEST(PageResource, ImpossibleRequestsAreAllocationErrors) {
  page_resource pages({.name = "refusing"});
  try {
    (void)pages.allocate(64, 48);
    FAIL() << "no exception";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::bad_alignment);
  }
  volatile std::size_t unmappable = SIZE_MAX - 10;  // volatile: no compile-time size warning
  try {
    (void)pages.allocate(unmappable);
    FAIL() << "no exception";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::size_overflow);
    EXPECT_EQ(e.requested(), SIZE_MAX - 10);
  }
  try {
    (void)pages.allocate(std::size_t{1} << 62);  // more than any address space
    FAIL() << "no exception";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::out_of_capacity);
    EXPECT_EQ(e.resource_name(), "refusing");
    const std::string what = e.what();
    EXPECT_NE(what.find("the OS refused"), std::string::npos) << what;
    EXPECT_NE(what.find(std::strerror(ENOMEM)), std::string::npos) << what;
  }
  const pmrkit::page_stats s = pages.stats();
  EXPECT_EQ(s.allocations, 0U);
  EXPECT_EQ(s.bytes_mapped, 0U);
  void* p = pages.allocate(100);  // still usable
  pages.deallocate(p, 100);
}

TEST(PageResource, TransparentHugePagesAreAlignedRoundedAndAdvised) {
  page_resource pages({.huge_pages = huge_page_mode::transparent});
  void* p = pages.allocate(3 * mib);
  EXPECT_TRUE(aligned(p, huge_page));
  EXPECT_EQ(pages.stats().bytes_mapped, 4 * mib);
  EXPECT_EQ(pages.stats().huge_page_bytes, 0U) << "transparent pages are not explicit ones";
  EXPECT_EQ(pages.stats().huge_fallbacks, 0U);
  const std::optional<std::string> flags = page_test::vm_flags(p);
  if (!flags) GTEST_SKIP() << "no /proc/self/smaps here";
  EXPECT_NE(flags->find(" hg "), std::string::npos) << "not advised MADV_HUGEPAGE: " << *flags;
  std::ifstream thp("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string mode;
  std::getline(thp, mode);
  const bool enabled = !mode.empty() && mode.find("[never]") == std::string::npos;
  EXPECT_EQ(pages.properties().huge_pages, enabled);
  EXPECT_EQ(pages.backing(), enabled ? "huge pages" : "pages");
  pages.deallocate(p, 3 * mib);
}

/// Records the log hook's messages.
std::mutex log_mutex;
std::vector<std::string> logged;
void record_log(pmrkit::log_level, std::string_view message) {
  const std::lock_guard lock(log_mutex);
  logged.emplace_back(message);
}

TEST(PageResource, ExplicitHugePagesOrACountedLoggedFallback) {
  logged.clear();
  const pmrkit::log_handler previous = pmrkit::set_log_handler(record_log);
  const std::size_t free_before = page_test::free_huge_pages();
  {
    page_resource pages({.huge_pages = huge_page_mode::explicit_pages, .name = "huge"});
    EXPECT_EQ(pages.granule(), huge_page);
    void* a = pages.allocate(3 * mib);
    void* b = pages.allocate(1);
    EXPECT_TRUE(aligned(a, huge_page) && aligned(b, huge_page));
    std::memset(a, 1, 3 * mib);
    const pmrkit::page_stats s = pages.stats();
    EXPECT_EQ(s.bytes_mapped, 6 * mib);
    const std::optional<std::string> flags = page_test::vm_flags(a);
    if (free_before >= 3) {
      // Enough huge pages reserved: they were used.
      EXPECT_EQ(s.huge_page_bytes, 6 * mib);
      EXPECT_EQ(s.huge_fallbacks, 0U);
      EXPECT_TRUE(logged.empty());
      if (flags) {
        EXPECT_NE(flags->find(" ht "), std::string::npos) << *flags;
      }
      EXPECT_TRUE(pages.properties().huge_pages);
    } else if (free_before == 0) {
      // None reserved: both requests fell back to transparent huge pages, logged once.
      EXPECT_EQ(s.huge_page_bytes, 0U);
      EXPECT_EQ(s.huge_fallbacks, 2U);
      ASSERT_EQ(logged.size(), 1U);
      EXPECT_NE(logged[0].find("'huge'"), std::string::npos) << logged[0];
      EXPECT_NE(logged[0].find("nr_hugepages"), std::string::npos) << logged[0];
      if (flags) {
        EXPECT_EQ(flags->find(" ht "), std::string::npos) << *flags;
        EXPECT_NE(flags->find(" hg "), std::string::npos) << *flags;
      }
    } else {
      const std::size_t explicit_blocks =
          s.huge_page_bytes == 6 * mib ? 2 : (s.huge_page_bytes != 0 ? 1 : 0);
      EXPECT_EQ(explicit_blocks + s.huge_fallbacks, 2U)
          << "each block is explicit or a fallback (" << free_before << " huge pages free)";
    }
    pages.deallocate(b, 1);
    pages.deallocate(a, 3 * mib);
    EXPECT_EQ(pages.stats().huge_page_bytes, 0U);
    EXPECT_EQ(pages.stats().bytes_mapped, 0U);
  }
  EXPECT_EQ(page_test::free_huge_pages(), free_before) << "every huge page given back";
  pmrkit::set_log_handler(previous);
}

TEST(PageResource, PrefaultedPagesTakeNoFaultOnFirstTouch) {
  constexpr std::size_t bytes = 16 * mib;
  const long pages_in_block = static_cast<long>(bytes / page_test::page_size());
  page_resource plain;
  page_resource prefaulted({.prefault = true});
  void* cold = plain.allocate(bytes);
  // 4 KiB faults even where transparent huge pages are "always" on.
  ::madvise(cold, bytes, MADV_NOHUGEPAGE);
  void* warm = prefaulted.allocate(bytes);
  EXPECT_EQ(page_test::resident_pages(warm, bytes), bytes / page_test::page_size());
  const long cold_faults = page_test::faults_to_touch(cold, bytes);
  const long warm_faults = page_test::faults_to_touch(warm, bytes);
  EXPECT_GE(cold_faults, pages_in_block) << "one fault per page of a block not prefaulted";
  EXPECT_LT(warm_faults, pages_in_block / 16) << "a prefaulted block faults (almost) never";
  plain.deallocate(cold, bytes);
  prefaulted.deallocate(warm, bytes);
}

TEST(PageResource, ReleaseAndTheDestructorUnmapEverything) {
  std::vector<void*> blocks;
  {
    page_resource pages;
    for (std::size_t i = 1; i <= 8; ++i)
      blocks.push_back(pages.allocate(i * 5000));
    for (void* p : blocks)
      EXPECT_TRUE(page_test::is_mapped(p, 4096));
    pages.release();
    EXPECT_EQ(pages.stats().bytes_mapped, 0U);
    EXPECT_EQ(pages.stats().blocks_in_use, 0U);
    EXPECT_EQ(pages.stats().bytes_in_use, 0U);
    for (void* p : blocks)
      EXPECT_FALSE(page_test::is_mapped(p, 4096)) << p << " is still mapped after release()";
    blocks.clear();
    for (std::size_t i = 1; i <= 4; ++i)  // usable after release()
      blocks.push_back(pages.allocate(i * 5000));
    EXPECT_EQ(pages.stats().blocks_in_use, 4U);
  }
  for (void* p : blocks)
    EXPECT_FALSE(page_test::is_mapped(p, 4096)) << p << " is still mapped after destruction";
}

TEST(PageResource, MisuseOnDeallocationIsReportedAndIgnored) {
  if (PMRKIT_CHECKED == 0) GTEST_SKIP() << "unchecked build: misuse is not detected";
  pmrkit::violation_recorder recorder;
  page_resource pages({.name = "checked"});
  page_resource other;
  void* mine = pages.allocate(100, 64);
  void* foreign = other.allocate(100);
  pages.deallocate(foreign, 100);
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::foreign_pointer), 1U);
  pages.deallocate(mine, 200, 64);
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::size_mismatch), 1U);
  pages.deallocate(mine, 100, 128);
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::alignment_mismatch), 1U);
  EXPECT_TRUE(page_test::is_mapped(mine, 4096)) << "the mismatched frees were ignored";
  EXPECT_TRUE(page_test::is_mapped(foreign, 4096));
  EXPECT_EQ(pages.stats().blocks_in_use, 1U);
  pages.deallocate(mine, 100, 64);
  pages.deallocate(mine, 100, 64);
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::double_free), 1U);
  ASSERT_EQ(recorder.size(), 4U);
  EXPECT_EQ(recorder.violations()[0].resource_name, "checked");
  EXPECT_EQ(recorder.violations()[1].expected_size, 100U);
  EXPECT_EQ(pages.stats().blocks_in_use, 0U);
  EXPECT_EQ(pages.stats().bytes_mapped, 0U);
  other.deallocate(foreign, 100);
  void* again = pages.allocate(100);  // usable
  pages.deallocate(again, 100);
}

TEST(PageResource, SharedBetweenThreads) {
  page_resource pages;
  constexpr int threads = 4;
  constexpr int rounds = 200;
  std::atomic<int> corrupted = 0;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::vector<std::pair<unsigned char*, std::size_t>> held;
      for (int i = 0; i < rounds; ++i) {
        const std::size_t size = 1 + static_cast<std::size_t>((i * 7919 + t) % 20000);
        auto* p = static_cast<unsigned char*>(pages.allocate(size));
        std::memset(p, t + 1, size);
        held.emplace_back(p, size);
        if (i % 3 == 2) {
          auto [q, n] = held.front();
          held.erase(held.begin());
          for (std::size_t k = 0; k < n; ++k)
            if (q[k] != t + 1) ++corrupted;
          pages.deallocate(q, n);
        }
      }
      for (auto [q, n] : held)
        pages.deallocate(q, n);
    });
  }
  for (std::thread& w : workers)
    w.join();
  EXPECT_EQ(corrupted.load(), 0);
  const pmrkit::page_stats s = pages.stats();
  EXPECT_EQ(s.blocks_in_use, 0U);
  EXPECT_EQ(s.bytes_mapped, 0U);
  EXPECT_EQ(s.allocations, static_cast<std::size_t>(threads * rounds));
  EXPECT_EQ(s.deallocations, static_cast<std::size_t>(threads * rounds));
}

}  // namespace
