// multipool_resource: blocks of many sizes from per-size-class pools; a
// drop-in for std::pmr::unsynchronized_pool_resource.
//
// A request goes to the pool of its size class (detail/size_classes.hpp:
// 16-byte steps up to 128, then four classes per doubling, so a block wastes
// at most a quarter of its size). Finding the class is a few instructions,
// allocate and deallocate are O(1): the size given to deallocate names the
// class, so there is no search (libstdc++'s pools binary-search their chunks
// on every deallocate). Each class takes chunks from the upstream as it needs
// them, small first and doubling. Requests above the largest class, or
// aligned beyond what a class offers, go to the upstream and are tracked in
// a list, so `release()` returns them too in O(1) each.
//
// It takes `std::pmr::pool_options` with the standard's meaning:
// `largest_required_pool_block` is the largest request served by a pool
// (0: 64 KiB; at most 1 MiB; rounded up to a class), and
// `max_blocks_per_chunk` caps the blocks a chunk holds (0: 1024; chunks stay
// below 64 KiB unless one block is larger). `options()` returns the values in
// effect. Its own `multipool_options` say the same and add a name; both build
// it the ways every pmrkit resource is built (`multipool_resource r;`,
// `r(upstream)`, `r(options)`, `r(options, upstream)`, `r({})`,
// `r({}, upstream)`, where `{}` means `multipool_options`), and the
// standard's two-argument form is not explicit, as the standard's is not:
// `pmrkit::multipool_resource pools = {std_options, &upstream};`.
//
// `stats().bytes_from_upstream` is everything it holds from the upstream:
// the chunks, the large blocks and its table of classes.
//
// Choose it for containers of mixed element sizes (maps of strings, graphs,
// parsers) that free and reuse memory; choose pool_resource for one size,
// an arena when everything is freed at once, and concurrent_pool_resource
// when several threads share it.
//
// In checked builds freeing a block twice is a `double_free` violation, a
// pointer that is no block of the class a `foreign_pointer`, and a block freed
// with a size of another class a `size_mismatch`.
//
// Thread safety: none; use it from one thread at a time.
//
// Example:
//   pmrkit::multipool_resource pools(std::pmr::pool_options{.largest_required_pool_block = 4096});
//   {
//     std::pmr::map<int, std::pmr::string> names(&pools);
//     names.emplace(1, "a string too long for the small-string buffer");
//     assert(pools.stats().blocks_in_use == 2);  // the node and the string
//   }
//   assert(pools.stats().blocks_in_use == 0);
//   assert(pools.stats().bytes_from_upstream > 0);  // a chunk per class used, the class table
//   pools.release();
//   assert(pools.stats().bytes_from_upstream == 0);
#pragma once

#include <pmr/core/align.hpp>
#include <pmr/core/config.hpp>
#include <pmr/core/detail/large_blocks.hpp>
#include <pmr/pool/detail/block_pool.hpp>
#include <pmr/pool/detail/size_classes.hpp>

#include <concepts>
#include <cstddef>
#include <memory_resource>
#include <string>
#include <string_view>
#include <type_traits>

namespace pmrkit {

struct multipool_options {
  std::size_t max_blocks_per_chunk = 0;         ///< 0: the default (1024)
  std::size_t largest_required_pool_block = 0;  ///< 0: the default (64 KiB)
  std::string_view name = "multipool";          ///< shown in errors and violations (copied)
};

/// One size class; the names mean what docs/contract.md says.
struct multipool_class_stats {
  std::size_t bytes_in_use = 0;       ///< blocks_in_use * block_size
  std::size_t peak_bytes_in_use = 0;  ///< peak_blocks_in_use * block_size
  std::size_t blocks_in_use = 0;
  std::size_t peak_blocks_in_use = 0;
  std::size_t bytes_from_upstream = 0;  ///< the class's chunks
  std::size_t chunk_count = 0;
  std::size_t capacity_blocks = 0;  ///< blocks in the class's chunks
  std::size_t block_size = 0;
};

/// Totals over the classes and the large blocks; the names mean what
/// docs/contract.md says.
struct multipool_stats {
  std::size_t bytes_in_use = 0;   ///< block sizes of pooled blocks in use (not large blocks)
  std::size_t blocks_in_use = 0;  ///< pooled blocks in use (not large blocks)
  /// Chunks, large blocks (headers included) and the class table.
  std::size_t bytes_from_upstream = 0;
  std::size_t peak_bytes_from_upstream = 0;
  std::size_t chunk_count = 0;
  std::size_t large_blocks_in_use = 0;  ///< requests above the largest class or over-aligned
  std::size_t large_bytes_in_use = 0;   ///< their sizes as requested
};

class multipool_resource final : public std::pmr::memory_resource {
 public:
  /// Throws std::invalid_argument when `upstream` is null (the pool options
  /// cannot be invalid: out-of-range values are replaced, as the standard says).
  explicit multipool_resource(multipool_options options, std::pmr::memory_resource* upstream =
                                                             std::pmr::get_default_resource());
  /// The constructors of std::pmr::unsynchronized_pool_resource. The
  /// upstream-only and std::pmr::pool_options forms are templates (taking
  /// exactly those types), so that `{}` always means multipool_options.
  multipool_resource() : multipool_resource(multipool_options{}) {}
  template <std::convertible_to<std::pmr::memory_resource*> Upstream>
  explicit multipool_resource(Upstream upstream)
      : multipool_resource(multipool_options{}, upstream) {}
  template <std::same_as<std::pmr::pool_options> Options>
  explicit multipool_resource(const Options& options)
      : multipool_resource(options, std::pmr::get_default_resource()) {}
  /// Not explicit, as the standard's is not.
  template <std::same_as<std::pmr::pool_options> Options>
  multipool_resource(const Options& options, std::pmr::memory_resource* upstream)
      : multipool_resource(
            multipool_options{.max_blocks_per_chunk = options.max_blocks_per_chunk,
                              .largest_required_pool_block = options.largest_required_pool_block},
            upstream) {}
  /// Not copyable. (Declared as taking a non-const reference, which an
  /// initializer `{}` cannot bind to, so that `multipool_resource r({})`
  /// means the options.)
  multipool_resource(multipool_resource&) = delete;
  multipool_resource& operator=(const multipool_resource&) = delete;
  ~multipool_resource() override;

