// lru_cache: a least-recently-used cache whose memory comes from a memory
// resource and that gives memory back when a pressure_resource says so.
//
// Entries (key, value and a charge) live in a std::pmr::list in recency order,
// indexed by a std::pmr::unordered_map over references to the keys, so each
// key is stored once. Both containers, and the keys and values themselves when
// they take a polymorphic allocator (std::pmr::string, std::pmr::vector, ...),
// allocate from the resource given at construction: nothing comes from the
// default resource. `put` inserts or replaces and makes the entry the most
// recent, `get` finds and makes it the most recent, `peek` finds without
// touching the order; `erase`, `evict(count)` and `clear` remove.
//
// Limits (`lru_cache_options`): `max_entries`, and `max_bytes` over the
// entries' charges; 0 means no limit. An entry's charge is the one given to
// `put`, else `size_of(key, value)` when that hook is set, else
// sizeof(K) + sizeof(V). A put beyond a limit evicts the least recently used
// entries; an entry whose charge alone exceeds max_bytes is evicted at once
// (put returns nullptr).
//
// Built over a `pressure_resource`, the cache subscribes to it (threshold low)
// and evicts the least recently used entries on each rise of the level: a
// quarter of them (rounded up) at low and at medium, half at high, all at
// critical and when the upstream fails. A transition that happens while the
// cache is inside one of its own operations (a put's allocation crossing a
// threshold) is not acted on in the middle of it: the eviction is deferred to
// the end of that operation (several merge into the most severe). When a put's
// allocation fails for lack of memory and an eviction is pending, the put
// evicts and tries once more before it throws. If put throws, the cache is as
// it was, apart from what pressure evicted meanwhile. Replacing swaps the new
// value into the entry (V must be swappable), so it allocates no new node.
//
// It is not a memory resource but a container that uses one, so it lives in
// <pmr/cache/>, apart from the decorators; its options have no `name`.
//
// Choose it for data that can be recomputed or reloaded (parsed files,
// decoded assets, query results) and should be the first memory to go when
// memory runs short; a plain container when nothing may be dropped.
//
// A pointer returned by `put` or `get` stays valid until the next call that
// modifies the cache or the next allocation through the pressure resource
// (which may evict).
//
// Thread safety: none. The pressure callbacks run on whichever thread
// allocates through the pressure resource, so use the cache from the thread(s)
// whose allocations can trigger it and no other, or serialize every user of
// that resource and the cache under one lock.
//
// Example:
//   pmrkit::pressure_resource pressure({.capacity = 1_MiB});
//   pmrkit::lru_cache<int, std::pmr::string> cache({.max_entries = 2}, pressure);
//   cache.put(1, "one");
//   cache.put(2, "two");
//   assert(cache.get(1) != nullptr);  // 1 is now the most recently used
//   cache.put(3, "three");            // evicts 2, the least recently used
//   assert(cache.get(2) == nullptr && *cache.get(1) == "one" && cache.size() == 2);
#pragma once

#include <pmr/core/upstream.hpp>
#include <pmr/decorator/pressure_resource.hpp>

#include <algorithm>
#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <memory_resource>
#include <new>
#include <stdexcept>
#include <unordered_map>
#include <utility>

namespace pmrkit {

template <class K, class V>
struct lru_cache_options {
  std::size_t max_entries = 0;  ///< 0: no limit on the number of entries
  std::size_t max_bytes = 0;    ///< 0: no limit on the sum of the charges
  /// The charge of an entry put without one; empty: sizeof(K) + sizeof(V).
  std::function<std::size_t(const K&, const V&)> size_of{};
};

struct lru_cache_stats {
  std::size_t entries = 0;
  std::size_t bytes = 0;  ///< the sum of the entries' charges
  std::size_t hits = 0;   ///< get calls that found their key
  std::size_t misses = 0;
  std::size_t insertions = 0;          ///< puts that stored an entry
  std::size_t evictions = 0;           ///< entries evicted for the limits or by evict()
  std::size_t pressure_evictions = 0;  ///< entries evicted for memory pressure
  std::size_t pressure_events = 0;     ///< rises of the pressure level seen
};

template <class K, class V, class Hash = std::hash<K>, class Eq = std::equal_to<K>>
class lru_cache {
 public:
  using key_type = K;
  using mapped_type = V;
  using options_type = lru_cache_options<K, V>;

  /// Allocates from `resource`, which must outlive the cache. Throws
  /// std::invalid_argument ("resource") when it is null.
  explicit lru_cache(options_type options = {},
                     std::pmr::memory_resource* resource = std::pmr::get_default_resource())
      : options_(std::move(options)),
        list_(checked(resource)),
        staging_(resource),
        index_(0, key_hash{}, key_equal{}, resource) {}
  /// Allocates from `pressure` and evicts when its level rises.
  lru_cache(options_type options, pressure_resource& pressure)
      : lru_cache(std::move(options), &pressure, pressure) {}
  /// Allocates from `resource` (for example a pool over `pressure`) and evicts
  /// when `pressure`'s level rises.
  lru_cache(options_type options, std::pmr::memory_resource* resource, pressure_resource& pressure)
      : lru_cache(std::move(options), resource) {
    subscription_ = pressure.on_pressure(
        pressure_level::low, [this](const pressure_event& event) { on_pressure(event); });
  }
  lru_cache(const lru_cache&) = delete;
  lru_cache& operator=(const lru_cache&) = delete;
  ~lru_cache() = default;  // the subscription goes first (declared last)

