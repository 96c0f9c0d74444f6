#include <pmr/decorator/trace_resource.hpp>

#include <pmr/core/error.hpp>
#include <pmr/pool/pool_resource.hpp>
#include <pmr/testing/test_resource.hpp>
#include <pmr/testing/violation_recorder.hpp>

#include "conformance/conformance.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory_resource>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <unistd.h>

namespace {

using pmrkit::test_resource;
using pmrkit::trace;
using pmrkit::trace_action;
using pmrkit::trace_record;
using pmrkit::trace_resource;

struct trace_traits {
  using resource_type = trace_resource;
  static constexpr std::string_view name = "pmrkit::trace_resource";
  static constexpr pmrkit::conformance::capabilities caps{.releases_on_destruction = false};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(upstream);
  }
};

using trace_types = ::testing::Types<trace_traits>;
INSTANTIATE_TYPED_TEST_SUITE_P(trace, resource_conformance, trace_types,
                               pmrkit::conformance::traits_names);

std::filesystem::path temp_path(const std::string& stem) {
  return std::filesystem::temp_directory_path() /
         (stem + "." + std::to_string(::getpid()) + ".pmrkit-trace");
}

/// A known workload: the records it must produce, checked exactly.
TEST(TraceResource, RecordsAKnownWorkloadExactly) {
  test_resource upstream("upstream");
  trace_resource traced(&upstream);
  void* a = traced.allocate(24, 8);
  void* b = traced.allocate(100, 64);
  traced.deallocate(a, 24, 8);
  void* c = traced.allocate(24, 8);  // may reuse a's address: a new id all the same
  traced.deallocate(b, 100, 64);
  traced.deallocate(c, 24, 8);

  const trace t = traced.recorded();
  ASSERT_EQ(t.records.size(), 6u);
  const trace_action A = trace_action::allocate;
  const trace_action D = trace_action::deallocate;
  const struct {
    trace_action action;
    std::uint64_t id, bytes, alignment, partner;
  } expected[] = {{A, 1, 24, 8, 2}, {A, 2, 100, 64, 4}, {D, 1, 24, 8, 0},
                  {A, 3, 24, 8, 5}, {D, 2, 100, 64, 1}, {D, 3, 24, 8, 3}};
  for (std::size_t i = 0; i < 6; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(t.records[i].action, expected[i].action);
    EXPECT_EQ(t.records[i].id, expected[i].id);
    EXPECT_EQ(t.records[i].bytes, expected[i].bytes);
    EXPECT_EQ(t.records[i].alignment, expected[i].alignment);
    EXPECT_EQ(t.records[i].partner, expected[i].partner);
    EXPECT_EQ(t.records[i].thread, 0u);
    if (i > 0) {
      EXPECT_GE(t.records[i].nanoseconds, t.records[i - 1].nanoseconds);
    }
  }
  EXPECT_EQ(t.header.origin, pmrkit::trace_origin::resource);
  EXPECT_EQ(t.header.pid, static_cast<std::uint32_t>(::getpid()));
  const pmrkit::trace_stats s = traced.stats();
  EXPECT_EQ(s.allocations, 3u);
  EXPECT_EQ(s.deallocations, 3u);
  EXPECT_EQ(s.blocks_in_use, 0u);
  EXPECT_EQ(s.bytes_in_use, 0u);
  EXPECT_EQ(s.records, 6u);
  EXPECT_EQ(s.trace_bytes, 32u + 6u * 32u);
  EXPECT_EQ(s.dropped_records, 0u);
  EXPECT_EQ(upstream.blocks_in_use(), 0u);
}

TEST(TraceResource, AFailedAllocationIsRecordedAndItsErrorGoesOn) {
  test_resource upstream("upstream");
  trace_resource traced(&upstream);
  upstream.set_allocation_limit(1);
  void* p = traced.allocate(16, 16);
  EXPECT_THROW((void)traced.allocate(32, 8), pmrkit::allocation_error);
  upstream.set_allocation_limit(-1);
  traced.deallocate(p, 16, 16);
  const trace t = traced.recorded();
  ASSERT_EQ(t.records.size(), 3u);
  EXPECT_EQ(t.records[1].action, trace_action::failed_allocation);
  EXPECT_EQ(t.records[1].bytes, 32u);
  EXPECT_EQ(t.records[1].partner, trace_record::no_partner);
  EXPECT_EQ(traced.stats().failed_allocations, 1u);
  EXPECT_EQ(traced.stats().allocations, 1u);
}

TEST(TraceResource, AForeignPointerIsAViolationAndIsNotPassedOn) {
  test_resource upstream("upstream");
  trace_resource traced({.name = "traced"}, &upstream);
  pmrkit::violation_recorder recorder;
  void* other = upstream.allocate(8, 8);
  traced.deallocate(other, 8, 8);
  ASSERT_EQ(recorder.count(pmrkit::violation_kind::foreign_pointer), 1u);
  EXPECT_EQ(recorder.violations()[0].resource_name, "traced");
  EXPECT_EQ(upstream.blocks_in_use(), 1u);  // not passed on
  EXPECT_TRUE(traced.recorded().records.empty());
  upstream.deallocate(other, 8, 8);
}

