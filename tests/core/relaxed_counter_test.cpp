#include <pmr/core/detail/relaxed_counter.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <limits>
#include <optional>
#include <thread>
#include <vector>

namespace {

using pmrkit::decorator_threading;
using pmrkit::detail::relaxed_counter;

constexpr decorator_threading both_modes[] = {decorator_threading::concurrent,
                                              decorator_threading::serialized};

TEST(RelaxedCounter, AddsAndSubtractsInBothModes) {
  for (const decorator_threading mode : both_modes) {
    relaxed_counter<std::size_t> counter(10);
    EXPECT_EQ(counter.add(5, mode), 15U);
    EXPECT_EQ(counter.subtract(15, mode), 0U);
    EXPECT_EQ(counter.subtract(1, mode), std::numeric_limits<std::size_t>::max());  // wraps
    relaxed_counter<std::ptrdiff_t> net;
    EXPECT_EQ(net.subtract(7, mode), -7);
    EXPECT_EQ(net.load(), -7);
  }
}

TEST(RelaxedCounter, AddWithinNeverPassesTheLimit) {
  for (const decorator_threading mode : both_modes) {
    relaxed_counter<std::size_t> counter;
    EXPECT_EQ(counter.add_within(60, 100, mode), std::optional<std::size_t>(60));
    EXPECT_EQ(counter.add_within(41, 100, mode), std::nullopt);
    EXPECT_EQ(counter.add_within(40, 100, mode), std::optional<std::size_t>(100));
    EXPECT_EQ(counter.add_within(0, 100, mode), std::optional<std::size_t>(100));
    EXPECT_EQ(counter.add_within(1, 100, mode), std::nullopt);
    // No wrap-around: a request larger than the whole range is refused.
    EXPECT_EQ(counter.add_within(std::numeric_limits<std::size_t>::max(),
                                 std::numeric_limits<std::size_t>::max(), mode),
              std::nullopt);
    // Above a lowered limit, nothing fits, not even zero bytes.
    EXPECT_EQ(counter.add_within(0, 50, mode), std::nullopt);
    EXPECT_EQ(counter.load(), 100U);
  }
}

TEST(RelaxedCounter, RaiseToKeepsTheMaximum) {
  for (const decorator_threading mode : both_modes) {
    relaxed_counter<std::ptrdiff_t> peak;
    peak.raise_to(5, mode);
    peak.raise_to(3, mode);
    peak.raise_to(-4, mode);
    EXPECT_EQ(peak.load(), 5);
    peak.raise_to(9, mode);
    EXPECT_EQ(peak.load(), 9);
  }
}

TEST(RelaxedCounter, ConcurrentReservationsNeverOvershoot) {
  constexpr std::size_t limit = 1000;
  constexpr int threads = 4;
  relaxed_counter<std::size_t> in_use;
  relaxed_counter<std::size_t> peak;
  std::atomic<int> overshoots = 0;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      const std::size_t bytes = 7 + static_cast<std::size_t>(t) * 13;
      for (int i = 0; i < 100000; ++i) {
        const std::optional<std::size_t> now =
            in_use.add_within(bytes, limit, decorator_threading::concurrent);
        if (!now) continue;
        if (*now > limit) overshoots.fetch_add(1);
        peak.raise_to(*now, decorator_threading::concurrent);
        in_use.subtract(bytes, decorator_threading::concurrent);
      }
    });
  }
  for (std::thread& worker : workers)
    worker.join();
  EXPECT_EQ(overshoots.load(), 0);
  EXPECT_EQ(in_use.load(), 0U);
  EXPECT_LE(peak.load(), limit);
  EXPECT_GT(peak.load(), 0U);
}

}  // namespace