  // Modifiers.

  /// Stores `value` under `key` (replacing an entry for it) as the most
  /// recently used, then evicts down to the limits. Returns the stored value,
  /// or nullptr when the entry was evicted at once (its charge exceeds
  /// max_bytes, or pressure emptied the cache). Throws what the resource,
  /// the key's and value's constructors and size_of throw.
  template <class KK, class VV>
  V* put(KK&& key, VV&& value) {
    return put_entry(std::forward<KK>(key), std::forward<VV>(value), nullptr);
  }
  /// As above with an explicit charge for max_bytes.
  template <class KK, class VV>
  V* put(KK&& key, VV&& value, std::size_t charge) {
    return put_entry(std::forward<KK>(key), std::forward<VV>(value), &charge);
  }

  /// The value under `key`, now the most recently used; nullptr if absent.
  [[nodiscard]] V* get(const K& key) {
    const auto found = index_.find(std::cref(key));
    if (found == index_.end()) {
      ++stats_.misses;
      return nullptr;
    }
    ++stats_.hits;
    list_.splice(list_.begin(), list_, found->second);
    return &found->second->value;
  }
  /// The value under `key` without touching the order; nullptr if absent.
  [[nodiscard]] const V* peek(const K& key) const {
    const auto found = index_.find(std::cref(key));
    return found == index_.end() ? nullptr : &found->second->value;
  }
  [[nodiscard]] bool contains(const K& key) const { return peek(key) != nullptr; }

  /// Removes the entry under `key`; returns whether there was one.
  bool erase(const K& key) {
    const auto found = index_.find(std::cref(key));
    if (found == index_.end()) return false;
    const mutation_scope scope(*this);
    remove(found->second);
    return true;
  }
  /// Evicts up to `count` least recently used entries; returns how many.
  std::size_t evict(std::size_t count) noexcept {
    const mutation_scope scope(*this);
    const std::size_t evicted = evict_oldest(count);
    stats_.evictions += evicted;
    return evicted;
  }
  void clear() noexcept {
    const mutation_scope scope(*this);
    index_.clear();
    list_.clear();
    bytes_ = 0;
    watched_ = nullptr;
  }

  // Observers.

  [[nodiscard]] std::size_t size() const noexcept { return list_.size(); }
  [[nodiscard]] bool empty() const noexcept { return list_.empty(); }
  /// The sum of the entries' charges.
  [[nodiscard]] std::size_t bytes() const noexcept { return bytes_; }
  [[nodiscard]] std::size_t max_entries() const noexcept { return options_.max_entries; }
  [[nodiscard]] std::size_t max_bytes() const noexcept { return options_.max_bytes; }
  [[nodiscard]] lru_cache_stats stats() const noexcept {
    lru_cache_stats stats = stats_;
    stats.entries = list_.size();
    stats.bytes = bytes_;
    return stats;
  }
  /// The keys from the most to the least recently used, for tests and
  /// diagnostics (calls `visit(const K&, const V&)`).
  template <class Visit>
  void for_each(Visit&& visit) const {
    for (const entry& e : list_)
      visit(e.key, e.value);
  }
  [[nodiscard]] std::pmr::memory_resource* resource() const noexcept {
    return list_.get_allocator().resource();
  }

 private:
  struct entry {
    using allocator_type = std::pmr::polymorphic_allocator<>;
    // Uses-allocator construction of the key and the value, so pmr types
    // among them take the cache's resource.
    template <class KK, class VV>
    entry(std::allocator_arg_t, const allocator_type& allocator, KK&& k, VV&& v)
        : key(std::make_obj_using_allocator<K>(allocator, std::forward<KK>(k))),
          value(std::make_obj_using_allocator<V>(allocator, std::forward<VV>(v))) {}

    K key;
    V value;
    std::size_t charge = 0;
  };
  using entry_list = std::pmr::list<entry>;
  using entry_iterator = typename entry_list::iterator;
  using key_reference = std::reference_wrapper<const K>;
  struct key_hash {
    [[no_unique_address]] Hash hash;
    std::size_t operator()(key_reference key) const { return hash(key.get()); }
  };
  struct key_equal {
    [[no_unique_address]] Eq equal;
    bool operator()(key_reference a, key_reference b) const { return equal(a.get(), b.get()); }
  };
  using entry_index = std::pmr::unordered_map<key_reference, entry_iterator, key_hash, key_equal>;

