#include <pmr/arena/vmem_arena_resource.hpp>

#include <pmr/core/config.hpp>
#include <pmr/core/error.hpp>
#include <pmr/core/literals.hpp>
#include <pmr/core/poison.hpp>
#include <pmr/core/reallocate.hpp>
#include <pmr/testing/test_resource.hpp>
#include <pmr/testing/violation_recorder.hpp>

#if PMRKIT_HAS_VIRTUAL_MEMORY
#include "arena/carving_upstream.hpp"
#include "conformance/conformance.hpp"
#endif

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <limits>
#include <map>
#include <memory_resource>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#if defined(__linux__)
#include <unistd.h>
#endif

namespace {

using namespace pmrkit::literals;
using pmrkit::test_resource;
using pmrkit::vmem_arena_options;
using pmrkit::vmem_arena_resource;

#if PMRKIT_HAS_VIRTUAL_MEMORY

// The defaults: a 64 GiB reservation and the null overflow replaced by the
// suite's upstream.
struct vmem_arena_traits {
  using resource_type = vmem_arena_resource;
  static constexpr std::string_view name = "pmrkit::vmem_arena_resource";
  static constexpr pmrkit::conformance::capabilities caps{
      // An arena frees only its most recent block; the rest waits for reset.
      .reuses_memory = false,
      // The suite's workloads never exhaust 64 GiB, so the upstream (the
      // overflow) is never asked and has no failure to inject; the 64 KiB
      // instance below runs those checks.
      .survives_upstream_failures = false,
  };
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(vmem_arena_options{}, upstream);
  }
  static void release(resource_type& r) { r.release(); }
};

// A reservation the workloads exhaust, so most blocks come from the overflow;
// one-byte alignment and page-sized commit steps.
struct overflowing_vmem_arena_traits {
  using resource_type = vmem_arena_resource;
  static constexpr std::string_view name = "pmrkit::vmem_arena_resource (64 KiB, overflowing)";
  static constexpr pmrkit::conformance::capabilities caps{.reuses_memory = false};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(
        vmem_arena_options{
            .reserve = 64_KiB, .commit_step = 4_KiB, .retain_on_reset = 0, .alignment = 1},
        upstream);
  }
  static void release(resource_type& r) { r.release(); }
};

using arena_types = ::testing::Types<vmem_arena_traits, overflowing_vmem_arena_traits>;
INSTANTIATE_TYPED_TEST_SUITE_P(vmem_arena, resource_conformance, arena_types,
                               pmrkit::conformance::traits_names);

constexpr pmrkit::test_options upstream_options{.name = "overflow"};

bool in_range(const void* p, const void* base, std::size_t size) {
  const auto address = reinterpret_cast<std::uintptr_t>(p);
  const auto start = reinterpret_cast<std::uintptr_t>(base);
  return address >= start && address - start < size;
}

TEST(VmemArena, AddressesIncreaseSoPointerArithmeticWorksAcrossAllocations) {
  vmem_arena_resource arena({.reserve = 1_MiB, .alignment = 1});
  // Pieces allocated one after another read as one string.
  const std::string_view pieces[] = {"contiguous ", "allocations ", "form ", "one ", "range"};
  auto* const first = static_cast<char*>(arena.allocate(pieces[0].size(), 1));
  std::memcpy(first, pieces[0].data(), pieces[0].size());
  char* end = first + pieces[0].size();
  for (std::size_t i = 1; i < std::size(pieces); ++i) {
    auto* piece = static_cast<char*>(arena.allocate(pieces[i].size(), 1));
    ASSERT_EQ(piece, end) << "piece " << i;
    std::memcpy(piece, pieces[i].data(), pieces[i].size());
    end += pieces[i].size();
  }
  EXPECT_EQ(std::string_view(first, static_cast<std::size_t>(end - first)),
            "contiguous allocations form one range");

  // With the default 16-byte least alignment, blocks still follow in order.
  vmem_arena_resource aligned({.reserve = 1_MiB});
  auto* previous = static_cast<std::byte*>(aligned.allocate(24, 8));
  for (int i = 0; i < 100; ++i) {
    auto* next = static_cast<std::byte*>(aligned.allocate(24, 8));
    ASSERT_EQ(next, previous + 32);
    previous = next;
  }
}

