#include <pmr/testing/violation_recorder.hpp>

#include <algorithm>
#include <atomic>

namespace pmrkit {

namespace {
std::atomic<violation_recorder*> active_recorder{nullptr};
}  // namespace

violation_recorder::violation_recorder()
    : previous_handler_(set_violation_handler(&violation_recorder::record)),
      previous_recorder_(active_recorder.exchange(this)) {}

violation_recorder::~violation_recorder() {
  active_recorder.store(previous_recorder_);
  set_violation_handler(previous_handler_);
}

void violation_recorder::record(const violation& v) {
  violation_recorder* recorder = active_recorder.load();
  if (recorder == nullptr) default_violation_handler(v);
  const std::lock_guard lock(recorder->mutex_);
  recorder->entries_.push_back({v.kind, std::string(v.resource_name), v.pointer, v.size,
                                v.alignment, v.expected_size, v.expected_alignment});
}

std::vector<violation_recorder::entry> violation_recorder::violations() const {
  const std::lock_guard lock(mutex_);
  return entries_;
}

std::size_t violation_recorder::size() const {
  const std::lock_guard lock(mutex_);
  return entries_.size();
}

std::size_t violation_recorder::count(violation_kind kind) const {
  const std::lock_guard lock(mutex_);
  return static_cast<std::size_t>(std::count_if(entries_.begin(), entries_.end(),
                                                [kind](const entry& e) { return e.kind == kind; }));
}

void violation_recorder::clear() {
  const std::lock_guard lock(mutex_);
  entries_.clear();
}

}  // namespace pmrkit
