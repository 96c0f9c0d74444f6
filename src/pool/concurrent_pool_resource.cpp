#include <pmr/pool/concurrent_pool_resource.hpp>

#include "../core/thread_registry.hpp"

#include <pmr/core/error.hpp>
#include <pmr/core/options.hpp>
#include <pmr/core/upstream.hpp>
#include <pmr/core/violation.hpp>

#include <algorithm>
#include <new>
#include <vector>

namespace pmrkit {

namespace classes = detail::size_classes;

namespace detail {

namespace {

// Depots and caches start on their own cache lines, so that threads working
// on neighbouring ones do not slow each other down.
constexpr std::size_t cache_line = 64;

/// The first block of a batch in a depot: its first word links the batch's
/// blocks, its second the next batch (every class holds two words).
struct batch {
  free_block first;
  batch* next_batch;
};
static_assert(sizeof(batch) <= size_classes::min_size);

// The next batch after `given`, its word poisoned (ASan, memcheck) but for the read.
batch* read_next_batch(batch* given) noexcept {
  unpoison(&given->next_batch, sizeof given->next_batch);
  batch* next = given->next_batch;
  poison(&given->next_batch, sizeof given->next_batch);
  return next;
}
void write_next_batch(batch* given, batch* next) noexcept {
  unpoison(&given->next_batch, sizeof given->next_batch);
  given->next_batch = next;
  poison(&given->next_batch, sizeof given->next_batch);
}

}  // namespace

/// A class's shared blocks: its chunks, and the batches thread caches gave back.
struct alignas(cache_line) concurrent_pool_depot {
  concurrent_pool_depot(block_pool_layout layout, std::pmr::memory_resource* upstream,
                        std::uint32_t capacity) noexcept
      : pool(layout, upstream), cache_capacity(capacity), batch_size(capacity / 2) {}

