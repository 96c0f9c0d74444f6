#include <pmr/decorator/statistics_resource.hpp>

#include <algorithm>
#include <limits>
#include <mutex>
#include <stdexcept>

namespace pmrkit {

namespace detail {

void counter_frame::absorb(const allocation_counters& popped) noexcept {
  // Frames change only while no allocation runs: plain updates are exact.
  constexpr auto serialized = decorator_threading::serialized;
  const allocation_counters own = load();
  peak_.raise_to(own.peak_bytes_in_use, serialized);
  peak_.raise_to(own.bytes_in_use + popped.peak_bytes_in_use, serialized);
  allocations_.add(popped.allocations, serialized);
  allocated_bytes_.add(popped.total_bytes, serialized);
  deallocations_.add(popped.deallocations, serialized);
  // What the popped frame freed: what it allocated less what it still holds.
  freed_bytes_.add(popped.total_bytes - static_cast<std::size_t>(popped.bytes_in_use), serialized);
}

}  // namespace detail

statistics_resource::statistics_resource(statistics_options options,
                                         std::pmr::memory_resource* upstream)
    : upstream_(require_upstream(upstream, "pmrkit::statistics_resource")),
      path_(update_path::concurrent),
      shards_(this, &retire_shard),
      threading_(options.threading),
      // Drifts are signed: a batch beyond what they can hold would never fold.
      peak_batch_(std::min(options.peak_batch,
                           static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max()))),
      name_(options.name) {
  choose_path();
}

statistics_resource::~statistics_resource() {
  // First: no exiting thread folds its shard into own_ and folded_ from here on.
  shards_.close();
}

void statistics_resource::push_counters() {
  frames_.push_back(std::make_unique<detail::counter_frame>());
  choose_path();
}

allocation_counters statistics_resource::pop_counters() {
  if (frames_.empty()) {
    throw std::logic_error("pmrkit::statistics_resource: pop_counters() without push_counters()");
  }
  const allocation_counters popped = frames_.back()->load();
  frames_.pop_back();
  if (!frames_.empty()) frames_.back()->absorb(popped);
  choose_path();
  return popped;
}

void statistics_resource::add_observer(allocation_observer& observer) {
  observers_.push_back(&observer);
  choose_path();
}

bool statistics_resource::remove_observer(allocation_observer& observer) noexcept {
  const auto found = std::find(observers_.begin(), observers_.end(), &observer);
  if (found == observers_.end()) return false;
  observers_.erase(found);
  choose_path();
  return true;
}

// --- Counting ------------------------------------------------------------------------------------

void statistics_resource::fold(detail::statistics_shard& shard) noexcept {
  const std::size_t allocated = shard.allocated_bytes.load();
  const std::size_t freed = shard.freed_bytes.load();
  const std::size_t net = allocated - freed;
  const auto drift = static_cast<std::ptrdiff_t>(net - shard.folded);
  shard.folded = net;
  const std::size_t most = std::numeric_limits<std::size_t>::max();
  shard.fold_when_allocated = allocated <= most - peak_batch_ ? allocated + peak_batch_ : most;
  shard.fold_when_freed = freed <= most - peak_batch_ ? freed + peak_batch_ : most;
  // The shared total is also a moment's bytes in use, as near as the other threads' drifts.
  const std::ptrdiff_t total = folded_.add(drift, decorator_threading::concurrent);
  if (total > shard.peak.load()) shard.peak.store(total);
}

void statistics_resource::count_lifetime_allocation(std::size_t bytes) noexcept {
  if (threading_ == decorator_threading::serialized) {
    count_allocation<false>(own_, bytes);
  } else if (detail::statistics_shard* shard = shards_.of_this_thread()) {
    count_allocation<true>(*shard, bytes);
  } else {
    // An exiting thread, or no memory for a shard: the shared counters.
    constexpr auto atomic = decorator_threading::concurrent;
    own_.allocations[histogram_bucket(bytes)].add(1, atomic);
    own_.allocated_bytes.add(bytes, atomic);
    own_.peak.raise_to(folded_.add(static_cast<std::ptrdiff_t>(bytes), atomic), atomic);
  }
}

