// memory_system: typed requests with fallback, the untyped tiers, the budget and its reserve,
// pressure, the config from files and the environment (include/pmr/region/memory_system.hpp).
#include <pmr/core/error.hpp>
#include <pmr/core/literals.hpp>
#include <pmr/region/memory_system.hpp>
#include <pmr/region/page_resource.hpp>

#include "conformance/conformance.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <memory_resource>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace pmrkit::literals;
using pmrkit::memory_block;
using pmrkit::memory_flags;
using pmrkit::memory_system;
using pmrkit::memory_system_config;
using pmrkit::memory_type;
using pmrkit::region_spec;

memory_system_config video_and_system(std::size_t video, std::size_t system) {
  memory_system_config config;
  config.regions = {region_spec::for_type(memory_type::video, video),
                    region_spec::for_type(memory_type::system, system)};
  return config;
}

// The conformance suite over resource(type) and resource(): the system holds its own page
// sources, so the suite's upstream is not used.
struct system_and_port {
  std::unique_ptr<memory_system> system;
  std::pmr::memory_resource* port = nullptr;
};

struct typed_port_traits {
  using resource_type = std::pmr::memory_resource;
  static constexpr std::string_view name = "pmrkit::memory_system::resource(video)";
  static constexpr pmrkit::conformance::capabilities caps{.survives_upstream_failures = false};
  static std::shared_ptr<resource_type> make(std::pmr::memory_resource*) {
    auto holder = std::make_shared<system_and_port>();
    holder->system = std::make_unique<memory_system>(video_and_system(64_MiB, 1_MiB));
    holder->port = holder->system->resource(memory_type::video);
    return {holder, holder->port};
  }
};

struct untyped_port_traits {
  using resource_type = std::pmr::memory_resource;
  static constexpr std::string_view name = "pmrkit::memory_system::resource() (tiers)";
  static constexpr pmrkit::conformance::capabilities caps{.survives_upstream_failures = false};
  static std::shared_ptr<resource_type> make(std::pmr::memory_resource*) {
    auto holder = std::make_shared<system_and_port>();
    holder->system = std::make_unique<memory_system>(video_and_system(1_MiB, 64_MiB));
    holder->port = holder->system->resource();
    return {holder, holder->port};
  }
};

using port_types = ::testing::Types<typed_port_traits, untyped_port_traits>;
INSTANTIATE_TYPED_TEST_SUITE_P(memory_system, resource_conformance, port_types,
                               pmrkit::conformance::traits_names);

using pmrkit::conformance::invalid_argument_of;

TEST(MemorySystem, TypedRequestsComeFromTheirRegionAndFallBackToSystem) {
  memory_system memory(video_and_system(4_MiB, 4_MiB));
  const memory_block texture = memory.allocate({.size = 3_MiB, .type = memory_type::video});
  EXPECT_EQ(texture.type, memory_type::video);
  EXPECT_TRUE(pmrkit::is_aligned(texture.pointer, 256));
  const memory_block spill = memory.allocate({.size = 2_MiB, .type = memory_type::video});
  EXPECT_EQ(spill.type, memory_type::system);
  EXPECT_EQ(memory.stats().fallbacks, 1U);
  // Without fallback a full region refuses.
  try {
    (void)memory.allocate({.size = 2_MiB, .type = memory_type::video, .allow_fallback = false});
    ADD_FAILURE() << "the video region is full";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::out_of_capacity);
    EXPECT_EQ(e.resource_name(), "memory_system");
    EXPECT_NE(std::string(e.what()).find("every video region is full"), std::string::npos);
  }
  EXPECT_EQ(memory.stats().failures, 1U);
  EXPECT_EQ(memory.stats().bytes_in_use, 5_MiB);
  memory.deallocate(spill);
  memory.deallocate(texture);
  EXPECT_EQ(memory.stats().bytes_in_use, 0U);
  for (const auto& region : memory.regions())
    EXPECT_EQ(region.used, 0U) << region.name;
}

TEST(MemorySystem, ATypeWithoutARegionFallsBackOrSaysSo) {
  memory_system memory(video_and_system(1_MiB, 1_MiB));
  const memory_block b = memory.allocate({.size = 100, .type = memory_type::audio});
  EXPECT_EQ(b.type, memory_type::system);
  memory.deallocate(b);
  try {
    (void)memory.allocate({.size = 100, .type = memory_type::audio, .allow_fallback = false});
    ADD_FAILURE();
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_NE(std::string(e.what()).find("no audio region is configured"), std::string::npos);
  }
  EXPECT_THROW((void)memory.resource(memory_type::audio), std::invalid_argument);
}

