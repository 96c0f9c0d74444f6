// shm_resource: a memory resource that allocates inside a shared memory
// segment, so that every process mapping the segment can allocate, and free
// what any other allocated; with offset and full pointers, typed objects and
// named objects.
//
// All of its state lives in the segment's allocator area as offsets from the
// segment's start (no raw pointer anywhere in the segment): a process-shared,
// robust lock; per size class (pool/detail/size_classes.hpp: 16 B steps to
// 128, then four per doubling, up to 8 KiB) a free list of blocks carved from
// 64 KiB runs; a buddy allocator over the rest (buddy/detail/buddy_tree.hpp,
// the same building block as buddy_resource, its words in the segment) that
// serves the runs and every request above 8 KiB in power-of-two multiples of
// 4 KiB; the named-object table; and the per-thread caches.
//
// The common path takes no lock: each thread that uses the resource claims
// one of the segment's 64 cache slots and keeps up to `cache_limit` small
// blocks of each class there (and no more than a 64 KiB run's worth); an
// allocation pops from its own slot, a free pushes to it, and only a refill
// or an overflow (half a slot's class at a time) takes the lock. The slots
// live in the segment, so `stats()` sees the blocks they hold in every
// process. A slot goes back to the segment, its blocks to the free lists,
// when its thread exits and when this object is destroyed. A process that
// dies without that (killed, _exit) leaves its slots' blocks cached until
// another process sees the slot's owner gone (its pid, and its start time
// against pid reuse): when a thread finds no free slot, on
// reclaim_dead_caches(), and in a repair. A thread beyond the 64th goes
// through the lock.
//
// Contract (docs/contract.md): a request the segment has no room for is an
// `allocation_error` (out_of_capacity) naming the segment; alignments above
// 4096 (the page) are `bad_alignment` (a mapping is only page-aligned, so a
// larger alignment could not hold in every process). In checked builds a
// pointer outside the allocator's area or not at a block's start is a
// `foreign_pointer` violation, a block already free a `double_free`, a size
// that names another class or block size a `size_mismatch`; one bit per 16 B
// of the area records the blocks in use. `verify()` walks every block: the
// buddy's trees, every run, every free list and every cache slot, and checks
// that free, cached, in-use and metadata bytes add up to the area.
//
// Departures (documented in docs/contract.md): there is no upstream (the
// segment is the memory: `bytes_from_upstream` is not reported); two
// shm_resource objects over the same mapping compare equal, since either
// frees what the other allocated.
//
// A process killed at any moment leaves the allocator whole (where
// Boost.Interprocess leaves its segment locked for good). The lock is a
// robust mutex (PMRKIT_SHM_ROBUST; where the platform has none, a lock
// owner's death leaves every other process waiting, and the build warns).
// Every locked step first records, in an undo journal in the segment, each
// word it will change; the next process to lock after the owner died
// (EOWNERDEAD) undoes the step in flight, frees the blocks of a named object
// whose constructor never returned, takes back the caches of dead processes,
// rebuilds the buddy and the counters from the page map and the free lists,
// checks the result as verify() does, marks the mutex consistent and goes on
// (`stats().repairs` counts it). No free block is lost or handed out twice.
// Blocks the dead process held, and one it was in the middle of allocating
// or freeing, are its user's: they stay in use until someone frees them. A
// state beyond repair marks the segment corrupted (shm_error).
//
// std::pmr containers in a segment need it at one address in every process:
// map it with `fixed_address` and use `at_fixed_address(segment)`, this
// process's resource at an address every process agrees on. Boost.Container's
// containers with `shm_allocator<T>` (offset pointers) work at any address.
//
// Construction: `shm_resource r;`, `r(options)`, `r({})` own a new anonymous
// segment of `options.segment_size` bytes (shared with children forked after
// construction); `r(segment)` and `r(segment, options)` use a segment the caller
// keeps alive; `r(std::move(segment), options)` takes it over.
//
// Choose it for memory several processes share: message buffers passed by
// offset, containers of plain data found by name. For one process use
// multipool_resource (the bench's shm rows show what sharing costs).
//
// Thread safety: every member may be called from any thread of any process
// mapping the segment, at once.
//
// Example:
//   pmrkit::shm_resource shm({.segment_size = 1 << 20});
//   pmrkit::full_ptr<int> numbers = shm.new_objects<int>(100, 7);
//   assert(numbers.get()[99] == 7);
//   pmrkit::shm_offset message = numbers.offset();  // what another process receives
//   assert(shm.at<int>(message).get() == numbers.get());
//   shm.delete_objects(numbers, 100);
//   auto& counter = shm.find_or_construct<long>("counter", 0L);
//   ++counter;
//   assert(*shm.find<long>("counter") == 1);
//   assert(shm.verify().empty() && shm.stats().named_objects == 1);
#pragma once

