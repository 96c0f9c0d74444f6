// docs/errors.md, "Bad requests to allocate": each row's test, named after it, run against
// every memory resource of pmrkit (zoo.hpp) over std::pmr::new_delete_resource() (under ASan,
// errors_test::heap() in front of it).
#include <pmr/core/error.hpp>
#include <pmr/decorator/trace_resource.hpp>
#include <pmr/testing/violation_recorder.hpp>

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <set>

#include "errors/errors_test_support.hpp"
#include "errors/zoo.hpp"

namespace {

using errors_test::expect_allocation_error;
using errors_test::expect_usable;
using pmrkit::failure_reason;
const std::size_t size_max = errors_test::opaque(std::numeric_limits<std::size_t>::max());

// The zoo's trace_resource, to check what it recorded; nullptr for every other resource.
const pmrkit::trace_resource* as_trace(const std::pmr::memory_resource& r) {
  return dynamic_cast<const pmrkit::trace_resource*>(&r);
}

// Runs `check(resource)` for each resource of the zoo over new/delete.
template <class Check>
void for_every_resource(Check&& check) {
  for (const errors_test::entry& e : errors_test::every_resource()) {
    SCOPED_TRACE(e.name);
    const std::unique_ptr<errors_test::subject> s = e.make(errors_test::heap());
    check(e, *s->resource);
  }
}

TEST(Allocate, AlignmentNotPowerOfTwo) {
  for_every_resource([](const errors_test::entry&, std::pmr::memory_resource& r) {
    expect_allocation_error([&] { (void)r.allocate(16, 3); }, failure_reason::bad_alignment);
    expect_allocation_error([&] { (void)r.allocate(64, 48); }, failure_reason::bad_alignment);
    expect_usable(r);
  });
}

TEST(Allocate, AlignmentZero) {
  for_every_resource([](const errors_test::entry&, std::pmr::memory_resource& r) {
    expect_allocation_error([&] { (void)r.allocate(16, 0); }, failure_reason::bad_alignment);
    expect_usable(r);
  });
}

// 8192 is past every strategy's own limit (4096): the pools forward such a request to their
// upstream, the arenas give it a dedicated chunk, the page sources map it; shm_resource, whose
// segment is only page-aligned, refuses it.
TEST(Allocate, AlignmentAboveWhatTheResourceServes) {
  for_every_resource([](const errors_test::entry& e, std::pmr::memory_resource& r) {
    if (e.name == "shm_resource") {
      expect_allocation_error([&] { (void)r.allocate(16, 8192); }, failure_reason::bad_alignment);
    } else {
      void* p = r.allocate(16, 8192);
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 8192, 0u);
      r.deallocate(p, 16, 8192);
    }
    expect_usable(r);
  });
}

// A zero-size request is a real block: non-null, aligned, freed with size 0 without a violation.
TEST(Allocate, SizeZero) {
  const pmrkit::violation_recorder recorder;
  for_every_resource([](const errors_test::entry&, std::pmr::memory_resource& r) {
    void* p = r.allocate(0, 64);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 64, 0u);
    r.deallocate(p, 0, 64);
    expect_usable(r);
  });
  EXPECT_TRUE(recorder.empty());
}