TEST(MemorySystem, WithoutASystemRegionFallbackUsesSystemPages) {
  memory_system_config config;
  config.regions = {region_spec::for_type(memory_type::video, 1_MiB)};
  memory_system memory(config);
  const memory_block b = memory.allocate({.size = 2_MiB, .type = memory_type::video});
  EXPECT_EQ(b.type, memory_type::system);
  std::memset(b.pointer, 1, b.size);
  memory.deallocate(b);
}

TEST(MemorySystem, DmaRequestsAreServedByLockedMemoryOnly) {
  memory_system_config config;
  config.regions = {region_spec::for_type(memory_type::audio, 64_KiB),  // locked pages
                    region_spec::for_type(memory_type::video, 1_MiB),   // plain pages
                    region_spec::for_type(memory_type::system, 1_MiB)};
  memory_system memory(config);
  const memory_block buffer = memory.allocate(
      {.size = 4096, .type = memory_type::audio, .flags = memory_flags::dma_capable});
  EXPECT_EQ(buffer.type, memory_type::audio);
  // The video region is not locked: a DMA request for video falls back to locked system pages
  // (the system region is not locked either), never to the plain video region.
  const memory_block frame = memory.allocate(
      {.size = 4096, .type = memory_type::video, .flags = memory_flags::dma_capable});
  EXPECT_EQ(frame.type, memory_type::system);
  for (const auto& region : memory.regions()) {
    if (region.name != "audio") {
      EXPECT_EQ(region.used, 0U) << region.name;
    }
  }
  try {
    (void)memory.allocate({.size = 4096,
                           .type = memory_type::video,
                           .flags = memory_flags::dma_capable,
                           .allow_fallback = false});
    ADD_FAILURE() << "no locked video region";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_NE(std::string(e.what()).find("no dma_capable video region is configured"),
              std::string::npos)
        << e.what();
  }
  // Untyped DMA requests skip the (unlocked) tiers.
  const memory_block scratch = memory.allocate({.size = 64, .flags = memory_flags::dma_capable});
  EXPECT_EQ(memory.stats().small_tier_bytes, 0U);
  memory.deallocate(scratch);
  memory.deallocate(frame);
  memory.deallocate(buffer);
  EXPECT_EQ(memory.stats().bytes_in_use, 0U);
}

TEST(MemorySystem, UntypedRequestsFollowTheTiers) {
  memory_system_config config = video_and_system(1_MiB, 8_MiB);
  config.small_threshold = 256;
  config.large_threshold = 64_KiB;
  memory_system memory(config);
  const memory_block small = memory.allocate({.size = 100});
  EXPECT_GE(memory.stats().small_tier_bytes, 100U);  // the pool's class size
  EXPECT_LT(memory.stats().small_tier_bytes, 256U);
  const memory_block medium = memory.allocate({.size = 4_KiB});
  EXPECT_GE(memory.stats().arena_tier_bytes, 4_KiB);
  const memory_block large = memory.allocate({.size = 1_MiB});
  EXPECT_EQ(large.type, memory_type::system);
  EXPECT_EQ(memory.regions()[1].used, 1_MiB);  // the system region's buddy
  memory.deallocate(large);
  memory.deallocate(medium);
  memory.deallocate(small);
  EXPECT_EQ(memory.stats().small_tier_bytes, 0U);
  memory.reset_arena();
  EXPECT_EQ(memory.stats().arena_tier_bytes, 0U);
  EXPECT_EQ(memory.stats().bytes_in_use, 0U);
}

TEST(MemorySystem, TheBudgetKeepsTheReserveForCriticalRequests) {
  memory_system_config config = video_and_system(8_MiB, 8_MiB);
  config.total_budget = 4_MiB;
  config.emergency_reserve = 1_MiB;
  memory_system memory(config);
  const memory_block a = memory.allocate({.size = 3_MiB, .type = memory_type::video});
  try {
    (void)memory.allocate({.size = 1, .type = memory_type::video});
    ADD_FAILURE() << "normal requests stop at budget - reserve";
  } catch (const pmrkit::budget_exceeded& e) {
    EXPECT_EQ(e.resource_name(), "memory_system");
  }
  const memory_block c =
      memory.allocate({.size = 1_MiB, .type = memory_type::video, .flags = memory_flags::critical});
  EXPECT_EQ(c.type, memory_type::video);
  EXPECT_THROW((void)memory.allocate(
                   {.size = 1, .type = memory_type::video, .flags = memory_flags::critical}),
               pmrkit::budget_exceeded);
  EXPECT_EQ(memory.stats().bytes_in_use, 4_MiB);
  memory.deallocate(c);
  memory.deallocate(a);
  EXPECT_EQ(memory.stats().bytes_in_use, 0U);
  EXPECT_EQ(memory.stats().failures, 2U);
}