  std::mutex mutex;
  block_pool pool;
  batch* batches = nullptr;  // each of batch_size blocks
  std::size_t batch_count = 0;
  const std::uint32_t cache_capacity;  // blocks a thread cache keeps of this class
  const std::uint32_t batch_size;      // blocks moved between a cache and the depot at once
};

/// One thread's cache for one resource: a magazine per class. The magazines,
/// then their slots, follow it in the same allocation.
struct concurrent_thread_cache {
  concurrent_thread_cache* next = nullptr;  // the resource's list, under the control mutex
  concurrent_thread_cache* previous = nullptr;
  shared_magazine* bins = nullptr;
  std::size_t bin_count = 0;
};

/// What the threads' registries and the resource share: the resource is
/// nulled, under the mutex, when it is destroyed, so an exiting thread either
/// returns its cache before that or forgets it.
struct concurrent_pool_control {
  explicit concurrent_pool_control(concurrent_pool_resource* r) noexcept : resource(r) {}
  [[nodiscard]] bool alive() const noexcept { return resource != nullptr; }
  void give_back(concurrent_thread_cache* cache) noexcept { resource->retire_cache(cache); }
  std::mutex mutex;
  concurrent_pool_resource* resource;
};

/// The caches of one thread, one per resource it used; destroyed as the
/// thread exits, returning each cache to its resource.
class concurrent_pool_registry
    : public thread_registry<concurrent_thread_cache, concurrent_pool_control> {
 public:
  concurrent_pool_registry() = default;
  concurrent_pool_registry(const concurrent_pool_registry&) = delete;
  concurrent_pool_registry& operator=(const concurrent_pool_registry&) = delete;
  ~concurrent_pool_registry();
};

namespace {

// Set as the registry is destroyed: later calls on this thread (from the
// destructors of other thread_local objects) are served by the depots.
constinit thread_local bool registry_gone = false;
thread_local concurrent_pool_registry registry;

}  // namespace

concurrent_pool_registry::~concurrent_pool_registry() {
  registry_gone = true;
  concurrent_pool_last_used = {0, nullptr};
  // The base gives each cache back to its resource.
}

namespace {

std::atomic<std::uint64_t> next_resource_id{1};

concurrent_thread_cache* create_cache(const concurrent_pool_depot* depots,
                                      std::size_t count) noexcept {
  const std::size_t header = align_up(sizeof(concurrent_thread_cache), cache_line);
  const std::size_t slots_at = align_up(header + count * sizeof(shared_magazine), cache_line);
  std::size_t slots = 0;
  for (std::size_t i = 0; i < count; ++i)
    slots += depots[i].cache_capacity;
  const std::size_t bytes = align_up(slots_at + slots * sizeof(void*), cache_line);
  void* memory = ::operator new (bytes, std::align_val_t{cache_line}, std::nothrow);
  if (memory == nullptr) return nullptr;
  auto* cache = new (memory) concurrent_thread_cache;
  cache->bins = reinterpret_cast<shared_magazine*>(static_cast<std::byte*>(memory) + header);
  cache->bin_count = count;
  auto** slot = reinterpret_cast<void**>(static_cast<std::byte*>(memory) + slots_at);
  for (std::size_t i = 0; i < count; ++i) {
    new (cache->bins + i) shared_magazine(slot, depots[i].cache_capacity);
    slot += depots[i].cache_capacity;
  }
  return cache;
}

void destroy_cache(concurrent_thread_cache* cache) noexcept {
  for (std::size_t i = 0; i < cache->bin_count; ++i)
    cache->bins[i].~shared_magazine();
  cache->~concurrent_thread_cache();
  ::operator delete (cache, std::align_val_t{cache_line});
}

void destroy_depots(concurrent_pool_depot* depots, std::size_t count) noexcept {
  for (std::size_t i = 0; i < count; ++i)
    depots[i].~concurrent_pool_depot();
  ::operator delete (depots, std::align_val_t{alignof(concurrent_pool_depot)});
}

// Puts the blocks of the list `head` back on `depot`'s pool (its mutex held).
void return_blocks(concurrent_pool_depot& depot, free_block* head) noexcept {
  while (head != nullptr) {
    free_block* next = read_link(head);  // before deallocate overwrites it
    depot.pool.deallocate(head);
    head = next;
  }
}

}  // namespace

}  // namespace detail

concurrent_pool_resource::concurrent_pool_resource(concurrent_pool_options options,
                                                   std::pmr::memory_resource* upstream)
    : id_(detail::next_resource_id.fetch_add(1, std::memory_order_relaxed)),
      largest_(classes::effective_options(options.max_blocks_per_chunk,
                                          options.largest_required_pool_block)
                   .largest_required_pool_block),
      class_count_(classes::count_for(largest_)),
      name_(options.name),
      upstream_(upstream) {
  require_option(options.cache_bytes_per_class != 0, "concurrent_pool_resource",
                 "cache_bytes_per_class", "must not be 0");
  (void)require_upstream(upstream, "pmrkit::concurrent_pool_resource");
  effective_ =
      classes::effective_options(options.max_blocks_per_chunk, options.largest_required_pool_block);
  const std::size_t max_blocks = effective_.max_blocks_per_chunk;

  depots_ = static_cast<detail::concurrent_pool_depot*>(
      ::operator new (sizeof(detail::concurrent_pool_depot) * class_count_,
                      std::align_val_t{alignof(detail::concurrent_pool_depot)}));
  for (std::size_t i = 0; i < class_count_; ++i) {
    const auto capacity = static_cast<std::uint32_t>(
        std::clamp(options.cache_bytes_per_class / classes::class_size(i), min_cached_blocks,
                   max_cached_blocks));
    new (depots_ + i)
        detail::concurrent_pool_depot(classes::layout_of(i, max_blocks), upstream_, capacity);
  }
  try {
    control_ = std::make_shared<detail::concurrent_pool_control>(this);
  } catch (...) {
    detail::destroy_depots(depots_, class_count_);
    throw;
  }
}

concurrent_pool_resource::~concurrent_pool_resource() {
  {
    // From here on, exiting threads leave their caches to it.
    const std::lock_guard lock(control_->mutex);
    control_->resource = nullptr;
  }
  release();
  destroy_caches();
  // A thread's slot may still name this resource: ids are never reused, so it never matches again.
  detail::destroy_depots(depots_, class_count_);
}

// --- Allocation ----------------------------------------------------------------------------------

void* concurrent_pool_resource::allocate_slow(std::size_t bytes, std::size_t alignment) {
  check_request(bytes, alignment, name_);
  const std::size_t index = classes::index_of(bytes, alignment, class_count_);
  if (index == class_count_) {
    const std::lock_guard lock(large_mutex_);
    const std::size_t before = large_.bytes_from_upstream();
    void* p = large_.allocate(upstream_, bytes, alignment, name_);
    took(large_.bytes_from_upstream() - before);
    return p;
  }
  return allocate_from_class(index);
}

void* concurrent_pool_resource::allocate_from_new_chunk(detail::block_pool& pool) {
  const std::size_t before = pool.bytes_from_upstream();
  void* p = pool.allocate_from_new_chunk(name_);
  took(pool.bytes_from_upstream() - before);  // 0 when a chunk kept since the pool emptied serves
  return p;
}

void concurrent_pool_resource::took(std::size_t bytes) noexcept {
  if (bytes == 0) return;
  const std::size_t now = from_upstream_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  std::size_t peak = peak_from_upstream_.load(std::memory_order_relaxed);
  while (now > peak &&
         !peak_from_upstream_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}

void* concurrent_pool_resource::allocate_from_class(std::size_t index) {
  detail::shared_magazine* bins = cache_of_this_thread();
  if (bins == nullptr) [[unlikely]] {
    detail::concurrent_pool_depot& depot = depots_[index];
    const std::lock_guard lock(depot.mutex);
    if (void* p = depot.pool.try_allocate()) return p;
    return allocate_from_new_chunk(depot.pool);
  }
  detail::shared_magazine& bin = bins[index];
  if (bin.empty()) refill(index, bin);
  void* p = bin.pop();
  detail::revive(p, classes::class_size(index));
  return p;
}

void concurrent_pool_resource::refill(std::size_t index, detail::shared_magazine& bin) {
  detail::concurrent_pool_depot& depot = depots_[index];
  std::unique_lock lock(depot.mutex);
  if (detail::batch* taken = depot.batches) {
    depot.batches = detail::read_next_batch(taken);
    --depot.batch_count;
    lock.unlock();
    // The batch's blocks stay poisoned, as in the magazine; only their links are read.
    for (detail::free_block* block = &taken->first; block != nullptr;
         block = detail::read_link(block)) {
      bin.push(block);
    }
    return;
  }
  // Carve a batch from the chunks; a new chunk only when not one block is left.
  detail::free_block* head = nullptr;
  std::uint32_t carved = 0;
  while (carved < depot.batch_size) {
    void* p = depot.pool.try_allocate();
    if (p == nullptr) {
      if (carved != 0) break;
      p = allocate_from_new_chunk(depot.pool);  // throws: nothing changed
    }
    auto* block = static_cast<detail::free_block*>(p);
    block->next = head;
    head = block;
    ++carved;
  }
  lock.unlock();
  for (detail::free_block* block = head; block != nullptr;) {
    detail::free_block* next = block->next;  // before the block is poisoned
    detail::retire(block, classes::class_size(index));
    bin.push(block);
    block = next;
  }
}

// --- Deallocation --------------------------------------------------------------------------------

void concurrent_pool_resource::deallocate_slow(void* p, std::size_t bytes, std::size_t alignment) {
  const std::size_t index = classes::index_of(bytes, alignment, class_count_);
  if (index == class_count_) {
#if PMRKIT_CHECKED
    // One of its pooled blocks freed with a size or alignment that routes it here.
    for (std::size_t other = 0; other < class_count_; ++other) {
      detail::concurrent_pool_depot& depot = depots_[other];
      std::unique_lock lock(depot.mutex);
      if (depot.pool.owns(p)) {
        lock.unlock();
        report_violation({violation_kind::size_mismatch, name_, p, bytes, alignment,
                          classes::class_size(other), classes::class_alignment(other)});
        return;
      }
    }
#endif
    const std::lock_guard lock(large_mutex_);
    const std::size_t before = large_.bytes_from_upstream();
    large_.deallocate(upstream_, p, bytes, alignment, name_);
    gave_back(before - large_.bytes_from_upstream());
    return;
  }
#if PMRKIT_CHECKED
  if (!check_deallocate(p, bytes, alignment, index)) return;
#endif
  deallocate_to_class(p, index);
}

void concurrent_pool_resource::deallocate_to_class(void* p, std::size_t index) noexcept {
  detail::shared_magazine* bins = cache_of_this_thread();
  if (bins == nullptr) [[unlikely]] {
    detail::concurrent_pool_depot& depot = depots_[index];
    const std::lock_guard lock(depot.mutex);
    depot.pool.deallocate(p);
    return;
  }
  detail::shared_magazine& bin = bins[index];
  if (bin.full()) give_back_half(index, bin);
  detail::retire(p, classes::class_size(index));
  bin.push(p);
}

void concurrent_pool_resource::give_back_half(std::size_t index,
                                              detail::shared_magazine& bin) noexcept {
  detail::concurrent_pool_depot& depot = depots_[index];
  // The newest blocks stay (likely in the CPU's cache); the oldest are linked into the batch.
  detail::free_block* head = nullptr;
  bin.take_oldest(depot.batch_size, [&head](void* p) {
    auto* block = static_cast<detail::free_block*>(p);
    detail::write_link(block, head);
    head = block;
  });
  auto* given = reinterpret_cast<detail::batch*>(head);
  const std::lock_guard lock(depot.mutex);
  detail::write_next_batch(given, depot.batches);
  depot.batches = given;
  ++depot.batch_count;
}

#if PMRKIT_CHECKED
bool concurrent_pool_resource::check_deallocate(void* p, std::size_t bytes, std::size_t alignment,
                                                std::size_t index) const {
  bool owned = false;
  bool in_use = false;
  {
    detail::concurrent_pool_depot& depot = depots_[index];
    const std::lock_guard lock(depot.mutex);
    if (const detail::pool_chunk* chunk = depot.pool.chunk_of(p)) {
      owned = true;
      in_use = depot.pool.in_use(chunk, p);
    }
  }
  if (!owned) {
    for (std::size_t other = 0; other < class_count_; ++other) {
      if (other == index) continue;
      detail::concurrent_pool_depot& depot = depots_[other];
      std::unique_lock lock(depot.mutex);
      if (depot.pool.owns(p)) {
        lock.unlock();
        report_violation({violation_kind::size_mismatch, name_, p, bytes, alignment,
                          classes::class_size(other), classes::class_alignment(other)});
        return false;
      }
    }
    report_violation({violation_kind::foreign_pointer, name_, p, bytes, alignment});
    return false;
  }
  bool free = !in_use;  // free in the chunks
  // Or free in this thread's cache (other threads' caches and the depot's batches are not
  // searched).
  const detail::concurrent_pool_slot& slot = detail::concurrent_pool_last_used;
  if (!free && slot.id == id_) free = slot.bins[index].contains(p);
  if (free) {
    report_violation({violation_kind::double_free, name_, p, bytes, alignment});
    return false;
  }
  return true;
}
#endif

// --- Thread caches -------------------------------------------------------------------------------

detail::shared_magazine* concurrent_pool_resource::cache_of_this_thread() noexcept {
  const detail::concurrent_pool_slot& slot = detail::concurrent_pool_last_used;
  return slot.id == id_ ? slot.bins : find_or_create_cache();
}

detail::shared_magazine* concurrent_pool_resource::find_or_create_cache() noexcept {
  if (detail::registry_gone) return nullptr;
  detail::concurrent_pool_registry& caches = detail::registry;
  detail::concurrent_thread_cache* cache = caches.find(id_);
  if (cache == nullptr) {
    caches.prune();
    try {
      caches.entries.reserve(caches.entries.size() + 1);
    } catch (...) {
      return nullptr;
    }
    cache = detail::create_cache(depots_, class_count_);
    if (cache == nullptr) return nullptr;
    {
      const std::lock_guard lock(control_->mutex);
      cache->next = caches_;
      if (caches_ != nullptr) caches_->previous = cache;
      caches_ = cache;
      ++cache_count_;
    }
    caches.entries.push_back({id_, cache, control_});  // room reserved: does not throw
  }
  detail::concurrent_pool_last_used = {id_, cache->bins};
  return cache->bins;
}

void concurrent_pool_resource::retire_cache(detail::concurrent_thread_cache* cache) noexcept {
  for (std::size_t i = 0; i < class_count_; ++i) {
    detail::shared_magazine& bin = cache->bins[i];
    if (bin.empty()) continue;
    detail::concurrent_pool_depot& depot = depots_[i];
    const std::lock_guard lock(depot.mutex);
    bin.take_all([&depot](void* block) { depot.pool.deallocate(block); });
  }
  (cache->previous != nullptr ? cache->previous->next : caches_) = cache->next;
  if (cache->next != nullptr) cache->next->previous = cache->previous;
  --cache_count_;
  detail::destroy_cache(cache);
}

void concurrent_pool_resource::destroy_caches() noexcept {
  const std::lock_guard lock(control_->mutex);
  while (caches_ != nullptr) {
    detail::concurrent_thread_cache* next = caches_->next;
    detail::destroy_cache(caches_);
    caches_ = next;
  }
  cache_count_ = 0;
}

// --- Bulk operations -----------------------------------------------------------------------------

void concurrent_pool_resource::release() noexcept {
  // The control mutex keeps exiting threads out while their caches are emptied.
  const std::lock_guard lock(control_->mutex);
  for (detail::concurrent_thread_cache* cache = caches_; cache != nullptr; cache = cache->next) {
    for (std::size_t i = 0; i < class_count_; ++i)
      cache->bins[i].clear();
  }
  for (std::size_t i = 0; i < class_count_; ++i) {
    detail::concurrent_pool_depot& depot = depots_[i];
    const std::lock_guard depot_lock(depot.mutex);
    depot.batches = nullptr;
    depot.batch_count = 0;
    depot.pool.release();
  }
  const std::lock_guard large_lock(large_mutex_);
  large_.release(upstream_);
  from_upstream_.store(0, std::memory_order_relaxed);
}

std::size_t concurrent_pool_resource::shrink() noexcept {
  std::size_t returned = 0;
  for (std::size_t i = 0; i < class_count_; ++i) {
    detail::concurrent_pool_depot& depot = depots_[i];
    const std::lock_guard lock(depot.mutex);
    while (detail::batch* given = depot.batches) {
      depot.batches = detail::read_next_batch(given);  // before its block is freed
      detail::return_blocks(depot, &given->first);
    }
    depot.batch_count = 0;
    returned += depot.pool.shrink();
  }
  gave_back(returned);
  return returned;
}

// --- Observers -----------------------------------------------------------------------------------

concurrent_pool_class_stats concurrent_pool_resource::class_stats(
    std::size_t index) const noexcept {
  std::size_t cached = 0;
  {
    const std::lock_guard lock(control_->mutex);
    for (const detail::concurrent_thread_cache* cache = caches_; cache != nullptr;
         cache = cache->next) {
      cached += cache->bins[index].size();
    }
  }
  detail::concurrent_pool_depot& depot = depots_[index];
  detail::block_pool_counts counts;
  std::size_t in_depot = 0;
  {
    const std::lock_guard lock(depot.mutex);
    counts = depot.pool.counts();
    in_depot = depot.batch_count * depot.batch_size;
  }
  const std::size_t free = cached + in_depot;  // may be ahead of counts under concurrent use
  const std::size_t in_use = counts.blocks_in_use > free ? counts.blocks_in_use - free : 0;
  return {.bytes_in_use = in_use * classes::class_size(index),
          .blocks_in_use = in_use,
          .bytes_from_upstream = counts.bytes_from_upstream,
          .chunk_count = counts.chunks,
          .blocks_cached = cached,
          .blocks_in_depot = in_depot,
          .blocks_out = counts.blocks_in_use,
          .capacity_blocks = counts.capacity_blocks,
          .block_size = classes::class_size(index)};
}

concurrent_pool_stats concurrent_pool_resource::stats() const noexcept {
  concurrent_pool_stats totals;
  {
    const std::lock_guard lock(control_->mutex);
    totals.thread_caches = cache_count_;
  }
  for (std::size_t i = 0; i < class_count_; ++i) {
    const concurrent_pool_class_stats one = class_stats(i);
    totals.blocks_in_use += one.blocks_in_use;
    totals.bytes_in_use += one.bytes_in_use;
    totals.blocks_cached += one.blocks_cached;
    totals.blocks_in_depot += one.blocks_in_depot;
    totals.bytes_from_upstream += one.bytes_from_upstream;
    totals.chunk_count += one.chunk_count;
  }
  const std::lock_guard lock(large_mutex_);
  totals.bytes_from_upstream += large_.bytes_from_upstream();
  totals.large_blocks_in_use = large_.count();
  totals.large_bytes_in_use = large_.bytes();
  totals.peak_bytes_from_upstream = peak_from_upstream_.load(std::memory_order_relaxed);
  return totals;
}

bool concurrent_pool_resource::owns(const void* p) const noexcept {
  for (std::size_t i = 0; i < class_count_; ++i) {
    detail::concurrent_pool_depot& depot = depots_[i];
    const std::lock_guard lock(depot.mutex);
    if (depot.pool.owns(p)) return true;
  }
  return false;
}

}  // namespace pmrkit