// A size above PTRDIFF_MAX, the largest object C++ allows (so that rounding it to an alignment
// overflows nowhere), is size_overflow everywhere, decorators over new_delete_resource()
// included: libstdc++'s aligned operator new rounds SIZE_MAX up, wraps and returns a tiny block,
// which statistics, synchronized, size_router, fallback and pressure returned before
// check_request refused such sizes.
TEST(Allocate, SizeAbovePtrdiffMax) {
  const std::size_t above = errors_test::opaque(std::size_t{1} << 63);  // PTRDIFF_MAX + 1
  for_every_resource([&](const errors_test::entry&, std::pmr::memory_resource& r) {
    expect_allocation_error([&] { (void)r.allocate(size_max, 8); }, failure_reason::size_overflow);
    expect_allocation_error([&] { (void)r.allocate(size_max - 7, 16); },
                            failure_reason::size_overflow);
    expect_allocation_error([&] { (void)r.allocate(size_max - 4000, 4096); },
                            failure_reason::size_overflow);
    expect_allocation_error([&] { (void)r.allocate(size_max - 100, 64); },
                            failure_reason::size_overflow);
    expect_allocation_error([&] { (void)r.allocate(above, 8); }, failure_reason::size_overflow);
    if (const pmrkit::trace_resource* t = as_trace(r)) {
      EXPECT_EQ(t->stats().records, 0u) << "check_request's refusals reached the trace";
    }
    expect_usable(r);
  });
}

// A size just under PTRDIFF_MAX whose bookkeeping (a header, guard bytes, a dedicated chunk)
// takes it past: an allocation_error, never a block (before allocate_from_upstream checked what
// it passes on, the pools and the buddy passed SIZE_MAX - 36 at 64 to new_delete_resource(), got
// a tiny block and wrote their header past it; test_resource crashed).
TEST(Allocate, SizeAndBookkeepingOverflow) {
  const std::set<failure_reason> expected{
      failure_reason::size_overflow, failure_reason::out_of_capacity,
      failure_reason::upstream_failed, failure_reason::budget_exceeded};
  const auto ptrdiff_max = static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max());
  const std::size_t near = errors_test::opaque(ptrdiff_max - 100);
  for_every_resource([&](const errors_test::entry&, std::pmr::memory_resource& r) {
    for (const std::size_t alignment : {std::size_t{64}, std::size_t{16}}) {
      try {
        void* p = r.allocate(near, alignment);
        ADD_FAILURE() << "a block of PTRDIFF_MAX - 100 bytes at " << p;
      } catch (const pmrkit::allocation_error& error) {
        EXPECT_TRUE(expected.contains(error.reason())) << error.what();
      } catch (const std::bad_alloc& error) {
        ADD_FAILURE() << "a plain std::bad_alloc: " << error.what();
      }
    }
    expect_usable(r);
  });
}

// A size no memory can hold (2^62 bytes): out_of_capacity (the OS, a region, a segment),
// upstream_failed (new_delete_resource's std::bad_alloc, nested) or budget_exceeded.
// trace_resource records the upstream's refusal as a failed allocation first.
TEST(Allocate, SizeNoMemoryHolds) {
  const std::set<failure_reason> expected{failure_reason::out_of_capacity,
                                          failure_reason::upstream_failed,
                                          failure_reason::budget_exceeded};
  for_every_resource([&](const errors_test::entry&, std::pmr::memory_resource& r) {
    try {
      void* p = r.allocate(std::size_t{1} << 62, 8);
      ADD_FAILURE() << "a block of 2^62 bytes at " << p;
    } catch (const pmrkit::allocation_error& error) {
      EXPECT_TRUE(expected.contains(error.reason())) << error.what();
      if (error.reason() == failure_reason::upstream_failed) {
        EXPECT_THROW(std::rethrow_if_nested(error), std::bad_alloc);
      }
    } catch (const std::bad_alloc& error) {
      ADD_FAILURE() << "a plain std::bad_alloc: " << error.what();
    }
    if (const pmrkit::trace_resource* t = as_trace(r)) {
      EXPECT_EQ(t->stats().failed_allocations, 1u);
      EXPECT_EQ(t->stats().allocations, 0u);
      const pmrkit::trace recorded = t->recorded();
      ASSERT_EQ(recorded.records.size(), 1u);
      EXPECT_EQ(recorded.records[0].action, pmrkit::trace_action::failed_allocation);
      EXPECT_EQ(recorded.records[0].bytes, std::size_t{1} << 62);
    }
    expect_usable(r);
  });
}

}  // namespace
