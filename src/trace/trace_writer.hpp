// trace_writer: the streaming side of the trace file, for writers that must
// not allocate while they record: trace_resource and the preload library
// (libpmrkit_trace.so, which records malloc itself). Internal to pmrkit (not
// installed).
//
// The writer encodes the header, then each record, into a fixed 64 KiB
// buffer inside the object, and hands a full buffer to its sink (a plain
// function: write(2) to a file descriptor, fwrite, a vector). A sink that
// fails marks the writer failed: later records are counted as dropped, and
// the owner reports it. address_map pairs live blocks with their ids.
//
// Thread safety: none; the owner serializes append() and flush().
#pragma once

#include <pmr/trace/trace_file.hpp>

#include <cstddef>
#include <cstdint>

namespace pmrkit::detail {

/// Takes `size` bytes; returns false when it could not.
using trace_sink = bool (*)(void* context, const std::byte* data, std::size_t size) noexcept;

class trace_writer {
 public:
  static constexpr std::size_t buffer_size = std::size_t{64} << 10;

  /// Encodes `header` as the first bytes; nothing reaches the sink before
  /// the first flush().
  trace_writer(trace_sink sink, void* context, const trace_header& header) noexcept;
  trace_writer(const trace_writer&) = delete;
  trace_writer& operator=(const trace_writer&) = delete;

  void append(const trace_record& record) noexcept {
    if (used_ + trace_record_size > buffer_size) [[unlikely]] {
      flush();
    }
    encode_trace_record(record, buffer_ + used_);
    used_ += trace_record_size;
    ++records_;
  }

  /// Hands the buffered bytes to the sink. Returns !failed().
  bool flush() noexcept;

  /// A sink call failed: the bytes of that call and every later one were dropped.
  [[nodiscard]] bool failed() const noexcept { return failed_; }
  [[nodiscard]] std::uint64_t records() const noexcept { return records_; }
  /// Records that will never reach the sink: those appended since the last
  /// flush that succeeded, once a sink call has failed (0 before).
  [[nodiscard]] std::uint64_t records_lost() const noexcept {
    return failed_ ? records_ - records_written_ : 0;
  }
  /// Bytes the sink took (header included).
  [[nodiscard]] std::uint64_t bytes_written() const noexcept { return written_; }

 private:
  trace_sink sink_;
  void* context_;
  std::size_t used_ = 0;
  std::uint64_t records_ = 0;
  std::uint64_t records_written_ = 0;  // records_ at the last flush that succeeded
  std::uint64_t written_ = 0;
  bool failed_ = false;
  alignas(64) std::byte buffer_[buffer_size];
};

/// This thread's number: 1, 2, 3… in the order threads first ask.
[[nodiscard]] std::uint32_t trace_thread_number() noexcept;

/// Nanoseconds of a monotonic clock.
[[nodiscard]] std::uint64_t trace_clock_nanoseconds() noexcept;

/// Nanoseconds since the Unix epoch (a trace's start).
[[nodiscard]] std::uint64_t trace_unix_nanoseconds() noexcept;

/// A sink writing to the POSIX file descriptor `(int)(intptr_t)context`
/// (retrying short writes and EINTR). POSIX only.
bool fd_sink(void* context, const std::byte* data, std::size_t size) noexcept;

}  // namespace pmrkit::detail
