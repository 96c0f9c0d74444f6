// guarded_resource: the conformance suite, where blocks sit against their guard page (after and
// before, every alignment up to 8 KiB), faults at the first byte past either end and on a use
// after free (death tests), writes into the alignment padding reported on deallocate, a block
// above 4 GiB, huge and overflowing requests, misuse on deallocation, the bounded quarantine,
// the upstream holding only the table, release(), bad options.
#include <pmr/core/align.hpp>
#include <pmr/core/error.hpp>
#include <pmr/core/violation.hpp>
#include <pmr/decorator/guarded_resource.hpp>
#include <pmr/testing/test_resource.hpp>
#include <pmr/testing/violation_recorder.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <memory_resource>
#include <stdexcept>
#include <string>
#include <vector>

#if !defined(_WIN32)
#include <sys/wait.h>
#endif

#include "conformance/conformance.hpp"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define GUARDED_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define GUARDED_TEST_SANITIZED 1
#endif
#endif
#ifndef GUARDED_TEST_SANITIZED
#define GUARDED_TEST_SANITIZED 0
#endif

namespace {

using pmrkit::guard_position;
using pmrkit::guarded_options;
using pmrkit::guarded_resource;
using pmrkit::test_resource;
using pmrkit::violation_kind;
using pmrkit::violation_recorder;

constexpr std::size_t kib = 1024;
constexpr std::size_t gib = kib * kib * kib;

struct guarded_after_traits {
  using resource_type = guarded_resource;
  static constexpr std::string_view name = "pmrkit::guarded_resource(after)";
  static constexpr pmrkit::conformance::capabilities caps{.max_alignment = 4096};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(guarded_options{}, upstream);
  }
  static void release(resource_type& r) { r.release(); }
};

struct guarded_before_traits {
  using resource_type = guarded_resource;
  static constexpr std::string_view name = "pmrkit::guarded_resource(before)";
  static constexpr pmrkit::conformance::capabilities caps{.max_alignment = 8192};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(guarded_options{.position = guard_position::before},
                                           upstream);
  }
  static void release(resource_type& r) { r.release(); }
};

using guarded_types = ::testing::Types<guarded_after_traits, guarded_before_traits>;
INSTANTIATE_TYPED_TEST_SUITE_P(guarded, resource_conformance, guarded_types,
                               pmrkit::conformance::traits_names);

std::uintptr_t address(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p);
}

// --- Where the block sits ------------------------------------------------------------------

TEST(GuardedResource, AfterEndsTheBlockAsCloseToTheGuardAsItsAlignmentAllows) {
  guarded_resource r;
  const std::size_t page = r.page_size();
  for (std::size_t alignment = 1; alignment <= 2 * page; alignment *= 2) {
    for (std::size_t size : {std::size_t{1}, std::size_t{7}, std::size_t{8}, std::size_t{100},
                             page - 1, page, page + 1, 3 * page + 24}) {
      void* p = r.allocate(size, alignment);
      ASSERT_EQ(address(p) % alignment, 0U) << size << " " << alignment;
      const std::uintptr_t end = address(p) + size;
      const std::size_t gap = pmrkit::align_up(end, page) - end;
      // Less than min(alignment, page) bytes, and none when the alignment divides the size.
      const std::size_t expected = (pmrkit::align_up(size, page) - size) % alignment;
      EXPECT_EQ(gap, expected) << size << " " << alignment;
      EXPECT_LT(gap, std::min(alignment, page));
      if (size % alignment == 0) {
        EXPECT_EQ(gap, 0U);
      }
      r.deallocate(p, size, alignment);
    }
  }
}

TEST(GuardedResource, BeforeStartsTheBlockAtTheGuardsEnd) {
  guarded_resource r({.position = guard_position::before});
  const std::size_t page = r.page_size();
  for (std::size_t alignment = 1; alignment <= 4 * page; alignment *= 2) {
    for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{100}, page, page + 1}) {
      void* p = r.allocate(size, alignment);
      EXPECT_EQ(address(p) % page, 0U);
      EXPECT_EQ(address(p) % alignment, 0U);
      r.deallocate(p, size, alignment);
    }
  }
}

