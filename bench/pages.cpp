// The page sources' scenarios, first_touch_64MiB and first_touch_4MiB (custom rows): one timed
// iteration takes a block of that size, writes one byte in every 4 KiB page and frees it. The
// time is what the first touch costs with each kind of page; the counter page_faults is the
// minor page faults per iteration (getrusage), which is what the time is made of, and
// touch_faults the part of them taken by the touching itself (0 where the pages were prefaulted
// or locked when allocated: their faults were taken by allocate).
//
// Rows: pmrkit_pages (page_resource), pmrkit_pages_prefault (page_resource, prefault),
// pmrkit_transparent_huge and pmrkit_explicit_huge (page_resource's huge page modes; the
// explicit row is left out, saying so on stderr, when the system has too few huge pages
// reserved), pmrkit_locked (locked_page_resource over a page_resource: prefaulted and mlocked;
// left out, saying so, when RLIMIT_MEMLOCK is too low for the block) and malloc (the peer).
//
// region_alloc_2KiB (custom rows): allocate and free one 2 KiB buffer (a packet, an audio
// buffer) per iteration, from a pooled region against a page source per request, the CPU's
// version of a pinned pool against cudaHostAlloc per request. Rows: pmrkit_region_pool (a
// network region_resource over page_resource), pmrkit_region_locked_pool (the same region
// dma_capable: its pages locked once), pmrkit_memory_system (a typed request to a
// memory_system's network region: the budget, the pressure meter and the region's lock on
// top), pmrkit_pages (page_resource: mmap and munmap per request), pmrkit_locked_pages
// (locked_page_resource over page_resource: mmap, prefault, mlock, zero, munlock, munmap per
// request) and malloc.
#include <sys/resource.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory_resource>
#include <new>
#include <string>

#include <benchmark/benchmark.h>

#include <pmr/region/locked_page_resource.hpp>
#include <pmr/region/memory_system.hpp>
#include <pmr/region/page_resource.hpp>
#include <pmr/region/region_resource.hpp>

#include "registry.hpp"

namespace pmrkit::bench {
namespace {

constexpr std::size_t touch_stride = 4096;

long minor_faults() {
  struct rusage usage {};
  ::getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

void touch(void* p, std::size_t bytes) {
  auto* at = static_cast<volatile unsigned char*>(p);
  for (std::size_t offset = 0; offset < bytes; offset += touch_stride)
    at[offset] = 1;
}

/// Allocates, touches every page and frees `bytes` per iteration, through `take` and `give`.
template <class Take, class Give>
void first_touch(benchmark::State& state, std::size_t bytes, Take take, Give give) {
  long faults = 0;
  long touch_faults = 0;
  for (auto _ : state) {
    const long before = minor_faults();
    void* p = take(bytes);
    const long taken = minor_faults();
    touch(p, bytes);
    touch_faults += minor_faults() - taken;
    benchmark::DoNotOptimize(p);
    give(p, bytes);
    faults += minor_faults() - before;
  }
  state.counters["page_faults"] =
      benchmark::Counter(static_cast<double>(faults), benchmark::Counter::kAvgIterations);
  state.counters["touch_faults"] =
      benchmark::Counter(static_cast<double>(touch_faults), benchmark::Counter::kAvgIterations);
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) *
                          static_cast<std::int64_t>(bytes));
}

void over_resource(benchmark::State& state, std::pmr::memory_resource& resource,
                   std::size_t bytes) {
  first_touch(
      state, bytes, [&](std::size_t n) { return resource.allocate(n, touch_stride); },
      [&](void* p, std::size_t n) { resource.deallocate(p, n, touch_stride); });
}

std::size_t free_huge_page_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  std::size_t value = 0;
  while (meminfo >> key) {
    if (key == "HugePages_Free:" && meminfo >> value) return value * (std::size_t{2} << 20);
    meminfo.ignore(256, '\n');
  }
  return 0;
}

/// Allocates and frees one `bytes` block per iteration.
void one_block(benchmark::State& state, std::pmr::memory_resource& resource, std::size_t bytes) {
  for (auto _ : state) {
    void* p = resource.allocate(bytes, 64);
    benchmark::DoNotOptimize(p);
    resource.deallocate(p, bytes, 64);
  }
}

