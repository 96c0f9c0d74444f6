#include <pmr/core/violation.hpp>

#include <gtest/gtest.h>

#include <string>

namespace {

using pmrkit::violation;
using pmrkit::violation_kind;

void ignore(const violation&) {}

TEST(Violation, DescribeIsOneLineNamingResourceKindAndPointer) {
  int object = 0;
  const violation v{violation_kind::double_free, "nodes", &object, 32, 8};
  const std::string text = pmrkit::describe(v);
  EXPECT_NE(text.find("pmrkit: 'nodes' double free"), std::string::npos) << text;
  EXPECT_NE(text.find("size 32"), std::string::npos) << text;
  EXPECT_EQ(text.find('\n'), std::string::npos);
}

TEST(Violation, MismatchesNameWhatTheAllocationHad) {
  const violation v{violation_kind::size_mismatch, "pool", nullptr, 32, 8, 48, 8};
  const std::string text = pmrkit::describe(v);
  EXPECT_NE(text.find("size 32 (allocated 48)"), std::string::npos) << text;
}

TEST(Violation, EveryKindHasAName) {
  for (auto kind :
       {violation_kind::foreign_pointer, violation_kind::double_free, violation_kind::size_mismatch,
        violation_kind::alignment_mismatch, violation_kind::out_of_order,
        violation_kind::stale_checkpoint, violation_kind::buffer_overrun,
        violation_kind::buffer_underrun, violation_kind::leak}) {
    EXPECT_NE(pmrkit::to_string(kind), "unknown violation");
  }
}

TEST(ViolationHandler, SetReturnsThePreviousAndNullRestoresTheDefault) {
  EXPECT_EQ(pmrkit::get_violation_handler(), &pmrkit::default_violation_handler);
  const pmrkit::violation_handler previous = pmrkit::set_violation_handler(&ignore);
  EXPECT_EQ(previous, &pmrkit::default_violation_handler);
  EXPECT_EQ(pmrkit::get_violation_handler(), &ignore);
  EXPECT_EQ(pmrkit::set_violation_handler(nullptr), &ignore);
  EXPECT_EQ(pmrkit::get_violation_handler(), &pmrkit::default_violation_handler);
}

TEST(ViolationHandlerDeathTest, DefaultPrintsOneLineAndAborts) {
  const violation v{violation_kind::foreign_pointer, "arena", nullptr, 16, 8};
  EXPECT_DEATH(pmrkit::report_violation(v), "pmrkit: 'arena' foreign pointer");
}

}  // namespace
