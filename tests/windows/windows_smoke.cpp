// The Windows smoke program (tests/windows/CMakeLists.txt): the OS page layer's Windows path
// (VirtualAlloc, VirtualFree, VirtualLock, GetProcessWorkingSetSize) through every page source,
// the vmem arena, the memory system (its environment reader too), and the strategies and
// threads over the C runtime. Prints "windows_smoke: ok" and returns 0 when every check holds.
#include <pmr/pmrkit.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <list>
#include <map>
#include <memory_resource>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace pmrkit::literals;

int failures = 0;

void check(bool condition, const char* what) {
  if (!condition) {
    std::printf("windows_smoke: FAILED: %s\n", what);
    ++failures;
  }
}

bool aligned(const void* p, std::size_t alignment) {
  return reinterpret_cast<std::uintptr_t>(p) % alignment == 0;
}

bool all_zero(const void* p, std::size_t bytes) {
  const auto* at = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < bytes; ++i)
    if (at[i] != 0) return false;
  return true;
}

void page_sources() {
  pmrkit::page_resource pages;
  // Up to the 64 KiB allocation granularity, and above it (reserve's probe-and-retry path).
  for (const std::size_t alignment : {std::size_t{4096}, 64_KiB, 1_MiB, 8_MiB}) {
    void* p = pages.allocate(100000, alignment);
    check(aligned(p, alignment), "page_resource: aligned block");
    check(all_zero(p, 100000), "page_resource: zeroed pages");
    std::memset(p, 0xab, 100000);
    pages.deallocate(p, 100000, alignment);
  }
  check(pages.stats().bytes_mapped == 0, "page_resource: everything unmapped");

  // No explicit huge pages on Windows: map_huge refuses, the source falls back.
  pmrkit::page_resource huge({.huge_pages = pmrkit::huge_page_mode::explicit_pages});
  void* big = huge.allocate(3_MiB);
  std::memset(big, 1, 3_MiB);
  const pmrkit::page_stats h = huge.stats();
  check(h.bytes_mapped == 4_MiB && h.huge_page_bytes == 0 && h.huge_fallbacks == 1,
        "page_resource: huge pages fall back");
  huge.release();
  check(huge.stats().bytes_mapped == 0, "page_resource: release unmaps");

  pmrkit::page_resource prefaulted({.prefault = true});
  void* warm = prefaulted.allocate(1_MiB);
  check(all_zero(warm, 1_MiB), "page_resource: prefaulted pages are zero");
  prefaulted.deallocate(warm, 1_MiB);

  // VirtualLock locks up to the minimum working set size.
  pmrkit::page_resource under_locked;
  pmrkit::locked_page_resource locked({}, &under_locked);
  const pmrkit::locked_page_stats before = locked.stats();
  std::printf("windows_smoke: lock limit %zu bytes\n", before.lock_limit);
  if (before.lock_limit - before.bytes_locked >= 64_KiB) {
    auto* buffer = static_cast<unsigned char*>(locked.allocate(10000));
    buffer[0] = 42;
    check(locked.stats().bytes_locked >= 10000, "locked_page_resource: bytes locked");
    locked.deallocate(buffer, 10000);
  } else {
    std::printf("windows_smoke: locked_page_resource skipped (lock limit too small)\n");
  }
  check(locked.stats().bytes_locked == 0 && under_locked.stats().bytes_mapped == 0,
        "locked_page_resource: everything unlocked and unmapped");
}

void virtual_arena() {
  check(pmrkit::vmem_arena_resource::available(), "vmem_arena_resource: available");
  if (!pmrkit::vmem_arena_resource::available()) return;
  // An alignment above the allocation granularity: the range is reserved at a multiple of it.
  pmrkit::vmem_arena_resource arena({.reserve = 1_GiB, .commit_step = 64_KiB, .alignment = 1_MiB});
  {
    std::pmr::vector<int> numbers(&arena);
    for (int i = 0; i < 100000; ++i)
      numbers.push_back(i);
    check(aligned(numbers.data(), 1_MiB), "vmem_arena_resource: aligned blocks");
    check(numbers[99999] == 99999, "vmem_arena_resource: contents");
  }
  check(arena.stats().bytes_committed > 64_KiB && arena.stats().bytes_reserved == 1_GiB,
        "vmem_arena_resource: committed on demand");
  arena.reset();  // decommits (VirtualFree MEM_DECOMMIT) all but 64 KiB
  check(arena.stats().bytes_committed == 64_KiB, "vmem_arena_resource: reset decommits");
  // The retained 64 KiB keep their contents; the pages past them were decommitted and read
  // as zero when committed again.
  auto* again = static_cast<unsigned char*>(arena.allocate(200_KiB));
  check(all_zero(again + 64_KiB, 200_KiB - 64_KiB),
        "vmem_arena_resource: recommitted pages are zero");
}