void add_region_rows(registry& rows) {
  constexpr std::size_t bytes = 2048;
  const std::string scenario = "region_alloc_2KiB";
  rows.add_custom(scenario, "pmrkit_region_pool", [](benchmark::State& state) {
    page_resource pages;
    region_resource packets({.capacity = std::size_t{1} << 20, .type = memory_type::network},
                            &pages);
    one_block(state, packets, bytes);
  });
  rows.add_custom(scenario, "pmrkit_region_locked_pool", [](benchmark::State& state) {
    page_resource pages;
    region_resource packets({.capacity = std::size_t{1} << 20,
                             .type = memory_type::network,
                             .flags = memory_flags::dma_capable},
                            &pages);
    one_block(state, packets, bytes);
  });
  rows.add_custom(scenario, "pmrkit_memory_system", [](benchmark::State& state) {
    memory_system_config config;
    config.regions = {region_spec::for_type(memory_type::network, std::size_t{1} << 20)};
    config.total_budget = std::size_t{64} << 20;
    memory_system memory(config);
    for (auto _ : state) {
      const memory_block block = memory.allocate({.size = bytes, .type = memory_type::network});
      benchmark::DoNotOptimize(block.pointer);
      memory.deallocate(block);
    }
  });
  rows.add_custom(scenario, "pmrkit_pages", [](benchmark::State& state) {
    page_resource pages;
    one_block(state, pages, bytes);
  });
  rows.add_custom(scenario, "pmrkit_locked_pages", [](benchmark::State& state) {
    page_resource pages;
    locked_page_resource locked({}, &pages);
    one_block(state, locked, bytes);
  });
  rows.add_custom(scenario, "malloc", [](benchmark::State& state) {
    for (auto _ : state) {
      void* p = std::malloc(bytes);
      benchmark::DoNotOptimize(p);
      std::free(p);
    }
  });
}

}  // namespace

void add_page_rows(registry& rows) {
  for (const std::size_t mib : {std::size_t{64}, std::size_t{4}}) {
    const std::size_t bytes = mib << 20;
    const std::string scenario = "first_touch_" + std::to_string(mib) + "MiB";
    rows.add_custom(scenario, "pmrkit_pages", [bytes](benchmark::State& state) {
      page_resource pages;
      over_resource(state, pages, bytes);
    });
    rows.add_custom(scenario, "pmrkit_pages_prefault", [bytes](benchmark::State& state) {
      page_resource pages({.prefault = true});
      over_resource(state, pages, bytes);
    });
    rows.add_custom(scenario, "pmrkit_transparent_huge", [bytes](benchmark::State& state) {
      page_resource pages({.huge_pages = huge_page_mode::transparent});
      over_resource(state, pages, bytes);
    });
    if (free_huge_page_bytes() >= bytes) {
      rows.add_custom(scenario, "pmrkit_explicit_huge", [bytes](benchmark::State& state) {
        page_resource pages({.huge_pages = huge_page_mode::explicit_pages});
        over_resource(state, pages, bytes);
      });
    } else {
      std::fprintf(stderr,
                   "%s/pmrkit_explicit_huge left out: %zu bytes of explicit huge pages free, "
                   "the row needs %zu (raise /proc/sys/vm/nr_hugepages)\n",
                   scenario.c_str(), free_huge_page_bytes(), bytes);
    }
    struct rlimit limit {};
    ::getrlimit(RLIMIT_MEMLOCK, &limit);
    if (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur >= 2 * bytes) {
      rows.add_custom(scenario, "pmrkit_locked", [bytes](benchmark::State& state) {
        page_resource pages;
        locked_page_resource locked({}, &pages);
        over_resource(state, locked, bytes);
      });
    } else {
      std::fprintf(stderr,
                   "%s/pmrkit_locked left out: RLIMIT_MEMLOCK is %llu bytes, the row locks %zu "
                   "(raise it with ulimit -l)\n",
                   scenario.c_str(), static_cast<unsigned long long>(limit.rlim_cur), bytes);
    }
    rows.add_custom(scenario, "malloc", [bytes](benchmark::State& state) {
      first_touch(
          state, bytes,
          [](std::size_t n) {
            void* p = std::malloc(n);
            if (p == nullptr) throw std::bad_alloc();
            return p;
          },
          [](void* p, std::size_t) { std::free(p); });
    });
  }
  add_region_rows(rows);
}

}  // namespace pmrkit::bench
