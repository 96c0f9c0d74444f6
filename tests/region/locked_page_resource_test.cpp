// locked_page_resource: the conformance suite, page rounding and what the upstream is asked
// for, pages locked and resident (VmLck, mincore, no fault on first touch), the RLIMIT_MEMLOCK
// refusal (the soft limit lowered inside the test), zero on free as the upstream sees it,
// every block back upstream, locked huge pages over a page_resource, checked-build violations,
// properties, threads.
#include <pmr/core/config.hpp>
#include <pmr/core/error.hpp>
#include <pmr/region/locked_page_resource.hpp>
#include <pmr/region/page_resource.hpp>
#include <pmr/testing/test_resource.hpp>
#include <pmr/testing/violation_recorder.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory_resource>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "conformance/conformance.hpp"
#include "page_test_support.hpp"

namespace {

using pmrkit::locked_page_options;
using pmrkit::locked_page_resource;
using pmrkit::page_resource;
using pmrkit::test_resource;

constexpr std::size_t kib = 1024;
constexpr std::size_t mib = 1024 * kib;

struct locked_traits {
  using resource_type = locked_page_resource;
  static constexpr std::string_view name = "pmrkit::locked_page_resource";
  // Every block is at least one locked page: the suite's thousand-node containers would pass
  // the usual 8 MiB RLIMIT_MEMLOCK (refused, by design), so the container checks do not apply;
  // ContainersOverLockedPages below runs a vector and a string over it instead.
  static constexpr pmrkit::conformance::capabilities caps{.serves_containers = false};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(locked_page_options{}, upstream);
  }
  static void release(resource_type& r) { r.release(); }
};

using locked_types = ::testing::Types<locked_traits>;
INSTANTIATE_TYPED_TEST_SUITE_P(locked_pages, resource_conformance, locked_types,
                               pmrkit::conformance::traits_names);

static_assert(pmrkit::has_property<locked_page_resource, pmrkit::property::host_accessible>);
static_assert(pmrkit::has_property<locked_page_resource, pmrkit::property::locked>);
static_assert(!pmrkit::has_property<locked_page_resource, pmrkit::property::device_accessible>);
static_assert(std::is_base_of_v<pmrkit::page_source, locked_page_resource>);

/// Forwards to its upstream; on deallocate records whether every byte of the block was zero.
class zero_checking_resource final : public std::pmr::memory_resource {
 public:
  explicit zero_checking_resource(std::pmr::memory_resource* upstream) : upstream_(upstream) {}
  std::size_t blocks_in_use = 0;
  std::size_t zeroed_frees = 0;
  std::size_t dirty_frees = 0;

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    void* p = upstream_->allocate(bytes, alignment);
    ++blocks_in_use;
    return p;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    const auto* at = static_cast<const unsigned char*>(p);
    const bool zero = std::all_of(at, at + bytes, [](unsigned char c) { return c == 0; });
    ++(zero ? zeroed_frees : dirty_frees);
    --blocks_in_use;
    upstream_->deallocate(p, bytes, alignment);
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }
  std::pmr::memory_resource* upstream_;
};

TEST(LockedPageResource, NullUpstreamIsRefused) {
  try {
    locked_page_resource r({}, static_cast<std::pmr::memory_resource*>(nullptr));
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "pmrkit::locked_page_resource: upstream must not be null");
  }
}

TEST(LockedPageResource, PropertiesBackingAndGranule) {
  locked_page_resource locked;
  const pmrkit::page_properties p = locked.properties();
  EXPECT_TRUE(p.host_accessible);
  EXPECT_TRUE(p.locked);
  EXPECT_FALSE(p.device_accessible);
  EXPECT_FALSE(p.huge_pages);
  EXPECT_EQ(locked.backing(), "locked pages");
  EXPECT_EQ(locked.granule(), page_test::page_size());
  EXPECT_EQ(locked.name(), "locked_pages");
  EXPECT_TRUE(locked.options().zero_on_free);
  EXPECT_EQ(locked.upstream_resource(), std::pmr::get_default_resource());
  std::pmr::memory_resource* any = &locked;
  EXPECT_TRUE(pmrkit::page_properties_of(any)->locked);
}

TEST(LockedPageResource, AsksTheUpstreamForWholePagesAtPageAlignment) {
  test_resource upstream("upstream");
  const std::size_t page = page_test::page_size();
  {
    locked_page_resource locked({}, &upstream);
    void* a = locked.allocate(10000, 8);
    ASSERT_EQ(upstream.blocks_in_use(), 1U);
    EXPECT_EQ(upstream.bytes_in_use(), 3 * page);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a) % page, 0U);
    void* b = locked.allocate(100, 64 * kib);  // more than a page: asked of the upstream
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b) % (64 * kib), 0U);
    const pmrkit::locked_page_stats s = locked.stats();
    EXPECT_EQ(s.bytes_in_use, 10100U);
    EXPECT_EQ(s.blocks_in_use, 2U);
    EXPECT_EQ(s.bytes_from_upstream, 4 * page);
    EXPECT_EQ(s.bytes_locked, 4 * page);
    EXPECT_EQ(s.bytes_from_upstream, upstream.bytes_in_use());
    locked.deallocate(a, 10000, 8);
    locked.deallocate(b, 100, 64 * kib);
    EXPECT_EQ(upstream.blocks_in_use(), 0U);
    EXPECT_EQ(locked.stats().peak_bytes_locked, 4 * page);
    EXPECT_EQ(locked.stats().bytes_locked, 0U);
  }
  EXPECT_TRUE(upstream.errors().empty()) << "sizes and alignments given back as taken";
}

