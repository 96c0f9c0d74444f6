#include <pmr/decorator/pressure_resource.hpp>

#include <pmr/core/error.hpp>
#include <pmr/core/log.hpp>
#include <pmr/testing/test_resource.hpp>

#include "conformance/conformance.hpp"
#include "decorator/capped_resource.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory_resource>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using pmrkit::testing_support::capped_resource;

using pmrkit::pressure_event;
using pmrkit::pressure_level;
using pmrkit::pressure_options;
using pmrkit::pressure_resource;
using pmrkit::pressure_subscription;
using pmrkit::test_resource;

// --- The conformance suite -------------------------------------------------------------------

struct pressure_traits {
  using resource_type = pressure_resource;
  static constexpr std::string_view name = "pmrkit::pressure_resource";
  // A decorator: every block is the upstream's, so the destructor has none to return.
  static constexpr pmrkit::conformance::capabilities caps{.releases_on_destruction = false};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(pressure_options{.capacity = std::size_t{1} << 30},
                                           upstream);
  }
};

struct pressure_with_reserve_traits {
  using resource_type = pressure_resource;
  static constexpr std::string_view name = "pmrkit::pressure_resource (64 KiB, 4 KiB reserve)";
  static constexpr pmrkit::conformance::capabilities caps{.releases_on_destruction = false};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(
        pressure_options{.capacity = 65536, .emergency_reserve = 4096}, upstream);
  }
};

using pressure_types = ::testing::Types<pressure_traits, pressure_with_reserve_traits>;
INSTANTIATE_TYPED_TEST_SUITE_P(pressure, resource_conformance, pressure_types,
                               pmrkit::conformance::traits_names);

// --- Helpers ---------------------------------------------------------------------------------

constexpr pmrkit::test_options upstream_options{.name = "upstream"};

/// Blocks taken from a resource, freed in any order, all freed at the end.
class blocks {
 public:
  explicit blocks(std::pmr::memory_resource& resource) : resource_(resource) {}
  blocks(const blocks&) = delete;
  blocks& operator=(const blocks&) = delete;
  ~blocks() {
    while (!held_.empty())
      pop();
  }
  void push(std::size_t size) { held_.push_back({resource_.allocate(size), size}); }
  void pop() {
    resource_.deallocate(held_.back().pointer, held_.back().size);
    held_.pop_back();
  }
  [[nodiscard]] bool empty() const { return held_.empty(); }

 private:
  struct held {
    void* pointer;
    std::size_t size;
  };
  std::pmr::memory_resource& resource_;
  std::vector<held> held_;
};

/// Records the events a subscriber receives.
struct event_log {
  std::vector<pressure_event> events;
  pressure_subscription subscribe(pressure_resource& resource, pressure_level threshold) {
    return resource.on_pressure(threshold,
                                [this](const pressure_event& e) { events.push_back(e); });
  }
  [[nodiscard]] std::vector<pressure_level> levels() const {
    std::vector<pressure_level> result;
    for (const pressure_event& e : events)
      result.push_back(e.level);
    return result;
  }
};

using levels = std::vector<pressure_level>;
constexpr pressure_level none = pressure_level::none;
constexpr pressure_level low = pressure_level::low;
constexpr pressure_level medium = pressure_level::medium;
constexpr pressure_level high = pressure_level::high;
constexpr pressure_level critical = pressure_level::critical;

std::string invalid_argument_message(const pressure_options& options,
                                     std::pmr::memory_resource* upstream) {
  try {
    const pressure_resource resource(options, upstream);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no exception)";
}

// --- Options and levels ----------------------------------------------------------------------

TEST(PressureResource, InvalidOptionsThrowNamingTheField) {
  auto* upstream = std::pmr::new_delete_resource();
  const auto names = [&](pressure_options options, std::string_view field) {
    const std::string message = invalid_argument_message(options, upstream);
    EXPECT_NE(message.find(field), std::string::npos) << message;
  };
  names({}, "capacity");
  names({.capacity = 100, .low_percent = 0}, "low_percent");
  names({.capacity = 100, .low_percent = -5}, "low_percent");
  names({.capacity = 100, .low_percent = std::nan("")}, "low_percent");
  names({.capacity = 100, .medium_percent = 50}, "medium_percent");
  names({.capacity = 100, .high_percent = 60}, "high_percent");
  names({.capacity = 100, .critical_percent = 100.5}, "critical_percent");
  names({.capacity = 100, .critical_percent = 85}, "critical_percent");
  EXPECT_EQ(
      invalid_argument_message({.capacity = 100}, nullptr).find("upstream") == std::string::npos,
      false);
  // The system source needs no capacity; 100 % is a valid critical threshold.
  EXPECT_NO_THROW(pressure_resource({.capacity = 100, .critical_percent = 100}, upstream));
  pressure_resource resource({.capacity = 100}, upstream);
  EXPECT_THROW((void)resource.on_pressure(none, [](const pressure_event&) {}),
               std::invalid_argument);
  EXPECT_THROW((void)resource.on_pressure(low, nullptr), std::invalid_argument);
}

