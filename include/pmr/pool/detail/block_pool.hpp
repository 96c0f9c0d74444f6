// block_pool: the free-list building block of the pools.
//
// Blocks of one size, carved from chunks taken from an upstream. A freed
// block goes into a small magazine (block_magazine.hpp: the addresses of the
// most recently freed blocks, the fast path every pool shares), and from
// there, when the magazine is full, half at a time onto an intrusive free
// list (the block's first word links to the next). Allocate
// and deallocate are O(1): take from the magazine, else pop the list, else
// carve the next block of the newest chunk (carving is lazy, so a large
// chunk costs nothing until its blocks are used), else take a new chunk. The
// magazine is why the fast path does not touch the block itself: freeing a
// cold block and allocating another costs no cache miss on either, which an
// intrusive list alone would (the list is the overflow, reached about once
// per magazine's worth of frees in a row). When every block is free again
// (a container destroyed), carving restarts at the oldest chunk, so the next
// round gets its blocks in address order instead of in the scrambled order
// they were freed in (a few stores: the next block is carved on the fast
// path; a pool that carved one block only keeps it in the magazine). Chunk sizes grow geometrically
// in blocks, as a `chunk_growth` (core/detail/chunk_growth.hpp) says: from `initial` by `factor` up
// to `max`, the one growth vocabulary of the arenas and the pools.
//
// Each chunk ends with a `pool_chunk` trailer, so blocks start at the
// upstream block's own address and take only the alignment they need (a
// 4 KiB-aligned block wastes no header padding). `shrink` gives back the
// chunks whose blocks are all free and returns the bytes it gave back: it
// sorts the free list by address, which also makes later allocations walk
// memory in order.
//
// In checked builds each chunk carries a bitmap of blocks in use, so a
// foreign pointer or a double free is reported as a violation, and free
// blocks are filled with `retired_fill`. In checked builds and under
// AddressSanitizer free blocks are poisoned (core/poison.hpp; for memcheck
// too where its client requests are compiled in), the link word too: the pool
// unpoisons a link only around its own read or write of it, so any use of a
// free block by its last owner is reported by ASan or memcheck. Builds
// neither checked nor under ASan do none of this.
//
// pool_resource uses one block_pool; multipool_resource and
// concurrent_pool_resource one per size class.
//
// Thread safety: none; concurrent_pool_resource locks around it.
//
// Example:
//   pmrkit::detail::block_pool pool(
//       {.block_size = 32, .block_alignment = 16, .growth = {.initial = 8, .max = 64}},
//       std::pmr::new_delete_resource());
//   void* p = pool.try_allocate();  // nullptr: no chunk yet
//   if (p == nullptr) p = pool.allocate_from_new_chunk("example");
//   pool.deallocate(p);
//   assert(pool.blocks_in_use() == 0 && pool.chunk_count() == 1);
#pragma once

#include <pmr/core/config.hpp>
#include <pmr/core/detail/chunk_growth.hpp>
#include <pmr/core/poison.hpp>
#include <pmr/pool/detail/block_magazine.hpp>

#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <string_view>

