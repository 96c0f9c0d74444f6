#include <pmr/decorator/pressure_resource.hpp>

#include <pmr/core/error.hpp>
#include <pmr/core/log.hpp>
#include <pmr/core/options.hpp>
#include <pmr/core/upstream.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <new>
#include <span>
#include <stdexcept>
#include <thread>
#include <utility>

namespace pmrkit {

namespace detail {

struct pressure_subscriber {
  std::uint64_t id = 0;
  pressure_level threshold = pressure_level::low;
  pressure_callback callback;
  std::atomic<pressure_resource*> owner{nullptr};
  std::atomic<bool> active{true};
  std::atomic<int> running{0};  // calls in progress, on any thread
};

/// A transition to announce: subscribers whose threshold is at most `reach`
/// are called with `event`.
struct pressure_notice {
  pressure_event event;
  pressure_level reach = pressure_level::none;
};

}  // namespace detail

namespace {

using detail::pressure_notice;
using detail::pressure_subscriber;

/// One delivery in progress on this thread: the resource whose subscribers
/// are being called, the one being called now, and the transitions its
/// callbacks caused on this thread, delivered after it returns.
struct delivery_frame {
  static constexpr std::size_t max_pending = 16;

  const pressure_resource* owner = nullptr;
  const pressure_subscriber* current = nullptr;
  delivery_frame* outer = nullptr;
  std::array<pressure_notice, max_pending> pending{};
  std::size_t pending_count = 0;

  void push(const pressure_notice& notice) noexcept {
    // A burst beyond the queue keeps the latest state: the newest overwrites the last.
    if (pending_count == max_pending) --pending_count;
    pending[pending_count++] = notice;
  }
  pressure_notice pop() noexcept {
    const pressure_notice first = pending[0];
    std::move(pending.begin() + 1, pending.begin() + static_cast<std::ptrdiff_t>(pending_count),
              pending.begin());
    --pending_count;
    return first;
  }
};

// The deliveries this thread is in, innermost first.
thread_local delivery_frame* innermost_frame = nullptr;

delivery_frame* frame_of(const pressure_resource* owner) noexcept {
  for (delivery_frame* frame = innermost_frame; frame != nullptr; frame = frame->outer) {
    if (frame->owner == owner) return frame;
  }
  return nullptr;
}

bool running_on_this_thread(const pressure_subscriber* subscriber) noexcept {
  for (delivery_frame* frame = innermost_frame; frame != nullptr; frame = frame->outer) {
    if (frame->current == subscriber) return true;
  }
  return false;
}

void log_quietly(log_level level, const std::string& message) noexcept {
  try {
    log(level, message);
  } catch (...) {  // logging must not break a noexcept path
  }
}

[[noreturn]] void invalid(std::string_view field, std::string_view rule) {
  throw_invalid_option("pressure_resource", field, rule);
}

std::array<double, 4> checked_percents(const pressure_options& options) {
  const std::array<double, 4> percents{options.low_percent, options.medium_percent,
                                       options.high_percent, options.critical_percent};
  constexpr std::array<std::string_view, 4> fields{"low_percent", "medium_percent", "high_percent",
                                                   "critical_percent"};
  double previous = 0;
  for (std::size_t i = 0; i < percents.size(); ++i) {
    // Written so that NaN fails too.
    if (!(percents[i] > previous && percents[i] <= 100)) {
      invalid(fields[i], i == 0 ? "must be in (0, 100]"
                                : "must be in (0, 100] and greater than the threshold below it");
    }
    previous = percents[i];
  }
  return percents;
}

std::size_t checked_capacity(const pressure_options& options) {
  if (options.source == pressure_source::own_usage && options.capacity == 0) {
    invalid("capacity", "must be greater than 0 when the level comes from own usage");
  }
  return options.capacity;
}

/// ceil(capacity * percent / 100) for each threshold, saturated. A result
/// within rounding error of a whole number is that number: 99.9 is not exact
/// as a double, yet 99.9 % of 1000 bytes is 999, not 1000.
std::array<std::size_t, 4> bounds_for(std::size_t capacity,
                                      const std::array<double, 4>& percents) noexcept {
  std::array<std::size_t, 4> bounds{};
  constexpr auto max = static_cast<long double>(std::numeric_limits<std::size_t>::max());
  for (std::size_t i = 0; i < bounds.size(); ++i) {
    const long double exact =
        static_cast<long double>(capacity) * static_cast<long double>(percents[i]) / 100.0L;
    const long double nearest = std::round(exact);
    const long double bound =
        std::fabs(exact - nearest) <= exact * 1e-12L ? nearest : std::ceil(exact);
    bounds[i] =
        bound >= max ? std::numeric_limits<std::size_t>::max() : static_cast<std::size_t>(bound);
  }
  return bounds;
}

// --- Reading the system's figures ------------------------------------------------------------

/// Reads up to sizeof buffer - 1 bytes of `path`; empty when it cannot be read.
std::string_view read_small_file(const std::string& path, std::span<char> buffer) noexcept {
  std::FILE* file = std::fopen(path.c_str(), "r");
  if (file == nullptr) return {};
  const std::size_t length = std::fread(buffer.data(), 1, buffer.size() - 1, file);
  std::fclose(file);
  return {buffer.data(), length};
}

std::string_view trimmed(std::string_view text) noexcept {
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!text.empty() && space(text.front()))
    text.remove_prefix(1);
  while (!text.empty() && space(text.back()))
    text.remove_suffix(1);
  return text;
}

std::optional<std::size_t> parse_number(std::string_view text) noexcept {
  text = trimmed(text);
  std::size_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end == text.data()) return std::nullopt;
  return value;
}