TEST(TraceResource, AMismatchedFreeIsAViolationIgnoredAndTheTraceStaysReadable) {
  test_resource upstream("upstream");
  trace_resource traced({.name = "traced"}, &upstream);
  pmrkit::violation_recorder recorder;
  void* p = traced.allocate(32, 16);
  traced.deallocate(p, 4096, 16);
  traced.deallocate(p, 32, 64);
  ASSERT_EQ(recorder.size(), 2u);
  EXPECT_EQ(recorder.violations()[0].kind, pmrkit::violation_kind::size_mismatch);
  EXPECT_EQ(recorder.violations()[0].expected_size, 32u);
  EXPECT_EQ(recorder.violations()[1].kind, pmrkit::violation_kind::alignment_mismatch);
  EXPECT_EQ(recorder.violations()[1].expected_alignment, 16u);
  EXPECT_EQ(upstream.blocks_in_use(), 1u);  // neither was passed on
  EXPECT_EQ(traced.stats().bytes_in_use, 32u);
  traced.deallocate(p, 32, 16);  // still live: freed properly now
  EXPECT_EQ(upstream.blocks_in_use(), 0u);
  const trace t = traced.recorded();
  ASSERT_EQ(t.records.size(), 2u);
  EXPECT_EQ(t.records[1].partner, 0u);
}

TEST(TraceResource, StreamsToAFileThatReadTraceReadsBack) {
  const std::filesystem::path path = temp_path("stream");
  {
    trace_resource traced({.path = path.string()});
    std::pmr::map<int, std::pmr::string> m(&traced);
    for (int i = 0; i < 3000; ++i)
      m.emplace(i, std::pmr::string(40, 'x'));  // > one 64 KiB buffer
    traced.flush();
    EXPECT_EQ(traced.path(), path.string());
    const trace midway = pmrkit::read_trace(path);
    EXPECT_EQ(midway.records.size(), traced.stats().records);
  }
  const trace t = pmrkit::read_trace(path);
  std::size_t allocations = 0;
  std::size_t frees = 0;
  for (const trace_record& r : t.records) {
    allocations += r.action == trace_action::allocate;
    frees += r.action == trace_action::deallocate;
    if (r.action == trace_action::allocate) {
      EXPECT_NE(r.partner, trace_record::no_partner);
    }
  }
  EXPECT_EQ(allocations, 6000u);  // a node and a string buffer per element
  EXPECT_EQ(frees, 6000u);
  std::filesystem::remove(path);
}

TEST(TraceResource, WithoutTimestampsEveryRecordSaysZero) {
  trace_resource traced({.timestamps = false});
  for (int i = 0; i < 100; ++i)
    traced.deallocate(traced.allocate(64, 8), 64, 8);
  const trace t = traced.recorded();
  ASSERT_EQ(t.records.size(), 200u);
  for (const trace_record& r : t.records)
    EXPECT_EQ(r.nanoseconds, 0u);
}

TEST(TraceResource, AFailedWriteThrowsFromFlushAndCountsTheRecordsLost) {
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  trace_resource traced({.path = "/dev/full"});
  for (int i = 0; i < 10; ++i)
    traced.deallocate(traced.allocate(64, 8), 64, 8);
  EXPECT_EQ(traced.stats().dropped_records, 0u);  // still in the buffer
  EXPECT_THROW(traced.flush(), std::system_error);
  EXPECT_EQ(traced.stats().dropped_records, 20u);
  traced.deallocate(traced.allocate(64, 8), 64, 8);  // still serves, and counts what it drops
  EXPECT_EQ(traced.stats().dropped_records, 22u);
  EXPECT_EQ(traced.stats().allocations, 11u);
}

TEST(TraceResource, AnUnopenablePathThrowsSystemErrorNamingIt) {
  try {
    trace_resource traced({.path = "/nonexistent-folder/x.trace"});
    FAIL() << "no exception";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-folder/x.trace"), std::string::npos);
  }
}

TEST(TraceResource, ThreadsAreNumberedAndEveryFreeIsPaired) {
  pmrkit::pool_resource pool({.block_size = 64});
  trace_resource traced(&pool);  // the pool is not thread-safe: one thread at a time below
  std::vector<void*> from_main;
  for (int i = 0; i < 10; ++i)
    from_main.push_back(traced.allocate(64, 8));
  std::thread worker([&] {
    for (void* p : from_main)
      traced.deallocate(p, 64, 8);  // freed by another thread
    void* q = traced.allocate(64, 8);
    traced.deallocate(q, 64, 8);
  });
  worker.join();
  const trace t = traced.recorded();
  ASSERT_EQ(t.records.size(), 22u);
  std::set<std::uint32_t> threads;
  for (const trace_record& r : t.records)
    threads.insert(r.thread);
  EXPECT_EQ(threads, (std::set<std::uint32_t>{0, 1}));
  EXPECT_EQ(t.records[0].thread, 0u);
  EXPECT_EQ(t.records[10].thread, 1u);
  for (std::size_t i = 0; i < 10; ++i)
    EXPECT_EQ(t.records[10 + i].partner, i);
}

TEST(TraceResource, ManyLiveBlocksGrowTheTable) {
  trace_resource traced;
  std::vector<void*> blocks;
  for (int i = 0; i < 20000; ++i)
    blocks.push_back(traced.allocate(16, 8));
  for (std::size_t i = 0; i < blocks.size(); i += 2)
    traced.deallocate(blocks[i], 16, 8);
  for (std::size_t i = 1; i < blocks.size(); i += 2)
    traced.deallocate(blocks[i], 16, 8);
  const trace t = traced.recorded();
  ASSERT_EQ(t.records.size(), 40000u);
  EXPECT_EQ(traced.stats().blocks_in_use, 0u);
  EXPECT_EQ(t.records[20000].id, 1u);
  EXPECT_EQ(t.records[20000].partner, 0u);
  EXPECT_EQ(t.records[39999].partner, 19999u);
}

}  // namespace
