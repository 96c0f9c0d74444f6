// object_pool<T>: objects of one type, constructed in blocks of a pool_resource.
//
// `acquire(args...)` takes a block and constructs a T in it from `args`;
// `destroy(p)` destroys the object and puts its block back for the next
// acquire; `make(args...)` returns a `handle` (a std::unique_ptr whose deleter
// destroys into the pool). Both ways are O(1) but for a new chunk. If T's
// constructor throws, the block goes back and the exception propagates.
// `shrink()` gives back the chunks whose blocks are all free and returns the
// bytes given back.
//
// Returning one object is `destroy(p)`, as in Boost.Pool's object_pool, not
// `release(p)`: everywhere in pmrkit `release()` means "give everything back
// upstream". object_pool has no `release()`: the pool does not track its
// objects, so it cannot destroy them. Destroy every object (or let every
// handle go) before the pool is destroyed; the pool must outlive them.
// Objects still live at destruction are not destroyed (their destructors
// never run) and their memory goes back upstream; checked builds
// (PMRKIT_CHECKED) report them as a `leak` violation, and a destroy of a
// pointer that is not one of its blocks as `foreign_pointer` (nothing is
// destroyed then). Destroying an object twice is undefined, as `delete` twice
// is: its destructor runs again (checked builds then report the pool's
// `double_free` and live() stays).
//
// It is built the ways every pmrkit resource is: `object_pool<T> pool;`,
// `pool(upstream)`, `pool(options)`, `pool(options, upstream)`, `pool({})`,
// `pool({}, upstream)`.
//
// Choose it over std::make_unique for many short-lived objects of one type
// (messages, orders, nodes, connections): no global heap call per object,
// neighbours in memory, and memory comes from an upstream of your choice.
// Choose pool_resource itself for raw blocks or to serve pmr containers
// (`resource()` shares this pool's with containers whose nodes fit in a T).
//
// Thread safety: none. Use one pool per thread, or guard every call (a
// handle's destruction included) with one mutex.
//
// Example:
//   struct order {
//     order(int i, double p) : id(i), price(p) {}
//     int id;
//     double price;
//   };
//   pmrkit::object_pool<order> orders({.initial_blocks = 128, .name = "orders"});
//   order* first = orders.acquire(1, 9.5);
//   {
//     pmrkit::object_pool<order>::handle second = orders.make(2, 19.5);  // destroyed at scope exit
//     assert(orders.live() == 2 && second->price == 19.5);
//   }
//   orders.destroy(first);
//   assert(orders.live() == 0 && orders.stats().chunk_count == 1);
#pragma once

#include <pmr/core/config.hpp>
#include <pmr/core/violation.hpp>
#include <pmr/pool/pool_resource.hpp>

#include <concepts>
#include <cstddef>
#include <memory>
#include <memory_resource>
#include <new>
#include <string_view>
#include <type_traits>
#include <utility>

namespace pmrkit {

/// The options of object_pool<T>: its pool_resource's, but for the block
/// size and alignment, which are T's.
struct object_pool_options {
  std::size_t initial_blocks = 64;          ///< objects the first chunk holds
  std::size_t max_blocks_per_chunk = 4096;  ///< chunk growth stops here
  std::size_t growth_factor = 2;            ///< 1 to 16; 1 keeps every chunk at initial_blocks
  std::string_view name = "object_pool";    ///< shown in errors and violations (copied)
};

template <class T>
class object_pool {
  static_assert(std::is_object_v<T> && !std::is_array_v<T> && !std::is_const_v<T> &&
                    !std::is_volatile_v<T>,
                "object_pool<T>: T must be a cv-unqualified object type, not an array");
  static_assert(alignof(T) <= 4096, "object_pool<T>: pool_resource aligns blocks to 4096 at most");
  static_assert(std::is_nothrow_destructible_v<T>,
                "object_pool<T>: T's destructor must not throw (destroy is noexcept)");

 public:
  using value_type = T;

  /// The deleter of a handle: destroys the object into its pool. A
  /// default-constructed one (that of an empty handle) has no pool.
  class deleter {
   public:
    deleter() noexcept = default;
    explicit deleter(object_pool* pool) noexcept : pool_(pool) {}
    void operator()(T* p) const noexcept { pool_->destroy(p); }
    [[nodiscard]] object_pool* pool() const noexcept { return pool_; }

   private:
    object_pool* pool_ = nullptr;
  };
  /// Owns one object of the pool; the pool must outlive it.
  using handle = std::unique_ptr<T, deleter>;

  // Construction.