/// The number of kB after "<key>:" in /proc/meminfo, in bytes.
std::optional<std::size_t> meminfo_bytes(std::string_view meminfo, std::string_view key) noexcept {
  while (!meminfo.empty()) {
    const std::size_t end = meminfo.find('\n');
    const std::string_view line = meminfo.substr(0, end);
    meminfo = end == std::string_view::npos ? std::string_view{} : meminfo.substr(end + 1);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == ':') {
      std::string_view rest = trimmed(line.substr(key.size() + 1));
      rest = rest.substr(0, rest.find(' '));
      const std::optional<std::size_t> kilobytes = parse_number(rest);
      if (!kilobytes || *kilobytes > std::numeric_limits<std::size_t>::max() / 1024) break;
      return *kilobytes * 1024;
    }
  }
  return std::nullopt;
}

}  // namespace

std::string_view to_string(pressure_level level) noexcept {
  switch (level) {
    case pressure_level::none:
      return "none";
    case pressure_level::low:
      return "low";
    case pressure_level::medium:
      return "medium";
    case pressure_level::high:
      return "high";
    case pressure_level::critical:
      return "critical";
  }
  return "unknown";
}

std::optional<system_memory> read_system_memory(std::string_view root) {
  std::string base(root);
  while (!base.empty() && base.back() == '/')
    base.pop_back();
  char buffer[8192];

  // cgroup v2, when this cgroup has a limit ("max" means none).
  const std::optional<std::size_t> current =
      parse_number(read_small_file(base + "/sys/fs/cgroup/memory.current", buffer));
  if (current) {
    const std::optional<std::size_t> max =
        parse_number(read_small_file(base + "/sys/fs/cgroup/memory.max", buffer));
    if (max && *max != 0) return system_memory{*current, *max, "cgroup v2"};
  }

  const std::string_view meminfo = read_small_file(base + "/proc/meminfo", buffer);
  const std::optional<std::size_t> total = meminfo_bytes(meminfo, "MemTotal");
  const std::optional<std::size_t> available = meminfo_bytes(meminfo, "MemAvailable");
  if (!total || !available || *total == 0) return std::nullopt;
  return system_memory{*total - std::min(*available, *total), *total, "/proc/meminfo"};
}

// --- Subscriptions -------------------------------------------------------------------------------

pressure_subscription& pressure_subscription::operator=(pressure_subscription&& other) noexcept {
  if (this != &other) {
    unsubscribe();
    subscriber_ = std::move(other.subscriber_);
  }
  return *this;
}

void pressure_subscription::unsubscribe() noexcept {
  if (!subscriber_) return;
  if (pressure_resource* owner = subscriber_->owner.exchange(nullptr)) {
    owner->unsubscribe(*subscriber_);
  }
  subscriber_.reset();
}

