#include <pmr/core/align.hpp>
#include <pmr/core/violation.hpp>
#include <pmr/decorator/trace_resource.hpp>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <system_error>
#include <vector>

#include "../trace/address_map.hpp"
#include "../trace/trace_writer.hpp"

#ifdef _WIN32
#include <process.h>
#else
#include <unistd.h>
#endif

namespace pmrkit {
namespace detail {

/// Everything trace_resource changes under its lock.
class trace_state {
 public:
  trace_state(const std::string& path, std::string_view name, bool timestamps)
      : file_(open(path, name)),
        timestamps_(timestamps),
        start_(trace_clock_nanoseconds()),
        writer_(file_ != nullptr ? file_sink : memory_sink, this, header()) {}
  trace_state(const trace_state&) = delete;
  trace_state& operator=(const trace_state&) = delete;
  ~trace_state() {
    writer_.flush();
    if (file_ != nullptr) std::fclose(file_);
  }

  void allocated(void* p, std::size_t bytes, std::size_t alignment) noexcept {
    const std::lock_guard lock(mutex_);
    const std::uint64_t id = next_id_++;
    if (!live_.insert(reinterpret_cast<std::uintptr_t>(p), live_block{id, bytes, alignment})) {
      ++dropped_;  // its free cannot be paired: neither is recorded
      ++untracked_;
      return;
    }
    record(trace_action::allocate, id, bytes, alignment);
    ++stats_.allocations;
    ++stats_.blocks_in_use;
    stats_.bytes_in_use += bytes;
  }

  void failed(std::size_t bytes, std::size_t alignment) noexcept {
    const std::lock_guard lock(mutex_);
    record(trace_action::failed_allocation, next_id_++, bytes, alignment);
    ++stats_.failed_allocations;
  }

  /// Records the free of `p` when it is live here with this size and
  /// alignment (the caller then passes it on); otherwise fills `misuse` and
  /// changes nothing. A pointer the table does not know once the table has
  /// failed to grow passes on unrecorded (it may be a block it could not hold).
  bool deallocating(void* p, std::size_t bytes, std::size_t alignment, violation& misuse) noexcept {
    const std::lock_guard lock(mutex_);
    const auto address = reinterpret_cast<std::uintptr_t>(p);
    const live_block* block = live_.find(address);
    if (block == nullptr) {
      if (untracked_ > 0) return true;
      misuse.kind = violation_kind::foreign_pointer;
      return false;
    }
    if (block->bytes != bytes || block->alignment != alignment) {
      misuse.kind = block->bytes != bytes ? violation_kind::size_mismatch
                                          : violation_kind::alignment_mismatch;
      misuse.expected_size = block->bytes;
      misuse.expected_alignment = block->alignment;
      return false;
    }
    const std::uint64_t id = block->id;
    live_.erase(block);  // found above: no second lookup
    record(trace_action::deallocate, id, bytes, alignment);
    ++stats_.deallocations;
    --stats_.blocks_in_use;
    stats_.bytes_in_use -= bytes;
    return true;
  }

  bool flush() noexcept {
    const std::lock_guard lock(mutex_);
    return writer_.flush();
  }

  trace_stats stats() const noexcept {
    const std::lock_guard lock(mutex_);
    trace_stats s = stats_;
    s.records = static_cast<std::size_t>(writer_.records());
    s.trace_bytes = trace_header_size + s.records * trace_record_size;
    s.dropped_records = dropped_ + static_cast<std::size_t>(writer_.records_lost());
    return s;
  }

  /// The bytes recorded so far (memory mode).
  std::vector<std::byte> memory() const {
    const std::lock_guard lock(mutex_);
    return memory_;
  }