TEST(GuardedResource, StatsCountBlocksPagesAndGuards) {
  guarded_resource r;
  const std::size_t page = r.page_size();
  void* a = r.allocate(100, 8);
  void* b = r.allocate(page + 1, 16);
  {
    const pmrkit::guarded_stats s = r.stats();
    EXPECT_EQ(s.bytes_in_use, 100 + page + 1);
    EXPECT_EQ(s.blocks_in_use, 2U);
    EXPECT_EQ(s.guard_pages, 2U);
    EXPECT_EQ(s.bytes_mapped, (1 + 1) * page + (2 + 1) * page);
    EXPECT_EQ(s.allocations, 2U);
  }
  r.deallocate(a, 100, 8);
  r.deallocate(b, page + 1, 16);
  const pmrkit::guarded_stats s = r.stats();
  EXPECT_EQ(s.bytes_in_use, 0U);
  EXPECT_EQ(s.blocks_in_use, 0U);
  EXPECT_EQ(s.guard_pages, 0U);
  EXPECT_EQ(s.bytes_mapped, 0U);
  EXPECT_EQ(s.peak_bytes_in_use, 100 + page + 1);
  EXPECT_EQ(s.peak_blocks_in_use, 2U);
  EXPECT_EQ(s.peak_bytes_mapped, 5 * page);
  EXPECT_EQ(s.deallocations, 2U);
  EXPECT_EQ(s.quarantined_blocks, 2U);
  EXPECT_EQ(s.quarantined_bytes, 5 * page);
}

TEST(GuardedResource, ZeroByteBlocksAreDistinct) {
  for (guard_position position : {guard_position::after, guard_position::before}) {
    guarded_resource r({.position = position});
    void* a = r.allocate(0, 8);
    void* b = r.allocate(0, 8);
    EXPECT_NE(a, b);
    r.deallocate(a, 0, 8);
    r.deallocate(b, 0, 8);
  }
}

// --- Faults at the first byte --------------------------------------------------------------

#if defined(_WIN32)
#define EXPECT_FAULT(statement) EXPECT_DEATH(statement, "")
#else
/// The child died of the access: SIGSEGV or SIGBUS, or under a sanitizer its report of the
/// signal (it exits with a failure status after printing "SEGV on unknown address").
bool faulted(int status) {
  if (WIFSIGNALED(status)) return WTERMSIG(status) == SIGSEGV || WTERMSIG(status) == SIGBUS;
  return GUARDED_TEST_SANITIZED && WIFEXITED(status) && WEXITSTATUS(status) != 0;
}
constexpr const char* fault_message = GUARDED_TEST_SANITIZED ? "SEGV" : "";
#define EXPECT_FAULT(statement) EXPECT_EXIT(statement, faulted, fault_message)
#endif

/// A write the compiler must perform; returns normally (exit 0 afterwards) when nothing faults,
/// which the death tests count as a failure.
void poke(void* p, std::ptrdiff_t offset) {
  static_cast<volatile char*>(p)[offset] = 'x';
}

class GuardedDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { testing::FLAGS_gtest_death_test_style = "threadsafe"; }
};

TEST_F(GuardedDeathTest, OneBytePastTheEndFaults) {
  EXPECT_FAULT({
    guarded_resource r;
    void* p = r.allocate(100, 4);
    poke(p, 99);  // the last byte is the caller's
    poke(p, 100);
    std::exit(0);
  });
}

TEST_F(GuardedDeathTest, OneBytePastTheEndOfAPageSizedBlockFaults) {
  EXPECT_FAULT({
    guarded_resource r;
    const auto size = static_cast<std::ptrdiff_t>(r.page_size());
    void* p = r.allocate(r.page_size(), r.page_size());
    poke(p, size - 1);
    poke(p, size);
    std::exit(0);
  });
}

TEST_F(GuardedDeathTest, OneByteBeforeTheStartFaults) {
  EXPECT_FAULT({
    guarded_resource r({.position = guard_position::before});
    void* p = r.allocate(100, 8);
    poke(p, 0);
    poke(p, -1);
    std::exit(0);
  });
}

TEST_F(GuardedDeathTest, UseAfterFreeFaults) {
  EXPECT_FAULT({
    guarded_resource r;
    void* p = r.allocate(64, 8);
    poke(p, 0);
    r.deallocate(p, 64, 8);
    poke(p, 0);
    std::exit(0);
  });
}