#include <pmr/core/config.hpp>
#include <pmr/core/error.hpp>
#include <pmr/shm/full_ptr.hpp>
#include <pmr/shm/shm_error.hpp>
#include <pmr/shm/shm_segment.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory_resource>
#include <mutex>
#include <new>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace pmrkit {

struct shm_resource_options {
  /// The size of the anonymous segment the resource creates when given none.
  std::size_t segment_size = std::size_t{64} << 20;
  /// Small blocks a thread's cache keeps per class, at most (0: no caches,
  /// every call takes the lock). Above 1024 is invalid.
  std::size_t cache_limit = 64;
};

/// The figures of a shm_resource (over every process using the segment).
struct shm_stats {
  std::size_t bytes_in_use = 0;   ///< blocks held by callers, at their class or block size
  std::size_t blocks_in_use = 0;  ///< blocks held by callers
  /// The most bytes_in_use has been, blocks in thread caches counted as in use.
  std::size_t peak_bytes_in_use = 0;
  std::size_t capacity = 0;             ///< bytes the allocator's area can hand out
  std::size_t bytes_free = 0;           ///< free in the buddy, the class lists and unused run ends
  std::size_t bytes_cached = 0;         ///< free blocks held in threads' caches
  std::size_t largest_free_block = 0;   ///< the largest block the buddy can hand out now
  std::size_t small_run_bytes = 0;      ///< bytes in runs of small blocks
  std::size_t large_blocks_in_use = 0;  ///< blocks above the small classes (from the buddy)
  std::size_t large_bytes_in_use = 0;   ///< their sizes as block sizes
  std::size_t cache_slots_in_use = 0;   ///< threads holding a cache slot, all processes
  std::size_t named_objects = 0;
  std::size_t repairs = 0;  ///< times a process found the lock's owner dead and repaired the state
};

/// A named object as the table records it.
struct shm_object_info {
  std::string name;
  shm_offset offset;
  std::size_t count = 0;      ///< elements
  std::size_t size = 0;       ///< sizeof one element
  std::size_t alignment = 0;  ///< alignof one element
  std::uint64_t type_tag = 0;
};

namespace detail {
// FNV-1a: the shared-memory family's one hash of names (named objects' buckets, type tags,
// fixed segments' address hints), the same in every process.
constexpr std::uint64_t fnv1a(std::string_view text) noexcept {
  std::uint64_t hash = 0xcbf29ce484222325ULL;
  for (const char c : text)
    hash = (hash ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  return hash;
}
// The compiler's spelling of T, hashed: equal in every process built by the same compiler.
template <class T>
constexpr std::uint64_t type_name_hash() noexcept {
  return fnv1a(__PRETTY_FUNCTION__);
}
}  // namespace detail

/// The tag a named object of type T is stored with and checked against:
/// by default a hash of the type's name as the compiler spells it. Programs
/// built by different compilers that share named objects specialise it.
template <class T>
struct shm_type_tag {
  static constexpr std::uint64_t value = detail::type_name_hash<std::remove_cv_t<T>>();
};

class shm_resource final : public std::pmr::memory_resource {
 public:
  /// Owns a new anonymous segment of options.segment_size bytes. Throws
  /// std::invalid_argument naming the field for bad options.
  explicit shm_resource(shm_resource_options options);
  shm_resource() : shm_resource(shm_resource_options{}) {}
  /// Allocates in `segment` (formatted by shm_segment), which must outlive it.
  explicit shm_resource(shm_segment& segment, shm_resource_options options = {});
  /// This process's resource for a segment mapped with fixed_address: built
  /// (first call) in the segment's resource page, at the same address in every
  /// process, so a std::pmr container in the segment, holding that address as
  /// its memory_resource*, works from all of them. The segment destroys it
  /// before unmapping (do not delete it). std::invalid_argument when the
  /// segment is not mapped with fixed_address.
  static shm_resource& at_fixed_address(shm_segment& segment, shm_resource_options options = {});

  /// Takes `segment` over. (A template, so that `shm_resource r({})` means the options.)
  template <std::same_as<shm_segment> Segment>
  explicit shm_resource(Segment&& segment, shm_resource_options options = {})
      : owned_(std::move(segment)), segment_(&*owned_) {
    attach(options);
  }

