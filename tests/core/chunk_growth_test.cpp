#include <pmr/core/detail/chunk_growth.hpp>

#include <gtest/gtest.h>

#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>

namespace {

using pmrkit::detail::chunk_growth;

TEST(ChunkGrowth, DoublesUpToTheMaximum) {
  constexpr chunk_growth growth{.initial = 4096, .max = 65536, .factor = 2};
  std::size_t size = growth.initial;
  std::size_t steps = 0;
  while (size < growth.max) {
    size = growth.after(size);
    ++steps;
  }
  EXPECT_EQ(steps, 4U);  // 8, 16, 32, 64 KiB
  EXPECT_EQ(growth.after(growth.max), growth.max);
}

TEST(ChunkGrowth, FactorOneIsConstant) {
  constexpr chunk_growth growth{.initial = 64, .max = 4096, .factor = 1};
  EXPECT_EQ(growth.after(64), 64U);
}

TEST(ChunkGrowth, AFactorThatWouldOverflowStopsAtTheMaximum) {
  constexpr std::size_t huge = std::numeric_limits<std::size_t>::max();
  constexpr chunk_growth growth{.initial = 1, .max = huge, .factor = 16};
  EXPECT_EQ(growth.after(huge / 2), huge);
  EXPECT_EQ(growth.after(3), 48U);
}

TEST(ChunkGrowth, ValidationNamesTheField) {
  const auto message = [](chunk_growth growth) {
    try {
      (void)pmrkit::detail::validated_growth(growth, 256, "stack_resource", "initial_chunk_size",
                                             "max_chunk_size");
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("nothing thrown");
  };
  EXPECT_EQ(message({.initial = 128, .max = 4096, .factor = 2}),
            "pmrkit::stack_resource: initial_chunk_size must be at least 256");
  EXPECT_EQ(message({.initial = 4096, .max = 1024, .factor = 2}),
            "pmrkit::stack_resource: max_chunk_size must be at least the initial size");
  EXPECT_EQ(message({.initial = 4096, .max = 8192, .factor = 0}),
            "pmrkit::stack_resource: growth_factor must be between 1 and 16");
  EXPECT_EQ(message({.initial = 4096, .max = 8192, .factor = 17}),
            "pmrkit::stack_resource: growth_factor must be between 1 and 16");
  EXPECT_EQ(message({.initial = 4096, .max = 8192, .factor = 16}), "nothing thrown");
}

}  // namespace