TEST(VmemArena, GrowthCommitsInStepsAndNeverMoves) {
  vmem_arena_resource arena({.reserve = 16_MiB, .commit_step = 64_KiB});
  EXPECT_EQ(arena.stats().bytes_reserved, 16_MiB);
  EXPECT_EQ(arena.stats().bytes_committed, 0U);

  auto* small = static_cast<unsigned char*>(arena.allocate(100, 16));
  std::memset(small, 0xA1, 100);
  EXPECT_EQ(arena.stats().bytes_committed, 64_KiB);

  constexpr std::size_t initial = 100_KiB;
  auto* big = static_cast<unsigned char*>(arena.allocate(initial, 16));
  std::memset(big, 0xB2, initial);
  const auto committed_in_steps = [&] {
    const pmrkit::arena_stats s = arena.stats();
    return s.bytes_committed % 64_KiB == 0 && s.bytes_available < 64_KiB;
  };
  EXPECT_EQ(arena.stats().bytes_committed, 128_KiB);
  EXPECT_TRUE(committed_in_steps());

  // The most recent block grows where it lies, committing as it goes.
  std::size_t size = initial;
  for (; size < 8_MiB; size *= 2) {
    void* grown = pmrkit::reallocate(arena, big, size, 2 * size, 16);
    ASSERT_EQ(grown, big) << "growing to " << 2 * size;
    ASSERT_TRUE(committed_in_steps()) << "growing to " << 2 * size;
  }
  for (std::size_t i = 0; i < 100; ++i)
    ASSERT_EQ(small[i], 0xA1);
  for (std::size_t i = 0; i < initial; ++i)
    ASSERT_EQ(big[i], 0xB2);
  big[size - 1] = 1;  // committed and writable to the end
}

#if defined(__linux__)
std::size_t resident_bytes() {
  std::FILE* statm = std::fopen("/proc/self/statm", "r");
  if (statm == nullptr) return 0;
  unsigned long long size = 0;
  unsigned long long resident = 0;
  const int read = std::fscanf(statm, "%llu %llu", &size, &resident);
  std::fclose(statm);
  return read == 2
             ? static_cast<std::size_t>(resident) * static_cast<std::size_t>(sysconf(_SC_PAGESIZE))
             : 0;
}
#endif

TEST(VmemArena, ResetDecommitsBeyondRetainSoResidentMemoryDrops) {
#if !defined(__linux__)
  GTEST_SKIP() << "reads resident memory from /proc/self/statm";
#else
  constexpr std::size_t written = 64_MiB;
  constexpr std::size_t retained = 8_MiB;
  constexpr std::size_t noise = 4_MiB;
  // Under ASan, unpoisoning the blocks makes their shadow (an eighth) resident too.
  constexpr std::size_t shadow = PMRKIT_HAS_ASAN ? written / 8 : 0;
  vmem_arena_resource arena({.reserve = 1_GiB, .commit_step = 1_MiB, .retain_on_reset = retained});

  const std::size_t before = resident_bytes();
  ASSERT_NE(before, 0U);
  auto* p = static_cast<unsigned char*>(arena.allocate(written, 4096));
  std::memset(p, 0x5A, written);
  const std::size_t after_writing = resident_bytes();
  EXPECT_GE(after_writing, before + written - noise);

  arena.reset();
  const std::size_t after_reset = resident_bytes();
  EXPECT_EQ(arena.stats().bytes_committed, retained);
  EXPECT_GE(after_writing - after_reset, written - retained - noise);
  EXPECT_LE(after_reset, before + retained + shadow + noise);

  arena.release();
  EXPECT_EQ(arena.stats().bytes_committed, 0U);
  EXPECT_LE(resident_bytes(), before + shadow + noise);
#endif
}

