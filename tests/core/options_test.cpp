#include <pmr/core/options.hpp>

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace {

TEST(Options, ABrokenRuleNamesTheClassTheFieldAndTheRule) {
  try {
    pmrkit::require_option(false, "pool_resource", "block_size", "must not be 0");
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), "pmrkit::pool_resource: block_size must not be 0");
  }
}

TEST(Options, AKeptRuleThrowsNothing) {
  EXPECT_NO_THROW(pmrkit::require_option(true, "pool_resource", "block_size", "must not be 0"));
}

TEST(Options, ThrowInvalidOptionIsTheSameMessage) {
  EXPECT_THROW(
      pmrkit::throw_invalid_option("stack_resource", "alignment", "must be a power of two"),
      std::invalid_argument);
}

}  // namespace