TEST(LockedPageResource, PagesAreLockedResidentAndTakeNoFault) {
  constexpr std::size_t bytes = 1 * mib;
  page_resource pages;
  locked_page_resource locked({}, &pages);
  if (locked.stats().lock_limit < page_test::locked_bytes() + 2 * bytes) {
    GTEST_SKIP() << "RLIMIT_MEMLOCK too low to lock " << bytes << " bytes here";
  }
  const std::size_t before = page_test::locked_bytes();
  void* p = locked.allocate(bytes);
  EXPECT_EQ(page_test::locked_bytes(), before + bytes) << "VmLck counts the block";
  EXPECT_EQ(page_test::resident_pages(p, bytes), bytes / page_test::page_size());
  if (const auto flags = page_test::vm_flags(p)) {
    EXPECT_NE(flags->find(" lo "), std::string::npos) << *flags;
  }
  EXPECT_LT(page_test::faults_to_touch(p, bytes),
            static_cast<long>(bytes / page_test::page_size() / 16));
  locked.deallocate(p, bytes);
  EXPECT_EQ(page_test::locked_bytes(), before) << "unlocked on deallocate";
  EXPECT_EQ(pages.stats().bytes_mapped, 0U);
}

TEST(LockedPageResource, TheLockLimitRefusesWithTheFiguresAndNothingLeaks) {
  test_resource upstream("upstream");
  locked_page_resource locked({.name = "dma"}, &upstream);
  const std::size_t base = page_test::locked_bytes();
  page_test::memlock_limit_guard limit(base + 1 * mib);
  ASSERT_TRUE(limit.ok()) << "setrlimit(RLIMIT_MEMLOCK) failed";
  EXPECT_EQ(locked.stats().lock_limit, base + 1 * mib);
  void* held = locked.allocate(512 * kib);
  const std::size_t upstream_allocations = upstream.stats().allocations;
  try {
    (void)locked.allocate(1 * mib);
    FAIL() << "no exception past RLIMIT_MEMLOCK";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::out_of_capacity);
    EXPECT_EQ(e.resource_name(), "dma");
    const std::string what = e.what();
    EXPECT_NE(what.find("RLIMIT_MEMLOCK is " + std::to_string(base + 1 * mib) + " bytes"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find(std::to_string(base + 512 * kib) + " bytes"), std::string::npos)
        << "the bytes already locked: " << what;
    EXPECT_NE(what.find("asked 1048576 bytes (1 MiB)"), std::string::npos) << what;
  }
  EXPECT_EQ(upstream.stats().allocations, upstream_allocations) << "refused before the upstream";
  EXPECT_EQ(upstream.blocks_in_use(), 1U);
  pmrkit::locked_page_stats s = locked.stats();
  EXPECT_EQ(s.refusals, 1U);
  EXPECT_EQ(s.bytes_locked, 512 * kib);
  EXPECT_EQ(s.blocks_in_use, 1U);
  void* more = locked.allocate(256 * kib);  // fits: still usable
  locked.deallocate(more, 256 * kib);
  locked.deallocate(held, 512 * kib);
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
  void* all = locked.allocate(1 * mib);  // the whole limit, now that nothing is locked
  locked.deallocate(all, 1 * mib);
  EXPECT_EQ(locked.stats().refusals, 1U);
}

TEST(LockedPageResource, ZeroesBeforeGivingPagesBack) {
  page_resource pages;
  zero_checking_resource upstream(&pages);
  {
    locked_page_resource locked({}, &upstream);
    auto* p = static_cast<unsigned char*>(locked.allocate(5000));
    std::memset(p, 0xab, 5000);
    locked.deallocate(p, 5000);
    EXPECT_EQ(upstream.zeroed_frees, 1U);
    EXPECT_EQ(upstream.dirty_frees, 0U);
    auto* q = static_cast<unsigned char*>(locked.allocate(100));
    std::memset(q, 0xcd, 100);
    locked.release();  // zeroes too
    EXPECT_EQ(upstream.zeroed_frees, 2U);
  }
  {
    locked_page_resource keeping({.zero_on_free = false}, &upstream);
    auto* p = static_cast<unsigned char*>(keeping.allocate(5000));
    std::memset(p, 0xab, 5000);
    keeping.deallocate(p, 5000);
    EXPECT_EQ(upstream.dirty_frees, 1U) << "zero_on_free = false leaves the bytes";
  }
  EXPECT_EQ(upstream.blocks_in_use, 0U);
}

