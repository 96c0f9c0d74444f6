// thread_registry: what one thread holds of each thread-safe resource it used
// (a cache of the concurrent pool, a slot of the concurrent arena), found by
// the resource's id, which is never reused.
//
// Each resource keeps a `Control` shared (std::shared_ptr) with the registry
// entries of every thread that used it: its `mutex`, `alive()` (false once
// the resource is destroyed, which it says under the mutex) and
// `give_back(Held*)`. A thread keeps its registry in a thread_local: when the
// thread exits, the registry hands each held thing back to its resource under
// that mutex, unless the resource is gone (it freed them itself). `prune()`
// forgets the entries of destroyed resources, so a thread that uses many
// resources over time keeps only the live ones'.
//
// Thread safety: a registry belongs to its thread; what it shares with the
// resources is reached under their control's mutex.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace pmrkit::detail {

template <class Held, class Control>
class thread_registry {
 public:
  struct entry {
    std::uint64_t id;
    Held* held;
    std::shared_ptr<Control> control;
  };

  thread_registry() = default;
  thread_registry(const thread_registry&) = delete;
  thread_registry& operator=(const thread_registry&) = delete;
  ~thread_registry() {
    for (const entry& e : entries) {
      const std::lock_guard lock(e.control->mutex);
      if (e.control->alive()) e.control->give_back(e.held);
    }
  }

  /// What this thread holds of the resource `id`, or nullptr.
  [[nodiscard]] Held* find(std::uint64_t id) const noexcept {
    for (const entry& e : entries) {
      if (e.id == id) return e.held;
    }
    return nullptr;
  }
  /// Forgets the entries of resources destroyed since (they freed what they gave).
  void prune() noexcept {
    std::erase_if(entries, [](const entry& e) {
      const std::lock_guard lock(e.control->mutex);
      return !e.control->alive();
    });
  }

  std::vector<entry> entries;
};

}  // namespace pmrkit::detail