TEST(PressureResource, LevelNames) {
  EXPECT_EQ(pmrkit::to_string(none), "none");
  EXPECT_EQ(pmrkit::to_string(low), "low");
  EXPECT_EQ(pmrkit::to_string(medium), "medium");
  EXPECT_EQ(pmrkit::to_string(high), "high");
  EXPECT_EQ(pmrkit::to_string(critical), "critical");
}

TEST(PressureResource, LevelsChangeExactlyAtTheThresholds) {
  test_resource upstream(upstream_options);
  pressure_resource pressure({.capacity = 1000}, &upstream);
  EXPECT_EQ(pressure.threshold_bytes(none), 0U);
  EXPECT_EQ(pressure.threshold_bytes(low), 500U);
  EXPECT_EQ(pressure.threshold_bytes(medium), 700U);
  EXPECT_EQ(pressure.threshold_bytes(high), 850U);
  EXPECT_EQ(pressure.threshold_bytes(critical), 950U);

  blocks held(pressure);
  // Up to one byte below each threshold, then the byte that reaches it.
  const std::pair<std::size_t, pressure_level> steps[] = {
      {499, none}, {1, low},   {199, low},    {1, medium},     {149, medium},
      {1, high},   {99, high}, {1, critical}, {5000, critical}};
  for (const auto& [size, expected] : steps) {
    held.push(size);
    EXPECT_EQ(pressure.level(), expected) << "after " << pressure.bytes_in_use() << " bytes";
  }
  const pressure_level down[] = {critical, high, high, medium, medium, low, low, none};
  for (const pressure_level expected : down) {
    held.pop();
    EXPECT_EQ(pressure.level(), expected) << "after " << pressure.bytes_in_use() << " bytes";
  }
  held.pop();
  EXPECT_EQ(pressure.bytes_in_use(), 0U);
  EXPECT_EQ(pressure.stats().peak_bytes_in_use, 5950U);
  EXPECT_EQ(pressure.stats().transitions, 8U);
}

TEST(PressureResource, FractionalThresholdsRoundUpToWholeBytes) {
  pressure_resource pressure({.capacity = 1000,
                              .low_percent = 33.35,
                              .medium_percent = 50,
                              .high_percent = 99.9,
                              .critical_percent = 100});
  EXPECT_EQ(pressure.threshold_bytes(low), 334U);
  EXPECT_EQ(pressure.threshold_bytes(high), 999U);
  EXPECT_EQ(pressure.threshold_bytes(critical), 1000U);
  void* p = pressure.allocate(333);
  EXPECT_EQ(pressure.level(), none);
  void* q = pressure.allocate(1);
  EXPECT_EQ(pressure.level(), low);
  pressure.deallocate(q, 1);
  pressure.deallocate(p, 333);
}

// --- Callbacks -------------------------------------------------------------------------------