  shm_resource(shm_resource&) = delete;
  shm_resource& operator=(const shm_resource&) = delete;
  /// Returns this process's cache slots (their blocks go back to the free lists).
  ~shm_resource() override;

  // Pointers.

  [[nodiscard]] const shm_segment& segment() const noexcept { return *segment_; }
  /// The resource of this process over the mapping that starts at `base` (the
  /// newest, if several), or nullptr. For allocators stored inside the segment
  /// that keep only where the segment is (shm_allocator); a thread remembers
  /// its last answer, so a repeated lookup costs two loads.
  [[nodiscard]] static shm_resource* from_base(const void* base) noexcept;
  [[nodiscard]] std::byte* base() const noexcept { return base_; }
  /// The offset of `p`, a pointer into the segment (null gives the null offset).
  [[nodiscard]] shm_offset offset_of(const void* p) const noexcept {
    return p == nullptr
               ? shm_offset{}
               : shm_offset{static_cast<std::uint64_t>(static_cast<const std::byte*>(p) - base_)};
  }
  template <class T = void>
  [[nodiscard]] full_ptr<T> at(shm_offset offset) const noexcept {
    return full_ptr<T>(base_, offset);
  }
  template <class T>
  [[nodiscard]] full_ptr<T> to_full(T* p) const noexcept {
    return full_ptr<T>(base_, p);
  }

  // Typed allocation (Hermes SHM's Allocate, NewObj, NewObjs, ReallocateObjs, DelObjs).

  /// A block of `bytes` at `alignment`, as allocate() does.
  [[nodiscard]] full_ptr<void> allocate_full(std::size_t bytes,
                                             std::size_t alignment = alignof(std::max_align_t)) {
    return full_ptr<void>(base_, allocate(bytes, alignment));
  }
  void deallocate_full(full_ptr<void> p, std::size_t bytes,
                       std::size_t alignment = alignof(std::max_align_t)) {
    deallocate(p.get(), bytes, alignment);
  }
  /// A block of `new_bytes` holding the first min(old, new) bytes of `p`
  /// (freed); `p` itself when its block already fits. Null p: a new block.
  [[nodiscard]] full_ptr<void> reallocate_full(full_ptr<void> p, std::size_t old_bytes,
                                               std::size_t new_bytes,
                                               std::size_t alignment = alignof(std::max_align_t));
  template <class T, class... Args>
  [[nodiscard]] full_ptr<T> new_object(Args&&... args) {
    return new_objects<T>(1, std::forward<Args>(args)...);
  }
  /// `count` objects, each constructed from `args` (copied for each).
  template <class T, class... Args>
  [[nodiscard]] full_ptr<T> new_objects(std::size_t count, const Args&... args) {
    const std::size_t bytes = array_bytes<T>(count);
    T* first = static_cast<T*>(allocate(bytes, alignof(T)));
    try {
      construct_n(first, count, args...);
    } catch (...) {
      deallocate(first, bytes, alignof(T));
      throw;
    }
    return full_ptr<T>(base_, first);
  }
  /// Grows or shrinks an array of `old_count` to `new_count` objects: the
  /// first min of them move (T must be nothrow move constructible), new ones
  /// are value-initialised, surplus ones destroyed.
  template <class T>
  [[nodiscard]] full_ptr<T> reallocate_objects(full_ptr<T> p, std::size_t old_count,
                                               std::size_t new_count) {
    static_assert(std::is_nothrow_move_constructible_v<T>);
    if (!p) return new_objects<T>(new_count);
    T* old = p.get();
    if (new_count <= old_count && block_size(array_bytes<T>(new_count), alignof(T)) ==
                                      block_size(array_bytes<T>(old_count), alignof(T))) {
      destroy_n(old + new_count, old_count - new_count);
      return p;
    }
    T* fresh = static_cast<T*>(allocate(array_bytes<T>(new_count), alignof(T)));
    const std::size_t kept = new_count < old_count ? new_count : old_count;
    std::size_t built = 0;
    try {
      for (; built < new_count; ++built) {
        if (built < kept) {
          ::new (static_cast<void*>(fresh + built)) T(std::move(old[built]));
        } else {
          ::new (static_cast<void*>(fresh + built)) T();
        }
      }
    } catch (...) {  // only a new element's constructor throws: the moved ones move back
      for (std::size_t i = 0; i < kept && i < built; ++i)
        old[i] = std::move(fresh[i]);
      destroy_n(fresh, built);
      deallocate(fresh, array_bytes<T>(new_count), alignof(T));
      throw;
    }
    destroy_n(old, old_count);
    deallocate(old, array_bytes<T>(old_count), alignof(T));
    return full_ptr<T>(base_, fresh);
  }
  template <class T>
  void delete_object(full_ptr<T> p) noexcept {
    delete_objects(p, 1);
  }
  template <class T>
  void delete_objects(full_ptr<T> p, std::size_t count) noexcept {
    if (!p) return;
    destroy_n(p.get(), count);
    deallocate(p.get(), array_bytes<T>(count), alignof(T));
  }