namespace pmrkit::detail {

/// A free block: its first word links to the next free one.
struct free_block {
  free_block* next;
};

/// The link of free block `block`, its link word poisoned (ASan, memcheck) but for the read.
[[nodiscard]] inline free_block* read_link(free_block* block) noexcept {
  unpoison(block, sizeof(free_block));
  free_block* next = block->next;
  poison(block, sizeof(free_block));
  return next;
}
/// Sets the link of free block `block`, its link word poisoned (ASan, memcheck) but for the write.
inline void write_link(free_block* block, free_block* next) noexcept {
  unpoison(block, sizeof(free_block));
  block->next = next;
  poison(block, sizeof(free_block));
}

/// The shape of a block_pool's blocks and chunks.
struct block_pool_layout {
  std::size_t block_size = 0;       ///< a multiple of block_alignment, at least a pointer
  std::size_t block_alignment = 0;  ///< a power of two, at least a pointer's
  /// Blocks per chunk: `initial` in the first, times `factor` for each next, up to `max`.
  chunk_growth growth{.initial = 1, .max = 1, .factor = 2};
};

/// The layout for blocks of `block_size` bytes at `block_alignment`, from
/// the options of the class `class_name` (the fields are named as in
/// pool_options: initial_blocks, max_blocks_per_chunk, growth_factor).
/// Throws std::invalid_argument "pmrkit::<class_name>: <field> <rule>"
/// (throw_invalid_option): block_size 0, block_alignment not a power of two
/// or above 4096, initial_blocks 0, max_blocks_per_chunk below
/// initial_blocks, growth_factor outside 1..16, a chunk of
/// max_blocks_per_chunk blocks overflowing std::size_t.
block_pool_layout validated_layout(std::string_view class_name, block_pool_layout requested);

/// The most blocks of `layout` that one chunk of at most `bytes` upstream
/// bytes holds, trailer (and checked-build bitmap) included; 0 when none.
[[nodiscard]] std::size_t blocks_fitting(const block_pool_layout& layout,
                                         std::size_t bytes) noexcept;

/// The trailer at the end of every chunk.
struct pool_chunk {
  pool_chunk* next;      // the next newer chunk
  std::size_t sequence;  // position in the chain, oldest first
  std::byte* begin;      // the first block, where the upstream block starts
  std::size_t blocks;    // how many blocks the chunk holds
  std::size_t bytes;     // taken from the upstream
  std::size_t free;      // scratch for shrink: free blocks counted

  [[nodiscard]] std::byte* end(std::size_t block_size) const noexcept {
    return begin + blocks * block_size;
  }
  // Checked builds: a bitmap of the blocks in use follows the trailer.
  [[nodiscard]] std::uint64_t* in_use_bits() noexcept {
    return reinterpret_cast<std::uint64_t*>(this + 1);
  }
};

/// Counts over one block_pool.
struct block_pool_counts {
  std::size_t blocks_in_use = 0;
  std::size_t peak_blocks_in_use = 0;
  std::size_t capacity_blocks = 0;  ///< blocks in all chunks, carved or not
  std::size_t chunks = 0;
  std::size_t bytes_from_upstream = 0;
};

class block_pool {
 public:
  /// `layout` must be valid (the owning resource validated its options).
  block_pool(block_pool_layout layout, std::pmr::memory_resource* upstream) noexcept
      : layout_(layout), next_blocks_(layout.growth.initial), upstream_(upstream) {}
  block_pool(const block_pool&) = delete;
  block_pool& operator=(const block_pool&) = delete;
  ~block_pool() { release(); }

  /// The fast path: a free block, else the next uncarved one of the newest
  /// chunk; nullptr when a new chunk is needed.
  [[nodiscard]] void* try_allocate() noexcept {
    void* block = nullptr;
    if (!magazine_.empty()) [[likely]] {
      block = magazine_.pop();
      revive(block, layout_.block_size);
    } else if (free_ != nullptr) {
      free_block* head = free_;
      unpoison(head, sizeof(free_block));  // the link, left defined for memcheck
      free_ = head->next;
      revive(head, layout_.block_size);
      --listed_;
      block = head;
    } else if (cursor_ != limit_) {
      // Carving happens only when no block is free, so the blocks carved are the peak in use.
      block = cursor_;
      cursor_ += layout_.block_size;
      revive(block, layout_.block_size);
      if (++carved_ > peak_) peak_ = carved_;
    } else {
      return nullptr;
    }
#if PMRKIT_CHECKED
    mark_in_use(block);
#endif
    return block;
  }

  /// The slow path: moves to the next chunk, one kept since the pool last
  /// emptied or a new one from the upstream, and allocates from it. Throws
  /// allocation_error naming `name` when the upstream fails.
  [[nodiscard]] void* allocate_from_new_chunk(std::string_view name);

  /// Frees `p`, a block of this pool in use.
  void deallocate(void* p) noexcept {
#if PMRKIT_CHECKED
    mark_free(p);
#endif
    if (magazine_.full()) [[unlikely]]
      spill();
    magazine_.push(p);
    retire(p, layout_.block_size);
    // One block carved is in address order whatever happens: a block allocated and freed in a
    // loop stays on the fast path.
    if (magazine_.size() + listed_ == carved_ && carved_ > 1) [[unlikely]]
      restart_carving();
  }

