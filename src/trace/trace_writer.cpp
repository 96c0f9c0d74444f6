#include "trace_writer.hpp"

#include <pmr/core/attributes.hpp>

#include <atomic>
#include <chrono>
#include <cstring>

#ifndef _WIN32
#include <unistd.h>

#include <cerrno>
#endif

namespace pmrkit::detail {

trace_writer::trace_writer(trace_sink sink, void* context, const trace_header& header) noexcept
    : sink_(sink), context_(context) {
  encode_trace_header(header, buffer_);
  used_ = trace_header_size;
}

bool trace_writer::flush() noexcept {
  if (used_ == 0) return !failed_;
  if (!failed_) {
    if (sink_(context_, buffer_, used_)) {
      written_ += used_;
      records_written_ = records_;
    } else {
      failed_ = true;
    }
  }
  used_ = 0;
  return !failed_;
}

namespace {
std::atomic<std::uint32_t> thread_numbers{0};
PMRKIT_TLS_INITIAL_EXEC thread_local std::uint32_t this_thread_number = 0;
}  // namespace

std::uint32_t trace_thread_number() noexcept {
  if (this_thread_number == 0) [[unlikely]] {
    this_thread_number = thread_numbers.fetch_add(1, std::memory_order_relaxed) + 1;
  }
  return this_thread_number;
}

std::uint64_t trace_clock_nanoseconds() noexcept {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

std::uint64_t trace_unix_nanoseconds() noexcept {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

#ifndef _WIN32
bool fd_sink(void* context, const std::byte* data, std::size_t size) noexcept {
  const int fd = static_cast<int>(reinterpret_cast<std::intptr_t>(context));
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}
#endif

}  // namespace pmrkit::detail
