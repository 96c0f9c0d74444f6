// thread_shards: a decorator's figures split into one shard per thread that
// uses it, each written by its own thread alone with plain loads and stores,
// so allocate and deallocate make no atomic read-modify-write.
//
// A building block of the thread-safe decorators (statistics_resource's
// counters, budget_resource's credit), over the thread registry that the
// concurrent pool and arena use (src/core/thread_registry.hpp). Each set of
// shards has an id that is never reused. The fast path finds the calling
// thread's shard in `thread_shard_cache`, a thread_local table of 8 entries
// indexed by the id (one TLS load and a compare; decorators stacked on one
// another were built one after the other, so their ids fall in different
// entries). The slow path, `of_this_thread()`, looks in the thread's registry
// or makes the shard (`Shard{}`, from the global heap) and links it into the
// set's list. When the thread exits, each of its shards is handed to the
// owner's `retire` function under the set's mutex, to fold it into the
// owner's own figures, and freed; when the owner is destroyed first, the
// set frees every shard and exiting threads leave them alone.
// `for_each` visits the shards of the threads that still run, for stats().
//
// `of_this_thread()` returns nullptr when the thread is exiting (its
// registry is gone: a deallocation from another thread_local's destructor)
// or memory for the shard is short: the owner then updates shared figures
// with read-modify-writes instead.
//
// Thread safety: the owner's thread-safe calls may use the set from any
// thread at once; a shard is written only by its thread (and by `retire`,
// on that thread, as it exits); `for_each` runs with `mutex()` held, which
// keeps shards from being linked, retired or freed meanwhile.
//
// Example:
//   struct count_shard : pmrkit::detail::thread_shard {
//     std::size_t calls = 0;  // an owner's real figures are relaxed atomics, read by for_each
//   };
//   std::size_t retired = 0;
//   const auto retire = [](void* owner, pmrkit::detail::thread_shard& shard) noexcept {
//     *static_cast<std::size_t*>(owner) += static_cast<count_shard&>(shard).calls;
//   };
//   pmrkit::detail::thread_shards<count_shard> shards(&retired, retire);
//   std::thread([&] { ++shards.of_this_thread()->calls; }).join();  // retired as it exits
//   ++shards.of_this_thread()->calls;
//   assert(shards.cached() != nullptr && shards.cached()->calls == 1 && retired == 1);
#pragma once

#include <pmr/core/attributes.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <type_traits>

namespace pmrkit::detail {

/// What every shard starts with: its links in its set's list (under the set's mutex).
struct thread_shard {
  thread_shard* next = nullptr;
  thread_shard* previous = nullptr;
};

/// A set's shard for this thread, by set id modulo the table size.
struct thread_shard_cache_entry {
  std::uint64_t owner;  // the set's id; 0: none
  thread_shard* shard;
};
inline constexpr std::size_t thread_shard_cache_entries = 8;
/// Trivial and constant-initialised: reading it is one TLS load, no wrapper call (initial-exec
/// in a shared build too: core/attributes.hpp).
PMRKIT_TLS_INITIAL_EXEC inline constinit thread_local thread_shard_cache_entry
    thread_shard_cache[thread_shard_cache_entries]{};

struct thread_shard_control;  // shared by the set and the threads' registries (source file)

/// The shards of one owner, whatever their type (thread_shards<Shard> below
/// is the typed face).
class thread_shard_list {
 public:
  /// Folds an exiting thread's shard into the owner; called on that thread,
  /// under mutex(), just before the shard is freed.
  using retire_function = void (*)(void* owner, thread_shard& shard) noexcept;
  using make_function = thread_shard* (*)() noexcept;
  using destroy_function = void (*)(thread_shard* shard) noexcept;

  /// Throws std::bad_alloc when the control block cannot be allocated.
  thread_shard_list(void* owner, retire_function retire, make_function make,
                    destroy_function destroy);
  thread_shard_list(const thread_shard_list&) = delete;
  thread_shard_list& operator=(const thread_shard_list&) = delete;
  /// close().
  ~thread_shard_list();

  /// Frees every shard; threads that still hold one forget it, and no
  /// exiting thread calls `retire` any more. An owner calls it first thing
  /// in its destructor (its figures that retire writes are still there),
  /// when no other thread calls it any more. Idempotent.
  void close() noexcept;

  [[nodiscard]] std::uint64_t id() const noexcept { return id_; }
  /// This thread's shard when the table has it, else nullptr (then of_this_thread()).
  [[nodiscard]] thread_shard* cached() const noexcept {
    const thread_shard_cache_entry& entry = thread_shard_cache[id_ % thread_shard_cache_entries];
    if (entry.owner != id_) return nullptr;
    // Entries are made with a shard: the caller's null check folds away.
    PMRKIT_ASSUME(entry.shard != nullptr);
    return entry.shard;
  }
  /// This thread's shard, found or made, and put in the table; nullptr when
  /// the thread is exiting or memory is short.
  [[nodiscard]] thread_shard* of_this_thread() noexcept;
  /// Held around for_each, and by retire.
  [[nodiscard]] std::mutex& mutex() const noexcept;
  /// Threads that hold a shard now (a relaxed snapshot).
  [[nodiscard]] std::size_t count() const noexcept {
    return count_.load(std::memory_order_relaxed);
  }

 protected:
  [[nodiscard]] const thread_shard* first() const noexcept { return first_; }  // under mutex()

 private:
  friend struct thread_shard_control;
  void retire(thread_shard* shard) noexcept;  // under mutex()

  std::uint64_t id_;
  void* owner_;
  retire_function retire_;
  make_function make_;
  destroy_function destroy_;
  std::shared_ptr<thread_shard_control> control_;
  thread_shard* first_ = nullptr;  // under mutex()
  std::atomic<std::size_t> count_{0};
};

/// The shards of one owner, each a `Shard` (derived from thread_shard,
/// value-initialised when made).
template <class Shard>
class thread_shards : public thread_shard_list {
  static_assert(std::is_base_of_v<thread_shard, Shard>);

 public:
  thread_shards(void* owner, retire_function retire)
      : thread_shard_list(owner, retire, &make, &destroy) {}

  [[nodiscard]] Shard* cached() const noexcept {
    return static_cast<Shard*>(thread_shard_list::cached());
  }
  [[nodiscard]] Shard* of_this_thread() noexcept {
    return static_cast<Shard*>(thread_shard_list::of_this_thread());
  }
  /// Calls `visit(const Shard&)` for each live thread's shard; mutex() must be held.
  template <class Visit>
  void for_each(Visit&& visit) const {
    for (const thread_shard* shard = first(); shard != nullptr; shard = shard->next)
      visit(static_cast<const Shard&>(*shard));
  }

 private:
  static thread_shard* make() noexcept { return new (std::nothrow) Shard(); }
  static void destroy(thread_shard* shard) noexcept { delete static_cast<Shard*>(shard); }
};

}  // namespace pmrkit::detail