TEST_F(GuardedDeathTest, ZeroByteBlockIsInaccessible) {
  EXPECT_FAULT({
    guarded_resource r({.position = guard_position::before});
    void* p = r.allocate(0, 8);
    poke(p, 0);
    std::exit(0);
  });
}

// Without a fault the death tests above would fail: the same writes within the block pass.
TEST(GuardedResource, WritesWithinTheBlockDoNotFault) {
  guarded_resource after;
  void* p = after.allocate(100, 4);
  for (std::ptrdiff_t i = 0; i < 100; ++i)
    poke(p, i);
  after.deallocate(p, 100, 4);
  guarded_resource before({.position = guard_position::before});
  void* q = before.allocate(100, 8);
  for (std::ptrdiff_t i = 0; i < 100; ++i)
    poke(q, i);
  before.deallocate(q, 100, 8);
}

// --- The padding is no blind spot ----------------------------------------------------------

TEST(GuardedResource, AWriteIntoTheAlignmentPaddingIsReportedOnDeallocate) {
  violation_recorder recorder;
  guarded_resource r({.name = "padded"});
  // 100 bytes aligned to 8 end 4 bytes before the guard page.
  void* p = r.allocate(100, 8);
  poke(p, 100);  // within the padding: no fault
  r.deallocate(p, 100, 8);
  ASSERT_EQ(recorder.size(), 1U);
  EXPECT_EQ(recorder.count(violation_kind::buffer_overrun), 1U);
  const auto v = recorder.violations().front();
  EXPECT_EQ(v.resource_name, "padded");
  EXPECT_EQ(v.pointer, p);
  EXPECT_EQ(v.size, 100U);
  // Reported, and freed all the same.
  EXPECT_EQ(r.stats().blocks_in_use, 0U);
  EXPECT_EQ(r.stats().quarantined_blocks, 1U);

  // An intact block is not reported.
  void* q = r.allocate(100, 8);
  poke(q, 99);
  r.deallocate(q, 100, 8);
  EXPECT_EQ(recorder.size(), 1U);
}

TEST(GuardedResource, AWriteBeforeTheStartInTheFirstPageIsReportedWithAfter) {
  violation_recorder recorder;
  guarded_resource r;
  void* p = r.allocate(100, 8);
  poke(p, -1);
  r.deallocate(p, 100, 8);
  EXPECT_EQ(recorder.count(violation_kind::buffer_underrun), 1U);
  EXPECT_EQ(recorder.size(), 1U);
}

TEST(GuardedResource, AWritePastTheEndInTheLastPageIsReportedWithBefore) {
  violation_recorder recorder;
  guarded_resource r({.position = guard_position::before});
  void* p = r.allocate(100, 8);
  poke(p, 100);
  r.deallocate(p, 100, 8);
  EXPECT_EQ(recorder.count(violation_kind::buffer_overrun), 1U);
  EXPECT_EQ(recorder.size(), 1U);
}

// --- Sizes ---------------------------------------------------------------------------------

TEST(GuardedResource, ABlockAbove4GiBKeepsItsWholeSize) {
  guarded_resource r;
  const std::size_t size = 5 * gib + 3;  // no int, no uint32_t holds it
  void* p = nullptr;
  try {
    p = r.allocate(size, 1);
  } catch (const pmrkit::allocation_error& e) {
    GTEST_SKIP() << "the OS refused 5 GiB of address space or commit: " << e.what();
  }
  auto* bytes = static_cast<volatile char*>(p);
  bytes[0] = 'a';  // the first page and the last are touched; the rest never becomes resident
  bytes[size - 1] = 'z';
  EXPECT_EQ(bytes[0], 'a');
  EXPECT_EQ(bytes[size - 1], 'z');
  EXPECT_EQ((address(p) + size) % r.page_size(), 0U);  // the end touches the guard page
  const pmrkit::guarded_stats s = r.stats();
  EXPECT_EQ(s.bytes_in_use, size);
  EXPECT_EQ(s.bytes_mapped, pmrkit::align_up(size, r.page_size()) + r.page_size());
  r.deallocate(p, size, 1);
  EXPECT_EQ(r.stats().bytes_in_use, 0U);
}