  // Marks the cache's own operations: pressure that arrives meanwhile is
  // recorded and acted on when the outermost one ends.
  class mutation_scope {
   public:
    explicit mutation_scope(lru_cache& cache) noexcept : cache_(cache), outer_(!cache.mutating_) {
      cache_.mutating_ = true;
    }
    mutation_scope(const mutation_scope&) = delete;
    mutation_scope& operator=(const mutation_scope&) = delete;
    ~mutation_scope() {
      if (!outer_) return;
      cache_.apply_pending_in_scope();  // still marked: pressure during it is deferred, then done
      cache_.mutating_ = false;
    }

   private:
    lru_cache& cache_;
    bool outer_;
  };

  static std::pmr::memory_resource* checked(std::pmr::memory_resource* resource) {
    return require_upstream(resource, "pmrkit::lru_cache", "resource");
  }

  template <class KK, class VV>
  V* put_entry(KK&& key, VV&& value, const std::size_t* charge) {
    // Build the entry in a list of its own first. The cache's structures are
    // untouched meanwhile, so pressure arriving during these allocations
    // evicts at once, which is what frees memory when the upstream fails.
    staging_.emplace_front(std::forward<KK>(key), std::forward<VV>(value));
    struct drop_staged {
      entry_list& staging;
      ~drop_staged() { staging.clear(); }  // what did not make it into the cache
    } drop{staging_};
    entry& staged = staging_.front();
    staged.charge = charge != nullptr ? *charge : charge_of(staged.key, staged.value);

    const mutation_scope scope(*this);
    if (const auto old = index_.find(std::cref(staged.key)); old != index_.end()) {
      // Replacing: the new value moves into the indexed entry, which allocates
      // nothing; the old value leaves with the staged node.
      entry& existing = *old->second;
      using std::swap;
      swap(existing.value, staged.value);
      bytes_ = bytes_ - existing.charge + staged.charge;
      existing.charge = staged.charge;
      list_.splice(list_.begin(), list_, old->second);
      watched_ = &existing;
    } else {
      try {
        index_.emplace(std::cref(staged.key), staging_.begin());
      } catch (const std::bad_alloc&) {
        // Pressure that arrived inside the insertion was deferred; act on it
        // now (the index is intact again) and try once more.
        if (pending_ == pressure_level::none) throw;
        apply_pending_in_scope();
        index_.emplace(std::cref(staged.key), staging_.begin());
      }
      list_.splice(list_.begin(), staging_, staging_.begin());  // iterators stay valid
      bytes_ += staged.charge;
      watched_ = &staged;
    }
    ++stats_.insertions;
    stats_.evictions += evict_over_limits();
    apply_pending_in_scope();
    entry* const stored = watched_;
    watched_ = nullptr;
    return stored != nullptr ? &stored->value : nullptr;
  }

  std::size_t charge_of(const K& key, const V& value) const {
    return options_.size_of ? options_.size_of(key, value) : sizeof(K) + sizeof(V);
  }

  void remove(entry_iterator it) noexcept {
    if (&*it == watched_) watched_ = nullptr;
    bytes_ -= it->charge;
    index_.erase(std::cref(it->key));  // before the node that holds the key
    list_.erase(it);
  }

  std::size_t evict_oldest(std::size_t count) noexcept {
    std::size_t evicted = 0;
    for (; evicted < count && !list_.empty(); ++evicted)
      remove(std::prev(list_.end()));
    return evicted;
  }

  std::size_t evict_over_limits() noexcept {
    std::size_t evicted = 0;
    while (!list_.empty() && ((options_.max_entries != 0 && list_.size() > options_.max_entries) ||
                              (options_.max_bytes != 0 && bytes_ > options_.max_bytes))) {
      remove(std::prev(list_.end()));
      ++evicted;
    }
    return evicted;
  }

  /// How many entries a rise to `level` evicts out of `count`.
  static std::size_t eviction_count(pressure_level level, std::size_t count) noexcept {
    switch (level) {
      case pressure_level::none:
        return 0;
      case pressure_level::low:
      case pressure_level::medium:
        return (count + 3) / 4;
      case pressure_level::high:
        return (count + 1) / 2;
      case pressure_level::critical:
        return count;
    }
    return 0;
  }

  void on_pressure(const pressure_event& event) noexcept {
    if (event.level == pressure_level::none) return;
    ++stats_.pressure_events;
    pending_ = std::max(pending_, event.level);
    if (mutating_) return;              // inside one of the cache's operations: when it ends
    const mutation_scope scope(*this);  // evicts when it ends
  }

  // Evicts for the pending pressure; the caller is inside a mutation scope,
  // between operations on the containers.
  void apply_pending_in_scope() noexcept {
    while (pending_ != pressure_level::none) {
      const pressure_level level = pending_;
      pending_ = pressure_level::none;
      stats_.pressure_evictions += evict_oldest(eviction_count(level, list_.size()));
    }
  }

  options_type options_;
  entry_list list_;     // most recently used first
  entry_list staging_;  // a put's entry until it is indexed
  entry_index index_;
  std::size_t bytes_ = 0;
  lru_cache_stats stats_;
  bool mutating_ = false;
  pressure_level pending_ = pressure_level::none;
  entry* watched_ = nullptr;  // the entry a put is about to return, until evicted
  pressure_subscription subscription_;
};

}  // namespace pmrkit