TEST(PressureResource, CallbacksFireOncePerUpwardTransitionAndOnceOnReturnToNone) {
  test_resource upstream(upstream_options);
  pressure_resource pressure({.capacity = 1000}, &upstream);
  event_log at_low;
  event_log at_high;
  event_log at_critical;
  const pressure_subscription low_subscription = at_low.subscribe(pressure, low);
  const pressure_subscription high_subscription = at_high.subscribe(pressure, high);
  const pressure_subscription critical_subscription = at_critical.subscribe(pressure, critical);

  blocks held(pressure);
  held.push(500);  // low
  held.push(200);  // medium
  held.push(100);  // still medium
  held.push(50);   // high
  held.pop();      // back to medium: not announced
  held.push(50);   // high again
  held.pop();
  held.pop();
  held.pop();  // low
  held.pop();  // none
  EXPECT_EQ(at_low.levels(), (levels{low, medium, high, high, none}));
  EXPECT_EQ(at_high.levels(), (levels{high, high, none}));
  EXPECT_TRUE(at_critical.events.empty()) << "critical was never reached";

  const pressure_event& first = at_low.events.front();
  EXPECT_EQ(first.previous, none);
  EXPECT_EQ(first.bytes_in_use, 500U);
  EXPECT_EQ(first.capacity, 1000U);
  EXPECT_EQ(first.requested, 500U);
  EXPECT_FALSE(first.upstream_failed);
  const pressure_event& last = at_low.events.back();
  EXPECT_EQ(last.previous, low);
  EXPECT_EQ(last.bytes_in_use, 0U);
  EXPECT_EQ(last.requested, 0U);
}

TEST(PressureResource, AJumpOverSeveralLevelsIsOneCall) {
  pressure_resource pressure({.capacity = 1000});
  event_log at_low;
  const pressure_subscription subscription = at_low.subscribe(pressure, low);
  void* p = pressure.allocate(990);
  EXPECT_EQ(at_low.levels(), (levels{critical}));
  EXPECT_EQ(at_low.events[0].previous, none);
  pressure.deallocate(p, 990);
  EXPECT_EQ(at_low.levels(), (levels{critical, none}));
}

TEST(PressureResource, SubscriptionUnsubscribesOnDestructionAndMoves) {
  pressure_resource pressure({.capacity = 100});
  int calls = 0;
  {
    pressure_subscription outer;
    EXPECT_FALSE(outer.active());
    {
      pressure_subscription inner =
          pressure.on_pressure(low, [&](const pressure_event&) { ++calls; });
      EXPECT_TRUE(inner.active());
      outer = std::move(inner);
    }  // the moved-from handle unsubscribes nothing
    EXPECT_TRUE(outer.active());
    void* p = pressure.allocate(60);
    pressure.deallocate(p, 60);
    EXPECT_EQ(calls, 2);  // low, none
  }
  void* p = pressure.allocate(60);
  pressure.deallocate(p, 60);
  EXPECT_EQ(calls, 2);

  pressure_subscription explicit_one =
      pressure.on_pressure(low, [&](const pressure_event&) { ++calls; });
  explicit_one.unsubscribe();
  explicit_one.unsubscribe();  // idempotent
  EXPECT_FALSE(explicit_one.active());
  p = pressure.allocate(60);
  pressure.deallocate(p, 60);
  EXPECT_EQ(calls, 2);
}

TEST(PressureResource, CallbacksMayUnsubscribeAndSubscribe) {
  pressure_resource pressure({.capacity = 100});
  int self_removing_calls = 0;
  int late_calls = 0;
  pressure_subscription late;
  pressure_subscription self_removing;
  self_removing = pressure.on_pressure(low, [&](const pressure_event&) {
    ++self_removing_calls;
    self_removing.unsubscribe();  // from inside its own call
    if (!late.active()) {
      late = pressure.on_pressure(low, [&](const pressure_event&) { ++late_calls; });
    }
  });
  void* p = pressure.allocate(60);  // low: self_removing runs, subscribes `late`, which runs too
  pressure.deallocate(p, 60);       // none: only late
  EXPECT_EQ(self_removing_calls, 1);
  EXPECT_EQ(late_calls, 2);
}

TEST(PressureResource, SubscriptionsOutlivingTheResourceAreDetached) {
  pressure_subscription subscription;
  {
    pressure_resource pressure({.capacity = 100});
    subscription = pressure.on_pressure(low, [](const pressure_event&) {});
    EXPECT_TRUE(subscription.active());
  }
  EXPECT_FALSE(subscription.active());
  subscription.unsubscribe();
}

TEST(PressureResource, AThrowingCallbackIsLoggedAndDropped) {
  static int logged = 0;
  logged = 0;
  const pmrkit::log_handler previous =
      pmrkit::set_log_handler([](pmrkit::log_level level, std::string_view) {
        logged += level == pmrkit::log_level::error;
      });
  pressure_resource pressure({.capacity = 100});
  int later_calls = 0;
  const pressure_subscription thrower =
      pressure.on_pressure(low, [](const pressure_event&) { throw std::runtime_error("oops"); });
  const pressure_subscription later =
      pressure.on_pressure(low, [&](const pressure_event&) { ++later_calls; });
  void* p = pressure.allocate(60);
  pressure.deallocate(p, 60);
  pmrkit::set_log_handler(previous);
  EXPECT_EQ(logged, 2);
  EXPECT_EQ(later_calls, 2);
}