TEST(GuardedResource, HugeAndOverflowingRequestsThrow) {
  test_resource upstream("upstream");
  guarded_resource r(&upstream);
  const std::size_t max = std::numeric_limits<std::size_t>::max();
  const auto reason_of = [&](std::size_t bytes, std::size_t alignment) {
    try {
      void* p = r.allocate(bytes, alignment);
      r.deallocate(p, bytes, alignment);
    } catch (const pmrkit::allocation_error& e) {
      EXPECT_EQ(e.resource_name(), "guarded");
      EXPECT_EQ(e.requested(), bytes);
      return e.reason();
    }
    ADD_FAILURE() << bytes << " bytes aligned to " << alignment << " were served";
    return pmrkit::failure_reason::injected_failure;
  };
  using pmrkit::failure_reason;
  EXPECT_EQ(reason_of(max, 8), failure_reason::size_overflow);
  EXPECT_EQ(reason_of(max - r.page_size(), 8), failure_reason::size_overflow);
  EXPECT_EQ(reason_of(max / 2, 8), failure_reason::out_of_capacity);  // 8 EiB: no machine
  const failure_reason huge_alignment = reason_of(16, std::size_t{1} << 63);
  EXPECT_TRUE(huge_alignment == failure_reason::out_of_capacity ||
              huge_alignment == failure_reason::size_overflow);
  EXPECT_EQ(reason_of(64, 24), failure_reason::bad_alignment);
  // Nothing changed, nothing leaked: the resource serves the next request.
  EXPECT_EQ(r.stats().blocks_in_use, 0U);
  EXPECT_EQ(r.stats().bytes_mapped, 0U);
  void* p = r.allocate(64, 8);
  r.deallocate(p, 64, 8);
  guarded_resource before({.position = guard_position::before});
  EXPECT_THROW((void)before.allocate(16, std::size_t{1} << 63), pmrkit::allocation_error);
  volatile std::size_t almost_max = max - 1;  // not a constant: no -Walloc-size-larger-than
  EXPECT_THROW((void)before.allocate(almost_max, 8), pmrkit::allocation_error);
}

// --- Misuse on deallocation ----------------------------------------------------------------

TEST(GuardedResource, MisuseOnDeallocationIsReportedAndIgnored) {
  violation_recorder recorder;
  guarded_resource r({.name = "misused"});
  void* p = r.allocate(64, 16);
  int local = 0;
  r.deallocate(&local, 64, 16);
  EXPECT_EQ(recorder.count(violation_kind::foreign_pointer), 1U);
  r.deallocate(p, 32, 16);
  EXPECT_EQ(recorder.count(violation_kind::size_mismatch), 1U);
  r.deallocate(p, 64, 8);
  EXPECT_EQ(recorder.count(violation_kind::alignment_mismatch), 1U);
  EXPECT_EQ(r.stats().blocks_in_use, 1U);  // the misused calls changed nothing
  poke(p, 63);                             // still the caller's
  r.deallocate(p, 64, 16);
  EXPECT_EQ(recorder.size(), 3U);
  r.deallocate(p, 64, 16);
  EXPECT_EQ(recorder.count(violation_kind::double_free), 1U);
  const auto all = recorder.violations();
  ASSERT_EQ(all.size(), 4U);
  EXPECT_EQ(all[1].expected_size, 64U);
  EXPECT_EQ(all[2].expected_alignment, 16U);
  for (const auto& v : all)
    EXPECT_EQ(v.resource_name, "misused");
  EXPECT_EQ(r.stats().deallocations, 5U);
  EXPECT_EQ(r.stats().blocks_in_use, 0U);
}

TEST(GuardedResource, TheQuarantineIsBounded) {
  violation_recorder recorder;
  guarded_resource r({.quarantine_blocks = 2});
  std::vector<void*> blocks;
  for (int i = 0; i < 3; ++i)
    blocks.push_back(r.allocate(64, 8));
  for (void* p : blocks)
    r.deallocate(p, 64, 8);
  const pmrkit::guarded_stats s = r.stats();
  EXPECT_EQ(s.quarantined_blocks, 2U);
  EXPECT_EQ(s.quarantined_bytes, 2 * 2 * r.page_size());
  // The oldest left the quarantine: its address may be anyone's now, so it reads as foreign.
  r.deallocate(blocks[0], 64, 8);
  EXPECT_EQ(recorder.count(violation_kind::foreign_pointer), 1U);
  r.deallocate(blocks[2], 64, 8);
  EXPECT_EQ(recorder.count(violation_kind::double_free), 1U);
  EXPECT_EQ(recorder.size(), 2U);
}