void statistics_resource::count_lifetime_deallocation(std::size_t bytes) noexcept {
  if (threading_ == decorator_threading::serialized) {
    count_deallocation<false>(own_, bytes);
  } else if (detail::statistics_shard* shard = shards_.of_this_thread()) {
    count_deallocation<true>(*shard, bytes);
  } else {
    constexpr auto atomic = decorator_threading::concurrent;
    own_.peak.raise_to(folded_.subtract(static_cast<std::ptrdiff_t>(bytes), atomic) +
                           static_cast<std::ptrdiff_t>(bytes),
                       atomic);
    own_.freed_bytes.add(bytes, atomic);
    own_.deallocations.add(1, atomic);
  }
}

void statistics_resource::retire_shard(void* self, detail::thread_shard& retired) noexcept {
  auto& resource = *static_cast<statistics_resource*>(self);
  auto& shard = static_cast<detail::statistics_shard&>(retired);
  resource.fold(shard);  // its drift, so that the other threads' peaks see its blocks
  // Calls without a shard update own_ at the same time: read-modify-writes.
  constexpr auto atomic = decorator_threading::concurrent;
  detail::statistics_shard& own = resource.own_;
  for (std::size_t i = 0; i < histogram_buckets; ++i) {
    if (const std::size_t count = shard.allocations[i].load())
      own.allocations[i].add(count, atomic);
  }
  own.allocated_bytes.add(shard.allocated_bytes.load(), atomic);
  own.freed_bytes.add(shard.freed_bytes.load(), atomic);
  own.deallocations.add(shard.deallocations.load(), atomic);
  own.peak.raise_to(shard.peak.load(), atomic);
}

template <class Visit>
void statistics_resource::for_each_shard(Visit&& visit) const {
  visit(own_);
  shards_.for_each(visit);
}

// --- Observers -----------------------------------------------------------------------------------

statistics_stats statistics_resource::stats() const noexcept {
  statistics_stats totals;
  std::size_t freed = 0;
  std::ptrdiff_t peak = 0;
  {
    const std::lock_guard lock(shards_.mutex());
    for_each_shard([&](const detail::statistics_shard& shard) {
      for (const detail::relaxed_counter<std::size_t>& bucket : shard.allocations)
        totals.allocations += bucket.load();
      totals.deallocations += shard.deallocations.load();
      totals.total_bytes += shard.allocated_bytes.load();
      freed += shard.freed_bytes.load();
      peak = std::max(peak, shard.peak.load());
    });
  }
  // Never below 0 once the threads are quiet: each freed block was allocated through this
  // resource. A snapshot taken while they run may catch a free before its allocation.
  totals.bytes_in_use = totals.total_bytes >= freed ? totals.total_bytes - freed : 0;
  totals.peak_bytes_in_use = std::max(static_cast<std::size_t>(peak), totals.bytes_in_use);
  return totals;
}

statistics_resource::histogram_type statistics_resource::histogram() const noexcept {
  histogram_type counts{};
  const std::lock_guard lock(shards_.mutex());
  for_each_shard([&](const detail::statistics_shard& shard) {
    for (std::size_t i = 0; i < histogram_buckets; ++i)
      counts[i] += shard.allocations[i].load();
  });
  return counts;
}

void statistics_resource::choose_path() noexcept {
  if (!frames_.empty() || !observers_.empty()) {
    path_ = update_path::hooked;
  } else {
    path_ = threading_ == decorator_threading::serialized ? update_path::serialized
                                                          : update_path::concurrent;
  }
}

void statistics_resource::allocated_hooked(void* p, std::size_t bytes,
                                           std::size_t alignment) noexcept {
  count_lifetime_allocation(bytes);
  if (!frames_.empty()) frames_.back()->on_allocate(bytes, threading_);
  for (allocation_observer* observer : observers_)
    observer->on_allocate(p, bytes, alignment);
}

void statistics_resource::deallocate_hooked(void* p, std::size_t bytes, std::size_t alignment) {
  for (allocation_observer* observer : observers_)
    observer->on_deallocate(p, bytes, alignment);
  upstream_->deallocate(p, bytes, alignment);
  count_lifetime_deallocation(bytes);
  if (!frames_.empty()) frames_.back()->on_deallocate(bytes, threading_);
}

}  // namespace pmrkit
