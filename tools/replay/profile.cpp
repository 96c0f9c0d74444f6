#include "profile.hpp"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <unordered_set>
#include <vector>

namespace pmrkit::replay {

trace_profile profile_of(const trace& t) {
  trace_profile p;
  p.records = t.records.size();
  std::unordered_set<std::uint64_t> sizes;
  std::uint64_t live_bytes = 0;
  std::uint64_t live_blocks = 0;
  // The live allocations in allocation order, with freed ones left in place
  // and skipped: the newest live one is the last not freed, the oldest the
  // first not freed (`oldest` only moves forward).
  std::vector<std::uint64_t> order;  // record indices of allocations
  std::vector<bool> freed(t.records.size(), false);
  std::size_t oldest = 0;
  std::vector<std::uint64_t> lifetimes;
  std::vector<std::uint64_t> allocation_number(t.records.size(), 0);
  std::uint32_t max_thread = 0;
  for (std::size_t i = 0; i < t.records.size(); ++i) {
    const trace_record& r = t.records[i];
    max_thread = std::max(max_thread, r.thread);
    switch (r.action) {
      case trace_action::allocate:
        allocation_number[i] = p.allocations++;
        p.bytes_allocated += r.bytes;
        p.smallest = p.allocations == 1 ? r.bytes : std::min(p.smallest, r.bytes);
        p.largest = std::max(p.largest, r.bytes);
        sizes.insert(r.bytes);
        p.max_alignment = std::max(p.max_alignment, r.alignment);
        ++p.size_buckets[r.bytes <= 1 ? 0 : std::bit_width(r.bytes - 1)];
        ++p.alignment_buckets[static_cast<std::size_t>(std::countr_zero(r.alignment))];
        live_bytes += r.bytes;
        ++live_blocks;
        p.peak_live_bytes = std::max(p.peak_live_bytes, live_bytes);
        p.peak_live_blocks = std::max(p.peak_live_blocks, live_blocks);
        if (r.partner == trace_record::no_partner) ++p.never_freed;
        order.push_back(i);
        break;
      case trace_action::deallocate: {
        ++p.deallocations;
        const trace_record& a = t.records[r.partner];
        live_bytes -= a.bytes;
        --live_blocks;
        if (a.thread != r.thread) ++p.cross_thread_frees;
        lifetimes.push_back(p.allocations - 1 - allocation_number[r.partner]);
        while (!order.empty() && freed[order.back()])
          order.pop_back();
        oldest = std::min(oldest, order.size());  // everything before it was freed
        while (oldest < order.size() && freed[order[oldest]])
          ++oldest;
        if (!order.empty() && order.back() == r.partner) ++p.lifo_frees;
        if (oldest < order.size() && order[oldest] == r.partner) ++p.fifo_frees;
        freed[r.partner] = true;
        break;
      }
      case trace_action::failed_allocation:
        ++p.failed_allocations;
        break;
    }
  }
  p.threads = t.records.empty() ? 0 : std::uint64_t{max_thread} + 1;
  p.distinct_sizes = sizes.size();
  p.duration_nanoseconds = t.records.empty() ? 0 : t.records.back().nanoseconds;
  if (!lifetimes.empty()) {
    auto middle = lifetimes.begin() + static_cast<std::ptrdiff_t>(lifetimes.size() / 2);
    std::nth_element(lifetimes.begin(), middle, lifetimes.end());
    p.median_lifetime = *middle;
  }
  return p;
}

std::string format_bytes(std::uint64_t bytes) {
  static constexpr const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < std::size(units)) {
    value /= 1024.0;
    ++unit;
  }
  char buffer[32];
  if (unit == 0) {
    std::snprintf(buffer, sizeof buffer, "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buffer, sizeof buffer, "%.1f %s", value, units[unit]);
  }
  return buffer;
}

}  // namespace pmrkit::replay
