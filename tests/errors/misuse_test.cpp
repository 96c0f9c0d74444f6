// docs/errors.md, "Misuse on deallocation": each row's test, named after it. Every resource of
// the zoo runs over a strict test_resource, so that what a decorator passes down is judged by
// the upstream. Checked builds (PMRKIT_CHECKED) report to the violation handler; unchecked builds
// run only the resources whose behaviour is defined there (test_resource and guarded_resource
// check in every build, the page sources ignore what they cannot find, and the decorators pass
// the call to the strict upstream; trace_resource looks every freed pointer up in its table of
// live blocks in every build); for the others the misuse is undefined behaviour and is not run.
#include <pmr/arena/chunked_arena_resource.hpp>
#include <pmr/arena/stack_resource.hpp>
#include <pmr/arena/vmem_arena_resource.hpp>
#include <pmr/core/config.hpp>
#include <pmr/decorator/guarded_resource.hpp>
#include <pmr/decorator/trace_resource.hpp>
#include <pmr/pool/object_pool.hpp>
#include <pmr/testing/test_resource.hpp>
#include <pmr/testing/violation_recorder.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "errors/errors_test_support.hpp"
#include "errors/zoo.hpp"

namespace {

using pmrkit::violation_kind;
using expectations = std::map<std::string, std::optional<violation_kind>>;

alignas(4096) std::byte foreign_buffer[8192];

// The kinds recorded, in order.
std::vector<violation_kind> kinds(const pmrkit::violation_recorder& recorder) {
  std::vector<violation_kind> out;
  for (const auto& v : recorder.violations())
    out.push_back(v.kind);
  return out;
}

// trace_resource after a misuse, which it ignores: no more than the two blocks' 64 bytes in use,
// and its trace reads back (the misused call was not recorded).
void check_trace(const pmrkit::trace_resource& t) {
  EXPECT_LE(t.stats().bytes_in_use, 64u);
  try {
    EXPECT_EQ(t.recorded().records.size(), t.stats().records);
  } catch (const pmrkit::trace_error& e) {
    ADD_FAILURE() << "the trace does not read back: " << e.what();
  }
}

// For each resource of `expected` (the others are not run in this build): allocates two blocks
// of 32 bytes at 8, runs `misuse(resource, newest)`, and checks that exactly the expected
// violation (or none) was reported and that the resource still serves (trace_resource: and that
// its trace reads back).
template <class Misuse>
void check_misuse(const expectations& expected, Misuse&& misuse) {
#if PMRKIT_CHECKED
  for (const errors_test::entry& e : errors_test::every_resource())
    EXPECT_TRUE(expected.contains(e.name)) << e.name << " has no row";
#endif
  for (const errors_test::entry& e : errors_test::every_resource()) {
    const auto found = expected.find(e.name);
    if (found == expected.end()) continue;  // undefined behaviour in this build: not run
    SCOPED_TRACE(e.name);
    pmrkit::violation_recorder recorder;
    {
      pmrkit::test_resource strict(pmrkit::test_options{.name = "strict"},
                                   std::pmr::new_delete_resource());
      const std::unique_ptr<errors_test::subject> s = e.make(&strict);
      std::pmr::memory_resource& r = *s->resource;
      void* older = r.allocate(32, 8);
      void* newest = r.allocate(32, 8);
      recorder.clear();
      misuse(r, newest);
      const std::vector<violation_kind> got = kinds(recorder);
      if (found->second.has_value()) {
        EXPECT_EQ(got, std::vector<violation_kind>{*found->second});
      } else {
        EXPECT_TRUE(got.empty()) << "first: " << pmrkit::to_string(got.front());
      }
      if (const auto* t = dynamic_cast<const pmrkit::trace_resource*>(&r)) check_trace(*t);
      recorder.clear();
      errors_test::expect_usable(r);
      EXPECT_TRUE(recorder.empty()) << "the resource is usable but reports a violation";
      (void)older;  // freed by the resource's release() or reported as a leak by `strict`
    }
  }
}

// Every name in the zoo has a row in each table below.
const std::vector<std::string> strategies_with_undefined_unchecked_misuse{
    "chunked_arena_resource", "local_arena<1024>",        "concurrent_arena_resource",
    "vmem_arena_resource",    "stack_resource",           "make_arena",
    "pool_resource",          "multipool_resource",       "concurrent_pool_resource",
    "buddy_resource",         "size_router_resource",     "fallback_resource",
    "region_resource",        "memory_system.resource()", "shm_resource"};

// In unchecked builds drops the resources whose misuse is undefined behaviour there, and gives
// the page sources (which ignore a block they cannot find) no report.
expectations for_this_build(expectations checked, std::optional<violation_kind> pages_unchecked) {
#if PMRKIT_CHECKED
  (void)pages_unchecked;
  return checked;
#else
  for (const std::string& name : strategies_with_undefined_unchecked_misuse)
    checked.erase(name);
  checked["page_resource"] = pages_unchecked;
  checked["locked_page_resource"] = pages_unchecked;
  return checked;
#endif
}

constexpr std::optional<violation_kind> none = std::nullopt;

// trace_resource reports it itself (its table of live blocks, every build) and does not pass it
// on: the strict upstream would report a second one.
TEST(Misuse, ForeignPointer) {
  constexpr auto k = violation_kind::foreign_pointer;
  const expectations expected = for_this_build({{"chunked_arena_resource", k},
                                                {"local_arena<1024>", k},
                                                {"concurrent_arena_resource", k},
                                                {"vmem_arena_resource", k},
                                                {"stack_resource", k},
                                                {"make_arena", k},
                                                {"pool_resource", k},
                                                {"multipool_resource", k},
                                                {"concurrent_pool_resource", k},
                                                {"buddy_resource", k},
                                                {"budget_resource", k},
                                                {"statistics_resource", k},
                                                {"synchronized_resource", k},
                                                {"trace_resource", k},
                                                {"size_router_resource", k},
                                                {"fallback_resource", k},
                                                {"pressure_resource", k},
                                                {"guarded_resource", k},
                                                {"test_resource", k},
                                                {"page_resource", k},
                                                {"locked_page_resource", k},
                                                {"region_resource", k},
                                                {"memory_system.resource()", k},
                                                {"shm_resource", k}},
                                               none);
  check_misuse(expected, [](std::pmr::memory_resource& r, void*) {
    r.deallocate(foreign_buffer + 4096, 32, 8);
  });
}

// The stack calls a double free a foreign pointer, and so does trace_resource (the block is no
// longer in its table of live blocks: reported in every build, the second free not passed on).
TEST(Misuse, DoubleFree) {
  constexpr auto k = violation_kind::double_free;
  const expectations expected = for_this_build({{"chunked_arena_resource", k},
                                                {"local_arena<1024>", k},
                                                {"concurrent_arena_resource", k},
                                                {"vmem_arena_resource", k},
                                                {"stack_resource", violation_kind::foreign_pointer},
                                                {"make_arena", k},
                                                {"pool_resource", k},
                                                {"multipool_resource", k},
                                                {"concurrent_pool_resource", k},
                                                {"buddy_resource", k},
                                                {"budget_resource", k},
                                                {"statistics_resource", k},
                                                {"synchronized_resource", k},
                                                {"trace_resource", violation_kind::foreign_pointer},
                                                {"size_router_resource", k},
                                                {"fallback_resource", k},
                                                {"pressure_resource", k},
                                                {"guarded_resource", k},
                                                {"test_resource", k},
                                                {"page_resource", k},
                                                {"locked_page_resource", k},
                                                {"region_resource", k},
                                                {"memory_system.resource()", k},
                                                {"shm_resource", k}},
                                               none);
  check_misuse(expected, [](std::pmr::memory_resource& r, void* p) {
    r.deallocate(p, 32, 8);
    r.deallocate(p, 32, 8);
  });
}

// A second free of an arena's newest block: the first rolled it back, so the block lies at or
// past the position, no block of the arena's any more: double_free in checked builds (until
// 66a1e9e it was ignored like a free of an older block). Unchecked builds ignore it.
TEST(Misuse, ArenaSecondFreeOfNewestBlock) {
  pmrkit::chunked_arena_resource chunked;
  std::vector<pmrkit::arena_resource*> arenas{&chunked};
  std::optional<pmrkit::vmem_arena_resource> vmem;
  if (pmrkit::vmem_arena_resource::available()) {
    vmem.emplace(pmrkit::vmem_arena_options{.reserve = std::size_t{1} << 24});
    arenas.push_back(&*vmem);
  }
  for (pmrkit::arena_resource* arena : arenas) {
    SCOPED_TRACE(arena->name());
    void* p = arena->allocate(32, 8);
    arena->deallocate(p, 32, 8);
    const pmrkit::violation_recorder recorder;
    arena->deallocate(p, 32, 8);
#if PMRKIT_CHECKED
    EXPECT_EQ(kinds(recorder), std::vector<violation_kind>{violation_kind::double_free});
#else
    EXPECT_TRUE(recorder.empty());
#endif
    EXPECT_EQ(arena->stats().bytes_in_use, 0u);
    errors_test::expect_usable(*arena);
  }
}

// 32 bytes freed as 4096: another size class or another route. The size router sends it to its
// large resource (here the strict upstream: a foreign pointer there), the memory system's port
// to another tier (a foreign pointer there). budget_resource keeps its use from wrapping (before
// the fix it subtracted 4096 from 64 and refused every request afterwards).
TEST(Misuse, SizeMismatchAcrossClasses) {
  constexpr auto k = violation_kind::size_mismatch;
  const expectations expected =
      for_this_build({{"chunked_arena_resource", k},
                      {"local_arena<1024>", k},
                      {"concurrent_arena_resource", k},
                      {"vmem_arena_resource", k},
                      {"stack_resource", k},
                      {"make_arena", k},
                      {"pool_resource", k},
                      {"multipool_resource", k},
                      {"concurrent_pool_resource", k},
                      {"buddy_resource", k},
                      {"budget_resource", k},
                      {"statistics_resource", k},
                      {"synchronized_resource", k},
                      {"trace_resource", k},
                      {"size_router_resource", violation_kind::foreign_pointer},
                      {"fallback_resource", k},
                      {"pressure_resource", k},
                      {"guarded_resource", k},
                      {"test_resource", k},
                      {"page_resource", k},
                      {"locked_page_resource", k},
                      {"region_resource", k},
                      {"memory_system.resource()", violation_kind::foreign_pointer},
                      {"shm_resource", k}},
                     none);
  check_misuse(expected, [](std::pmr::memory_resource& r, void* p) { r.deallocate(p, 4096, 8); });
}

// 32 bytes freed as 24: the same block size for the pools, the buddy and shm, which cannot tell
// and free the block; the arenas round both to the same extent (16 bytes) and roll it back.
TEST(Misuse, SizeMismatchWithinClass) {
  constexpr auto k = violation_kind::size_mismatch;
  const expectations expected = for_this_build({{"chunked_arena_resource", none},
                                                {"local_arena<1024>", none},
                                                {"concurrent_arena_resource", none},
                                                {"vmem_arena_resource", none},
                                                {"stack_resource", k},
                                                {"make_arena", none},
                                                {"pool_resource", none},
                                                {"multipool_resource", none},
                                                {"concurrent_pool_resource", none},
                                                {"buddy_resource", none},
                                                {"budget_resource", k},
                                                {"statistics_resource", k},
                                                {"synchronized_resource", k},
                                                {"trace_resource", k},
                                                {"size_router_resource", none},
                                                {"fallback_resource", none},
                                                {"pressure_resource", k},
                                                {"guarded_resource", k},
                                                {"test_resource", k},
                                                {"page_resource", k},
                                                {"locked_page_resource", k},
                                                {"region_resource", none},
                                                {"memory_system.resource()", none},
                                                {"shm_resource", none}},
                                               none);
  check_misuse(expected, [](std::pmr::memory_resource& r, void* p) { r.deallocate(p, 24, 8); });
}

// 32 bytes at 8 freed at 64: the pools and shm route it as an over-aligned request (a size
// mismatch there); the buddy and the arenas do not look at the alignment; the size router sends
// it to its large resource.
TEST(Misuse, AlignmentMismatch) {
  constexpr auto k = violation_kind::alignment_mismatch;
  constexpr auto size = violation_kind::size_mismatch;
  const expectations expected =
      for_this_build({{"chunked_arena_resource", none},
                      {"local_arena<1024>", none},
                      {"concurrent_arena_resource", none},
                      {"vmem_arena_resource", none},
                      {"stack_resource", k},
                      {"make_arena", none},
                      {"pool_resource", size},
                      {"multipool_resource", size},
                      {"concurrent_pool_resource", size},
                      {"buddy_resource", none},
                      {"budget_resource", k},
                      {"statistics_resource", k},
                      {"synchronized_resource", k},
                      {"trace_resource", k},
                      {"size_router_resource", violation_kind::foreign_pointer},
                      {"fallback_resource", size},
                      {"pressure_resource", k},
                      {"guarded_resource", k},
                      {"test_resource", k},
                      {"page_resource", k},
                      {"locked_page_resource", k},
                      {"region_resource", none},
                      {"memory_system.resource()", size},
                      {"shm_resource", size}},
                     none);
  check_misuse(expected, [](std::pmr::memory_resource& r, void* p) { r.deallocate(p, 32, 64); });
}

// A marker from before a reset() is stale: checked builds report it and change nothing.
// Unchecked builds judge it by its place alone (docs/contract.md §4): not run there.
// The stale-marker check of one arena or stack: a marker from before a reset().
template <class Arena>
void check_stale_marker(Arena& arena) {
  (void)arena.allocate(64, 8);
  const pmrkit::arena_checkpoint marker = arena.checkpoint();
  (void)arena.allocate(64, 8);
  arena.reset();
  (void)arena.allocate(200, 8);
  const std::size_t used = arena.stats().bytes_in_use;
  const pmrkit::violation_recorder recorder;
  arena.rewind(marker);
  EXPECT_EQ(kinds(recorder), std::vector<violation_kind>{violation_kind::stale_checkpoint});
  EXPECT_EQ(arena.stats().bytes_in_use, used);
}

TEST(Misuse, RewindToStaleMarker) {
#if PMRKIT_CHECKED
  pmrkit::chunked_arena_resource chunked;
  pmrkit::stack_resource stack;
  {
    SCOPED_TRACE("chunked_arena_resource");
    check_stale_marker(chunked);
  }
  if (pmrkit::vmem_arena_resource::available()) {
    SCOPED_TRACE("vmem_arena_resource");
    pmrkit::vmem_arena_resource vmem({.reserve = std::size_t{1} << 24});
    check_stale_marker(vmem);
  }
  {
    SCOPED_TRACE("stack_resource");
    check_stale_marker(stack);
  }
#else
  GTEST_SKIP() << "unchecked build: a stale marker is judged by its place (docs/errors.md)";
#endif
}

// A stack freed out of LIFO order: out_of_order in checked builds, the block left in place.
// Unchecked builds leave it until the newer blocks go (no report): run there too.
TEST(Misuse, StackPopOutOfOrder) {
  pmrkit::stack_resource stack;
  void* a = stack.allocate(64, 8);
  void* b = stack.allocate(64, 8);
  const std::size_t used = stack.stats().bytes_in_use;
  {
    const pmrkit::violation_recorder recorder;
    stack.deallocate(a, 64, 8);
#if PMRKIT_CHECKED
    EXPECT_EQ(kinds(recorder), std::vector<violation_kind>{violation_kind::out_of_order});
#else
    EXPECT_TRUE(recorder.empty());
#endif
  }
  EXPECT_EQ(stack.stats().bytes_in_use, used);
  stack.deallocate(b, 64, 8);
  errors_test::expect_usable(stack);
}

struct widget {
  int value = 0;
};

TEST(Misuse, ObjectPoolDestroyForeign) {
#if PMRKIT_CHECKED
  pmrkit::object_pool<widget> pool;
  widget* kept = pool.acquire();
  widget stranger;
  const pmrkit::violation_recorder recorder;
  pool.destroy(&stranger);
  EXPECT_EQ(kinds(recorder), std::vector<violation_kind>{violation_kind::foreign_pointer});
  EXPECT_EQ(pool.live(), 1u);
  pool.destroy(kept);
#else
  GTEST_SKIP() << "unchecked build: destroying a foreign pointer is undefined behaviour";
#endif
}

TEST(Misuse, ObjectPoolDestroyedWithLiveObjects) {
  const pmrkit::violation_recorder recorder;
  {
    pmrkit::object_pool<widget> pool;
    (void)pool.acquire();
    (void)pool.acquire();
  }
#if PMRKIT_CHECKED
  ASSERT_EQ(kinds(recorder), std::vector<violation_kind>{violation_kind::leak});
  EXPECT_EQ(recorder.violations().front().size, 2 * sizeof(widget));
#else
  EXPECT_TRUE(recorder.empty());
#endif
}

// test_resource checks in every build.
TEST(Misuse, TestResourceGuardBytesOverwritten) {
  pmrkit::test_resource strict("strict", std::pmr::new_delete_resource());
  auto* p = static_cast<unsigned char*>(strict.allocate(16, 8));
  const pmrkit::violation_recorder recorder;
  p[16] = 0x42;  // one past the end: the back guard
  strict.deallocate(p, 16, 8);
  EXPECT_EQ(kinds(recorder), std::vector<violation_kind>{violation_kind::buffer_overrun});
}

TEST(Misuse, TestResourceDestroyedWithBlocks) {
  const pmrkit::violation_recorder recorder;
  {
    pmrkit::test_resource strict("strict", std::pmr::new_delete_resource());
    (void)strict.allocate(40, 8);
  }
  ASSERT_EQ(kinds(recorder), std::vector<violation_kind>{violation_kind::leak});
  EXPECT_EQ(recorder.violations().front().size, 40u);
}

// guarded_resource checks the padding between a block and its guard page in every build: a
// write past the block (guard after) is buffer_overrun on free, and the block is still freed.
TEST(Misuse, GuardedPaddingOverwritten) {
  pmrkit::guarded_resource guarded;
  auto* p = static_cast<unsigned char*>(guarded.allocate(13, 16));  // 3 bytes of padding after
  const pmrkit::violation_recorder recorder;
  p[13] = 0x42;
  guarded.deallocate(p, 13, 16);
  EXPECT_EQ(kinds(recorder), std::vector<violation_kind>{violation_kind::buffer_overrun});
  EXPECT_EQ(guarded.stats().blocks_in_use, 0u);
}

}  // namespace
