// RMM's logging_resource_adaptor CSV read into a pmrkit trace
// (include/pmr/trace/trace_file.hpp: parse_rmm_log).
//
// Lines read "Thread,Time,Action,Pointer,Size,Stream" (the first line may be
// that header): Thread any token, Time HH:MM:SS.ffffff (RMM's log pattern) or
// seconds with a fraction, Action "allocate", "free" (or "deallocate") or
// "allocate failure", Pointer in hex with or without 0x, Size in bytes, and
// the Stream, which a host replay ignores.
#include <pmr/trace/trace_file.hpp>

#include <bit>
#include <charconv>
#include <string>
#include <unordered_map>

#include "trace_pairing.hpp"

namespace pmrkit {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

bool parse_unsigned(std::string_view s, std::uint64_t& out, int base = 10) {
  if (s.empty()) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out, base);
  return ec == std::errc{} && end == s.data() + s.size();
}

bool parse_pointer(std::string_view s, std::uint64_t& out) {
  if (s == "(nil)" || s == "nullptr" || s == "null") {
    out = 0;
    return true;
  }
  if (s.starts_with("0x") || s.starts_with("0X")) s.remove_prefix(2);
  return parse_unsigned(s, out, 16);
}

/// HH:MM:SS.ffffff (or HH:MM:SS:ffffff) or S.ffffff, as nanoseconds.
bool parse_time(std::string_view s, std::uint64_t& out) {
  std::uint64_t seconds = 0;
  std::string_view fraction;
  const std::size_t dot = s.find('.');
  std::string_view whole = s.substr(0, dot);
  if (dot != std::string_view::npos) fraction = s.substr(dot + 1);
  std::size_t fields = 0;
  while (!whole.empty()) {
    const std::size_t colon = whole.find(':');
    std::uint64_t part = 0;
    if (!parse_unsigned(whole.substr(0, colon), part)) return false;
    if (++fields == 4 && fraction.empty()) {  // HH:MM:SS:ffffff
      fraction = whole;
      break;
    }
    seconds = seconds * (fields > 1 ? 60 : 1) + part;
    if (colon == std::string_view::npos) break;
    whole.remove_prefix(colon + 1);
  }
  if (fields == 0 || fields > 4) return false;
  std::uint64_t nanos = 0;
  for (std::size_t i = 0; i < 9; ++i) {
    const char c = i < fraction.size() ? fraction[i] : '0';
    if (c < '0' || c > '9') return false;
    nanos = nanos * 10 + static_cast<std::uint64_t>(c - '0');
  }
  for (std::size_t i = 9; i < fraction.size(); ++i) {
    if (fraction[i] < '0' || fraction[i] > '9') return false;
  }
  out = seconds * 1'000'000'000 + nanos;
  return true;
}

}  // namespace

trace parse_rmm_log(std::string_view text, std::string_view source, std::size_t alignment) {
  if (!std::has_single_bit(alignment)) {
    throw std::invalid_argument("pmrkit::parse_rmm_log: alignment " + std::to_string(alignment) +
                                " is not a power of two");
  }
  trace result;
  result.header.origin = trace_origin::rmm_log;
  detail::trace_pairing pairing(source);
  std::unordered_map<std::string, std::uint32_t> threads;
  struct live_block {
    std::uint64_t id;
    std::uint64_t bytes;
    std::uint64_t line;
  };
  std::unordered_map<std::uint64_t, live_block> live;  // by address
  std::uint64_t next_id = 1;
  std::uint64_t first_time = 0;
  std::uint64_t last_time = 0;
  std::uint64_t day_offset = 0;
  std::uint64_t line_number = 0;
  std::size_t offset = 0;
  while (offset < text.size()) {
    const std::size_t end = std::min(text.find('\n', offset), text.size());
    const std::string_view line = trim(text.substr(offset, end - offset));
    const std::size_t line_offset = offset;
    offset = end + 1;
    ++line_number;
    if (line.empty()) continue;
    const auto fail = [&](const std::string& problem) {
      throw trace_error(std::string(source) + ": line " + std::to_string(line_number) + " (byte " +
                            std::to_string(line_offset) + "): " + problem,
                        line_offset, result.records.size());
    };
    std::string_view fields[6];
    std::size_t count = 0;
    for (std::string_view rest = line;; ++count) {
      const std::size_t comma = rest.find(',');
      if (count < 6) fields[count] = trim(rest.substr(0, comma));
      if (comma == std::string_view::npos) {
        ++count;
        break;
      }
      rest.remove_prefix(comma + 1);
    }
    if (fields[0] == "Thread" && fields[2] == "Action") continue;  // the header line
    if (count < 5) {
      fail("expected Thread,Time,Action,Pointer,Size[,Stream], found " + std::to_string(count) +
           " fields");
    }
    trace_record record;
    const std::string_view action = fields[2];
    if (action == "allocate") {
      record.action = trace_action::allocate;
    } else if (action == "free" || action == "deallocate") {
      record.action = trace_action::deallocate;
    } else if (action == "allocate failure") {
      record.action = trace_action::failed_allocation;
    } else {
      fail("unknown action \"" + std::string(action) +
           "\", expected allocate, free or allocate failure");
    }
    std::uint64_t address = 0;
    if (!parse_pointer(fields[3], address)) {
      fail("pointer \"" + std::string(fields[3]) + "\" is not a hexadecimal address");
    }
    if (!parse_unsigned(fields[4], record.bytes)) {
      fail("size \"" + std::string(fields[4]) + "\" is not a number of bytes");
    }
    std::uint64_t time = 0;
    if (!parse_time(fields[1], time)) {
      fail("time \"" + std::string(fields[1]) + "\" is neither HH:MM:SS.ffffff nor seconds");
    }
    if (result.records.empty()) first_time = time;
    // A log that runs past midnight: HH:MM:SS starts again from 0.
    if (time + day_offset + 12ULL * 3600 * 1'000'000'000 < last_time) {
      day_offset += 24ULL * 3600 * 1'000'000'000;
    }
    last_time = time + day_offset;
    record.nanoseconds = last_time > first_time ? last_time - first_time : 0;
    record.thread =
        threads.try_emplace(std::string(fields[0]), static_cast<std::uint32_t>(threads.size()))
            .first->second;
    record.alignment = alignment;
    switch (record.action) {
      case trace_action::allocate: {
        const auto [it, inserted] =
            live.try_emplace(address, live_block{next_id, record.bytes, line_number});
        if (!inserted) {
          fail("address " + std::string(fields[3]) +
               " allocated again while live (allocated on line " + std::to_string(it->second.line) +
               ")");
        }
        record.id = next_id++;
        break;
      }
      case trace_action::deallocate: {
        const auto it = live.find(address);
        if (it == live.end()) {
          fail("free of address " + std::string(fields[3]) +
               ", which is not live (never allocated, or freed already)");
        }
        if (record.bytes != 0 && record.bytes != it->second.bytes) {
          fail("free of address " + std::string(fields[3]) + " with " +
               std::to_string(record.bytes) + " bytes; it was allocated with " +
               std::to_string(it->second.bytes) + " (line " + std::to_string(it->second.line) +
               ")");
        }
        record.id = it->second.id;
        live.erase(it);
        break;
      }
      case trace_action::failed_allocation:
        record.id = next_id++;
        break;
    }
    result.records.push_back(record);
    pairing.add(result.records, line_offset, line_number);
  }
  return result;
}

}  // namespace pmrkit