TEST(MemorySystem, CriticalRequestsDrawOnTheReserveWhenTheRegionsAreFull) {
  memory_system_config config;
  config.regions = {region_spec::for_type(memory_type::video, 1_MiB),
                    region_spec::for_type(memory_type::system, 1_MiB)};
  config.emergency_reserve = 512_KiB;
  memory_system memory(config);
  const memory_block a = memory.allocate({.size = 1_MiB, .type = memory_type::video});
  const memory_block b = memory.allocate({.size = 1_MiB, .type = memory_type::video});  // system
  EXPECT_THROW((void)memory.allocate({.size = 256_KiB, .type = memory_type::video}),
               pmrkit::allocation_error);
  const memory_block c = memory.allocate(
      {.size = 256_KiB, .type = memory_type::video, .flags = memory_flags::critical});
  EXPECT_EQ(memory.stats().reserve_allocations, 1U);
  EXPECT_EQ(memory.regions().back().name, "emergency reserve");
  EXPECT_EQ(memory.regions().back().used, 256_KiB);
  memory.deallocate(c);
  memory.deallocate(b);
  memory.deallocate(a);
  EXPECT_EQ(memory.regions().back().used, 0U);
}

TEST(MemorySystem, PressureCallbacksSeeTheLevelAndMayFreeMemory) {
  memory_system_config config = video_and_system(16_MiB, 1_MiB);
  config.total_budget = 10_MiB;
  memory_system memory(config);
  // A texture cache: dropped on high pressure.
  std::vector<memory_block> cache;
  for (int i = 0; i < 4; ++i) {
    cache.push_back(memory.allocate({.size = 2_MiB, .type = memory_type::video}));
  }
  EXPECT_EQ(memory.level(), pmrkit::pressure_level::medium);  // 8 of 10 MiB
  std::vector<pmrkit::pressure_level> seen;
  pmrkit::pressure_subscription subscription =
      memory.on_pressure(pmrkit::pressure_level::high, [&](const pmrkit::pressure_event& e) {
        seen.push_back(e.level);
        if (e.level >= pmrkit::pressure_level::high) {
          for (const memory_block& b : cache)
            memory.deallocate(b);
          cache.clear();
        }
      });
  // 8 + 1 MiB: high (85 %); the callback drops the cache.
  const memory_block frame = memory.allocate({.size = 1_MiB, .type = memory_type::video});
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.front(), pmrkit::pressure_level::high);
  EXPECT_TRUE(cache.empty());
  EXPECT_EQ(memory.stats().bytes_in_use, 1_MiB);
  // A request past the budget calls the callbacks (critical, upstream failed) and is retried.
  cache.push_back(memory.allocate({.size = 8_MiB, .type = memory_type::video}));
  const memory_block big = memory.allocate({.size = 4_MiB, .type = memory_type::video});
  EXPECT_TRUE(cache.empty());
  memory.deallocate(big);
  memory.deallocate(frame);
  EXPECT_EQ(memory.stats().bytes_in_use, 0U);
}

TEST(MemorySystem, ThreadsShareIt) {
  memory_system_config config = video_and_system(16_MiB, 16_MiB);
  config.total_budget = 64_MiB;
  memory_system memory(config);
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::vector<memory_block> held;
      for (int i = 0; i < 2000; ++i) {
        const std::size_t size = 16 + static_cast<std::size_t>((i * 37 + t) % 4096);
        const auto type = i % 3 == 0 ? std::optional<memory_type>{}
                                     : std::optional<memory_type>{memory_type::video};
        held.push_back(memory.allocate({.size = size, .type = type}));
        std::memset(held.back().pointer, t, size);
        if (held.size() > 32) {
          const memory_block b = held.front();
          held.erase(held.begin());
          const auto* bytes = static_cast<const unsigned char*>(b.pointer);
          for (std::size_t k = 0; k < b.size; ++k) {
            if (bytes[k] != t) {
              ++errors;
              break;
            }
          }
          memory.deallocate(b);
        }
      }
      for (const memory_block& b : held)
        memory.deallocate(b);
    });
  }
  for (auto& thread : threads)
    thread.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(memory.stats().bytes_in_use, 0U);
}

