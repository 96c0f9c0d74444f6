// pool_resource: blocks of one size, O(1) allocate and deallocate.
//
// Blocks come from chunks taken from the upstream; a freed block goes on an
// intrusive free list and is the next one handed out. The first chunk holds
// `initial_blocks` and is taken on first use; each later chunk holds
// `growth_factor` times more, up to `max_blocks_per_chunk`. A request the
// pool cannot serve (larger than `block_size`, or aligned beyond
// `block_alignment`) is forwarded to the upstream and tracked, so release()
// returns it too; with `on_mismatch = reject` it is refused with
// allocation_error instead. Smaller requests are
// served by a whole block. `shrink()` returns the chunks whose blocks are all
// free (and says how many bytes went back), `release()` every chunk.
//
// It is built the ways every pmrkit resource is: `pool_resource r(options)`,
// `r(options, upstream)`, `r({.block_size = 48})`, `r({...}, upstream)`.
// `block_size` has no sensible default (it is the size of the caller's
// objects), so the forms without one, `pool_resource r;`,
// `pool_resource r(upstream)` and `pool_resource r({})`, compile but throw
// std::invalid_argument ("pmrkit::pool_resource: block_size must not be 0").
//
// Choose it for many objects of one type (list, map and set nodes, messages,
// connections): it is the fastest way to allocate one size. For several
// sizes choose multipool_resource; for several threads
// concurrent_pool_resource; object_pool<T> wraps it with construction.
//
// In checked builds freeing a block twice is a `double_free` violation,
// freeing a pointer that is not one of its blocks a `foreign_pointer`, and
// freeing a block with a size or alignment that routes it to the upstream a
// `size_mismatch`; free blocks are filled and poisoned for AddressSanitizer.
//
// Thread safety: none; use it from one thread at a time.
//
// Example:
//   pmrkit::pool_resource nodes({.block_size = 48});
//   {
//     std::pmr::list<int> values({1, 2, 3}, &nodes);  // 3 list nodes, one chunk
//     assert(nodes.stats().blocks_in_use == 3);
//   }
//   assert(nodes.stats().blocks_in_use == 0 && nodes.stats().chunk_count == 1);
//   const std::size_t held = nodes.stats().bytes_from_upstream;
//   assert(nodes.shrink() == held);  // every block is free: the chunk goes back upstream
//   assert(nodes.stats().bytes_from_upstream == 0);
//   assert(nodes.stats().peak_bytes_from_upstream == held);
#pragma once

#include <pmr/core/align.hpp>
#include <pmr/core/config.hpp>
#include <pmr/core/detail/large_blocks.hpp>
#include <pmr/pool/detail/block_pool.hpp>

#include <concepts>
#include <cstddef>
#include <memory_resource>
#include <string>
#include <string_view>
#include <type_traits>

namespace pmrkit {

/// What a pool does with a request its blocks cannot serve.
enum class pool_mismatch : unsigned char {
  forward,  ///< pass it to the upstream (and its deallocation too)
  reject,   ///< throw allocation_error (out of capacity)
};

/// The options of pool_resource (not std::pmr::pool_options, which the
/// multi-size pools take as the standard's do).
struct pool_options {
  std::size_t block_size = 0;                               ///< bytes per block; required (not 0)
  std::size_t block_alignment = alignof(std::max_align_t);  ///< a power of two up to 4096
  std::size_t initial_blocks = 64;                          ///< blocks in the first chunk
  std::size_t max_blocks_per_chunk = 4096;                  ///< chunk growth stops here
  std::size_t growth_factor = 2;  ///< 1 to 16; 1 keeps every chunk at initial_blocks
  pool_mismatch on_mismatch = pool_mismatch::forward;
  std::string_view name = "pool";  ///< shown in errors and violations (copied)
};

/// The figures of a pool_resource; the names mean what docs/contract.md says.
struct pool_stats {
  std::size_t bytes_in_use = 0;       ///< blocks_in_use * block_size (large blocks not included)
  std::size_t peak_bytes_in_use = 0;  ///< peak_blocks_in_use * block_size
  std::size_t blocks_in_use = 0;      ///< blocks of the pool held by callers
  std::size_t peak_blocks_in_use = 0;
  std::size_t bytes_from_upstream = 0;  ///< chunks and forwarded requests, headers included
  std::size_t peak_bytes_from_upstream = 0;
  std::size_t chunk_count = 0;
  std::size_t large_blocks_in_use = 0;  ///< forwarded requests not yet freed
  std::size_t large_bytes_in_use = 0;   ///< their sizes as requested
  std::size_t capacity_blocks = 0;      ///< blocks in all chunks
  std::size_t block_size = 0;           ///< the size blocks really take (rounded up)
};

class pool_resource final : public std::pmr::memory_resource {
 public:
  /// Throws std::invalid_argument naming the field when an option is invalid:
  /// block_size 0, block_alignment not a power of two or above 4096,
  /// initial_blocks 0, max_blocks_per_chunk below initial_blocks, a chunk of
  /// max_blocks_per_chunk blocks overflowing std::size_t, growth_factor
  /// outside 1..16, a null upstream.
  explicit pool_resource(pool_options options,
                         std::pmr::memory_resource* upstream = std::pmr::get_default_resource());
  /// Default options: they have no block_size, so these throw
  /// std::invalid_argument (see above); they exist so that every resource is
  /// built the same ways. (The upstream-only form is a template so that
  /// `pool_resource({...})` always means the options.)
  pool_resource() : pool_resource(pool_options{}) {}
  template <std::convertible_to<std::pmr::memory_resource*> Upstream>
  explicit pool_resource(Upstream upstream) : pool_resource(pool_options{}, upstream) {}
  /// Not copyable. (Declared as taking a non-const reference, which an
  /// initializer `{}` cannot bind to, so that `pool_resource r({})` means the
  /// options.)
  pool_resource(pool_resource&) = delete;
  pool_resource& operator=(const pool_resource&) = delete;
  ~pool_resource() override { release(); }

