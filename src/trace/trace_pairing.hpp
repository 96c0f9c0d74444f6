// trace_pairing: checks each record of a trace against the ones before it and
// links every free with its allocation (trace_record::partner). Internal to
// pmrkit (not installed); parse_trace and parse_rmm_log use it.
//
// Thread safety: an object belongs to one reader.
#pragma once

#include <pmr/trace/trace_file.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace pmrkit::detail {

class trace_pairing {
 public:
  explicit trace_pairing(std::string_view source) : source_(source) {}

  /// Checks `records.back()` and links it with its partner. `offset` is its
  /// byte offset in the file, `line` its line (RMM logs; 0 for a binary
  /// trace). Throws trace_error for an id allocated while live, a free of an
  /// id that is not live, and a free whose size or alignment differs from
  /// the allocation's (a free's size 0 and alignment 1 mean "not said").
  void add(std::vector<trace_record>& records, std::uint64_t offset, std::uint64_t line = 0);

  /// Allocations not freed yet.
  [[nodiscard]] std::size_t live() const noexcept { return live_.size(); }

 private:
  [[noreturn]] void fail(std::uint64_t record, std::uint64_t offset, std::uint64_t line,
                         const std::string& problem) const;

  std::string_view source_;
  std::unordered_map<std::uint64_t, std::uint64_t> live_;  // id -> index of its allocation
};

}  // namespace pmrkit::detail