TEST(VmemArena, ExhaustedReservationOverflowsToUpstream) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  {
    vmem_arena_resource arena({.reserve = 64_KiB, .commit_step = 4_KiB, .retain_on_reset = 0},
                              &upstream);
    EXPECT_EQ(arena.upstream_resource(), &upstream);
    void* inside = arena.allocate(60_KiB, 16);
    EXPECT_EQ(upstream.blocks_in_use(), 0U);

    void* outside = arena.allocate(8_KiB, 64);
    EXPECT_FALSE(in_range(outside, inside, 64_KiB));
    EXPECT_TRUE(pmrkit::is_aligned(outside, 64));
    EXPECT_TRUE(arena.owns(outside));
    EXPECT_EQ(upstream.blocks_in_use(), 1U);
    pmrkit::arena_stats s = arena.stats();
    EXPECT_EQ(s.large_bytes_in_use, 8_KiB);
    EXPECT_EQ(s.bytes_in_use, 60_KiB + 8_KiB);
    EXPECT_GT(s.waste, 0U);  // the overflow block's header

    // A deallocated overflow block goes back at once.
    arena.deallocate(outside, 8_KiB, 64);
    EXPECT_EQ(upstream.blocks_in_use(), 0U);
    EXPECT_EQ(arena.stats().large_bytes_in_use, 0U);

    for (int i = 0; i < 3; ++i)
      (void)arena.allocate(8_KiB, 16);
    EXPECT_EQ(upstream.blocks_in_use(), 3U);
    arena.reset();
    EXPECT_EQ(upstream.blocks_in_use(), 0U);

    (void)arena.allocate(64_KiB, 16);  // fills the range again
    (void)arena.allocate(1, 1);
    EXPECT_EQ(upstream.blocks_in_use(), 1U);
    arena.release();
    EXPECT_EQ(upstream.blocks_in_use(), 0U);

    (void)arena.allocate(100_KiB, 16);
    (void)arena.allocate(100_KiB, 16);
    EXPECT_EQ(upstream.blocks_in_use(), 2U);
  }
  EXPECT_EQ(upstream.blocks_in_use(), 0U);  // the destructor returned them
  EXPECT_EQ(upstream.error_count(), 0U);
}

TEST(VmemArena, DefaultOverflowThrowsOutOfCapacity) {
  vmem_arena_resource arena({.reserve = 64_KiB, .name = "scratch"});
  EXPECT_EQ(arena.upstream_resource(), std::pmr::null_memory_resource());
  (void)arena.allocate(60_KiB, 16);
  try {
    (void)arena.allocate(8_KiB, 8);
    FAIL() << "allocate beyond the reservation returned";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::out_of_capacity);
    EXPECT_EQ(e.requested(), 8_KiB);
    EXPECT_EQ(e.alignment(), 8U);
    EXPECT_EQ(e.resource_name(), "scratch");
  }
  // Unchanged and usable: what is left of the range still serves.
  EXPECT_EQ(arena.stats().bytes_in_use, 60_KiB);
  EXPECT_NE(arena.allocate(4_KiB, 16), nullptr);
}

TEST(VmemArena, SizesWhoseRoundingOverflowsThrowSizeOverflow) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  vmem_arena_resource arena({.reserve = 64_KiB}, &upstream);
  try {
    (void)arena.allocate(std::numeric_limits<std::size_t>::max() - 8, 16);
    FAIL() << "allocate returned";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::size_overflow);
  }
  EXPECT_EQ(upstream.stats().allocations, 0U);
}

TEST(VmemArena, CheckpointRewindFreesLaterAllocations) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  vmem_arena_resource arena({.reserve = 64_KiB, .commit_step = 4_KiB}, &upstream);
  (void)arena.allocate(1000, 8);
  const pmrkit::arena_checkpoint mark = arena.checkpoint();
  void* first_after = arena.allocate(2000, 8);
  (void)arena.allocate(3000, 8);
  EXPECT_GT(arena.checkpoint(), mark);
  arena.rewind(mark);
  EXPECT_EQ(arena.checkpoint(), mark);
  EXPECT_EQ(arena.allocate(2000, 8), first_after);

  // Overflow blocks count too: those after the marker go back upstream.
  void* before_mark = arena.allocate(62_KiB, 8);
  ASSERT_EQ(upstream.blocks_in_use(), 1U);
  const pmrkit::arena_checkpoint overflowing = arena.checkpoint();
  (void)arena.allocate(62_KiB, 8);
  (void)arena.allocate(62_KiB, 8);
  EXPECT_EQ(upstream.blocks_in_use(), 3U);
  EXPECT_GT(arena.checkpoint(), overflowing);
  arena.rewind(overflowing);
  EXPECT_EQ(upstream.blocks_in_use(), 1U);
  EXPECT_TRUE(arena.owns(before_mark));
  EXPECT_EQ(arena.stats().large_bytes_in_use, 62_KiB);
  arena.rewind(mark);
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
}

