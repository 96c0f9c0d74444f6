#include <pmr/testing/violation_recorder.hpp>

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace {

using pmrkit::violation_kind;

TEST(ViolationRecorder, RecordsInsteadOfAbortingAndRestoresOnDestruction) {
  {
    pmrkit::violation_recorder recorder;
    pmrkit::report_violation({violation_kind::out_of_order, "stack", nullptr, 8, 8});
    pmrkit::report_violation({violation_kind::stale_checkpoint, "stack", nullptr, 0, 0});
    ASSERT_EQ(recorder.size(), 2U);
    EXPECT_EQ(recorder.count(violation_kind::out_of_order), 1U);
    EXPECT_EQ(recorder.violations()[1].resource_name, "stack");
    recorder.clear();
    EXPECT_TRUE(recorder.empty());
  }
  EXPECT_EQ(pmrkit::get_violation_handler(), &pmrkit::default_violation_handler);
}

TEST(ViolationRecorder, NestedRecordersRecordInTheInnermost) {
  pmrkit::violation_recorder outer;
  {
    pmrkit::violation_recorder inner;
    pmrkit::report_violation({violation_kind::double_free, "x", nullptr, 1, 1});
    EXPECT_EQ(inner.size(), 1U);
  }
  pmrkit::report_violation({violation_kind::double_free, "x", nullptr, 1, 1});
  EXPECT_EQ(outer.size(), 1U);
}

TEST(ViolationRecorder, RecordsFromSeveralThreads) {
  pmrkit::violation_recorder recorder;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([] {
      for (int i = 0; i < 100; ++i) {
        pmrkit::report_violation({violation_kind::double_free, "shared", nullptr, 8, 8});
      }
    });
  }
  for (auto& thread : threads)
    thread.join();
  EXPECT_EQ(recorder.count(violation_kind::double_free), 400U);
}

}  // namespace