  // Bulk operations.

  /// Gives back the chunks whose blocks are all free; returns the bytes given
  /// back upstream. Sorts the free list by address. O(free blocks × log).
  std::size_t shrink() noexcept { return blocks_.shrink(); }
  /// Gives back every chunk and every forwarded request: nothing is held
  /// from the upstream, and the pool stays usable.
  void release() noexcept;

  // Observers.

  [[nodiscard]] pool_stats stats() const noexcept;
  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  [[nodiscard]] std::pmr::memory_resource* upstream_resource() const noexcept {
    return blocks_.upstream();
  }
  /// True when `p` is the start of one of its blocks, in use or free.
  [[nodiscard]] bool owns(const void* p) const noexcept { return blocks_.owns(p); }
  /// Whether a request of `bytes` at `alignment` is served by a block.
  [[nodiscard]] bool fits(std::size_t bytes, std::size_t alignment) const noexcept {
    return bytes <= block_size_ && alignment <= block_alignment_;
  }
  [[nodiscard]] const pool_options& options() const noexcept { return options_; }
  /// The most blocks of `options.block_size` at `options.block_alignment`
  /// that one chunk of at most `bytes` upstream bytes holds (what a pool with
  /// initial_blocks and max_blocks_per_chunk of that count serves from one
  /// block of `bytes`). Throws std::invalid_argument for a bad block_size or
  /// block_alignment, as the constructor does.
  [[nodiscard]] static std::size_t blocks_fitting(std::size_t bytes, const pool_options& options);

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    if (fits(bytes, alignment) && is_power_of_two(alignment)) [[likely]] {
      if (void* p = blocks_.try_allocate()) [[likely]] {
        return p;
      }
      return allocate_from_new_chunk();
    }
    return allocate_mismatched(bytes, alignment);
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    if (fits(bytes, alignment)) [[likely]] {
#if PMRKIT_CHECKED
      if (!blocks_.check_deallocate(p, name_, bytes, alignment)) return;
#endif
      blocks_.deallocate(p);
      return;
    }
    deallocate_mismatched(p, bytes, alignment);
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  void* allocate_from_new_chunk();
  void* allocate_mismatched(std::size_t bytes, std::size_t alignment);
  void deallocate_mismatched(void* p, std::size_t bytes, std::size_t alignment);
  [[nodiscard]] std::size_t bytes_from_upstream() const noexcept {
    return blocks_.bytes_from_upstream() + forwarded_.bytes_from_upstream();
  }
  // After taking memory from the upstream.
  void raise_peak() noexcept {
    const std::size_t now = bytes_from_upstream();
    if (now > peak_from_upstream_) peak_from_upstream_ = now;
  }

  pool_options options_;
  std::string name_;
  std::size_t block_size_;       // what the caller may ask for: options_.block_size
  std::size_t block_alignment_;  // options_.block_alignment
  detail::block_pool blocks_;
  detail::large_blocks forwarded_;
  std::size_t peak_from_upstream_ = 0;
};

static_assert(std::is_base_of_v<std::pmr::memory_resource, pool_resource>);

}  // namespace pmrkit
