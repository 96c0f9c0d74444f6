// The profile of a trace: what pmrkit-replay prints before it replays, and
// what decides which strategies can serve the trace at all.
//
// Thread safety: a profile is a value.
#pragma once

#include <pmr/trace/trace_file.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace pmrkit::replay {

struct trace_profile {
  std::uint64_t records = 0;
  std::uint64_t allocations = 0;
  std::uint64_t deallocations = 0;
  std::uint64_t failed_allocations = 0;
  std::uint64_t never_freed = 0;  ///< allocations without a free (live at the end)
  std::uint64_t threads = 0;
  std::uint64_t cross_thread_frees = 0;  ///< frees on another thread than the allocation
  std::uint64_t bytes_allocated = 0;     ///< every allocation's bytes, added up
  std::uint64_t peak_live_bytes = 0;     ///< the most bytes live at once (requested sizes)
  std::uint64_t peak_live_blocks = 0;
  std::uint64_t smallest = 0;  ///< the smallest allocation's bytes (0 when none)
  std::uint64_t largest = 0;
  std::uint64_t distinct_sizes = 0;
  std::uint64_t max_alignment = 1;
  std::uint64_t duration_nanoseconds = 0;  ///< the last record's time
  /// Frees of the newest live block (a stack could serve them) and of the
  /// oldest (a queue), out of every free.
  std::uint64_t lifo_frees = 0;
  std::uint64_t fifo_frees = 0;
  /// Median lifetime, in allocations made between a block's allocation and its free.
  std::uint64_t median_lifetime = 0;
  /// Allocations per power-of-two size bucket: bucket i holds sizes of
  /// 2^(i-1)+1 to 2^i bytes (bucket 0: 0 or 1 byte), as statistics_resource.
  std::array<std::uint64_t, 65> size_buckets{};
  /// Allocations per alignment: bucket i counts alignment 2^i.
  std::array<std::uint64_t, 64> alignment_buckets{};

  [[nodiscard]] double lifo_share() const noexcept {
    return deallocations == 0
               ? 1.0
               : static_cast<double>(lifo_frees) / static_cast<double>(deallocations);
  }
  [[nodiscard]] double fifo_share() const noexcept {
    return deallocations == 0
               ? 1.0
               : static_cast<double>(fifo_frees) / static_cast<double>(deallocations);
  }
};

[[nodiscard]] trace_profile profile_of(const trace& t);

/// "12.3 MiB", "512 B": bytes for people.
[[nodiscard]] std::string format_bytes(std::uint64_t bytes);

}  // namespace pmrkit::replay