bool pressure_subscription::active() const noexcept {
  return subscriber_ && subscriber_->owner.load() != nullptr;
}

// --- The resource --------------------------------------------------------------------------------

pressure_resource::pressure_resource(pressure_options options, std::pmr::memory_resource* upstream)
    : name_(options.name),
      upstream_(require_upstream(upstream, "pmrkit::pressure_resource")),
      source_(options.source),
      capacity_(checked_capacity(options)),
      percents_(checked_percents(options)),
      bounds_(bounds_for(capacity_, percents_)),
      reserve_bytes_(options.emergency_reserve),
      system_root_(options.system_root),
      system_sample_bytes_(options.system_sample_bytes) {
  if (source_ == pressure_source::own_usage) {
    measured_from_ = "own usage";
  } else {
    // The first reading sets the level; there is no one to tell yet.
    if (const std::optional<system_memory> figures = read_system_memory(system_root_)) {
      measured_bytes_ = figures->bytes_in_use;
      measured_capacity_ = figures->capacity;
      measured_from_ = figures->from;
      system_level_ = level_for(measured_bytes_, bounds_for(measured_capacity_, percents_));
    } else {
      measured_from_ = "unavailable";
      log(log_level::warning, "pressure_resource '" + name_ +
                                  "': no cgroup v2 memory.max or /proc/meminfo under '" +
                                  system_root_ + "'; the level stays none");
    }
    level_.store(system_level_);
    peak_since_none_ = system_level_;
  }
  if (reserve_bytes_ != 0) {
    reserve_.store(
        allocate_from_upstream(upstream_, reserve_bytes_, alignof(std::max_align_t), name_));
  }
}

pressure_resource::~pressure_resource() {
  release_reserve();
  const std::lock_guard lock(subscribers_mutex_);
  for (const std::shared_ptr<pressure_subscriber>& subscriber : subscribers_) {
    subscriber->owner.store(nullptr);
    subscriber->active.store(false);
  }
  subscribers_.clear();
}

pressure_subscription pressure_resource::on_pressure(pressure_level threshold,
                                                     pressure_callback callback) {
  if (threshold == pressure_level::none || threshold > pressure_level::critical) {
    invalid("threshold", "must be low, medium, high or critical");
  }
  if (!callback) invalid("callback", "must not be empty");
  auto subscriber = std::make_shared<pressure_subscriber>();
  subscriber->threshold = threshold;
  subscriber->callback = std::move(callback);
  subscriber->owner.store(this);
  const std::lock_guard lock(subscribers_mutex_);
  subscriber->id = next_id_++;
  subscribers_.push_back(subscriber);  // ids increase: the list stays ordered
  return pressure_subscription(std::move(subscriber));
}

void pressure_resource::unsubscribe(pressure_subscriber& subscriber) noexcept {
  subscriber.active.store(false);
  {
    const std::lock_guard lock(subscribers_mutex_);
    const auto found = std::lower_bound(
        subscribers_.begin(), subscribers_.end(), subscriber.id,
        [](const std::shared_ptr<pressure_subscriber>& s, std::uint64_t id) { return s->id < id; });
    if (found != subscribers_.end() && (*found)->id == subscriber.id) subscribers_.erase(found);
  }
  // No new call can start (it is out of the list); wait for those on other
  // threads. A callback unsubscribing itself does not wait for itself.
  const int own = running_on_this_thread(&subscriber) ? 1 : 0;
  while (subscriber.running.load() > own)
    std::this_thread::yield();
}

std::size_t pressure_resource::call_subscribers(const pressure_notice& notice) noexcept {
  delivery_frame* frame = innermost_frame;  // this resource's, pushed by deliver()
  std::size_t called = 0;
  std::uint64_t last_id = 0;
  for (;;) {
    // One subscriber at a time, by increasing id, so callbacks may subscribe
    // and unsubscribe while the list is walked, and nothing is copied.
    std::shared_ptr<pressure_subscriber> subscriber;
    {
      const std::lock_guard lock(subscribers_mutex_);
      auto next =
          std::upper_bound(subscribers_.begin(), subscribers_.end(), last_id,
                           [](std::uint64_t id, const std::shared_ptr<pressure_subscriber>& s) {
                             return id < s->id;
                           });
      while (next != subscribers_.end() && (*next)->threshold > notice.reach)
        ++next;
      if (next == subscribers_.end()) break;
      subscriber = *next;
      last_id = subscriber->id;
      subscriber->running.fetch_add(1);
    }
    if (subscriber->active.load()) {
      frame->current = subscriber.get();
      try {
        subscriber->callback(notice.event);
      } catch (const std::exception& e) {
        log_quietly(log_level::error, "pressure_resource '" + name_ +
                                          "': a pressure callback threw (dropped): " + e.what());
      } catch (...) {
        log_quietly(log_level::error,
                    "pressure_resource '" + name_ + "': a pressure callback threw (dropped)");
      }
      frame->current = nullptr;
      ++called;
    }
    subscriber->running.fetch_sub(1);
  }
  return called;
}