TEST(PressureResource, ACallbackAllocatingThroughTheResourceGetsItsTransitionAfterItReturns) {
  test_resource upstream(upstream_options);
  pressure_resource pressure({.capacity = 1000}, &upstream);
  int depth = 0;
  int max_depth = 0;
  std::vector<pressure_level> seen;
  void* extra = nullptr;
  const pressure_subscription subscription =
      pressure.on_pressure(high, [&](const pressure_event& e) {
        max_depth = std::max(max_depth, ++depth);
        seen.push_back(e.level);
        if (e.level == high && extra == nullptr) {
          extra = pressure.allocate(100);  // to critical, from inside the callback
          EXPECT_EQ(pressure.level(), critical);
          EXPECT_EQ(seen.size(), 1U) << "the critical transition was delivered inside the callback";
        }
        --depth;
      });
  void* p = pressure.allocate(860);
  EXPECT_EQ(seen, (levels{high, critical}));
  EXPECT_EQ(max_depth, 1);
  pressure.deallocate(extra, 100);
  pressure.deallocate(p, 860);
  EXPECT_EQ(seen, (levels{high, critical, none}));
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
}

// --- Upstream failure, retry and the emergency reserve ----------------------------------------

TEST(PressureResource, UpstreamFailureRunsCriticalCallbacksWhichFreeMemoryThenRetries) {
  test_resource upstream(upstream_options);
  pressure_resource pressure({.capacity = 1 << 20}, &upstream);
  void* cached = pressure.allocate(4096);  // what the callback gives back
  std::vector<pressure_event> events;
  const pressure_subscription subscription =
      pressure.on_pressure(critical, [&](const pressure_event& e) {
        events.push_back(e);
        if (cached != nullptr) {
          pressure.deallocate(cached, 4096);
          cached = nullptr;
        }
      });
  upstream.set_allocation_limit(0);  // the next request fails once
  void* p = pressure.allocate(100);
  ASSERT_EQ(events.size(), 1U);
  EXPECT_EQ(events[0].level, critical);
  EXPECT_TRUE(events[0].upstream_failed);
  EXPECT_EQ(events[0].requested, 100U);
  EXPECT_EQ(events[0].bytes_in_use, 4096U);
  EXPECT_EQ(cached, nullptr);
  EXPECT_EQ(pressure.level(), none) << "an upstream failure does not move the level";
  const pmrkit::pressure_stats stats = pressure.stats();
  EXPECT_EQ(stats.upstream_failures, 1U);
  EXPECT_EQ(stats.retries, 1U);
  EXPECT_EQ(stats.failures, 0U);
  EXPECT_EQ(upstream.bytes_in_use(), 100U);
  pressure.deallocate(p, 100);
}

TEST(PressureResource, TheRetrySucceedsOnlyBecauseTheCallbackFreedMemory) {
  capped_resource upstream(1000);
  pressure_resource pressure({.capacity = 1 << 20}, &upstream);
  void* cached = pressure.allocate(600);
  const pressure_subscription subscription =
      pressure.on_pressure(critical, [&](const pressure_event&) {
        if (cached != nullptr) pressure.deallocate(std::exchange(cached, nullptr), 600);
      });
  void* p = pressure.allocate(700);  // 600 + 700 > 1000: refused, then fits
  EXPECT_EQ(upstream.refusals(), 1U);
  EXPECT_EQ(pressure.stats().retries, 1U);
  // Now nothing is left to free: the retry fails too and the caller is told.
  try {
    (void)pressure.allocate(700);
    ADD_FAILURE() << "no exception";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::upstream_failed);
    EXPECT_EQ(e.requested(), 700U);
    EXPECT_EQ(e.resource_name(), "pressure");
  }
  EXPECT_EQ(pressure.stats().failures, 1U);
  EXPECT_EQ(pressure.stats().retries, 2U);
  EXPECT_EQ(pressure.bytes_in_use(), 700U);
  pressure.deallocate(p, 700);
}

