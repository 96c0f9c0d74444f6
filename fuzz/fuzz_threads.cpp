// Fuzzes the thread-safe resources shared between threads: 2 to 4 threads,
// each reading its own slice of the input as a sequence of calls on one
// resource: allocate, free one of its blocks, reallocate one, hand one to
// the other threads or take one of theirs (so blocks are freed by a thread
// other than the one that got them), and shrink where the resource has it.
// The resource is picked by the input: concurrent_pool_resource,
// synchronized_resource over a multipool_resource, budget_resource and
// statistics_resource (threading concurrent) over a concurrent_pool_resource,
// and concurrent_arena_resource (whose frees roll back a thread's newest
// block and otherwise wait for the owner's reset).
//
// The model of fuzz_harness.hpp, shared: one map of the live blocks' extents
// under a mutex (taken around the checks, never around a call of the
// resource), so no two live blocks overlap whichever thread holds them; each
// block's pattern is checked when it is freed or resized; a bad request
// throws allocation_error; at the end the strict upstream (behind a
// synchronized_resource, as it is not thread-safe) gets every byte back.
// The threads interleave as the scheduler has them, so an input does not
// always replay the same way: ThreadSanitizer in the test suite covers the
// races, this covers the contract under contention with ASan and UBSan. The
// budget's use is checked against its limit after every allocation, and once
// the threads are gone and every block is back the budget's and the
// statistics' per-thread figures must add up exactly (nothing in use, as many
// deallocations as allocations, the whole limit available again).
#include "fuzz_harness.hpp"

#include <pmr/arena/concurrent_arena_resource.hpp>
#include <pmr/decorator/budget_resource.hpp>
#include <pmr/decorator/statistics_resource.hpp>
#include <pmr/decorator/synchronized_resource.hpp>
#include <pmr/pool/concurrent_pool_resource.hpp>
#include <pmr/pool/multipool_resource.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace {

using pmrkit::fuzz::fail;
using pmrkit::fuzz::fuzz_input;
using pmrkit::fuzz::live_block;
using pmrkit::fuzz::model;

/// The resource under test and what it is built on.
struct subject {
  std::optional<pmrkit::concurrent_pool_resource> pool;
  std::optional<pmrkit::multipool_resource> multipool;
  std::optional<pmrkit::synchronized_resource> synchronized;
  std::optional<pmrkit::budget_resource> budget;
  std::optional<pmrkit::statistics_resource> statistics;
  std::optional<pmrkit::concurrent_arena_resource> arena;
  std::pmr::memory_resource* top = nullptr;

  subject(fuzz_input& in, std::pmr::memory_resource* upstream) {
    const std::uint8_t which = in.u8() % 5;
    if (which == 4) {
      pmrkit::concurrent_arena_options o;
      pmrkit::fuzz::draw_chain_options(in, o, 12);
      arena.emplace(o, upstream);
      top = &*arena;
      return;
    }
    if (which == 1) {
      pmrkit::multipool_options o;
      o.max_blocks_per_chunk = in.range(0, 4096);
      o.largest_required_pool_block = in.range(0, std::size_t{1} << 20);
      multipool.emplace(o, upstream);
      synchronized.emplace(pmrkit::synchronized_options{}, &*multipool);
      top = &*synchronized;
      return;
    }
    pmrkit::concurrent_pool_options o;
    o.max_blocks_per_chunk = in.range(0, 4096);
    o.largest_required_pool_block = in.range(0, std::size_t{1} << 20);
    o.cache_bytes_per_class = in.range(0, std::size_t{256} << 10);
    pool.emplace(o, upstream);
    top = &*pool;
    if (which == 2) {
      budget.emplace(pmrkit::budget_options{.limit = in.range(0, std::size_t{16} << 20)}, top);
      top = &*budget;
    } else if (which == 3) {
      statistics.emplace(pmrkit::statistics_options{}, top);
      top = &*statistics;
    }
  }
  std::size_t shrink() {
    if (arena) return arena->shrink();  // the owner's call: no thread allocates now
    if (pool) return pool->shrink();
    return multipool->shrink();  // under no lock of synchronized's: only from the main thread
  }
};