TEST(VmemArena, StaleCheckpointIsAViolation) {
  if (!PMRKIT_CHECKED) GTEST_SKIP() << "violations are reported in checked builds";
  pmrkit::violation_recorder recorder;
  vmem_arena_resource arena({.reserve = 1_MiB, .name = "marked"});
  vmem_arena_resource other({.reserve = 1_MiB});
  const pmrkit::arena_checkpoint start = arena.checkpoint();
  (void)arena.allocate(100, 8);
  const pmrkit::arena_checkpoint early = arena.checkpoint();
  (void)arena.allocate(100, 8);
  const pmrkit::arena_checkpoint late = arena.checkpoint();
  arena.rewind(early);
  EXPECT_TRUE(recorder.empty());

  arena.rewind(late);                        // beyond the position
  arena.rewind(other.checkpoint());          // another arena's
  arena.rewind(pmrkit::arena_checkpoint{});  // no arena's
  EXPECT_EQ(arena.checkpoint(), early);      // each ignored
  arena.reset();
  arena.rewind(start);  // before the reset, though the position is the same
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::stale_checkpoint), 4U);
  EXPECT_EQ(recorder.size(), 4U);
  EXPECT_EQ(recorder.violations().front().resource_name, "marked");
}

TEST(VmemArena, ForeignPointerIsAViolation) {
  if (!PMRKIT_CHECKED) GTEST_SKIP() << "violations are reported in checked builds";
  pmrkit::violation_recorder recorder;
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  vmem_arena_resource arena({.reserve = 64_KiB}, &upstream);
  vmem_arena_resource other({.reserve = 64_KiB});
  void* mine = arena.allocate(100, 8);
  (void)arena.allocate(100, 8);
  arena.deallocate(mine, 100, 8);  // in the range: freed in bulk later, no violation
  EXPECT_TRUE(recorder.empty());

  int local = 0;
  arena.deallocate(&local, sizeof local, alignof(int));
  void* theirs = other.allocate(16, 8);
  arena.deallocate(theirs, 16, 8);
  ASSERT_EQ(recorder.count(pmrkit::violation_kind::foreign_pointer), 2U);
  EXPECT_EQ(recorder.violations()[0].pointer, &local);
  EXPECT_EQ(recorder.violations()[1].pointer, theirs);
  EXPECT_EQ(upstream.error_count(), 0U);  // nothing reached the overflow
}

TEST(VmemArena, ShrinkDecommitsBeyondThePosition) {
  vmem_arena_resource arena({.reserve = 16_MiB, .commit_step = 64_KiB});
  const pmrkit::arena_checkpoint start = arena.checkpoint();
  (void)arena.allocate(4_MiB, 16);
  void* low = nullptr;
  arena.rewind(start);
  low = arena.allocate(100, 16);
  EXPECT_GE(arena.stats().bytes_committed, 4_MiB);
  arena.shrink();
  EXPECT_LE(arena.stats().bytes_committed, 64_KiB);
  std::memset(low, 1, 100);  // still committed
  (void)arena.allocate(1_MiB, 16);
  EXPECT_GE(arena.stats().bytes_committed, 1_MiB);
}

TEST(VmemArena, MostRecentBlockRollsBackAndGrowsInPlace) {
  vmem_arena_resource arena({.reserve = 16_MiB, .commit_step = 64_KiB});
  void* a = arena.allocate(100, 16);
  void* b = arena.allocate(200, 16);
  const std::size_t used = arena.stats().bytes_in_use;
  arena.deallocate(a, 100, 16);  // not the most recent: nothing happens
  EXPECT_EQ(arena.stats().bytes_in_use, used);
  arena.deallocate(b, 200, 16);  // the most recent: rolled back
  EXPECT_LT(arena.stats().bytes_in_use, used);
  EXPECT_EQ(arena.allocate(200, 16), b);

  std::memset(b, 0x3C, 200);
  void* grown = pmrkit::reallocate(arena, b, 200, 1_MiB, 16);
  EXPECT_EQ(grown, b);
  EXPECT_GE(arena.stats().bytes_committed, 1_MiB);
  void* shrunk = pmrkit::reallocate(arena, grown, 1_MiB, 300, 16);
  EXPECT_EQ(shrunk, b);
  EXPECT_EQ(static_cast<unsigned char*>(shrunk)[199], 0x3C);
  EXPECT_EQ(arena.stats().peak_bytes_in_use, used - 208 + 1_MiB);  // blocks take multiples of 16

  // Another block cannot grow in place, so it moves with its contents.
  std::memset(a, 0x4D, 100);
  void* moved = pmrkit::reallocate(arena, a, 100, 400, 16);
  EXPECT_NE(moved, a);
  EXPECT_EQ(static_cast<unsigned char*>(moved)[99], 0x4D);
}

