#include "replay.hpp"

#include <pmr/decorator/budget_resource.hpp>
#include <pmr/decorator/statistics_resource.hpp>

#include <chrono>
#include <exception>
#include <memory>
#include <vector>

namespace pmrkit::replay {

replay_result replay_once(const trace& t, const trace_profile& profile, const strategy& s,
                          const settings& options, std::uint64_t limit, replay_progress progress) {
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
