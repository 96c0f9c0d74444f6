// violation_recorder: installs a violation handler that records instead of
// aborting, for as long as it lives, so tests can provoke misuse on purpose.
//
// While a recorder is alive, every `report_violation` call appends to its
// list (copying the resource name) and returns, so the resource ignores the
// faulty call and stays usable. The previous handler is restored on
// destruction. Recorders nest: the innermost one records.
//
// Thread safety: recording is guarded by a mutex, so concurrent resources may
// report from several threads; construct and destroy it on one thread.
//
// Example:
//   pmrkit::violation_recorder recorder;
//   pmrkit::report_violation({pmrkit::violation_kind::foreign_pointer, "pool", nullptr, 16, 8});
//   assert(recorder.count(pmrkit::violation_kind::foreign_pointer) == 1);
#pragma once

#include <pmr/core/violation.hpp>

#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

namespace pmrkit {

class violation_recorder {
 public:
  /// A violation with its own copy of the resource name.
  struct entry {
    violation_kind kind{};
    std::string resource_name;
    const void* pointer = nullptr;
    std::size_t size = 0;
    std::size_t alignment = 0;
    std::size_t expected_size = 0;
    std::size_t expected_alignment = 0;
  };

  violation_recorder();
  ~violation_recorder();
  violation_recorder(const violation_recorder&) = delete;
  violation_recorder& operator=(const violation_recorder&) = delete;

  [[nodiscard]] std::vector<entry> violations() const;
  [[nodiscard]] std::size_t size() const;
  [[nodiscard]] bool empty() const { return size() == 0; }
  /// How many violations of `kind` were recorded.
  [[nodiscard]] std::size_t count(violation_kind kind) const;
  void clear();

 private:
  static void record(const violation& v);

  mutable std::mutex mutex_;
  std::vector<entry> entries_;
  violation_handler previous_handler_;
  violation_recorder* previous_recorder_;
};

}  // namespace pmrkit
