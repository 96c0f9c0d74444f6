#include <pmr/decorator/synchronized_resource.hpp>

#include <mutex>

namespace pmrkit {

synchronized_resource::synchronized_resource(synchronized_options options,
                                             std::pmr::memory_resource* upstream)
    : name_(options.name), upstream_(require_upstream(upstream, "pmrkit::synchronized_resource")) {}

void synchronized_resource::lock_contended() {
  mutex_.lock_contended();
  ++contended_locks_;
}

synchronized_stats synchronized_resource::stats() const noexcept {
  const std::lock_guard lock(mutex_);
  return {.contended_locks = contended_locks_};
}

}  // namespace pmrkit