TEST(PressureResource, WithoutCallbacksOrReserveTheUpstreamsErrorPropagatesUntouched) {
  test_resource upstream(upstream_options);
  pressure_resource pressure({.capacity = 1000}, &upstream);
  upstream.set_allocation_limit(0);
  try {
    (void)pressure.allocate(10);
    ADD_FAILURE() << "no exception";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::injected_failure);
    EXPECT_EQ(e.resource_name(), "upstream");
  }
  EXPECT_EQ(pressure.stats().retries, 0U);
  EXPECT_EQ(pressure.stats().failures, 1U);
  EXPECT_EQ(pressure.bytes_in_use(), 0U);

  // A plain std::bad_alloc becomes pmrkit's upstream_failed, with this resource's name.
  pressure_resource over_null({.capacity = 1000, .name = "over null"},
                              std::pmr::null_memory_resource());
  try {
    (void)over_null.allocate(10, 4);
    ADD_FAILURE() << "no exception";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::upstream_failed);
    EXPECT_EQ(e.requested(), 10U);
    EXPECT_EQ(e.alignment(), 4U);
    EXPECT_EQ(e.resource_name(), "over null");
  }
  void* p = pressure.allocate(10);  // still usable
  pressure.deallocate(p, 10);
}

TEST(PressureResource, EmergencyReserveIsReleasedOnFailureAndRearmedAfterFrees) {
  test_resource upstream(upstream_options);
  {
    pressure_resource pressure({.capacity = 1 << 20, .emergency_reserve = 4096}, &upstream);
    EXPECT_TRUE(pressure.stats().reserve_armed);
    EXPECT_EQ(upstream.bytes_in_use(), 4096U);

    upstream.set_allocation_limit(0);
    void* p = pressure.allocate(100);  // fails, the reserve goes back, the retry succeeds
    EXPECT_FALSE(pressure.stats().reserve_armed);
    EXPECT_EQ(pressure.stats().reserve_releases, 1U);
    EXPECT_EQ(pressure.stats().retries, 1U);
    EXPECT_EQ(upstream.bytes_in_use(), 100U);

    pressure.deallocate(p, 100);  // 100 bytes freed: less than the reserve, not yet
    EXPECT_FALSE(pressure.stats().reserve_armed);
    void* q = pressure.allocate(4000);
    pressure.deallocate(q, 4000);  // 4100 freed since the release, level none: taken again
    EXPECT_TRUE(pressure.stats().reserve_armed);
    EXPECT_EQ(pressure.stats().rearms, 1U);
    EXPECT_EQ(upstream.bytes_in_use(), 4096U);
  }
  EXPECT_EQ(upstream.bytes_in_use(), 0U) << "the destructor gives the reserve back";
  EXPECT_TRUE(upstream.errors().empty());
}

TEST(PressureResource, TheReserveIsNotRearmedAtHighOrAboveAndRearmingNeverThrows) {
  capped_resource upstream(10000);
  pressure_resource pressure({.capacity = 1000, .emergency_reserve = 1000}, &upstream);
  void* big = pressure.allocate(8900);  // 9900 with the reserve: at the cap, level critical
  EXPECT_THROW((void)pressure.allocate(1200), pmrkit::allocation_error);  // even after the reserve
  EXPECT_FALSE(pressure.stats().reserve_armed);
  void* a = pressure.allocate(1000);  // fits where the reserve was
  pressure.deallocate(a, 1000);       // 1000 freed, but the level is critical
  EXPECT_FALSE(pressure.stats().reserve_armed);

  upstream.set_limit(500);         // no room for the reserve
  pressure.deallocate(big, 8900);  // level none, enough freed: the attempt fails quietly
  EXPECT_FALSE(pressure.stats().reserve_armed);
  EXPECT_EQ(pressure.stats().rearms, 0U);
  upstream.set_limit(10000);
  EXPECT_TRUE(pressure.rearm());
  EXPECT_TRUE(pressure.stats().reserve_armed);
  EXPECT_EQ(upstream.bytes_in_use(), 1000U);
}