  // Named objects (Boost.Interprocess's construct, find, find_or_construct,
  // destroy). Each entry records the element's size, alignment and
  // shm_type_tag<T>, so a lookup with another type is a shm_error
  // (type_mismatch) and never undefined behaviour. Construction runs under the
  // segment's lock (a constructor may allocate from this resource, not wait on
  // another process).

  /// Constructs a T from `args` named `name`; shm_error (object_exists) if the name is taken.
  template <class T, class... Args>
  T& construct(std::string_view name, Args&&... args) {
    return *construct_array<T>(name, 1, std::forward<Args>(args)...).data();
  }
  /// `count` Ts, each from `args`.
  template <class T, class... Args>
  std::span<T> construct_array(std::string_view name, std::size_t count, const Args&... args) {
    return emplace<T>(name, count, false, args...).first;
  }
  /// The object named `name`, or nullptr; shm_error (type_mismatch) if it is not a T.
  template <class T>
  [[nodiscard]] T* find(std::string_view name) const {
    return find_array<T>(name).data();
  }
  /// The array named `name` (empty when there is none).
  template <class T>
  [[nodiscard]] std::span<T> find_array(std::string_view name) const {
    const std::optional<shm_object_info> found = lookup(name);
    if (!found) return {};
    check_type(*found, sizeof(T), alignof(T), shm_type_tag<T>::value);
    return {static_cast<T*>(static_cast<void*>(base_ + found->offset.value)), found->count};
  }
  /// The object named `name`, constructed from `args` first if there is none (atomically).
  template <class T, class... Args>
  T& find_or_construct(std::string_view name, Args&&... args) {
    return *emplace<T>(name, 1, true, std::forward<Args>(args)...).first.data();
  }
  /// Destroys the object or array named `name`: false when there is none;
  /// shm_error (type_mismatch) if it is not of T.
  template <class T>
  bool destroy(std::string_view name) {
    return erase_named(name, sizeof(T), alignof(T), shm_type_tag<T>::value,
                       [](void* p, std::size_t n) { destroy_n(static_cast<T*>(p), n); });
  }
  /// Every named object, in no particular order.
  [[nodiscard]] std::vector<shm_object_info> named_objects() const;

  // Observers.

  [[nodiscard]] shm_stats stats() const noexcept;
  /// Walks every block and every list under the lock; empty when all is well,
  /// else what is wrong. The caches of other threads that hold a slot (in any
  /// process) change without the lock, so they are counted in the totals but
  /// not walked, and the in-use bits are matched against the blocks in use
  /// only when no other thread holds a slot.
  [[nodiscard]] std::string verify() const;
  /// The block size a request of `bytes` at `alignment` takes (its class, or
  /// its power of two of pages); 0 when it cannot be served.
  [[nodiscard]] std::size_t block_size(std::size_t bytes, std::size_t alignment) const noexcept;
  /// The segment's name, or "(anonymous)".
  [[nodiscard]] std::string_view name() const noexcept { return name_; }

  /// Returns the calling thread's cache slot to the segment now (threads do
  /// it when they exit).
  void flush_thread_cache() noexcept;
  /// Takes back the cache slots of processes that are gone (killed, or ended
  /// with _exit): their blocks return to the free lists. Returns the blocks
  /// taken back. Done also when a thread finds no free slot, and by a repair.
  std::size_t reclaim_dead_caches();

  struct heap;        // the allocator's state in the segment (src/shm/shm_resource.cpp)
  struct cache_slot;  // one thread's cache, in the segment

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override;
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override;
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override;

