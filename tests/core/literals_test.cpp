#include <pmr/core/literals.hpp>

#include <gtest/gtest.h>

namespace {

using namespace pmrkit::literals;

TEST(Literals, ScaleByPowersOf1024) {
  static_assert(1_KiB == 1024);
  static_assert(64_KiB == 65536);
  static_assert(3_MiB == 3U * 1024 * 1024);
  static_assert(4_GiB == std::size_t{4} << 30);
  EXPECT_EQ(256_MiB, std::size_t{256} << 20);
}

// A literal whose value does not fit std::size_t is a compile error
// (consteval); the largest value that still fits compiles.
TEST(Literals, LargestValueThatFitsCompiles) {
  static_assert(17179869183_GiB == (std::size_t{17179869183} << 30));
}

}  // namespace