/// What the threads share: the live blocks' extents and the blocks handed over.
struct shared_state {
  const pmrkit::budget_resource* budget = nullptr;  // checked after each allocation
  std::mutex mutex;
  model extents;                   // only its `extents` map is used
  std::vector<live_block> handed;  // blocks another thread may take
  std::atomic<std::uint64_t> next_id{1};

  void add(std::byte* p, std::size_t size, std::size_t alignment) {
    live_block b{p, size, alignment, 0, next_id.fetch_add(1)};
    {
      const std::lock_guard<std::mutex> lock(mutex);
      extents.add(p, size, alignment, 1, b.id);  // checks alignment and overlap, fills
      b = extents.blocks.back();
      extents.blocks.clear();
    }
    mine().push_back(b);
  }
  /// Forgets `b` (its pattern checked) before it goes back to the resource.
  void forget(const live_block& b) {
    model::check(b, b.size, b.p, "before deallocate");
    if (b.size == 0) return;
    const std::lock_guard<std::mutex> lock(mutex);
    extents.extents.erase(reinterpret_cast<std::uintptr_t>(b.p));
  }
  static std::vector<live_block>& mine() {
    thread_local std::vector<live_block> blocks;
    return blocks;
  }
};

void run_thread(fuzz_input in, std::pmr::memory_resource& r, shared_state& shared) {
  std::vector<live_block>& mine = shared_state::mine();
  mine.clear();
  for (int step = 0; step < 256 && !in.empty(); ++step) {
    const std::uint8_t op = in.u8() % 8;
    if (op <= 2) {  // allocate
      bool huge = false;
      bool bad = false;
      const std::size_t bytes = pmrkit::fuzz::draw_size(in, huge);
      const std::size_t alignment = pmrkit::fuzz::draw_alignment(in, bad);
      void* p = nullptr;
      try {
        p = r.allocate(bytes, alignment);
      } catch (const pmrkit::allocation_error&) {
        continue;
      } catch (const std::exception& e) {
        fail(std::string("allocate threw something other than allocation_error: ") + e.what());
      }
      if (bad || huge) fail("a bad request succeeded: " + std::to_string(bytes));
      if (shared.budget != nullptr && shared.budget->stats().bytes_in_use > shared.budget->limit())
        fail("the budget's use passed its limit");
      shared.add(static_cast<std::byte*>(p), bytes, alignment);
      continue;
    }
    if (mine.empty() && op != 6) continue;
    const std::size_t index = mine.empty() ? 0 : in.range(0, mine.size() - 1);
    switch (op) {
      case 3:
      case 4: {  // free
        const live_block b = mine[index];
        mine.erase(mine.begin() + static_cast<std::ptrdiff_t>(index));
        shared.forget(b);
        r.deallocate(b.p, b.size, b.alignment);
        break;
      }
      case 5: {  // reallocate
        const live_block b = mine[index];
        bool huge = false;
        const std::size_t new_size = pmrkit::fuzz::draw_size(in, huge);
        shared.forget(b);
        mine.erase(mine.begin() + static_cast<std::ptrdiff_t>(index));
        void* q = nullptr;
        try {
          q = pmrkit::reallocate(r, b.p, b.size, new_size, b.alignment);
        } catch (const pmrkit::allocation_error&) {
          // Unchanged and still this thread's.
          const std::lock_guard<std::mutex> lock(shared.mutex);
          if (b.size != 0)
            shared.extents.extents.emplace(reinterpret_cast<std::uintptr_t>(b.p), b.size);
          mine.push_back(b);
          break;
        }
        if (huge) fail("reallocate to " + std::to_string(new_size) + " bytes succeeded");
        model::check(b, std::min(b.size, new_size), static_cast<const std::byte*>(q),
                     "reallocate's copy");
        shared.add(static_cast<std::byte*>(q), new_size, b.alignment);
        break;
      }
      case 6: {  // take a block another thread handed over, or hand one over
        const std::lock_guard<std::mutex> lock(shared.mutex);
        if (!shared.handed.empty() && (mine.empty() || (in.u8() & 1) != 0)) {
          mine.push_back(shared.handed.back());
          shared.handed.pop_back();
        } else if (!mine.empty()) {
          shared.handed.push_back(mine[index]);
          mine.erase(mine.begin() + static_cast<std::ptrdiff_t>(index));
        }
        break;
      }
      default: {  // give one back right away, newest first
        const live_block b = mine.back();
        mine.pop_back();
        shared.forget(b);
        r.deallocate(b.p, b.size, b.alignment);
        break;
      }
    }
  }
  // What is left is handed over, for the main thread to free.
  const std::lock_guard<std::mutex> lock(shared.mutex);
  shared.handed.insert(shared.handed.end(), mine.begin(), mine.end());
  mine.clear();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const bool installed =
      (pmrkit::set_violation_handler(&pmrkit::fuzz::abort_on_violation), true);
  (void)installed;
  constexpr std::size_t head_size = 16;  // the upstream's order, the threads, the resource
  if (size <= head_size) return 0;
  pmrkit::fuzz::strict_upstream strict;
  strict.set_falling((data[0] & 1) != 0);
  {
    pmrkit::synchronized_resource upstream({}, &strict);
    fuzz_input head(data + 1, head_size - 1);
    const std::size_t threads = 2 + head.range(0, 2);
    std::optional<subject> s;
    try {
      s.emplace(head, &upstream);
    } catch (const std::invalid_argument&) {
      return 0;
    }
    shared_state shared;
    if (s->budget) shared.budget = &*s->budget;
    {
      // Each thread reads a contiguous slice of what follows.
      const std::uint8_t* rest = data + head_size;
      const std::size_t left = size - head_size;
      std::vector<std::thread> pool;
      for (std::size_t t = 0; t < threads; ++t) {
        const std::size_t begin = left * t / threads;
        const std::size_t end = left * (t + 1) / threads;
        pool.emplace_back(run_thread, fuzz_input(rest + begin, end - begin), std::ref(*s->top),
                          std::ref(shared));
      }
      for (std::thread& thread : pool)
        thread.join();
    }
    (void)s->shrink();
    for (const live_block& b : shared.handed) {
      shared.forget(b);
      s->top->deallocate(b.p, b.size, b.alignment);
    }
    if (!shared.extents.extents.empty()) fail("the model lost track of a block");
    // Every block is back and the threads are gone: the per-thread figures add up exactly.
    if (s->budget) {
      const pmrkit::budget_stats b = s->budget->stats();
      if (b.bytes_in_use != 0 || b.peak_bytes_in_use > b.limit)
        fail("budget figures: " + std::to_string(b.bytes_in_use) + " in use, peak " +
             std::to_string(b.peak_bytes_in_use) + " of " + std::to_string(b.limit));
      if (s->budget->remaining() != b.limit) fail("the budget's whole limit is not there again");
    }
    if (s->statistics) {
      const pmrkit::statistics_stats c = s->statistics->stats();
      if (c.bytes_in_use != 0 || c.allocations != c.deallocations)
        fail("statistics figures: " + std::to_string(c.bytes_in_use) + " in use, " +
             std::to_string(c.allocations) + " allocations, " + std::to_string(c.deallocations) +
             " deallocations");
    }
    s.reset();
  }
  if (strict.blocks_in_use() != 0) {
    fail("the upstream did not get every block back: " + std::to_string(strict.blocks_in_use()) +
         " blocks, " + std::to_string(strict.bytes_in_use()) + " bytes in use");
  }
  return 0;
}