TEST(PressureResource, AFailingAllocationInsideACallbackDoesNotCallTheCallbacksAgain) {
  capped_resource upstream(1000);
  pressure_resource pressure({.capacity = 1 << 20}, &upstream);
  int calls = 0;
  bool inner_failed = false;
  const pressure_subscription subscription =
      pressure.on_pressure(critical, [&](const pressure_event&) {
        ++calls;
        try {
          void* p = pressure.allocate(2000);  // refused too
          pressure.deallocate(p, 2000);
        } catch (const pmrkit::allocation_error&) {
          inner_failed = true;
        }
      });
  EXPECT_THROW((void)pressure.allocate(2000), pmrkit::allocation_error);
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(inner_failed);
  const pmrkit::pressure_stats stats = pressure.stats();
  EXPECT_EQ(stats.upstream_failures, 3U);  // the request, the callback's, the retry
  EXPECT_EQ(stats.retries, 1U);            // the callback's request had nothing to retry for
  EXPECT_EQ(stats.failures, 2U);
}

// --- The system source -----------------------------------------------------------------------

class SystemSource : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ =
        std::filesystem::temp_directory_path() /
        ("pmrkit-pressure-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
         "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(root_);
    std::filesystem::create_directories(root_ / "sys/fs/cgroup");
    std::filesystem::create_directories(root_ / "proc");
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  void write(const std::string& relative, const std::string& text) {
    std::ofstream(root_ / relative) << text;
  }
  void cgroup(const std::string& current, const std::string& max) {
    write("sys/fs/cgroup/memory.current", current);
    write("sys/fs/cgroup/memory.max", max);
  }
  void meminfo(std::size_t total_kb, std::size_t available_kb) {
    write("proc/meminfo", "MemTotal:       " + std::to_string(total_kb) +
                              " kB\nMemFree:          12 kB\nMemAvailable:   " +
                              std::to_string(available_kb) + " kB\nBuffers:  1 kB\n");
  }
  [[nodiscard]] std::string root() const { return root_.string(); }

 private:
  std::filesystem::path root_;
};

TEST_F(SystemSource, CgroupFiguresWhenLimitedElseMeminfo) {
  cgroup("600\n", "1000\n");
  meminfo(1000, 100);
  std::optional<pmrkit::system_memory> figures = pmrkit::read_system_memory(root());
  ASSERT_TRUE(figures.has_value());
  EXPECT_EQ(figures->bytes_in_use, 600U);
  EXPECT_EQ(figures->capacity, 1000U);
  EXPECT_EQ(figures->from, "cgroup v2");

  cgroup("600\n", "max\n");  // no limit: the machine's figures
  figures = pmrkit::read_system_memory(root() + "/");
  ASSERT_TRUE(figures.has_value());
  EXPECT_EQ(figures->bytes_in_use, 900U * 1024);
  EXPECT_EQ(figures->capacity, 1000U * 1024);
  EXPECT_EQ(figures->from, "/proc/meminfo");

  std::filesystem::remove_all(root() + "/sys");
  EXPECT_TRUE(pmrkit::read_system_memory(root()).has_value());
  std::filesystem::remove(root() + "/proc/meminfo");
  EXPECT_FALSE(pmrkit::read_system_memory(root()).has_value());
}

TEST_F(SystemSource, LevelFollowsTheFilesOnRefresh) {
  cgroup("600\n", "1000\n");
  pressure_resource pressure(
      {.source = pmrkit::pressure_source::system, .system_root = root(), .system_sample_bytes = 0});
  EXPECT_EQ(pressure.level(), low);
  EXPECT_EQ(pressure.stats().measured_from, "cgroup v2");
  EXPECT_EQ(pressure.stats().measured_bytes, 600U);
  EXPECT_EQ(pressure.stats().measured_capacity, 1000U);
  EXPECT_EQ(pressure.threshold_bytes(high), 850U);
  event_log log;
  const pressure_subscription subscription = log.subscribe(pressure, low);

  cgroup("900\n", "1000\n");
  void* p = pressure.allocate(64);  // sampling is off: the files are not read again
  EXPECT_EQ(pressure.level(), low);
  EXPECT_EQ(pressure.refresh(), high);
  EXPECT_EQ(log.levels(), (levels{high}));
  EXPECT_EQ(log.events[0].bytes_in_use, 900U);
  EXPECT_EQ(log.events[0].capacity, 1000U);

  cgroup("100\n", "max\n");
  meminfo(1000, 990);
  EXPECT_EQ(pressure.refresh(), none);
  EXPECT_EQ(pressure.stats().measured_from, "/proc/meminfo");
  EXPECT_EQ(log.levels(), (levels{high, none}));
  EXPECT_EQ(pressure.bytes_in_use(), 64U) << "its own bytes are still counted";
  pressure.deallocate(p, 64);
}