TEST(VmemArena, RollbackWithAnotherSizeIsASizeMismatch) {
  if (!PMRKIT_CHECKED) GTEST_SKIP() << "violations are reported in checked builds";
  pmrkit::violation_recorder recorder;
  vmem_arena_resource arena({.reserve = 1_MiB});
  void* p = arena.allocate(64, 8);
  const std::size_t used = arena.stats().bytes_in_use;
  arena.deallocate(p, 32, 8);
  ASSERT_EQ(recorder.count(pmrkit::violation_kind::size_mismatch), 1U);
  EXPECT_EQ(recorder.violations()[0].expected_size, 64U);
  EXPECT_EQ(arena.stats().bytes_in_use, used);  // ignored
  arena.deallocate(p, 64, 8);
  EXPECT_EQ(arena.stats().bytes_in_use, used - 64);
}

TEST(VmemArena, AlignmentsUpToTheReservationAreHonouredInTheRange) {
  vmem_arena_resource arena({.reserve = 128_MiB});  // the null overflow: all must fit the range
  for (std::size_t alignment = 1; alignment <= 16_MiB; alignment *= 2) {
    void* p = arena.allocate(alignment + 1, alignment);
    ASSERT_TRUE(pmrkit::is_aligned(p, alignment)) << alignment;
    ASSERT_TRUE(arena.owns(p)) << alignment;
    static_cast<char*>(p)[alignment] = 'x';
  }
  // The least alignment option applies to every block.
  vmem_arena_resource coarse({.reserve = 1_MiB, .alignment = 256});
  for (int i = 0; i < 10; ++i)
    ASSERT_TRUE(pmrkit::is_aligned(coarse.allocate(1, 1), 256));
}

TEST(VmemArena, StatsDescribeTheRange) {
  vmem_arena_resource arena({.reserve = 4_MiB, .commit_step = 64_KiB, .name = "frame"});
  EXPECT_EQ(arena.strategy(), pmrkit::arena_strategy::virtual_memory);
  EXPECT_EQ(arena.name(), "frame");
  (void)arena.allocate(1000, 8);
  (void)arena.allocate(1000, 64);  // 16 bytes of padding
  pmrkit::arena_stats s = arena.stats();
  EXPECT_EQ(s.bytes_reserved, 4_MiB);
  EXPECT_EQ(s.bytes_committed, 64_KiB);
  EXPECT_EQ(s.bytes_in_use, 1024U + 1008U);  // blocks take multiples of 16
  EXPECT_EQ(s.bytes_available, 64_KiB - s.bytes_in_use);
  EXPECT_EQ(s.waste, 0U);
  EXPECT_EQ(s.chunk_count, 1U);
  EXPECT_EQ(s.current_chunk_size, 64_KiB);
  EXPECT_EQ(s.large_bytes_in_use, 0U);
  arena.reset();
  s = arena.stats();
  EXPECT_EQ(s.bytes_in_use, 0U);
  EXPECT_EQ(s.peak_bytes_in_use, 2032U);
  EXPECT_EQ(s.bytes_committed, 64_KiB);  // retain_on_reset's default
}

TEST(VmemArena, ReleaseDecommitsEverythingAndKeepsTheReservationUsable) {
  vmem_arena_resource arena({.reserve = 4_MiB});
  void* first = arena.allocate(1_MiB, 16);
  const pmrkit::arena_checkpoint before = arena.checkpoint();
  arena.release();
  EXPECT_EQ(arena.stats().bytes_committed, 0U);
  EXPECT_EQ(arena.stats().bytes_reserved, 4_MiB);
  EXPECT_FALSE(arena.owns(first));
  EXPECT_EQ(arena.allocate(1_MiB, 16), first);  // the same range, committed again
  EXPECT_NE(arena.checkpoint(), before);        // the marker went stale with the release
}