TEST(MemorySystem, BadConfigsNameTheField) {
  EXPECT_EQ(invalid_argument_of([] {
              memory_system_config config;
              config.total_budget = 1_MiB;
              config.emergency_reserve = 1_MiB;
              memory_system m(config);
            }),
            "pmrkit::memory_system: emergency_reserve must be below total_budget");
  EXPECT_EQ(invalid_argument_of([] {
              memory_system_config config;
              config.regions = {region_spec{.capacity = 1_MiB, .backing = "vram"}};
              memory_system m(config);
            }),
            "pmrkit::memory_system: regions[0].backing must be pages, huge_pages, locked_pages, "
            "locked_huge_pages, shared_memory or a name in page_sources ('vram' is none)");
  EXPECT_EQ(invalid_argument_of([] {
              memory_system_config config;
              config.regions = {region_spec{.capacity = 0}};
              memory_system m(config);
            }),
            "pmrkit::region_resource: capacity must not be 0 (regions[0], 'system')");
  EXPECT_EQ(invalid_argument_of([] {
              memory_system_config config;
              config.regions = {region_spec::for_type(memory_type::video, 1_MiB),
                                region_spec::for_type(memory_type::video, 1_MiB)};
              memory_system m(config);
            }),
            "pmrkit::memory_system: regions[1].name must differ from the other regions'");
}

TEST(MemorySystem, PageSourcesOfTheCallersBackRegions) {
  pmrkit::page_resource huge({.huge_pages = pmrkit::huge_page_mode::transparent});
  memory_system_config config;
  config.regions = {region_spec{.capacity = 4_MiB, .type = memory_type::video, .backing = "mine"}};
  config.page_sources["mine"] = &huge;
  memory_system memory(config);
  EXPECT_EQ(huge.stats().blocks_in_use, 1U);
  EXPECT_EQ(memory.regions()[0].backing, huge.backing());
}

TEST(MemorySystemConfig, AFileDescribesTheSystem) {
  const memory_system_config config = memory_system_config::parse(R"(# a game
budget = 64MiB
emergency_reserve = 2 MiB
small_threshold = 512
large_threshold = 128KiB
pressure = 40,60,80,90
region.video = capacity=32MiB alignment=4096 backing=huge_pages
region.audio = capacity=1MiB block_size=8KiB
region.frames = type=temporary capacity=4M flags=zero_fill
)",
                                                                  "game.conf");
  EXPECT_EQ(config.total_budget, 64_MiB);
  EXPECT_EQ(config.emergency_reserve, 2_MiB);
  EXPECT_EQ(config.small_threshold, 512U);
  EXPECT_EQ(config.large_threshold, 128_KiB);
  EXPECT_EQ(config.low_percent, 40);
  EXPECT_EQ(config.critical_percent, 90);
  ASSERT_EQ(config.regions.size(), 3U);
  EXPECT_EQ(config.regions[0].type, memory_type::video);
  EXPECT_EQ(config.regions[0].capacity, 32_MiB);
  EXPECT_EQ(config.regions[0].alignment, 4096U);
  EXPECT_EQ(config.regions[0].backing, "huge_pages");
  EXPECT_EQ(config.regions[1].type, memory_type::audio);
  EXPECT_EQ(config.regions[1].block_size, 8_KiB);
  EXPECT_EQ(config.regions[2].name, "frames");
  EXPECT_EQ(config.regions[2].type, memory_type::temporary);
  EXPECT_EQ(config.regions[2].flags, memory_flags::zero_fill);
  memory_system memory(config);
  EXPECT_EQ(memory.regions().size(), 4U);  // and the reserve
}