TEST_F(SystemSource, FilesAreReadAgainAfterTheSampleBytes) {
  meminfo(1000, 1000);
  pressure_resource pressure({.source = pmrkit::pressure_source::system,
                              .system_root = root(),
                              .system_sample_bytes = 100});
  EXPECT_EQ(pressure.level(), none);
  meminfo(1000, 10);  // 99 % used
  void* a = pressure.allocate(60);
  EXPECT_EQ(pressure.level(), none) << "60 bytes since the last reading";
  void* b = pressure.allocate(40);
  EXPECT_EQ(pressure.level(), critical) << "100 bytes since the last reading";
  meminfo(1000, 400);  // 60 %
  pressure.deallocate(a, 60);
  EXPECT_EQ(pressure.level(), critical);
  pressure.deallocate(b, 40);  // frees count too
  EXPECT_EQ(pressure.level(), low);
}

TEST_F(SystemSource, WithoutFilesTheLevelStaysNone) {
  static int warnings = 0;
  warnings = 0;
  const pmrkit::log_handler previous =
      pmrkit::set_log_handler([](pmrkit::log_level level, std::string_view) {
        warnings += level == pmrkit::log_level::warning;
      });
  pressure_resource pressure({.source = pmrkit::pressure_source::system,
                              .system_root = root() + "/nowhere",
                              .system_sample_bytes = 1});
  pmrkit::set_log_handler(previous);
  EXPECT_EQ(warnings, 1);
  void* p = pressure.allocate(100);
  EXPECT_EQ(pressure.level(), none);
  EXPECT_EQ(pressure.stats().measured_from, "unavailable");
  pressure.deallocate(p, 100);
}

TEST(PressureResource, TheRealSystemFiguresAreReadable) {
  // Linux has /proc/meminfo at least; elsewhere the level stays none.
  pressure_resource pressure({.source = pmrkit::pressure_source::system});
  const pmrkit::pressure_stats stats = pressure.stats();
  if (stats.measured_from == "unavailable") GTEST_SKIP() << "no cgroup v2 or /proc/meminfo here";
  EXPECT_GT(stats.measured_capacity, 0U);
  EXPECT_LE(stats.measured_bytes, stats.measured_capacity);
}

// --- Threads ---------------------------------------------------------------------------------

TEST(PressureResourceThreads, ConcurrentAllocationsSubscribersAndUnsubscriptions) {
  test_resource upstream(upstream_options);
  pressure_resource pressure({.capacity = 4096, .emergency_reserve = 256}, &upstream);
  std::atomic<int> rises{0};
  std::atomic<int> returns_to_none{0};
  const pressure_subscription counter = pressure.on_pressure(low, [&](const pressure_event& e) {
    (e.level == none ? returns_to_none : rises).fetch_add(1);
  });
  std::atomic<bool> done{false};
  std::thread churn([&] {
    // Subscribes and unsubscribes while the others allocate; its callback
    // allocates through the resource too.
    while (!done.load()) {
      const pressure_subscription s = pressure.on_pressure(medium, [&](const pressure_event&) {
        void* p = pressure.allocate(8);
        pressure.deallocate(p, 8);
      });
      std::this_thread::yield();
    }
  });
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < 4; ++t) {
    workers.emplace_back([&, t] {
      std::uint32_t state = 2654435761U * (t + 1);
      blocks held(pressure);
      std::size_t count = 0;
      for (int i = 0; i < 4000; ++i) {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        if (count < 16 && (count == 0 || state % 3 != 0)) {
          held.push(1 + state % 128);
          ++count;
        } else {
          held.pop();
          --count;
        }
      }
    });
  }
  for (std::thread& worker : workers)
    worker.join();
  done.store(true);
  churn.join();
  EXPECT_EQ(pressure.bytes_in_use(), 0U);
  EXPECT_EQ(pressure.level(), none);
  EXPECT_LE(returns_to_none.load(), rises.load());
  EXPECT_LE(static_cast<std::size_t>(rises.load() + returns_to_none.load()),
            pressure.stats().transitions);
  EXPECT_TRUE(pressure.stats().reserve_armed);
  EXPECT_EQ(upstream.bytes_in_use(), 256U);
  EXPECT_TRUE(upstream.errors().empty());
}

}  // namespace