  // Bulk operations.

  /// Gives back every chunk, every large block and the class table:
  /// everything is free and nothing is held from the upstream.
  void release() noexcept;
  /// Gives back the chunks whose blocks are all free; returns the bytes
  /// given back upstream.
  std::size_t shrink() noexcept;

  // Observers.

  /// The options in effect, as std::pmr::unsynchronized_pool_resource::options().
  [[nodiscard]] std::pmr::pool_options options() const noexcept { return effective_; }
  [[nodiscard]] multipool_stats stats() const noexcept;
  [[nodiscard]] std::size_t class_count() const noexcept { return class_count_; }
  /// Class `index` (below class_count()).
  [[nodiscard]] multipool_class_stats class_stats(std::size_t index) const noexcept;
  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  [[nodiscard]] std::pmr::memory_resource* upstream_resource() const noexcept { return upstream_; }
  /// True when `p` is the start of a pooled block, in use or free (large
  /// blocks are the upstream's).
  [[nodiscard]] bool owns(const void* p) const noexcept;

 private:
  // Requests at this alignment or less fit every class.
  static constexpr std::size_t class_min_alignment = detail::size_classes::min_size;

  [[nodiscard]] bool is_common(std::size_t bytes, std::size_t alignment) const noexcept {
    return bytes <= largest_ && alignment <= class_min_alignment;
  }
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    if (is_common(bytes, alignment) && is_power_of_two(alignment) && pools_ != nullptr) [[likely]] {
      detail::block_pool& pool = pools_[detail::size_classes::index_of(bytes)];
      if (void* p = pool.try_allocate()) [[likely]] {
        return p;
      }
      return allocate_from_new_chunk(pool);
    }
    return allocate_uncommon(bytes, alignment);
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    if (is_common(bytes, alignment)) [[likely]] {
      deallocate_pooled(p, bytes, alignment, detail::size_classes::index_of(bytes));
      return;
    }
    deallocate_uncommon(p, bytes, alignment);
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  void deallocate_pooled(void* p, [[maybe_unused]] std::size_t bytes,
                         [[maybe_unused]] std::size_t alignment, std::size_t index) {
#if PMRKIT_CHECKED
    if (!check_deallocate(p, bytes, alignment, index)) return;
#endif
    pools_[index].deallocate(p);
  }
  void* allocate_from_new_chunk(detail::block_pool& pool);
  void* allocate_uncommon(std::size_t bytes, std::size_t alignment);
  // Counts what was taken from, or given back to, the upstream.
  void took(std::size_t bytes) noexcept {
    from_upstream_ += bytes;
    if (from_upstream_ > peak_from_upstream_) peak_from_upstream_ = from_upstream_;
  }
  void gave_back(std::size_t bytes) noexcept {
    from_upstream_ -= bytes;
  }
  [[nodiscard]] std::size_t table_bytes() const noexcept {
    return sizeof(detail::block_pool) * class_count_;
  }
  void create_pools();
  void destroy_pools() noexcept;
  void deallocate_uncommon(void* p, std::size_t bytes, std::size_t alignment);
#if PMRKIT_CHECKED
  bool check_deallocate(void* p, std::size_t bytes, std::size_t alignment, std::size_t index) const;
#endif

  std::string name_;
  std::pmr::memory_resource* upstream_;
  std::pmr::pool_options effective_;
  std::size_t class_count_;
  std::size_t largest_;  // the block size of the largest class
  // class_count_ of them, in storage from the upstream, made on first use and given back by
  // release() like everything else.
  detail::block_pool* pools_ = nullptr;
  detail::large_blocks large_;
  std::size_t from_upstream_ = 0;  // chunks, large blocks and the class table
  std::size_t peak_from_upstream_ = 0;
};

static_assert(std::is_base_of_v<std::pmr::memory_resource, multipool_resource>);

}  // namespace pmrkit