void regions() {
  pmrkit::page_resource pages;
  pmrkit::region_resource video({.capacity = 4_MiB, .type = pmrkit::memory_type::video}, &pages);
  void* texture = video.allocate(1_MiB);
  check(video.owns(texture) && aligned(texture, 256), "region_resource: owns its block");
  std::memset(texture, 7, 1_MiB);
  video.deallocate(texture, 1_MiB);

  // The environment reader (_environ on Windows).
  check(_putenv_s("PMRKIT_REGION_SCRATCH", "type=system capacity=4MiB") == 0, "_putenv_s");
  pmrkit::memory_system_config config = pmrkit::memory_system_config::from_environment();
  bool found = false;
  for (const pmrkit::region_spec& region : config.regions)
    found |= region.name == "scratch";
  check(found, "memory_system_config::from_environment: PMRKIT_REGION_SCRATCH");
  config.regions.push_back(pmrkit::region_spec::for_type(pmrkit::memory_type::video, 8_MiB));
  config.regions.push_back(pmrkit::region_spec::for_type(pmrkit::memory_type::audio, 1_MiB));
  config.total_budget = 16_MiB;
  pmrkit::memory_system memory(config);
  const auto texture_block = memory.allocate({.size = 6_MiB, .type = pmrkit::memory_type::video});
  const auto spill = memory.allocate({.size = 3_MiB, .type = pmrkit::memory_type::video});
  check(texture_block.type == pmrkit::memory_type::video, "memory_system: video region");
  check(spill.type == pmrkit::memory_type::system, "memory_system: falls back to system");
  {
    std::pmr::vector<int> small({1, 2, 3}, memory.resource());
    check(memory.stats().bytes_in_use == 9_MiB + 3 * sizeof(int), "memory_system: bytes in use");
  }
  memory.deallocate(spill);
  memory.deallocate(texture_block);
  std::printf("%s", memory.format().c_str());
}

void strategies(bool threads_too) {
  pmrkit::test_resource upstream("smoke");
  {
    pmrkit::chunked_arena_resource arena({.initial_chunk_size = 4_KiB}, &upstream);
    for (int pass = 0; pass < 3; ++pass) {
      { std::pmr::vector<std::pmr::string> words({"alpha", "beta"}, &arena); }
      arena.reset();
    }
    check(arena.stats().chunk_count == 1, "chunked_arena_resource: one chunk");
    const std::string_view line =
        pmrkit::format_string(arena, "%zu pages of %s", std::size_t{4}, "memory");
    check(line == "4 pages of memory", "format_string: %zu");
  }
  {
    pmrkit::multipool_resource pools(std::pmr::pool_options{.largest_required_pool_block = 4096},
                                     &upstream);
    std::pmr::map<int, std::pmr::string> names(&pools);
    for (int i = 0; i < 1000; ++i)
      names.emplace(i, "a string too long for the small buffer");
    check(pools.stats().blocks_in_use == 2000, "multipool_resource: blocks in use");
  }
  {
    pmrkit::pool_resource nodes({.block_size = 48}, &upstream);
    std::pmr::list<int> values({1, 2, 3}, &nodes);
    check(nodes.stats().blocks_in_use == 3, "pool_resource: blocks in use");
  }
  {
    pmrkit::buddy_resource buddy({.region_size = 4096, .min_block = 64, .max_regions = 1},
                                 &upstream);
    void* a = buddy.allocate(100);
    buddy.deallocate(a, 100);
    check(buddy.stats().largest_free_block == 4096, "buddy_resource: merged");
  }
  // Threads with thread_local objects that have destructors (concurrent_pool_resource's caches)
  // crash now and then at thread exit under Wine 8 with mingw-w64's winpthreads, in Wine's ntdll
  // (a ten-line program without pmrkit does too): only with --threads.
  if (threads_too) {
    pmrkit::concurrent_pool_resource pool({}, &upstream);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&pool] {
        std::vector<void*> blocks;
        for (int i = 0; i < 10000; ++i)
          blocks.push_back(pool.allocate(64 + (i % 4) * 64));
        for (int i = 0; i < 10000; ++i)
          pool.deallocate(blocks[i], 64 + (i % 4) * 64);
      });
    }
    for (std::thread& thread : threads)
      thread.join();
    check(pool.stats().blocks_in_use == 0, "concurrent_pool_resource: threads");
  }
  check(upstream.blocks_in_use() == 0, "test_resource: every block given back");

  // The system source reads files Windows does not have: "unavailable" (Wine may show Linux's).
  pmrkit::pressure_resource pressure({.source = pmrkit::pressure_source::system});
  void* p = pressure.allocate(100);
  std::printf("windows_smoke: system pressure from %.*s\n",
              static_cast<int>(pressure.stats().measured_from.size()),
              pressure.stats().measured_from.data());
  pressure.deallocate(p, 100);
}

}  // namespace

int main(int argc, char** argv) {
  const bool threads_too = argc > 1 && std::strcmp(argv[1], "--threads") == 0;
  try {
    page_sources();
    virtual_arena();
    regions();
    strategies(threads_too);
  } catch (const std::exception& e) {
    std::printf("windows_smoke: FAILED: exception: %s\n", e.what());
    return 1;
  }
  if (failures != 0) return 1;
  std::printf("windows_smoke: ok\n");
  return 0;
}