TEST(MemorySystemConfig, BadValuesNameTheLineOrTheVariable) {
  EXPECT_EQ(
      invalid_argument_of([] { (void)memory_system_config::parse("budget = 12XB", "a.conf"); }),
      "pmrkit::memory_system: a.conf:1: budget: '12XB' is not a size (a number with an "
      "optional suffix K, KiB, M, MiB, G or GiB)");
  EXPECT_EQ(invalid_argument_of([] {
              (void)memory_system_config::parse("\n\nregion.video = alignment=64", "a.conf");
            }),
            "pmrkit::memory_system: a.conf:3: region.video: 'alignment=64' has no capacity=<size>");
  EXPECT_EQ(invalid_argument_of([] { (void)memory_system_config::parse("budgets = 1", "a.conf"); }),
            "pmrkit::memory_system: a.conf:1: budgets: 'budgets' is not a setting (budget, "
            "emergency_reserve, small_threshold, large_threshold, pressure, region.NAME)");
  EXPECT_EQ(invalid_argument_of(
                [] { (void)memory_system_config::parse("pressure = 50,70,85", "a.conf"); }),
            "pmrkit::memory_system: a.conf:1: pressure: '50,70,85' is not four percentages "
            "low,medium,high,critical");
  EXPECT_EQ(invalid_argument_of([] {
              (void)memory_system_config::parse("region.x = type=vram capacity=1M", "a.conf");
            }),
            "pmrkit::memory_system: a.conf:1: region.x type: 'vram' is not a memory type (system, "
            "video, audio, network, shared, temporary)");
  EXPECT_EQ(invalid_argument_of([] {
              (void)memory_system_config::parse("budget = 99999999999999999999G", "a.conf");
            }),
            "pmrkit::memory_system: a.conf:1: budget: '99999999999999999999G' overflows "
            "std::size_t");
  EXPECT_EQ(invalid_argument_of([] { (void)memory_system_config::from_file("/nonexistent/x"); }),
            "pmrkit::memory_system: cannot read the config file '/nonexistent/x': No such file or "
            "directory");
}

// Sets environment variables for one test and removes them after.
class environment {
 public:
  environment(std::initializer_list<std::pair<const char*, const char*>> variables) {
    for (const auto& [name, value] : variables) {
      ::setenv(name, value, 1);
      names_.push_back(name);
    }
  }
  ~environment() {
    for (const char* name : names_)
      ::unsetenv(name);
  }
  environment(const environment&) = delete;
  environment& operator=(const environment&) = delete;

 private:
  std::vector<const char*> names_;
};

TEST(MemorySystemConfig, TheEnvironmentOverridesTheFileItNames) {
  const std::string path = ::testing::TempDir() + "pmrkit_memory_system_test.conf";
  {
    std::ofstream file(path);
    file << "budget = 8MiB\nregion.video = capacity=4MiB\n";
  }
  const environment variables{{"PMRKIT_CONFIG", path.c_str()},
                              {"PMRKIT_BUDGET", "16MiB"},
                              {"PMRKIT_REGION_NETWORK", "capacity=1MiB block_size=4KiB"}};
  const memory_system_config config = memory_system_config::from_environment();
  std::remove(path.c_str());
  EXPECT_EQ(config.total_budget, 16_MiB);
  ASSERT_EQ(config.regions.size(), 2U);
  EXPECT_EQ(config.regions[0].name, "video");
  EXPECT_EQ(config.regions[1].name, "network");
  EXPECT_EQ(config.regions[1].type, memory_type::network);
  EXPECT_EQ(config.regions[1].block_size, 4_KiB);
}

TEST(MemorySystemConfig, ABadVariableIsNamed) {
  const environment variables{{"PMRKIT_LARGE_THRESHOLD", "lots"}};
  EXPECT_EQ(invalid_argument_of([] { (void)memory_system_config::from_environment(); }),
            "pmrkit::memory_system: PMRKIT_LARGE_THRESHOLD: 'lots' is not a size (a number with "
            "an optional suffix K, KiB, M, MiB, G or GiB)");
  const environment region{{"PMRKIT_REGION_VIDEO", "capacity=1MiB colour=blue"}};
  ::unsetenv("PMRKIT_LARGE_THRESHOLD");
  EXPECT_EQ(invalid_argument_of([] { (void)memory_system_config::from_environment(); }),
            "pmrkit::memory_system: PMRKIT_REGION_VIDEO: 'colour' is not a region key (type, "
            "capacity, alignment, block_size, strategy, backing, flags, segment)");
}

TEST(MemorySystem, PrintsItsRegionsAsATable) {
  memory_system_config config = video_and_system(4_MiB, 2_MiB);
  config.total_budget = 8_MiB;
  memory_system memory(config);
  const memory_block b = memory.allocate({.size = 1_MiB, .type = memory_type::video});
  std::ostringstream out;
  out << memory;
  const std::string table = out.str();
  EXPECT_NE(table.find("video"), std::string::npos) << table;
  EXPECT_NE(table.find("4.0 MiB"), std::string::npos) << table;
  EXPECT_NE(table.find("1.0 MiB in use"), std::string::npos) << table;
  EXPECT_NE(table.find("budget 8.0 MiB"), std::string::npos) << table;
  EXPECT_EQ(table, memory.format());
  memory.deallocate(b);
}

}  // namespace