TEST(LockedPageResource, EveryBlockGoesBackUpstream) {
  test_resource upstream("upstream");
  {
    locked_page_resource locked({}, &upstream);
    std::vector<std::pair<void*, std::size_t>> blocks;
    for (std::size_t i = 1; i <= 10; ++i)
      blocks.emplace_back(locked.allocate(i * 3000, 16), i * 3000);
    for (std::size_t i = 0; i < blocks.size(); i += 2)
      locked.deallocate(blocks[i].first, blocks[i].second, 16);
    EXPECT_EQ(upstream.blocks_in_use(), 5U);
    locked.release();
    EXPECT_EQ(upstream.blocks_in_use(), 0U);
    EXPECT_EQ(locked.stats().bytes_from_upstream, 0U);
    EXPECT_EQ(locked.stats().bytes_locked, 0U);
    (void)locked.allocate(70000);  // left for the destructor
    EXPECT_EQ(upstream.blocks_in_use(), 1U);
  }
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
  EXPECT_TRUE(upstream.errors().empty());
}

TEST(LockedPageResource, ContainersOverLockedPages) {
  test_resource upstream("upstream");
  locked_page_resource locked({}, &upstream);
  {
    std::pmr::vector<int> numbers(&locked);
    for (int i = 0; i < 100000; ++i)
      numbers.push_back(i);  // 400 KB at most, in a few growing blocks
    std::pmr::string text(5000, 'x', &locked);
    EXPECT_EQ(numbers[99999], 99999);
    EXPECT_EQ(text.size(), 5000U);
    EXPECT_EQ(locked.stats().blocks_in_use, 2U);
  }
  EXPECT_EQ(locked.stats().bytes_locked, 0U);
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
}

TEST(LockedPageResource, AnUpstreamFailureLeavesItUnchanged) {
  test_resource upstream("upstream", std::pmr::null_memory_resource());
  locked_page_resource locked({}, &upstream);
  try {
    (void)locked.allocate(100);
    FAIL() << "no exception";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::upstream_failed);
  }
  const pmrkit::locked_page_stats s = locked.stats();
  EXPECT_EQ(s.allocations, 0U);
  EXPECT_EQ(s.refusals, 0U);
  EXPECT_EQ(s.bytes_locked, 0U);
}

TEST(LockedPageResource, LockedHugePagesOverAHugePageResource) {
  page_resource huge({.huge_pages = pmrkit::huge_page_mode::transparent});
  locked_page_resource locked({}, &huge);
  EXPECT_EQ(locked.granule(), 2 * mib);
  EXPECT_EQ(locked.properties().huge_pages, huge.properties().huge_pages);
  if (locked.stats().lock_limit < page_test::locked_bytes() + 4 * mib) {
    GTEST_SKIP() << "RLIMIT_MEMLOCK too low to lock 2 MiB here";
  }
  void* p = locked.allocate(100);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % (2 * mib), 0U);
  EXPECT_EQ(locked.stats().bytes_locked, 2 * mib);
  EXPECT_EQ(huge.stats().bytes_mapped, 2 * mib);
  locked.deallocate(p, 100);
  EXPECT_EQ(huge.stats().bytes_mapped, 0U);
}

TEST(LockedPageResource, MisuseOnDeallocationIsReportedAndIgnored) {
  if (PMRKIT_CHECKED == 0) GTEST_SKIP() << "unchecked build: misuse is not detected";
  pmrkit::violation_recorder recorder;
  test_resource upstream("upstream");
  locked_page_resource locked({.name = "checked"}, &upstream);
  void* p = locked.allocate(100);
  alignas(4096) static unsigned char foreign[4096];
  locked.deallocate(foreign, 100);
  locked.deallocate(p, 99);
  locked.deallocate(p, 100, 4096);
  EXPECT_EQ(upstream.blocks_in_use(), 1U) << "the bad frees were ignored";
  locked.deallocate(p, 100);
  locked.deallocate(p, 100);
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::foreign_pointer), 1U);
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::size_mismatch), 1U);
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::alignment_mismatch), 1U);
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::double_free), 1U);
  EXPECT_EQ(recorder.violations().front().resource_name, "checked");
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
  EXPECT_TRUE(upstream.errors().empty());
}

TEST(LockedPageResource, SharedBetweenThreads) {
  page_resource pages;
  locked_page_resource locked({}, &pages);
  constexpr int threads = 4;
  constexpr int rounds = 100;
  std::atomic<int> refused = 0;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < rounds; ++i) {
        const std::size_t size = 1 + static_cast<std::size_t>((i * 4099 + t * 17) % 12000);
        try {
          auto* p = static_cast<unsigned char*>(locked.allocate(size));
          std::memset(p, t + 1, size);
          locked.deallocate(p, size);
        } catch (const pmrkit::allocation_error&) {
          ++refused;
        }
      }
    });
  }
  for (std::thread& w : workers)
    w.join();
  const pmrkit::locked_page_stats s = locked.stats();
  EXPECT_EQ(s.refusals, static_cast<std::size_t>(refused.load()));
  EXPECT_EQ(s.allocations + s.refusals, static_cast<std::size_t>(threads * rounds));
  EXPECT_EQ(s.bytes_locked, 0U);
  EXPECT_EQ(pages.stats().bytes_mapped, 0U);
}

}  // namespace