TEST(VmemArena, ContainersWorkAcrossResets) {
  vmem_arena_resource arena({.reserve = 1_GiB});
  for (int round = 0; round < 3; ++round) {
    {
      std::pmr::map<int, std::pmr::string> map(&arena);
      for (int i = 0; i < 5000; ++i)
        map.emplace(i * 7919 % 5000, std::to_string(i) + " is a value long enough to allocate");
      ASSERT_EQ(map.size(), 5000U);
      ASSERT_EQ(map.begin()->first, 0);
    }
    arena.reset();
  }
}

TEST(VmemArena, InvalidOptionsNameTheField) {
  const auto message_of = [](const vmem_arena_options& options,
                             std::pmr::memory_resource* upstream) -> std::string {
    try {
      vmem_arena_resource arena(options, upstream);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "no exception";
  };
  const auto names = [](const std::string& message, std::string_view field) {
    const std::string prefix = "pmrkit::vmem_arena_resource: " + std::string(field) + " ";
    return message.rfind(prefix, 0) == 0;
  };
  std::pmr::memory_resource* null = std::pmr::null_memory_resource();
  EXPECT_PRED2(names, message_of({.reserve = 0}, null), "reserve");
  EXPECT_PRED2(names, message_of({.reserve = 100, .retain_on_reset = 0}, null), "reserve");
  EXPECT_PRED2(names, message_of({.commit_step = 0}, null), "commit_step");
  EXPECT_PRED2(names, message_of({.alignment = 0}, null), "alignment");
  EXPECT_PRED2(names, message_of({.alignment = 48}, null), "alignment");
  EXPECT_PRED2(names, message_of({.reserve = 1_MiB, .retain_on_reset = 2_MiB}, null),
               "retain_on_reset");
  EXPECT_PRED2(names, message_of({}, nullptr), "upstream");

  // A commit step that is not a whole number of pages is rounded up, not refused.
  vmem_arena_resource rounded({.reserve = 1_MiB, .commit_step = 1000});
  EXPECT_GE(rounded.options().commit_step, 1000U);
  EXPECT_EQ(rounded.options().commit_step & (rounded.options().commit_step - 1), 0U);
}

TEST(VmemArena, ReservationBeyondTheAddressSpaceThrowsOutOfCapacity) {
  for (const std::size_t reserve :
       {std::size_t{1} << 62, std::numeric_limits<std::size_t>::max() - 100}) {
    try {
      vmem_arena_resource arena({.reserve = reserve, .name = "too big"});
      FAIL() << "reserved " << reserve << " bytes";
    } catch (const pmrkit::allocation_error& e) {
      EXPECT_EQ(e.reason(), pmrkit::failure_reason::out_of_capacity);
      EXPECT_EQ(e.resource_name(), "too big");
    }
  }
  EXPECT_TRUE(vmem_arena_resource::available());
}

TEST(VmemArena, HugePagesOptionWorks) {
  vmem_arena_resource arena({.reserve = 64_MiB, .huge_pages = true});
  EXPECT_GE(arena.options().commit_step, 64_KiB);
  auto* p = static_cast<unsigned char*>(arena.allocate(6_MiB, 1));
  if (arena.options().commit_step > 64_KiB) {
    // Rounded to the huge page size, and so is the range's start.
    EXPECT_TRUE(pmrkit::is_aligned(p, arena.options().commit_step));
  }
  std::memset(p, 0x7E, 6_MiB);
  EXPECT_EQ(p[6_MiB - 1], 0x7E);
  arena.reset();
  EXPECT_NE(arena.allocate(1_MiB, 1), nullptr);
}

TEST(VmemArena, ResetMemoryIsFilledWithThePatternInCheckedBuilds) {
  if (!PMRKIT_CHECKED || PMRKIT_HAS_ASAN) GTEST_SKIP() << "checked builds without ASan";
  vmem_arena_resource arena({.reserve = 1_MiB});
  auto* p = static_cast<unsigned char*>(arena.allocate(64, 8));
  std::memset(p, 1, 64);
  arena.reset();  // within retain_on_reset: still committed
  for (int i = 0; i < 64; ++i)
    ASSERT_EQ(p[i], pmrkit::detail::retired_fill);
}

TEST(VmemArenaDeathTest, UseAfterResetIsCaughtUnderAsan) {
  if (!PMRKIT_CHECKED || !PMRKIT_HAS_ASAN) {
    GTEST_SKIP() << "needs a checked build under AddressSanitizer (the asan preset)";
  }
  EXPECT_DEATH(
      {
        vmem_arena_resource arena({.reserve = 1_MiB});
        auto* p = static_cast<volatile char*>(arena.allocate(64, 8));
        arena.reset();
        p[0] = 'x';
      },
      "use-after-poison");
}

TEST(VmemArenaDeathTest, UseAfterResetBeyondRetainFaults) {
  // Decommitted pages are inaccessible again, in every build.
  EXPECT_DEATH(
      {
        vmem_arena_resource arena({.reserve = 1_MiB, .retain_on_reset = 0});
        auto* p = static_cast<volatile char*>(arena.allocate(64, 8));
        arena.reset();
        p[0] = 'x';
      },
      "");
}

// --- Markers never depend on the upstream's addresses (issue 12, bug 1) ----------------------
// Overflow blocks play the part of the chunked arena's dedicated chunks.

using pmrkit_test::carving_upstream;

class VmemMarkers : public ::testing::TestWithParam<carving_upstream::direction> {};

INSTANTIATE_TEST_SUITE_P(Upstreams, VmemMarkers,
                         ::testing::Values(carving_upstream::direction::rising,
                                           carving_upstream::direction::falling),
                         [](const auto& info) {
                           return info.param == carving_upstream::direction::rising ? "rising"
                                                                                    : "falling";
                         });

TEST_P(VmemMarkers, ValidMarkerAfterASecondOverflowBlock) {
  pmrkit::violation_recorder recorder;
  carving_upstream upstream(GetParam());
  vmem_arena_resource arena({.reserve = 64_KiB, .commit_step = 4_KiB}, &upstream);
  (void)arena.allocate(60_KiB, 16);  // most of the range
  (void)arena.allocate(20_KiB, 16);  // O0
  const pmrkit::arena_checkpoint marker = arena.checkpoint();
  (void)arena.allocate(20_KiB, 16);  // O1
  EXPECT_GT(arena.checkpoint(), marker);
  arena.rewind(marker);
  EXPECT_EQ(recorder.size(), 0U);
  EXPECT_EQ(arena.checkpoint(), marker);
  EXPECT_EQ(upstream.blocks_in_use(), 1U) << "O1 went back upstream";
}

TEST_P(VmemMarkers, StaleMarkerAfterALargerOverflowBlockIsIgnored) {
  pmrkit::violation_recorder recorder;
  carving_upstream upstream(GetParam());
  vmem_arena_resource arena({.reserve = 64_KiB, .commit_step = 4_KiB}, &upstream);
  (void)arena.allocate(60_KiB, 16);
  void* o0 = arena.allocate(20_KiB, 16);  // kept live
  std::memset(o0, 0xA0, 20_KiB);
  const pmrkit::arena_checkpoint m0 = arena.checkpoint();
  (void)arena.allocate(20_KiB, 16);  // O1
  const pmrkit::arena_checkpoint m1 = arena.checkpoint();
  arena.rewind(m0);  // m1 is stale now
  void* o2 = arena.allocate(30_KiB, 16);
  std::memset(o2, 0xB0, 30_KiB);
  arena.rewind(m1);
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::stale_checkpoint), PMRKIT_CHECKED ? 1U : 0U);
  EXPECT_EQ(upstream.blocks_in_use(), 2U) << "O0 and O2 are in use";
  EXPECT_TRUE(arena.owns(o0));
  EXPECT_TRUE(arena.owns(o2));
  EXPECT_EQ(static_cast<unsigned char*>(o2)[30_KiB - 1], 0xB0);
}

