#include <pmr/core/detail/thread_shards.hpp>

#include "thread_registry.hpp"

#include <new>

namespace pmrkit::detail {

/// What a set and the registries of the threads that hold its shards share:
/// `list` is nulled, under the mutex, when the set is destroyed, so an
/// exiting thread either retires its shard before that or forgets it.
struct thread_shard_control {
  explicit thread_shard_control(thread_shard_list* l) noexcept : list(l) {}
  [[nodiscard]] bool alive() const noexcept { return list != nullptr; }
  void give_back(thread_shard* shard) noexcept { list->retire(shard); }
  std::mutex mutex;
  thread_shard_list* list;
};

namespace {

/// The shards of one thread, one per set it used; destroyed as the thread
/// exits, retiring each shard into its owner.
class thread_shard_registry : public thread_registry<thread_shard, thread_shard_control> {
 public:
  thread_shard_registry() = default;
  thread_shard_registry(const thread_shard_registry&) = delete;
  thread_shard_registry& operator=(const thread_shard_registry&) = delete;
  ~thread_shard_registry();
};

// Set as the registry is destroyed: later calls on this thread (from the
// destructors of other thread_local objects) get no shard.
constinit thread_local bool registry_gone = false;
thread_local thread_shard_registry registry;

thread_shard_registry::~thread_shard_registry() {
  registry_gone = true;
  for (thread_shard_cache_entry& entry : thread_shard_cache)
    entry = {0, nullptr};
  // The base retires each shard into its owner.
}

std::atomic<std::uint64_t> next_set_id{1};

}  // namespace

thread_shard_list::thread_shard_list(void* owner, retire_function retire, make_function make,
                                     destroy_function destroy)
    : id_(next_set_id.fetch_add(1, std::memory_order_relaxed)),
      owner_(owner),
      retire_(retire),
      make_(make),
      destroy_(destroy),
      control_(std::make_shared<thread_shard_control>(this)) {}

thread_shard_list::~thread_shard_list() {
  close();
}

void thread_shard_list::close() noexcept {
  const std::lock_guard lock(control_->mutex);
  // From here on, exiting threads forget their shards; the threads' tables
  // name this set's id, never given again, so they never match.
  control_->list = nullptr;
  while (first_ != nullptr) {
    thread_shard* next = first_->next;
    destroy_(first_);
    first_ = next;
  }
  count_.store(0, std::memory_order_relaxed);
}

std::mutex& thread_shard_list::mutex() const noexcept {
  return control_->mutex;
}

thread_shard* thread_shard_list::of_this_thread() noexcept {
  if (thread_shard* shard = cached()) return shard;
  if (registry_gone) return nullptr;
  thread_shard_registry& mine = registry;
  thread_shard* shard = mine.find(id_);
  if (shard == nullptr) {
    mine.prune();
    try {
      mine.entries.reserve(mine.entries.size() + 1);
    } catch (...) {
      return nullptr;
    }
    shard = make_();
    if (shard == nullptr) return nullptr;
    {
      const std::lock_guard lock(control_->mutex);
      shard->next = first_;
      if (first_ != nullptr) first_->previous = shard;
      first_ = shard;
      count_.fetch_add(1, std::memory_order_relaxed);
    }
    mine.entries.push_back({id_, shard, control_});  // room reserved: does not throw
  }
  thread_shard_cache[id_ % thread_shard_cache_entries] = {id_, shard};
  return shard;
}

void thread_shard_list::retire(thread_shard* shard) noexcept {
  retire_(owner_, *shard);
  (shard->previous != nullptr ? shard->previous->next : first_) = shard->next;
  if (shard->next != nullptr) shard->next->previous = shard->previous;
  count_.fetch_sub(1, std::memory_order_relaxed);
  destroy_(shard);
}

}  // namespace pmrkit::detail
