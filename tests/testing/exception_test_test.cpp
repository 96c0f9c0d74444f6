#include <pmr/testing/exception_test.hpp>
#include <pmr/testing/violation_recorder.hpp>

#include <gtest/gtest.h>

#include <list>
#include <map>
#include <memory_resource>
#include <string>
#include <vector>

namespace {

using pmrkit::test_resource;
using pmrkit::violation_kind;

// Options of the usual subject here, over new_delete.
constexpr pmrkit::test_options recording{.name = "exception test"};

TEST(ExceptionTest, FailsEveryAllocationInTurnUntilTheBodyCompletes) {
  test_resource resource(recording, std::pmr::new_delete_resource());
  std::vector<std::size_t> allocations_seen;
  const std::size_t runs = pmrkit::exception_test(resource, [&] {
    const std::size_t before = resource.stats().allocations;
    std::pmr::vector<std::pmr::string> strings(&resource);
    strings.reserve(3);
    for (int i = 0; i < 3; ++i)
      strings.emplace_back(64, 'a');
    allocations_seen.push_back(resource.stats().allocations - before);
  });
  // One vector buffer plus three string buffers: four allocations, so four
  // failing runs and a fifth that completes.
  EXPECT_EQ(runs, 5U);
  ASSERT_EQ(allocations_seen.size(), 1U);
  EXPECT_EQ(allocations_seen[0], 4U);
  EXPECT_EQ(resource.stats().injected_failures, 4U);
  EXPECT_TRUE(resource.errors().empty());
  EXPECT_EQ(resource.allocation_limit(), -1) << "the limit is disabled afterwards";
  EXPECT_EQ(resource.blocks_in_use(), 0U);
}

TEST(ExceptionTest, ExceptionSafeContainersLeakNothing) {
  test_resource resource(recording, std::pmr::new_delete_resource());
  pmrkit::exception_test(resource, [&] {
    std::pmr::map<int, std::pmr::string> map(&resource);
    for (int i = 0; i < 20; ++i)
      map.emplace(i, std::pmr::string(40, 'v'));
    std::pmr::list<int> list(map.size(), 7, &resource);
  });
  EXPECT_TRUE(resource.errors().empty());
}

// Deliberately broken: when the second allocation fails, the first block is lost.
void leaks_on_failure(std::pmr::memory_resource& resource) {
  void* first = resource.allocate(32, 8);
  void* second = resource.allocate(32, 8);
  resource.deallocate(second, 32, 8);
  resource.deallocate(first, 32, 8);
}

TEST(ExceptionTest, CatchesALeakOnTheFailurePath) {
  pmrkit::violation_recorder recorder;  // the leak goes to the handler, and into errors()
  test_resource resource(recording, std::pmr::new_delete_resource());
  const std::size_t runs = pmrkit::exception_test(resource, [&] { leaks_on_failure(resource); });
  EXPECT_EQ(runs, 3U);
  EXPECT_EQ(recorder.count(violation_kind::leak), 1U);
  const auto errors = resource.errors();
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_EQ(errors[0].kind, violation_kind::leak);
  EXPECT_EQ(errors[0].size, 32U) << "bytes leaked";
  EXPECT_EQ(resource.blocks_in_use(), 1U);
  resource.deallocate(const_cast<void*>(errors[0].pointer), 32, 8);
}

TEST(ExceptionTestDeathTest, TheDefaultHandlerAbortsOnALeak) {
  EXPECT_DEATH(
      {
        test_resource resource("strict", std::pmr::new_delete_resource());
        pmrkit::exception_test(resource, [&] { leaks_on_failure(resource); });
      },
      "pmrkit: 'strict' leak: 32 bytes still in use");
}

TEST(ExceptionTest, OtherExceptionsPropagate) {
  test_resource resource(recording, std::pmr::new_delete_resource());
  EXPECT_THROW(pmrkit::exception_test(resource, [] { throw std::logic_error("bug"); }),
               std::logic_error);
  EXPECT_EQ(resource.allocation_limit(), -1);
}

TEST(ExceptionTest, ABadAllocNotInjectedPropagates) {
  test_resource resource(recording, std::pmr::new_delete_resource());
  EXPECT_THROW(pmrkit::exception_test(resource, [] { throw std::bad_alloc(); }), std::bad_alloc);
}

TEST(ExceptionTest, BodyWithoutAllocationsRunsOnce) {
  test_resource resource(recording, std::pmr::new_delete_resource());
  int calls = 0;
  EXPECT_EQ(pmrkit::exception_test(resource, [&] { ++calls; }), 1U);
  EXPECT_EQ(calls, 1);
}

TEST(ExceptionTest, GivesUpAfterMaxRuns) {
  test_resource resource(recording, std::pmr::new_delete_resource());
  EXPECT_THROW(pmrkit::exception_test(
                   resource,
                   [&] {
                     for (;;) {
                       void* p = resource.allocate(8, 8);
                       resource.deallocate(p, 8, 8);
                     }
                   },
                   10),
               std::runtime_error);
}

}  // namespace
