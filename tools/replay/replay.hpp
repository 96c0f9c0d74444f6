// Replaying a trace against one strategy: every allocate and deallocate in
// the recorded order, on one thread, timed; the strategy's upstream counts
// what it holds (a statistics_resource, serialized), and a budget may cap it
// (to find the smallest capacity a trace fits in).
//
// Thread safety: one replay per call; calls share nothing.
#pragma once

#include "profile.hpp"
#include "strategies.hpp"

#include <cstdint>
#include <limits>
#include <string>

namespace pmrkit::replay {

struct replay_result {
  bool served = false;
  std::string failure;              ///< why not served: the record and the error
  double seconds = 0;               ///< the timed loop
  std::uint64_t peak_upstream = 0;  ///< the most bytes the strategy held from its upstream
  std::uint64_t events = 0;         ///< allocations and frees replayed
};

/// Called every so often with the events replayed so far.
struct replay_progress {
  void (*tick)(void* context, std::uint64_t events) = nullptr;
  void* context = nullptr;
};

inline constexpr std::uint64_t no_limit = std::numeric_limits<std::uint64_t>::max();

/// Replays `t` against a fresh instance of `s`; its upstream is capped at
/// `limit` bytes (a budget_resource) unless no_limit. Failed allocations of
/// the trace are skipped. With `touch` every block is written whole as it is
/// allocated (the program's first touch: page faults and cache misses a
/// strategy's layout causes or saves count too). Never throws for a strategy that refuses a
/// request: that is a result with served == false.
[[nodiscard]] replay_result replay_once(const trace& t, const trace_profile& profile,
                                        const strategy& s, const settings& options,
                                        std::uint64_t limit = no_limit,
                                        replay_progress progress = {}, bool touch = false);

/// Replays `t` with one thread per recorded thread, each its own records in
/// order; a free of a block another thread allocates waits (spinning, then
/// yielding) until that allocation is done. A strategy that is not
/// thread-safe runs behind a synchronized_resource. The time is from the
/// threads' common start to the last one's end.
[[nodiscard]] replay_result replay_threads(const trace& t, const trace_profile& profile,
                                           const strategy& s, const settings& options,
                                           bool touch = false);

/// The smallest upstream capacity, within `granularity` bytes, at which `s`
/// still serves `t`: a bisection between the live peak and `served_at` (a
/// capacity known to serve it). Returns the capacity and sets `replays`.
[[nodiscard]] std::uint64_t smallest_capacity(const trace& t, const trace_profile& profile,
                                              const strategy& s, const settings& options,
                                              std::uint64_t served_at, std::uint64_t granularity,
                                              int& replays);

}  // namespace pmrkit::replay