std::size_t pressure_resource::deliver(const pressure_notice& notice) noexcept {
  if (delivery_frame* frame = frame_of(this)) {
    frame->push(notice);  // caused by a callback on this thread: after it returns
    return 0;
  }
  delivery_frame frame;
  frame.owner = this;
  frame.outer = innermost_frame;
  innermost_frame = &frame;
  const std::size_t called = call_subscribers(notice);
  while (frame.pending_count != 0)
    call_subscribers(frame.pop());
  innermost_frame = frame.outer;
  return called;
}

void pressure_resource::update_level(std::size_t requested) noexcept {
  // A transition is decided under the lock from the latest figures, and the
  // figures are read again after each store, so that a concurrent change that
  // saw the old level is not lost. The notices go out after the lock is
  // released; a burst of more than fit is delivered and the loop goes on.
  constexpr std::size_t max_notices = 4;
  for (bool settled = false; !settled;) {
    std::array<pressure_notice, max_notices> notices{};
    std::size_t count = 0;
    {
      const std::lock_guard lock(state_mutex_);
      while (count < max_notices) {
        std::size_t used = 0;
        std::size_t capacity = 0;
        pressure_level target = pressure_level::none;
        if (source_ == pressure_source::own_usage) {
          used = in_use_.load();
          capacity = capacity_;
          target = level_for(used, bounds_);
        } else {
          used = measured_bytes_;
          capacity = measured_capacity_;
          target = system_level_;
        }
        const pressure_level current = level_.load();
        if (target == current) {
          settled = true;
          break;
        }
        level_.store(target);
        transitions_.fetch_add(1, std::memory_order_relaxed);
        const pressure_event event{target, current, used, capacity, requested, false};
        if (target > current) {
          peak_since_none_ = std::max(peak_since_none_, target);
          notices[count++] = {event, target};
        } else if (target == pressure_level::none) {
          notices[count++] = {event, peak_since_none_};
          peak_since_none_ = pressure_level::none;
        }
      }
    }
    for (std::size_t i = 0; i < count; ++i)
      deliver(notices[i]);
  }
}

void pressure_resource::sample_system(std::size_t requested, bool forced) noexcept {
  // One reader per interval: the thread that takes the traffic reads.
  if (forced) {
    traffic_.store(0, std::memory_order_relaxed);
  } else if (traffic_.exchange(0, std::memory_order_relaxed) < system_sample_bytes_) {
    return;
  }
  std::optional<system_memory> figures;
  try {
    figures = read_system_memory(system_root_);
  } catch (...) {  // out of memory building a path: keep the last figures
    return;
  }
  {
    const std::lock_guard lock(state_mutex_);
    if (figures) {
      measured_bytes_ = figures->bytes_in_use;
      measured_capacity_ = figures->capacity;
      measured_from_ = figures->from;
      system_level_ = level_for(measured_bytes_, bounds_for(measured_capacity_, percents_));
    } else {
      measured_bytes_ = 0;
      measured_capacity_ = 0;
      measured_from_ = "unavailable";
      system_level_ = pressure_level::none;
    }
  }
  update_level(requested);
}

pressure_level pressure_resource::refresh() noexcept {
  if (source_ == pressure_source::system) {
    sample_system(0, true);
  } else {
    update_level(0);
  }
  return level();
}

