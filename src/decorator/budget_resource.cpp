#include <pmr/decorator/budget_resource.hpp>

#include <pmr/core/error.hpp>

#include <algorithm>
#include <limits>
#include <mutex>

namespace pmrkit {

namespace {

constexpr auto atomic = decorator_threading::concurrent;

// The most a thread takes beyond a request, whatever the limit.
constexpr std::size_t max_batch = std::size_t{64} << 10;

}  // namespace

budget_resource::budget_resource(budget_options options, std::pmr::memory_resource* upstream)
    : upstream_(require_upstream(upstream, "pmrkit::budget_resource")),
      threading_(options.threading),
      limit_(options.limit),
      credits_(this, &retire_credit),
      name_(options.name) {}

budget_resource::~budget_resource() {
  // First: no exiting thread gives its credit back into reserved_ from here on.
  credits_.close();
}

// --- Credit --------------------------------------------------------------------------------------

std::size_t budget_resource::batch_for(std::size_t limit) const noexcept {
  const std::size_t threads = std::max<std::size_t>(credits_.count(), 1);
  return std::min(max_batch, limit / 16 / threads);
}

void* budget_resource::allocate_slow(std::size_t bytes, std::size_t alignment) {
  detail::budget_shard* shard = credits_.of_this_thread();
  if (shard == nullptr) [[unlikely]] {
    return allocate_reserving<atomic>(bytes, alignment);
  }
  take_credit(*shard, bytes, alignment);
  return allocate_on_credit(*shard, shard->credit.load(), bytes, alignment);
}

void budget_resource::take_credit(detail::budget_shard& shard, std::size_t bytes,
                                  std::size_t alignment) {
  // Acquire: a new epoch comes with its limit.
  const std::uint64_t epoch = epoch_.load(std::memory_order_acquire);
  const bool valid = shard.epoch == epoch;
  if (!valid) {
    // Taken under another limit: it goes back before the request is judged against this one.
    return_credit(shard, shard.credit.load());
  }
  const std::size_t credit = shard.credit.load();
  if (valid && bytes <= credit) return;  // the thread's table did not have the shard
  const std::size_t limit = limit_.load();
  const std::size_t need = bytes - credit;
  const std::size_t batch = batch_for(limit);
  std::size_t taken = 0;
  if (need <= limit && batch <= limit - need && reserved_.add_within(need + batch, limit, atomic)) {
    taken = need + batch;
  } else if (reserved_.add_within(need, limit, atomic)) {
    taken = need;  // what is left fits the request, not a batch beyond it
  } else {
    shard.epoch = valid ? epoch : 0;
    // What the request could have had: the limit less everything reserved, but for its credit.
    const std::size_t reserved = reserved_.load();
    refuse(bytes, alignment, (reserved < limit ? limit - reserved : 0) + credit);
  }
  // Reserved within this epoch's limit: the credit may serve requests until the next set_limit().
  shard.credit.store(credit + taken);
  shard.batch = batch;
  shard.most_kept = 2 * batch;
  shard.epoch = epoch;
}

void budget_resource::deallocate_slow(std::size_t bytes) noexcept {
  detail::budget_shard* shard = credits_.of_this_thread();
  if (shard == nullptr) [[unlikely]] {
    reserved_.subtract_saturating(bytes, atomic);
    return;
  }
  if (shard->most_kept == 0) {
    // A thread that frees before it allocates keeps credit too (unused until a request of its
    // checks it against the limit).
    shard->batch = batch_for(limit_.load());
    shard->most_kept = 2 * shard->batch;
  }
  give_back_credit(*shard, bytes);
}

void budget_resource::give_back_credit(detail::budget_shard& shard, std::size_t bytes) noexcept {
  const std::size_t credit = shard.credit.load();
  if (credit <= shard.most_kept && bytes <= shard.most_kept - credit) {
    shard.credit.store(credit + bytes);
    return;
  }
  // More than two batches unused: one stays, the rest goes back.
  const std::size_t batch = shard.batch;
  std::size_t returned = 0;
  if (credit >= batch) {
    const std::size_t excess = credit - batch;
    returned = bytes <= std::numeric_limits<std::size_t>::max() - excess
                   ? excess + bytes
                   : std::numeric_limits<std::size_t>::max();  // a misused size
  } else {
    returned = bytes - (batch - credit);  // bytes > most_kept - credit >= batch - credit
  }
  shard.credit.store(batch);
  reserved_.subtract_saturating(returned, atomic);
}

void budget_resource::return_credit(detail::budget_shard& shard, std::size_t bytes) noexcept {
  if (bytes == 0) return;
  shard.credit.store(shard.credit.load() - bytes);
  reserved_.subtract_saturating(bytes, atomic);
}

void budget_resource::retire_credit(void* self, detail::thread_shard& retired) noexcept {
  auto& budget = *static_cast<budget_resource*>(self);
  auto& shard = static_cast<detail::budget_shard&>(retired);
  budget.reserved_.subtract_saturating(shard.credit.load(), atomic);
  budget.peak_.raise_to(shard.peak.load(), atomic);
}

// --- Refusals and observers ----------------------------------------------------------------------

void budget_resource::refuse(std::size_t bytes, std::size_t alignment, std::size_t remaining) {
  rejections_.add(1, threading_);
  throw budget_exceeded(bytes, alignment, name_, limit(), remaining);
}

budget_stats budget_resource::stats() const noexcept {
  std::size_t credit = 0;
  std::size_t peak = 0;
  std::size_t reserved = 0;
  {
    const std::lock_guard lock(credits_.mutex());
    credits_.for_each([&](const detail::budget_shard& shard) {
      credit += shard.credit.load();
      peak = std::max(peak, shard.peak.load());
    });
    reserved = reserved_.load();
    peak = std::max(peak, peak_.load());
  }
  // Misuse (a free larger than its block) aside, what is reserved holds every credit; a
  // snapshot taken while threads move bytes between the two may not.
  const std::size_t in_use = reserved > credit ? reserved - credit : 0;
  return {.bytes_in_use = in_use,
          .peak_bytes_in_use = std::max(peak, in_use),
          .limit = limit_.load(),
          .rejections = rejections_.load()};
}

std::size_t budget_resource::remaining() const noexcept {
  const budget_stats now = stats();
  return now.bytes_in_use < now.limit ? now.limit - now.bytes_in_use : 0;
}

}  // namespace pmrkit