  /// Checked builds: whether `p` may be deallocated. Reports a
  /// foreign_pointer violation (not the start of a block of this pool) or a
  /// double_free (the block is free) naming `name`, and returns false then.
  [[nodiscard]] bool check_deallocate(const void* p, std::string_view name, std::size_t bytes,
                                      std::size_t alignment) const;

  /// Gives back the chunks whose blocks are all free; returns the bytes given
  /// back to the upstream.
  std::size_t shrink() noexcept;
  /// Gives back every chunk: every block is free; growth starts again.
  void release() noexcept;

  /// True when `p` is the start of a block (in use or free) of this pool.
  [[nodiscard]] bool owns(const void* p) const noexcept {
    return chunk_of(p) != nullptr;
  }
  /// The chunk holding block `p`, or nullptr.
  [[nodiscard]] pool_chunk* chunk_of(const void* p) const noexcept;
  /// Checked builds: whether block `p` of chunk `chunk` is in use.
  [[nodiscard]] bool in_use(const pool_chunk* chunk, const void* p) const noexcept;

  [[nodiscard]] std::size_t blocks_in_use() const noexcept {
    return carved_ - magazine_.size() - listed_;
  }
  [[nodiscard]] std::size_t chunk_count() const noexcept {
    return chunk_count_;
  }
  [[nodiscard]] block_pool_counts counts() const noexcept;
  /// Bytes held from the upstream: the chunks, trailers included.
  [[nodiscard]] std::size_t bytes_from_upstream() const noexcept {
    return from_upstream_;
  }
  [[nodiscard]] const block_pool_layout& layout() const noexcept {
    return layout_;
  }
  [[nodiscard]] std::pmr::memory_resource* upstream() const noexcept {
    return upstream_;
  }

 private:
  [[nodiscard]] std::size_t block_index(const pool_chunk* chunk, const void* p) const noexcept {
    return static_cast<std::size_t>(static_cast<const std::byte*>(p) - chunk->begin) /
           layout_.block_size;
  }
#if PMRKIT_CHECKED
  void mark_in_use(const void* p) noexcept;
  void mark_free(const void* p) noexcept;
#endif
  void return_chunk(pool_chunk* chunk) noexcept;
  /// Every block is free: forgets the magazine and the free list and carves
  /// again from the oldest chunk, so a pool that empties hands out memory in
  /// address order again (as an arena would after a reset). A few stores, and
  /// the next allocation carves on the fast path.
  void restart_carving() noexcept;
  /// No chunk: nothing to carve until one is taken.
  void forget_carving() noexcept {
    magazine_.clear();
    listed_ = carved_ = 0;
    free_ = nullptr;
    carving_ = nullptr;
    cursor_ = limit_ = nullptr;
  }
  /// Moves the older half of the magazine to the free list.
  void spill() noexcept;
  /// Moves the whole magazine to the free list.
  void empty_magazine() noexcept;
  /// Puts free block `block` at the head of the free list (its link word stays poisoned).
  void push_free(free_block* block) noexcept {
    write_link(block, free_);
    free_ = block;
  }

  static constexpr std::uint32_t magazine_capacity = 32;

  // The fast path touches only the first cache line (the counts deallocate compares) and the
  // magazine's entry; in a multi-size pool with many classes in use every line read counts.
  // Blocks in use are those carved less those free in the magazine and on the list.
  std::size_t listed_ = 0;  // blocks on the free list
  std::size_t carved_ = 0;  // blocks carved from the chunks held
  free_block* free_ = nullptr;
  block_magazine<magazine_count::owner_only, magazine_capacity> magazine_;
  block_pool_layout layout_;
  std::byte* cursor_ = nullptr;  // the next uncarved block of the newest chunk
  std::byte* limit_ = nullptr;   // the end of the newest chunk's blocks
  std::size_t peak_ = 0;
  std::size_t next_blocks_;
  pool_chunk* chunks_ = nullptr;   // oldest first
  pool_chunk* newest_ = nullptr;   // the last of them
  pool_chunk* carving_ = nullptr;  // the chunk the cursor is in: older ones are all carved
  std::size_t chunk_count_ = 0;
  std::size_t capacity_ = 0;
  std::size_t from_upstream_ = 0;
  std::pmr::memory_resource* upstream_;
  mutable const pool_chunk* last_found_ = nullptr;  // speeds up chunk_of for nearby blocks
};

}  // namespace pmrkit::detail