// Same position, another history: stale in every build.
TEST(VmemArena, MarkerFreedByARewindAndRegrownPastIsStale) {
  if (!PMRKIT_CHECKED) {
    GTEST_SKIP()
        << "unchecked builds keep no marker history: a marker is judged by its place alone";
  }

  pmrkit::violation_recorder recorder;
  vmem_arena_resource arena({.reserve = 1_MiB});
  const pmrkit::arena_checkpoint start = arena.checkpoint();
  (void)arena.allocate(32, 16);
  const pmrkit::arena_checkpoint after_a = arena.checkpoint();
  arena.rewind(start);
  auto* b = static_cast<unsigned char*>(arena.allocate(64, 16));  // covers after_a's position
  std::memset(b, 0xB0, 64);
  arena.rewind(after_a);  // would cut b in half
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::stale_checkpoint), PMRKIT_CHECKED ? 1U : 0U);
  auto* c = static_cast<unsigned char*>(arena.allocate(16, 16));
  EXPECT_FALSE(pmrkit_test::overlap(c, 16, b, 64));
  EXPECT_EQ(b[40], 0xB0);
}

// --- An alignment above the page size survives reset, release and rewind (bug 3) ---------------

TEST(VmemArena, AlignmentAboveThePageSizeSurvivesResetReleaseAndRewind) {
  constexpr std::size_t alignment = 8192;
  // Reservations of different sizes land on different page boundaries, so
  // some of them start off an 8 KiB boundary.
  for (std::size_t pages = 256; pages < 256 + 16; ++pages) {
    vmem_arena_resource arena({.reserve = pages * 4096, .alignment = alignment});
    ASSERT_TRUE(pmrkit::is_aligned(arena.allocate(100, alignment), alignment));
    arena.reset();
    ASSERT_TRUE(pmrkit::is_aligned(arena.allocate(100, 16), alignment)) << "after reset";
    arena.release();
    ASSERT_TRUE(pmrkit::is_aligned(arena.allocate(100, 16), alignment)) << "after release";
    arena.reset();
    const pmrkit::arena_checkpoint origin = arena.checkpoint();
    (void)arena.allocate(100, 16);
    arena.rewind(origin);
    ASSERT_TRUE(pmrkit::is_aligned(arena.allocate(100, 16), alignment)) << "after a rewind";
  }
}