 private:
  static std::FILE* open(const std::string& path, std::string_view name) {
    if (path.empty()) return nullptr;
    std::FILE* file = std::fopen(path.c_str(), "wb");
    if (file == nullptr) {
      throw std::system_error(errno, std::generic_category(),
                              "pmrkit::trace_resource '" + std::string(name) + "': cannot open " +
                                  path + " for writing");
    }
    return file;
  }
  static trace_header header() noexcept {
    trace_header h;
    h.origin = trace_origin::resource;
    h.start_unix_nanoseconds = trace_unix_nanoseconds();
#ifdef _WIN32
    h.pid = static_cast<std::uint32_t>(_getpid());
#else
    h.pid = static_cast<std::uint32_t>(getpid());
#endif
    return h;
  }
  static bool file_sink(void* context, const std::byte* data, std::size_t size) noexcept {
    // The writer hands over 64 KiB at a time: flushing the stream each time costs nothing
    // and makes a failed write (a full disk) a failed sink call, counted as records lost.
    auto* self = static_cast<trace_state*>(context);
    return std::fwrite(data, 1, size, self->file_) == size && std::fflush(self->file_) == 0;
  }
  static bool memory_sink(void* context, const std::byte* data, std::size_t size) noexcept {
    auto* self = static_cast<trace_state*>(context);
    try {
      self->memory_.insert(self->memory_.end(), data, data + size);
      return true;
    } catch (...) {
      return false;
    }
  }

  void record(trace_action action, std::uint64_t id, std::size_t bytes,
              std::size_t alignment) noexcept {
    trace_record r;
    r.action = action;
    r.thread = trace_thread_number();
    r.id = id;
    r.bytes = bytes;
    r.alignment = alignment;
    if (timestamps_) {
      const std::uint64_t now = trace_clock_nanoseconds();
      r.nanoseconds = now > start_ ? now - start_ : 0;
    }
    writer_.append(r);
  }

  mutable lean_mutex mutex_;
  std::FILE* file_;
  bool timestamps_;
  std::uint64_t start_;
  std::vector<std::byte> memory_;
  /// A live block: its id and what it was allocated with.
  struct live_block {
    std::uint64_t id;
    std::size_t bytes;
    std::size_t alignment;
  };
  basic_address_map<live_block> live_;
  std::uint64_t next_id_ = 1;
  std::size_t dropped_ = 0;
  std::size_t untracked_ = 0;  // allocations the table could not hold
  trace_stats stats_;
  trace_writer writer_;  // last: its header is encoded once the rest is built
};

}  // namespace detail

trace_resource::trace_resource(trace_options options, std::pmr::memory_resource* upstream)
    : name_(options.name),
      path_(options.path),
      upstream_(require_upstream(upstream, "pmrkit::trace_resource")),
      state_(std::make_unique<detail::trace_state>(path_, name_, options.timestamps)) {}

trace_resource::~trace_resource() = default;

void trace_resource::flush() {
  if (!state_->flush()) {
    throw std::system_error(EIO, std::generic_category(),
                            "pmrkit::trace_resource '" + name_ + "': writing " + path_ + " failed");
  }
}

trace trace_resource::recorded() const {
  if (path_.empty()) {
    state_->flush();
    return parse_trace(state_->memory(), name_);
  }
  if (!state_->flush()) {
    throw std::system_error(EIO, std::generic_category(),
                            "pmrkit::trace_resource '" + name_ + "': writing " + path_ + " failed");
  }
  return read_trace(path_);
}

trace_stats trace_resource::stats() const noexcept {
  return state_->stats();
}

void* trace_resource::do_allocate(std::size_t bytes, std::size_t alignment) {
  check_request(bytes, alignment, name_);
  void* p = nullptr;
  try {
    p = upstream_->allocate(bytes, alignment);
  } catch (...) {
    state_->failed(bytes, alignment);
    rethrow_upstream_failure(name_, bytes, alignment);
  }
  state_->allocated(p, bytes, alignment);
  return p;
}

void trace_resource::do_deallocate(void* p, std::size_t bytes, std::size_t alignment) {
  violation misuse{violation_kind::foreign_pointer, name_, p, bytes, alignment};
  if (!state_->deallocating(p, bytes, alignment, misuse)) {
    report_violation(misuse);
    return;
  }
  upstream_->deallocate(p, bytes, alignment);
}

}  // namespace pmrkit
