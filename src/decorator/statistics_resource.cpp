#include <pmr/decorator/statistics_resource.hpp>

#include <algorithm>
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
    : name_(options.name),
      upstream_(require_upstream(upstream, "pmrkit::statistics_resource")),
      threading_(options.threading) {
  choose_path();
}

statistics_resource::~statistics_resource() = default;

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

statistics_stats statistics_resource::stats() const noexcept {
  const allocation_counters counters = lifetime_.load();
  std::size_t allocations = 0;
  for (const detail::relaxed_counter<std::size_t>& bucket : histogram_)
    allocations += bucket.load();
  // The lifetime's bytes in use never fall below 0: each freed block was
  // allocated through this resource.
  return {.allocations = allocations,
          .deallocations = counters.deallocations,
          .bytes_in_use = static_cast<std::size_t>(counters.bytes_in_use),
          .peak_bytes_in_use = static_cast<std::size_t>(counters.peak_bytes_in_use),
          .total_bytes = counters.total_bytes};
}

statistics_resource::histogram_type statistics_resource::histogram() const noexcept {
  histogram_type counts{};
  for (std::size_t i = 0; i < histogram_buckets; ++i)
    counts[i] = histogram_[i].load();
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
  lifetime_.add_bytes(bytes, threading_);
  histogram_[histogram_bucket(bytes)].add(1, threading_);
  if (!frames_.empty()) frames_.back()->on_allocate(bytes, threading_);
  for (allocation_observer* observer : observers_)
    observer->on_allocate(p, bytes, alignment);
}

void statistics_resource::deallocate_hooked(void* p, std::size_t bytes, std::size_t alignment) {
  for (allocation_observer* observer : observers_)
    observer->on_deallocate(p, bytes, alignment);
  upstream_->deallocate(p, bytes, alignment);
  lifetime_.on_deallocate(bytes, threading_);
  if (!frames_.empty()) frames_.back()->on_deallocate(bytes, threading_);
}

}  // namespace pmrkit