  template <class T>
  std::size_t array_bytes(std::size_t count) const {
    if (count > SIZE_MAX / sizeof(T)) [[unlikely]] {
      throw allocation_error(failure_reason::size_overflow, count, alignof(T), name_,
                             "the element count times sizeof(T) overflows std::size_t");
    }
    return count * sizeof(T);
  }
  // Constructs `count` Ts from `args` at `first`; if one throws, the ones built are destroyed.
  template <class T, class... Args>
  static void construct_n(T* first, std::size_t count, const Args&... args) {
    std::size_t built = 0;
    try {
      for (; built < count; ++built)
        ::new (static_cast<void*>(first + built)) T(args...);
    } catch (...) {
      destroy_n(first, built);
      throw;
    }
  }
  template <class T>
  static void destroy_n(T* first, std::size_t count) noexcept {
    if constexpr (!std::is_trivially_destructible_v<T>) {
      for (std::size_t i = count; i-- > 0;)
        first[i].~T();
    }
  }

  // The named-object table; the callbacks run with the lock held.
  struct entry_view {
    void* object;
    std::size_t count;
    bool created;
  };
  template <class T, class... Args>
  std::pair<std::span<T>, bool> emplace(std::string_view name, std::size_t count, bool or_find,
                                        const Args&... args) {
    auto build = [&](void* p) { construct_n(static_cast<T*>(p), count, args...); };
    const entry_view e = emplace_named(
        name, array_bytes<T>(count), count, sizeof(T), alignof(T), shm_type_tag<T>::value, or_find,
        [](void* context, void* p) { (*static_cast<decltype(build)*>(context))(p); }, &build);
    return {std::span<T>(static_cast<T*>(e.object), e.count), e.created};
  }
  entry_view emplace_named(std::string_view name, std::size_t bytes, std::size_t count,
                           std::size_t size, std::size_t alignment, std::uint64_t tag, bool or_find,
                           void (*build)(void* context, void* object), void* context);
  bool erase_named(std::string_view name, std::size_t size, std::size_t alignment,
                   std::uint64_t tag, void (*destroy)(void*, std::size_t));
  [[nodiscard]] std::optional<shm_object_info> lookup(std::string_view name) const;
  void check_type(const shm_object_info& found, std::size_t size, std::size_t alignment,
                  std::uint64_t tag) const;

  class locked;  // the segment's lock, held for a scope
  void attach(shm_resource_options options);
  [[nodiscard]] cache_slot* my_slot();
  cache_slot* bind_slot();
  void return_slot(cache_slot& slot) noexcept;
  [[nodiscard]] std::size_t cache_limit_of(std::size_t index) const noexcept;
  void* refill(cache_slot& slot, std::size_t index);
  void spill(cache_slot& slot, std::size_t index) noexcept;
  std::uint64_t allocate_small_locked(std::size_t index, bool for_caller);
  void deallocate_small_locked(std::uint64_t offset, std::size_t index) noexcept;
  void give_list_locked(std::size_t index, std::uint64_t head, std::uint64_t count) noexcept;
  std::size_t empty_slot_locked(cache_slot& slot, bool clear_marks) noexcept;
  std::size_t reclaim_dead_locked() noexcept;
  void* allocate_large(std::size_t bytes, std::size_t alignment);
  std::uint64_t allocate_large_locked(std::size_t bytes, std::size_t alignment, std::size_t size);
  std::uint64_t allocate_locked(std::size_t bytes, std::size_t alignment);
  void deallocate_locked(std::uint64_t block, std::size_t bytes, std::size_t alignment) noexcept;
  void deallocate_large(void* p, std::size_t bytes, std::size_t alignment) noexcept;
  void free_large_locked(std::uint64_t offset, std::size_t size) noexcept;
  void repair_locked() const;
  void rebuild_locked() const;
  [[nodiscard]] std::string verify_locked() const;
  [[nodiscard]] bool check_small_free(void* p, std::size_t bytes, std::size_t alignment,
                                      std::size_t index) const noexcept;

  friend class shm_segment;  // retargets segment_ when a fixed segment moves

  std::optional<shm_segment> owned_;  // when it owns its segment
  shm_segment* segment_ = nullptr;
  std::byte* base_ = nullptr;
  heap* heap_ = nullptr;
  std::string name_;
  std::size_t cache_limit_ = 0;
  bool checked_ = false;        // the segment's mode (its creator's build), followed by all
  std::uint64_t instance_ = 0;  // unique in the process, never 0: the caches' key
  // This object's slots in this process, with the fork generation that claimed them. Lock
  // order: the process's registry, the segment's lock, slots_lock_.
  std::mutex slots_lock_;
  std::vector<std::pair<cache_slot*, std::uint64_t>> slots_;
};

}  // namespace pmrkit
