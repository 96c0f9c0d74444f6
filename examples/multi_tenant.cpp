// Several tenants share one process budget. Each tenant has its own budget
// and its own statistics; all of them draw on a pressure_resource that knows
// how full the process is, and a cache of rendered pages gives memory back as
// soon as that pressure rises. One tenant is greedy: its own budget refuses it
// (budget_exceeded), and the others are not disturbed. At the end each layer
// prints what it saw, and a test_resource under everything shows that every
// byte went back.
//
//   test_resource "heap"
//     budget_resource "process" (4 MiB)
//       pressure_resource (3.5 MiB is 100 %; low 50 %, high 85 %)
//         lru_cache of rendered pages (evicts under pressure)
//         budget_resource "tenant-X" (limits of 1 MiB, 1 MiB, 256 KiB)
//           statistics_resource "tenant-X"
//             the tenant's containers
#include <pmr/cache/lru_cache.hpp>
#include <pmr/core/error.hpp>
#include <pmr/decorator/budget_resource.hpp>
#include <pmr/decorator/pressure_resource.hpp>
#include <pmr/decorator/statistics_resource.hpp>
#include <pmr/testing/test_resource.hpp>

#include <cstdio>
#include <map>
#include <memory>
#include <memory_resource>
#include <string>
#include <vector>

namespace {

constexpr std::size_t KiB = 1024;

// A tenant: its budget over the shared pressure resource and its statistics on top.
struct tenant {
  tenant(const char* name, std::size_t limit, std::pmr::memory_resource* shared)
      : budget({.limit = limit, .name = name}, shared),
        statistics({.name = name}, &budget),
        sessions(&statistics) {}

  // Opens a session holding `bytes` of state; false when the tenant's budget refuses it.
  bool open_session(int id, std::size_t bytes) {
    try {
      sessions.try_emplace(id, bytes, 'x');
      return true;
    } catch (const pmrkit::budget_exceeded& e) {
      ++refused;
      if (refused == 1) std::printf("  %s\n", e.what());
      return false;
    }
  }
  void close_session(int id) { sessions.erase(id); }

  pmrkit::budget_resource budget;
  pmrkit::statistics_resource statistics;
  std::pmr::map<int, std::pmr::string> sessions;
  int refused = 0;
};

}  // namespace

int main() {
  pmrkit::test_resource heap("heap");
  {
    pmrkit::budget_resource process({.limit = 4096 * KiB, .name = "process"}, &heap);
    pmrkit::pressure_resource pressure(
        {.capacity = 3584 * KiB, .high_percent = 85, .name = "pressure"}, &process);
    int rises = 0;
    const auto log_levels =
        pressure.on_pressure(pmrkit::pressure_level::low, [&](const pmrkit::pressure_event& event) {
          ++rises;
          if (rises <= 4) {  // the first few; the totals come at the end
            std::printf("  pressure %s at %zu KiB (request of %zu bytes)\n",
                        std::string(pmrkit::to_string(event.level)).c_str(),
                        event.bytes_in_use / KiB, event.requested);
          }
        });
    pmrkit::lru_cache<int, std::pmr::string> pages({.max_entries = 4096}, pressure);

    std::vector<std::unique_ptr<tenant>> tenants;
    tenants.push_back(std::make_unique<tenant>("tenant-a", 1024 * KiB, &pressure));
    tenants.push_back(std::make_unique<tenant>("tenant-b", 1024 * KiB, &pressure));
    tenants.push_back(std::make_unique<tenant>("tenant-greedy", 256 * KiB, &pressure));

    std::printf("serving:\n");
    int next_page = 0;
    for (int tick = 0; tick < 400; ++tick) {
      for (std::size_t t = 0; t < tenants.size(); ++t) {
        tenant& who = *tenants[t];
        const std::size_t bytes =
            t == 2 ? 16 * KiB : 2 * KiB + 64 * static_cast<std::size_t>(tick % 16);
        who.open_session(tick, bytes);
        if (tick >= 100) who.close_session(tick - 100);  // sessions live 100 ticks
      }
      // Every tick renders pages into the cache; the cache would fill the process if the
      // pressure callbacks did not make it evict.
      for (int i = 0; i < 3; ++i)
        pages.put(next_page++, std::pmr::string(4 * KiB, 'p', &pressure));
    }

    std::printf("tenants:\n");
    for (const auto& who : tenants) {
      const pmrkit::statistics_stats counters = who->statistics.stats();
      const pmrkit::budget_stats budget = who->budget.stats();
      std::printf("  %-14s %5zu allocations, peak %4zu KiB of %4zu KiB, %3d sessions refused\n",
                  std::string(who->statistics.name()).c_str(), counters.allocations,
                  budget.peak_bytes_in_use / KiB, budget.limit / KiB, who->refused);
    }
    const pmrkit::pressure_stats p = pressure.stats();
    const pmrkit::lru_cache_stats cache = pages.stats();
    std::printf("process: peak %zu KiB of %zu KiB; pressure: %zu transitions, peak %zu KiB\n",
                process.stats().peak_bytes_in_use / KiB, process.limit() / KiB, p.transitions,
                p.peak_bytes_in_use / KiB);
    std::printf("cache: %zu pages kept, %zu evicted under pressure, %zu for its size\n",
                cache.entries, cache.pressure_evictions, cache.evictions);

    // What the example is about: the greedy tenant was refused and the others were not, the
    // cache gave way under pressure, and the process budget was never exceeded.
    bool ok = tenants[2]->refused > 0 && tenants[0]->refused == 0 && tenants[1]->refused == 0;
    ok = ok && cache.pressure_evictions > 0 && rises > 0;
    ok = ok && process.stats().rejections == 0 &&
         process.stats().peak_bytes_in_use <= process.limit();
    if (!ok) {
      std::printf("unexpected outcome\n");
      return 1;
    }
  }
  std::printf("heap: %zu blocks in use after shutdown, %zu errors\n", heap.blocks_in_use(),
              heap.errors().size());
  return heap.blocks_in_use() == 0 && heap.errors().empty() ? 0 : 1;
}
