#include <pmr/arena/concurrent_arena_resource.hpp>

#include "../core/thread_registry.hpp"

#include <pmr/core/error.hpp>
#include <pmr/core/upstream.hpp>
#include <pmr/core/violation.hpp>

#include <algorithm>
#include <new>
#include <vector>

namespace pmrkit {

namespace detail {

// --- The serialised upstream ---------------------------------------------------------------------

std::size_t concurrent_arena_upstream::bytes_from_upstream() const noexcept {
  const std::lock_guard lock(mutex_);
  return from_upstream_;
}

std::size_t concurrent_arena_upstream::peak_bytes_from_upstream() const noexcept {
  const std::lock_guard lock(mutex_);
  return peak_;
}

void* concurrent_arena_upstream::do_allocate(std::size_t bytes, std::size_t alignment) {
  const std::lock_guard lock(mutex_);
  void* p = upstream_->allocate(bytes, alignment);  // the chain translates a failure
#if PMRKIT_CHECKED
  try {
    chunks_.emplace(reinterpret_cast<std::uintptr_t>(p), bytes);
  } catch (...) {
    upstream_->deallocate(p, bytes, alignment);
    throw;
  }
#endif
  from_upstream_ += bytes;
  peak_ = std::max(peak_, from_upstream_);
  return p;
}

void concurrent_arena_upstream::do_deallocate(void* p, std::size_t bytes, std::size_t alignment) {
  const std::lock_guard lock(mutex_);
#if PMRKIT_CHECKED
  chunks_.erase(reinterpret_cast<std::uintptr_t>(p));
#endif
  from_upstream_ -= bytes;
  upstream_->deallocate(p, bytes, alignment);
}

#if PMRKIT_CHECKED
bool concurrent_arena_upstream::holds(const void* p) const noexcept {
  const auto address = reinterpret_cast<std::uintptr_t>(p);
  const std::lock_guard lock(mutex_);
  auto after = chunks_.upper_bound(address);
  if (after == chunks_.begin()) return false;
  --after;
  return address - after->first < after->second;
}
#endif

// --- The threads' registries ---------------------------------------------------------------------

/// What the arena and the threads' registries share: `destroyed` is set,
/// under the mutex, when the arena is destroyed, so an exiting thread either
/// gives its slot back before that or forgets it. The mutex also guards the
/// arena's list of slots and each slot's `taken`.
struct concurrent_arena_control {
  [[nodiscard]] bool alive() const noexcept { return !destroyed; }
  // Its chunks stay: its blocks may be in use.
  void give_back(concurrent_arena_slot* slot) noexcept { slot->taken = false; }
  std::mutex mutex;
  bool destroyed = false;
};

namespace {

/// The slots of one thread, one per arena it allocated from; destroyed as the
/// thread exits, giving each slot back to its arena for another thread.
class concurrent_arena_registry
    : public thread_registry<concurrent_arena_slot, concurrent_arena_control> {
 public:
  concurrent_arena_registry() = default;
  concurrent_arena_registry(const concurrent_arena_registry&) = delete;
  concurrent_arena_registry& operator=(const concurrent_arena_registry&) = delete;
  ~concurrent_arena_registry();
};

// Set as the registry is destroyed: a later allocation on this thread (from
// the destructor of another thread_local object) gets a slot never reused.
constinit thread_local bool registry_gone = false;
thread_local concurrent_arena_registry registry;

concurrent_arena_registry::~concurrent_arena_registry() {
  registry_gone = true;
  concurrent_arena_last_used = {0, nullptr};
  // The base gives each slot back to its arena.
}

}  // namespace

}  // namespace detail

concurrent_arena_resource::concurrent_arena_resource(const concurrent_arena_options& options,
                                                     std::pmr::memory_resource* upstream)
    : id_(detail::next_arena_id()),
      fast_limit_(std::min(options.size_limit, std::numeric_limits<std::size_t>::max() / 2)),
      options_(options),
      name_(options.name),
      growth_(detail::validated_chain_growth("concurrent_arena_resource",
                                             options.initial_chunk_size, options.max_chunk_size,
                                             options.growth_factor, options.alignment)),
      upstream_(require_upstream(upstream, "pmrkit::concurrent_arena_resource")),
      control_(std::make_shared<detail::concurrent_arena_control>()) {
  options_.name = name_;
}

concurrent_arena_resource::~concurrent_arena_resource() {
  const std::lock_guard lock(control_->mutex);
  // From here on, exiting threads forget their slots; the threads' last-used
  // entries name this arena's id, never given again, so they never match.
  control_->destroyed = true;
  while (slots_ != nullptr) {
    detail::concurrent_arena_slot* next = slots_->next;
    delete slots_;  // its chain gives its chunks back
    slots_ = next;
  }
  slot_count_ = 0;
}

// --- Allocation ----------------------------------------------------------------------------------

void* concurrent_arena_resource::allocate_slow(std::size_t bytes, std::size_t alignment) {
  check_request(bytes, alignment, name_);
  alignment = std::max(alignment, options_.alignment);
  if (bytes > options_.size_limit) {
    throw_allocation_error(failure_reason::out_of_capacity, bytes, alignment, name_);
  }
  const std::size_t extent =
      detail::checked_block_need(bytes, options_.alignment, alignment, name_).extent;
  detail::concurrent_arena_slot* slot = slot_of_this_thread(true);
  // Aligned to at least the least alignment, with a rounded extent: the cursor stays aligned.
  void* p = slot->chain.try_bump(extent, alignment);
  if (p == nullptr) p = slot->chain.bump_in_next_chunk(extent, alignment, name_);
#if PMRKIT_CHECKED
  slot->last_block = p;
  slot->last_size = bytes;
#endif
  return p;
}

void concurrent_arena_resource::deallocate_slow(void* p, std::size_t bytes, std::size_t alignment) {
  // The thread's slot when it allocated from another arena since (never made here).
  detail::concurrent_arena_slot* slot = nullptr;
  if (detail::concurrent_arena_last_used.id != id_) {
    slot = slot_of_this_thread(false);
    auto* block = static_cast<std::byte*>(p);
    if (slot != nullptr && bytes <= fast_limit_ &&
        slot->chain.move_cursor(block + extent_of(bytes), block)) {
#if PMRKIT_CHECKED
      slot->last_block = nullptr;
#endif
      return;
    }
  } else {
    slot = detail::concurrent_arena_last_used.slot;
  }
#if PMRKIT_CHECKED
  if (slot != nullptr && p == slot->last_block && bytes != slot->last_size) {
    report_violation(
        {violation_kind::size_mismatch, name_, p, bytes, alignment, slot->last_size, alignment});
  } else if (!upstream_.holds(p)) {
    report_violation({violation_kind::foreign_pointer, name_, p, bytes, alignment, 0, 0});
  } else if (slot != nullptr && slot->chain.in_free_part(p)) {
    // Past the thread's position: a block already rolled back.
    report_violation({violation_kind::double_free, name_, p, bytes, alignment, 0, 0});
  }
#else
  (void)slot;
  (void)alignment;
#endif
}

// --- Slots ---------------------------------------------------------------------------------------

detail::concurrent_arena_slot* concurrent_arena_resource::slot_of_this_thread(bool create) {
  detail::concurrent_arena_last& last = detail::concurrent_arena_last_used;
  if (last.id == id_) return last.slot;
  if (!detail::registry_gone) {
    detail::concurrent_arena_registry& mine = detail::registry;
    if (detail::concurrent_arena_slot* slot = mine.find(id_)) {
      last = {id_, slot};
      return slot;
    }
    if (!create) return nullptr;
    mine.prune();
    try {
      mine.entries.reserve(mine.entries.size() + 1);
    } catch (const std::bad_alloc&) {
      throw_allocation_error(failure_reason::out_of_capacity, 0, 0, name_);
    }
    detail::concurrent_arena_slot* slot = claim_slot();
    mine.entries.push_back({id_, slot, control_});  // room reserved: does not throw
    last = {id_, slot};
    return slot;
  }
  if (!create) return nullptr;
  // The thread is exiting: a slot of its own, never given back for reuse.
  detail::concurrent_arena_slot* slot = claim_slot();
  last = {id_, slot};
  return slot;
}

detail::concurrent_arena_slot* concurrent_arena_resource::claim_slot() {
  const std::lock_guard lock(control_->mutex);
  for (detail::concurrent_arena_slot* slot = slots_; slot != nullptr; slot = slot->next) {
    if (!slot->taken) {  // its thread exited: this one bumps after that one's blocks
      slot->taken = true;
#if PMRKIT_CHECKED
      slot->last_block = nullptr;
#endif
      return slot;
    }
  }
  auto* slot =
      new (std::nothrow) detail::concurrent_arena_slot(growth_, options_.alignment, &upstream_);
  if (slot == nullptr) {
    throw_allocation_error(failure_reason::out_of_capacity, 0, 0, name_);
  }
  slot->next = slots_;
  slots_ = slot;
  ++slot_count_;
  return slot;
}

// --- Bulk operations -----------------------------------------------------------------------------

std::size_t concurrent_arena_resource::used_now() const noexcept {
  std::size_t used = 0;
  for (const detail::concurrent_arena_slot* slot = slots_; slot != nullptr; slot = slot->next)
    used += slot->chain.used();
  return used;
}

void concurrent_arena_resource::note_peak() noexcept {
  peak_used_ = std::max(peak_used_, used_now());
}

// reset, release and shrink: `apply` on every slot's chain under the control mutex, the peak
// noted first; what it returns is summed.
template <class Apply>
std::size_t concurrent_arena_resource::on_every_chain(Apply apply) noexcept {
  const std::lock_guard lock(control_->mutex);
  note_peak();
  std::size_t total = 0;
  for (detail::concurrent_arena_slot* slot = slots_; slot != nullptr; slot = slot->next)
    total += apply(*slot);
  return total;
}

void concurrent_arena_resource::reset() noexcept {
  (void)on_every_chain([](detail::concurrent_arena_slot& slot) {
    slot.chain.reset();
#if PMRKIT_CHECKED
    slot.last_block = nullptr;
#endif
    return std::size_t{0};
  });
}

void concurrent_arena_resource::release() noexcept {
  (void)on_every_chain([](detail::concurrent_arena_slot& slot) {
    slot.chain.release();
#if PMRKIT_CHECKED
    slot.last_block = nullptr;
#endif
    return std::size_t{0};
  });
}

std::size_t concurrent_arena_resource::shrink() noexcept {
  return on_every_chain([](detail::concurrent_arena_slot& slot) { return slot.chain.shrink(); });
}

// --- Observers -----------------------------------------------------------------------------------

arena_stats concurrent_arena_resource::stats() const noexcept {
  arena_stats result;
  result.current_chunk_size = 0;
  {
    const std::lock_guard lock(control_->mutex);
    for (const detail::concurrent_arena_slot* slot = slots_; slot != nullptr; slot = slot->next) {
      const detail::bump_chain::usage usage = slot->chain.measure();
      result.bytes_in_use += usage.used;
      result.bytes_available += usage.available;
      result.chunk_count += usage.chunks;
      result.current_chunk_size = std::max(result.current_chunk_size, slot->chain.growth_size());
    }
    result.peak_bytes_in_use = std::max(peak_used_, result.bytes_in_use);
    if (slots_ == nullptr) result.current_chunk_size = options_.initial_chunk_size;
  }
  result.bytes_from_upstream = upstream_.bytes_from_upstream();
  result.peak_bytes_from_upstream = upstream_.peak_bytes_from_upstream();
  result.bytes_reserved = result.bytes_from_upstream;
  result.waste = result.bytes_reserved - result.bytes_in_use - result.bytes_available;
  return result;
}

std::size_t concurrent_arena_resource::thread_slots() const noexcept {
  const std::lock_guard lock(control_->mutex);
  return slot_count_;
}

bool concurrent_arena_resource::owns(const void* p) const noexcept {
  const std::lock_guard lock(control_->mutex);
  for (const detail::concurrent_arena_slot* slot = slots_; slot != nullptr; slot = slot->next) {
    if (slot->chain.owns(p)) return true;
  }
  return false;
}

}  // namespace pmrkit