  /// Blocks of sizeof(T) bytes at alignof(T). Takes no memory until the first
  /// acquire. Throws std::invalid_argument naming the field when an option is
  /// invalid (initial_blocks 0, max_blocks_per_chunk below initial_blocks,
  /// growth_factor outside 1..16, a chunk overflowing std::size_t, a null
  /// upstream), as pool_resource does.
  explicit object_pool(object_pool_options options,
                       std::pmr::memory_resource* upstream = std::pmr::get_default_resource())
      : pool_({.block_size = sizeof(T),
               .block_alignment = alignof(T),
               .initial_blocks = options.initial_blocks,
               .max_blocks_per_chunk = options.max_blocks_per_chunk,
               .growth_factor = options.growth_factor,
               .name = options.name},
              upstream) {}
  /// Default options. (The upstream-only form is a template so that
  /// `object_pool pool({})` always means the options.)
  object_pool() : object_pool(object_pool_options{}) {}
  template <std::convertible_to<std::pmr::memory_resource*> Upstream>
  explicit object_pool(Upstream upstream) : object_pool(object_pool_options{}, upstream) {}
  /// Not copyable. (Declared as taking a non-const reference, which an
  /// initializer `{}` cannot bind to, so that `object_pool pool({})` means the
  /// options.)
  object_pool(object_pool&) = delete;
  object_pool& operator=(const object_pool&) = delete;

  /// Every object must have been destroyed: the live ones are not.
  /// Checked builds report them as one `leak` violation whose size is
  /// live() * sizeof(T) bytes (so the count is size / sizeof(T)).
  ~object_pool() {
#if PMRKIT_CHECKED
    if (live_ != 0) {
      report_violation(
          {violation_kind::leak, pool_.name(), nullptr, live_ * sizeof(T), alignof(T)});
    }
#endif
  }

  // Objects.

  /// Constructs a T from `args` (T(args...), or T{args...} for an aggregate
  /// that has no such constructor) in a block. Throws allocation_error when
  /// the upstream cannot give a new chunk, and whatever T's constructor
  /// throws; the pool is then unchanged but for a chunk it may have taken.
  template <class... Args>
  [[nodiscard]] T* acquire(Args&&... args) {
    void* block = pool_.allocate(sizeof(T), alignof(T));
    T* object;
    try {
      object = construct(block, std::forward<Args>(args)...);
    } catch (...) {
      pool_.deallocate(block, sizeof(T), alignof(T));
      throw;
    }
    ++live_;
    return object;
  }

  /// Destroys `p`, an object acquired from this pool, and recycles its block;
  /// does nothing for nullptr. (Called `destroy`, not `release`: in pmrkit
  /// `release()` gives everything back upstream.)
  void destroy(T* p) noexcept {
    if (p == nullptr) return;
#if PMRKIT_CHECKED
    if (!pool_.owns(p)) {
      report_violation({violation_kind::foreign_pointer, pool_.name(), p, sizeof(T), alignof(T)});
      return;
    }
    const std::size_t blocks_before = pool_.stats().blocks_in_use;
#endif
    std::destroy_at(p);
    pool_.deallocate(p, sizeof(T), alignof(T));
#if PMRKIT_CHECKED
    if (pool_.stats().blocks_in_use == blocks_before) return;  // the pool reported a double free
#endif
    --live_;
  }

  /// acquire(args...) owned by a handle. Throws what acquire throws.
  template <class... Args>
  [[nodiscard]] handle make(Args&&... args) {
    return handle(acquire(std::forward<Args>(args)...), deleter(this));
  }

  // Bulk operations.

  /// Gives back the chunks whose blocks are all free; returns the bytes given
  /// back upstream.
  std::size_t shrink() noexcept {
    return pool_.shrink();
  }

  // Observers.

  /// Objects acquired and not yet destroyed.
  [[nodiscard]] std::size_t live() const noexcept {
    return live_;
  }
  /// The pool's figures; blocks_in_use also counts blocks that containers
  /// sharing resource() hold.
  [[nodiscard]] pool_stats stats() const noexcept {
    return pool_.stats();
  }
  /// The pool of T-sized blocks, to share with containers whose nodes fit
  /// in a T (larger requests go to the upstream).
  [[nodiscard]] pool_resource& resource() noexcept {
    return pool_;
  }
  [[nodiscard]] const pool_resource& resource() const noexcept {
    return pool_;
  }
  [[nodiscard]] std::string_view name() const noexcept {
    return pool_.name();
  }
  [[nodiscard]] std::pmr::memory_resource* upstream_resource() const noexcept {
    return pool_.upstream_resource();
  }

 private:
  template <class... Args>
  static T* construct(void* block, Args&&... args) {
    if constexpr (std::is_constructible_v<T, Args...>) {
      return ::new (block) T(std::forward<Args>(args)...);
    } else {
      static_assert(std::is_aggregate_v<T>, "object_pool<T>: T is not constructible from these");
      return ::new (block) T{std::forward<Args>(args)...};
    }
  }

  pool_resource pool_;
  std::size_t live_ = 0;
};

}  // namespace pmrkit