// --- Constructed the obvious ways (issue 12, bug 6) ---------------------------------------------

static_assert(std::is_default_constructible_v<vmem_arena_resource>);
static_assert(std::is_constructible_v<vmem_arena_resource, std::pmr::memory_resource*>);
static_assert(std::is_constructible_v<vmem_arena_resource, test_resource*>);
static_assert(std::is_constructible_v<vmem_arena_resource, vmem_arena_options>);
static_assert(
    std::is_constructible_v<vmem_arena_resource, vmem_arena_options, std::pmr::memory_resource*>);
static_assert(std::is_constructible_v<vmem_arena_resource, vmem_arena_options, test_resource*>);
static_assert(!std::is_copy_constructible_v<vmem_arena_resource> &&
              !std::is_move_constructible_v<vmem_arena_resource>);

TEST(VmemArenaConstruction, TheSixWays) {
  test_resource upstream("upstream");
  vmem_arena_resource a;
  vmem_arena_resource b(&upstream);
  vmem_arena_resource c(vmem_arena_options{.name = "c"});
  vmem_arena_resource d(vmem_arena_options{}, &upstream);
  vmem_arena_resource e({});  // the default options, not a null upstream
  vmem_arena_resource f({}, &upstream);
  EXPECT_EQ(a.upstream_resource(), std::pmr::null_memory_resource());
  EXPECT_EQ(b.upstream_resource(), &upstream);
  EXPECT_EQ(c.upstream_resource(), std::pmr::null_memory_resource());
  EXPECT_EQ(c.name(), "c");
  EXPECT_EQ(d.upstream_resource(), &upstream);
  EXPECT_EQ(e.upstream_resource(), std::pmr::null_memory_resource());
  EXPECT_EQ(f.upstream_resource(), &upstream);
  EXPECT_THROW(vmem_arena_resource g({}, static_cast<std::pmr::memory_resource*>(nullptr)),
               std::invalid_argument);
}

#else  // PMRKIT_HAS_VIRTUAL_MEMORY

TEST(VmemArena, WithoutVirtualMemoryTheConstructorThrowsOutOfCapacity) {
  EXPECT_FALSE(vmem_arena_resource::available());
  try {
    vmem_arena_resource arena({.reserve = 1_MiB});
    FAIL() << "constructed without virtual memory";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::out_of_capacity);
  }
}

#endif  // PMRKIT_HAS_VIRTUAL_MEMORY

}  // namespace