void* pressure_resource::allocate_after_failure(std::size_t bytes, std::size_t alignment) {
  // Called inside the handler of the upstream's std::bad_alloc.
  upstream_failures_.fetch_add(1, std::memory_order_relaxed);
  std::size_t called = 0;
  // A callback's own failing allocation does not call the callbacks again.
  if (frame_of(this) == nullptr) {
    pressure_event event{pressure_level::critical, level(), 0, 0, bytes, true};
    if (source_ == pressure_source::own_usage) {
      event.bytes_in_use = in_use_.load();
      event.capacity = capacity_;
    } else {
      const std::lock_guard lock(state_mutex_);
      event.bytes_in_use = measured_bytes_;
      event.capacity = measured_capacity_;
    }
    called = deliver({event, pressure_level::critical});
  }
  const bool released = release_reserve();
  if (called == 0 && !released) {
    // Nothing changed since the upstream said no: its error, in pmrkit's terms.
    failures_.fetch_add(1, std::memory_order_relaxed);
    rethrow_upstream_failure(name_, bytes, alignment);
  }
  retries_.fetch_add(1, std::memory_order_relaxed);
  try {
    return allocate_from_upstream(upstream_, bytes, alignment, name_);
  } catch (...) {
    upstream_failures_.fetch_add(1, std::memory_order_relaxed);
    failures_.fetch_add(1, std::memory_order_relaxed);
    throw;
  }
}

// --- The emergency reserve -----------------------------------------------------------------------

bool pressure_resource::release_reserve() noexcept {
  void* reserve = reserve_.exchange(nullptr);
  if (reserve == nullptr) return false;
  freed_since_release_.store(0);
  upstream_->deallocate(reserve, reserve_bytes_, alignof(std::max_align_t));
  reserve_releases_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void pressure_resource::note_freed_while_disarmed(std::size_t bytes) noexcept {
  if (freed_since_release_.fetch_add(bytes) + bytes < reserve_bytes_) return;
  if (level() >= pressure_level::high) return;
  try_rearm();
}

bool pressure_resource::rearm() noexcept {
  return try_rearm();
}

bool pressure_resource::try_rearm() noexcept {
  if (reserve_bytes_ == 0) return false;
  if (reserve_.load() != nullptr) return true;
  if (rearming_.exchange(true)) return false;  // another thread is on it
  // A failed attempt waits for another reserve's worth of frees.
  freed_since_release_.store(0);
  bool armed = false;
  try {
    void* reserve = upstream_->allocate(reserve_bytes_, alignof(std::max_align_t));
    reserve_.store(reserve);
    rearms_.fetch_add(1, std::memory_order_relaxed);
    armed = true;
  } catch (...) {  // still disarmed; tried again after more frees
  }
  rearming_.store(false);
  return armed;
}

// --- Observers -----------------------------------------------------------------------------------

std::size_t pressure_resource::threshold_bytes(pressure_level level) const noexcept {
  if (level == pressure_level::none) return 0;
  const auto index = static_cast<std::size_t>(level) - 1;
  if (source_ == pressure_source::own_usage) return bounds_[index];
  const std::lock_guard lock(state_mutex_);
  return bounds_for(measured_capacity_, percents_)[index];
}

pressure_stats pressure_resource::stats() const noexcept {
  pressure_stats stats;
  stats.bytes_in_use = in_use_.load(std::memory_order_relaxed);
  stats.peak_bytes_in_use = peak_.load();
  stats.level = level();
  stats.transitions = transitions_.load(std::memory_order_relaxed);
  stats.upstream_failures = upstream_failures_.load(std::memory_order_relaxed);
  stats.retries = retries_.load(std::memory_order_relaxed);
  stats.failures = failures_.load(std::memory_order_relaxed);
  stats.reserve_armed = reserve_.load() != nullptr;
  stats.reserve_releases = reserve_releases_.load(std::memory_order_relaxed);
  stats.rearms = rearms_.load(std::memory_order_relaxed);
  if (source_ == pressure_source::own_usage) {
    stats.measured_bytes = stats.bytes_in_use;
    stats.measured_capacity = capacity_;
    stats.measured_from = measured_from_;
  } else {
    const std::lock_guard lock(state_mutex_);
    stats.measured_bytes = measured_bytes_;
    stats.measured_capacity = measured_capacity_;
    stats.measured_from = measured_from_;
  }
  return stats;
}

}  // namespace pmrkit
