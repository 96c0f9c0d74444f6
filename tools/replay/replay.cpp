#include "replay.hpp"

#include <pmr/decorator/budget_resource.hpp>
#include <pmr/decorator/statistics_resource.hpp>
#include <pmr/decorator/synchronized_resource.hpp>

#include <atomic>
#include <chrono>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace pmrkit::replay {

replay_result replay_once(const trace& t, const trace_profile& profile, const strategy& s,
                          const settings& options, std::uint64_t limit, replay_progress progress,
                          bool touch) {
  replay_result result;
  statistics_resource counted({.threading = decorator_threading::serialized},
                              std::pmr::new_delete_resource());
  std::unique_ptr<budget_resource> budget;
  std::pmr::memory_resource* upstream = &counted;
  if (limit != no_limit) {
    budget = std::make_unique<budget_resource>(
        budget_options{.limit = static_cast<std::size_t>(limit),
                       .threading = decorator_threading::serialized},
        &counted);
    upstream = budget.get();
  }
  std::unique_ptr<std::pmr::memory_resource> resource = s.make(upstream, options, profile);

  const std::vector<trace_record>& records = t.records;
  std::vector<void*> blocks(records.size(), nullptr);
  std::size_t i = 0;
  const auto start = std::chrono::steady_clock::now();
  try {
    // Chunks of 64K records between progress ticks.
    for (std::size_t chunk_end = 0; i < records.size(); chunk_end = i) {
      chunk_end = std::min(records.size(), i + (std::size_t{1} << 16));
      for (; i < chunk_end; ++i) {
        const trace_record& r = records[i];
        if (r.action == trace_action::allocate) {
          blocks[i] = resource->allocate(r.bytes, r.alignment);
          if (touch) std::memset(blocks[i], 0x5a, r.bytes);
        } else if (r.action == trace_action::deallocate) {
          const trace_record& a = records[r.partner];
          resource->deallocate(blocks[r.partner], a.bytes, a.alignment);
          blocks[r.partner] = nullptr;
        }
      }
      if (progress.tick != nullptr) progress.tick(progress.context, i);
    }
    result.served = true;
  } catch (const std::exception& e) {
    result.failure = "record " + std::to_string(i) + " (" + std::to_string(records[i].bytes) +
                     " bytes, alignment " + std::to_string(records[i].alignment) + "): " + e.what();
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.events = profile.allocations + profile.deallocations;
  // What is still live goes back untimed, then the strategy with it.
  for (std::size_t j = 0; j < records.size(); ++j) {
    if (blocks[j] != nullptr)
      resource->deallocate(blocks[j], records[j].bytes, records[j].alignment);
  }
  resource.reset();
  result.peak_upstream = counted.stats().peak_bytes_in_use;
  return result;
}

replay_result replay_threads(const trace& t, const trace_profile& profile, const strategy& s,
                             const settings& options, bool touch) {
  replay_result result;
  // The upstream is called from every thread: its counting must be thread-safe and its peak
  // exact (every call folds).
  statistics_resource counted({.peak_batch = 0}, std::pmr::new_delete_resource());
  std::unique_ptr<std::pmr::memory_resource> resource = s.make(&counted, options, profile);
  std::unique_ptr<synchronized_resource> lock;
  std::pmr::memory_resource* shared = resource.get();
  if (!s.thread_safe) {
    lock = std::make_unique<synchronized_resource>(resource.get());
    shared = lock.get();
  }

  const std::vector<trace_record>& records = t.records;
  std::vector<std::vector<std::size_t>> streams(profile.threads);
  for (std::size_t i = 0; i < records.size(); ++i)
    streams[records[i].thread].push_back(i);
  std::vector<std::atomic<void*>> blocks(records.size());
  std::atomic<bool> failed{false};
  std::mutex failure_mutex;
  std::atomic<std::size_t> ready{0};
  std::atomic<bool> go{false};

  const auto replay_stream = [&](const std::vector<std::size_t>& stream) {
    ready.fetch_add(1);
    while (!go.load(std::memory_order_acquire))
      std::this_thread::yield();
    for (const std::size_t i : stream) {
      if (failed.load(std::memory_order_relaxed)) return;
      const trace_record& r = records[i];
      try {
        if (r.action == trace_action::allocate) {
          void* p = shared->allocate(r.bytes, r.alignment);
          if (touch) std::memset(p, 0x5a, r.bytes);
          blocks[i].store(p, std::memory_order_release);
        } else if (r.action == trace_action::deallocate) {
          const trace_record& a = records[r.partner];
          void* p = nullptr;
          for (int spins = 0; (p = blocks[r.partner].load(std::memory_order_acquire)) == nullptr;
               ++spins) {
            if (failed.load(std::memory_order_relaxed)) return;
            if (spins > 64) std::this_thread::yield();
          }
          blocks[r.partner].store(nullptr, std::memory_order_relaxed);
          shared->deallocate(p, a.bytes, a.alignment);
        }
      } catch (const std::exception& e) {
        const std::lock_guard guard(failure_mutex);
        if (!failed.exchange(true)) {
          result.failure = "record " + std::to_string(i) + " (thread " + std::to_string(r.thread) +
                           ", " + std::to_string(r.bytes) + " bytes, alignment " +
                           std::to_string(r.alignment) + "): " + e.what();
        }
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  for (std::size_t k = 1; k < streams.size(); ++k)
    threads.emplace_back(replay_stream, std::cref(streams[k]));
  while (ready.load() != threads.size())
    std::this_thread::yield();
  const auto start = std::chrono::steady_clock::now();
  go.store(true, std::memory_order_release);
  if (!streams.empty()) replay_stream(streams[0]);
  for (std::thread& thread : threads)
    thread.join();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.served = !failed.load();
  result.events = profile.allocations + profile.deallocations;
  for (std::size_t j = 0; j < records.size(); ++j) {
    if (void* p = blocks[j].load(); p != nullptr)
      shared->deallocate(p, records[j].bytes, records[j].alignment);
  }
  lock.reset();
  resource.reset();
  result.peak_upstream = counted.stats().peak_bytes_in_use;
  return result;
}

std::uint64_t smallest_capacity(const trace& t, const trace_profile& profile, const strategy& s,
                                const settings& options, std::uint64_t served_at,
                                std::uint64_t granularity, int& replays) {
  // Invariant: `high` serves the trace, `low` does not (no strategy serves
  // less than the live peak of requested bytes).
  std::uint64_t high = served_at;
  std::uint64_t low = profile.peak_live_bytes == 0 ? 0 : profile.peak_live_bytes - 1;
  replays = 0;
  while (high - low > granularity) {
    const std::uint64_t middle = low + (high - low) / 2;
    ++replays;
    if (replay_once(t, profile, s, options, middle).served) {
      high = middle;
    } else {
      low = middle;
    }
  }
  return high;
}

}  // namespace pmrkit::replay
