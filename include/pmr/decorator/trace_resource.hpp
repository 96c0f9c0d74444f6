// trace_resource: records every allocate and deallocate that goes through it
// to any upstream, for pmrkit-replay to say which strategy fits the workload.
//
// Each call becomes a record of pmrkit's trace file
// (<pmr/trace/trace_file.hpp>): the size and alignment, an id pairing a free
// with its allocation (ids count up from 1; an address reused later gets a
// new id), the calling thread, and nanoseconds since the resource was made.
// A request the upstream refuses is recorded as a failed allocation, then
// its exception goes on to the caller. With `path` set the records stream to
// that file (created or truncated) through a 64 KiB buffer and are flushed
// by flush() and on destruction; without it (the default) they are kept in
// memory taken from the global heap, never from the upstream. recorded()
// returns the trace so far, decoded and checked, in either mode.
//
// Misuse on deallocation is reported to the violation handler in every
// build (the table of live blocks, which pairs ids, finds it at no extra
// cost), and the call is then ignored, not passed on and not recorded, so the
// trace stays readable: a pointer this resource did not hand out or already
// saw freed is a `foreign_pointer`, a live block freed with another size or
// alignment a `size_mismatch` or `alignment_mismatch`. The table takes its
// memory from the OS pages directly, 32 bytes a slot, at most half full; if
// the OS refuses it a larger table, the block that did not fit is handed out
// unrecorded (`dropped_records`), and from then on a free the table does not
// know is passed on unrecorded rather than reported.
//
// Cost: one lock, a clock read, a table insert or removal and a 32-byte
// record per call; `pmrkit_trace_over_pool` in bench/ measures it per pair:
// 76 ns over the pool in the benchmark report's `single_32` (docs/benchmarks.md),
// 27 ns with `timestamps = false`: the two clock reads are two thirds of it. Cheap enough to
// leave on in a test run, not in a hot loop you measure.
//
// Constructed as `trace_resource t;`, `t(upstream)`, `t(options)`,
// `t(options, upstream)`, `t({})` or `t({}, upstream)`. A path that cannot
// be opened throws std::system_error naming it.
//
// Choose it to capture a workload for `pmrkit-replay`, or to see a
// component's calls in order. To trace a program that was never written
// for pmrkit, run it under `pmrkit-trace` (the preload library) instead.
//
// Thread safety: as thread-safe as its upstream; its own recording is under
// a lock, so the records are in the order the calls took it, each
// allocation after the upstream returned its block and each free before
// the upstream gets it back (the file is a valid order of events).
//
// Example:
//   pmrkit::trace_resource traced;
//   {
//     std::pmr::vector<int> v({1, 2, 3}, &traced);
//     v.push_back(4);
//   }
//   const pmrkit::trace t = traced.recorded();
//   assert(t.records.size() == 4);  // two allocations and their frees
//   assert(t.records[0].action == pmrkit::trace_action::allocate);
//   assert(traced.stats().allocations == 2 && traced.stats().blocks_in_use == 0);
#pragma once

#include <pmr/core/detail/lean_mutex.hpp>
#include <pmr/core/upstream.hpp>
#include <pmr/trace/trace_file.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <memory_resource>
#include <string>
#include <string_view>

namespace pmrkit {

namespace detail {
class trace_state;
}

struct trace_options {
  /// The file the records stream to (created or truncated); empty: keep
  /// them in memory (recorded()). Copied.
  std::string_view path = {};
  /// Read a monotonic clock for each record (about 25 ns a read on the
  /// development VM: two thirds of the decorator's cost); false records 0.
  bool timestamps = true;
  std::string_view name = "trace";  ///< shown in errors (copied)
};

struct trace_stats {
  std::size_t bytes_in_use = 0;        ///< requested bytes not yet freed
  std::size_t blocks_in_use = 0;       ///< blocks not yet freed
  std::size_t allocations = 0;         ///< allocate calls that returned a block
  std::size_t deallocations = 0;       ///< deallocate calls recorded
  std::size_t failed_allocations = 0;  ///< allocate calls the upstream refused
  std::size_t records = 0;             ///< records made (all three kinds)
  std::size_t trace_bytes = 0;         ///< bytes the file or memory took so far (header included)
  /// Records lost: a write to the file failed (flush() throws then), or the
  /// live blocks' table could not grow (that block's free is not recorded).
  std::size_t dropped_records = 0;
};

class trace_resource final : public std::pmr::memory_resource {
 public:
  /// Throws std::invalid_argument when `upstream` is null, std::system_error
  /// when `options.path` cannot be opened for writing.
  explicit trace_resource(trace_options options = {},
                          std::pmr::memory_resource* upstream = std::pmr::get_default_resource());
  /// The default options over `upstream` (a template, so that `{}` never
  /// reads as a null upstream).
  template <std::convertible_to<std::pmr::memory_resource*> Upstream>
  explicit trace_resource(Upstream upstream) : trace_resource(trace_options{}, upstream) {}
  /// Not copyable. Declared on a non-const reference so that `{}` does not
  /// convert to it and `trace_resource t({})` means the default options.
  trace_resource(trace_resource&) = delete;
  trace_resource& operator=(const trace_resource&) = delete;
  /// Flushes the file and closes it (errors then go unreported: call flush()
  /// first to see them). Blocks still in use stay valid in the upstream.
  ~trace_resource() override;

  /// Writes the buffered records to the file (a no-op in memory). Throws
  /// std::system_error when a write to the file failed, now or before.
  void flush();

  /// The records so far, as read_trace() would return them (checked, threads
  /// renumbered, partners linked). Flushes a file first and reads it back.
  [[nodiscard]] trace recorded() const;

  // Observers.

  [[nodiscard]] trace_stats stats() const noexcept;
  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  /// The file's path; empty in memory.
  [[nodiscard]] std::string_view path() const noexcept { return path_; }
  [[nodiscard]] std::pmr::memory_resource* upstream_resource() const noexcept { return upstream_; }

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override;
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override;
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  std::string name_;
  std::string path_;
  std::pmr::memory_resource* upstream_;
  std::unique_ptr<detail::trace_state> state_;  // the writer, the live table, the counters
};

}  // namespace pmrkit