TEST(GuardedResource, WithoutQuarantineFreedPagesAreReleasedAtOnce) {
  violation_recorder recorder;
  guarded_resource r({.quarantine_blocks = 0});
  void* p = r.allocate(64, 8);
  r.deallocate(p, 64, 8);
  EXPECT_EQ(r.stats().quarantined_blocks, 0U);
  EXPECT_EQ(r.stats().quarantined_bytes, 0U);
  EXPECT_EQ(r.stats().bytes_mapped, 0U);
  EXPECT_TRUE(recorder.empty());
}

// --- The upstream holds the table only -----------------------------------------------------

TEST(GuardedResource, TheUpstreamServesOnlyTheTable) {
  test_resource upstream("upstream");
  {
    guarded_resource r(&upstream);
    EXPECT_EQ(upstream.bytes_in_use(), 0U);
    void* p = r.allocate(1024 * kib, 64);
    const std::size_t table = upstream.bytes_in_use();
    EXPECT_GT(table, 0U);
    EXPECT_LT(table, 4 * kib);  // a table entry and the quarantine's ring, not the block
    EXPECT_EQ(r.stats().bytes_from_upstream, table);
    r.deallocate(p, 1024 * kib, 64);
    r.release();
    EXPECT_EQ(upstream.bytes_in_use(), 0U);
    const pmrkit::guarded_stats s = r.stats();
    EXPECT_EQ(s.bytes_from_upstream, 0U);
    EXPECT_EQ(s.peak_bytes_from_upstream, table);
    EXPECT_EQ(s.quarantined_blocks, 0U);
    // Usable after release().
    void* q = r.allocate(10, 1);
    poke(q, 9);
    r.deallocate(q, 10, 1);
  }
  EXPECT_EQ(upstream.bytes_in_use(), 0U);
  EXPECT_TRUE(upstream.errors().empty());
}

TEST(GuardedResource, ReleaseReturnsBlocksInUseToo) {
  guarded_resource r;
  (void)r.allocate(100, 8);
  (void)r.allocate(5000, 64);
  r.release();
  const pmrkit::guarded_stats s = r.stats();
  EXPECT_EQ(s.blocks_in_use, 0U);
  EXPECT_EQ(s.bytes_in_use, 0U);
  EXPECT_EQ(s.bytes_mapped, 0U);
  EXPECT_EQ(s.guard_pages, 0U);
}

// --- Options -------------------------------------------------------------------------------

TEST(GuardedResource, BadOptionsNameTheField) {
  using pmrkit::conformance::invalid_argument_of;
  EXPECT_EQ(
      invalid_argument_of([] { guarded_resource r({.position = static_cast<guard_position>(7)}); }),
      "pmrkit::guarded_resource: position must be after or before");
  EXPECT_EQ(invalid_argument_of([] { guarded_resource r({.quarantine_blocks = 65537}); }),
            "pmrkit::guarded_resource: quarantine_blocks must be at most 65536");
  EXPECT_EQ(invalid_argument_of(
                [] { guarded_resource r({}, static_cast<std::pmr::memory_resource*>(nullptr)); }),
            "pmrkit::guarded_resource: upstream must not be null");
}

TEST(GuardedResource, OptionsAndNames) {
  test_resource upstream;
  guarded_resource r({.quarantine_blocks = 5, .position = guard_position::before, .name = "g"},
                     &upstream);
  EXPECT_EQ(r.name(), "g");
  EXPECT_EQ(r.position(), guard_position::before);
  EXPECT_EQ(r.options().quarantine_blocks, 5U);
  EXPECT_EQ(r.upstream_resource(), &upstream);
  EXPECT_EQ(pmrkit::to_string(guard_position::after), "after");
  EXPECT_EQ(pmrkit::to_string(guard_position::before), "before");
  EXPECT_TRUE(pmrkit::is_power_of_two(r.page_size()));
}

}  // namespace
