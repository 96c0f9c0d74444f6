// block_pool: the free-list building block of the pools.
//
// Blocks of one size, carved from chunks taken from an upstream. A freed
// block goes on an intrusive free list (its first word links to the next),
// so allocate and deallocate are O(1): pop the list, else carve the next
// block of the newest chunk (carving is lazy, so a large chunk costs nothing
// until its blocks are used), else take a new chunk. Chunk sizes grow
// geometrically in blocks, from `initial_blocks` by `growth_factor` up to
// `max_blocks`.
//
// Each chunk ends with a `pool_chunk` trailer, so blocks start at the
// upstream block's own address and take only the alignment they need (a
// 4 KiB-aligned block wastes no header padding). `shrink` gives back the
// chunks whose blocks are all free: it sorts the free list by address, which
// also makes later allocations walk memory in order.
//
// In checked builds each chunk carries a bitmap of blocks in use, so a
// foreign pointer or a double free is reported as a violation, and free
// blocks are filled and poisoned for AddressSanitizer (but for the link word).
//
// pool_resource uses one block_pool; multipool_resource and
// concurrent_pool_resource one per size class.
//
// Thread safety: none; concurrent_pool_resource locks around it.
//
// Example:
//   pmrkit::detail::block_pool pool({.block_size = 32, .block_alignment = 16,
//                                    .initial_blocks = 8, .max_blocks = 64},
//                                   std::pmr::new_delete_resource());
//   void* p = pool.try_allocate();  // nullptr: no chunk yet
//   if (p == nullptr) p = pool.allocate_from_new_chunk("example");
//   pool.deallocate(p);
//   assert(pool.blocks_in_use() == 0 && pool.chunk_count() == 1);
#pragma once

#include <pmr/core/config.hpp>
#include <pmr/core/poison.hpp>

#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <string_view>

namespace pmrkit::detail {

/// A free block: its first word links to the next free one.
struct free_block {
  free_block* next;
};

/// The shape of a block_pool's blocks and chunks.
struct block_pool_layout {
  std::size_t block_size = 0;       ///< a multiple of block_alignment, at least a pointer
  std::size_t block_alignment = 0;  ///< a power of two, at least a pointer's
  std::size_t initial_blocks = 1;   ///< blocks in the first chunk
  std::size_t max_blocks = 1;       ///< chunk growth stops here
  std::size_t growth_factor = 2;    ///< 1: every chunk holds initial_blocks
};

/// The layout for blocks of `block_size` bytes at `block_alignment`, from
/// the options of a resource named `resource` (the fields are named as in
/// pool_resource_options). Throws std::invalid_argument
/// "pmrkit::<resource>: <field> ..." naming the field: block_size 0,
/// block_alignment not a power of two or above 4096, initial_blocks 0,
/// max_blocks_per_chunk below initial_blocks, a chunk of max_blocks_per_chunk
/// blocks overflowing, growth_factor outside 1..16, a null upstream.
block_pool_layout validated_layout(std::string_view resource, block_pool_layout requested,
                                   const std::pmr::memory_resource* upstream);

/// The trailer at the end of every chunk.
struct pool_chunk {
  pool_chunk* next;
  pool_chunk* previous;
  std::byte* begin;    // the first block, where the upstream block starts
  std::size_t blocks;  // how many blocks the chunk holds
  std::size_t bytes;   // taken from the upstream
  std::size_t free;    // scratch for shrink: free blocks counted

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
      : layout_(layout), next_blocks_(layout.initial_blocks), upstream_(upstream) {}
  block_pool(const block_pool&) = delete;
  block_pool& operator=(const block_pool&) = delete;
  ~block_pool() { release(); }

  /// The fast path: a free block, else the next uncarved one of the newest
  /// chunk; nullptr when a new chunk is needed.
  [[nodiscard]] void* try_allocate() noexcept {
    void* block = nullptr;
    if (free_ != nullptr) [[likely]] {
      free_block* head = free_;
      revive(head, layout_.block_size);
      free_ = head->next;
      block = head;
    } else if (cursor_ != limit_) {
      block = cursor_;
      cursor_ += layout_.block_size;
      revive(block, layout_.block_size);
    } else {
      return nullptr;
    }
    if (++in_use_ > peak_) peak_ = in_use_;
#if PMRKIT_CHECKED
    mark_in_use(block);
#endif
    return block;
  }

  /// The slow path: takes a new chunk from the upstream and allocates from
  /// it. Throws allocation_error naming `name` when the upstream fails.
  [[nodiscard]] void* allocate_from_new_chunk(std::string_view name);

  /// Puts `p`, a block of this pool in use, on the free list.
  void deallocate(void* p) noexcept {
#if PMRKIT_CHECKED
    mark_free(p);
#endif
    auto* block = static_cast<free_block*>(p);
    block->next = free_;
    free_ = block;
    retire(reinterpret_cast<std::byte*>(block) + sizeof(free_block),
           layout_.block_size - sizeof(free_block));
    --in_use_;
  }

  /// Checked builds: whether `p` may be deallocated. Reports a
  /// foreign_pointer violation (not the start of a block of this pool) or a
  /// double_free (the block is free) naming `name`, and returns false then.
  [[nodiscard]] bool check_deallocate(const void* p, std::string_view name, std::size_t bytes,
                                      std::size_t alignment) const;

  /// Gives back the chunks whose blocks are all free; returns their number.
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
    return in_use_;
  }
  [[nodiscard]] std::size_t chunk_count() const noexcept {
    return chunk_count_;
  }
  [[nodiscard]] block_pool_counts counts() const noexcept;
  [[nodiscard]] const block_pool_layout& layout() const noexcept {
    return layout_;
  }
  [[nodiscard]] std::pmr::memory_resource* upstream() const noexcept {
    return upstream_;
  }
  /// Blocks the next chunk will hold.
  [[nodiscard]] std::size_t next_chunk_blocks() const noexcept {
    return next_blocks_;
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

  block_pool_layout layout_;
  free_block* free_ = nullptr;
  std::byte* cursor_ = nullptr;  // the next uncarved block of the newest chunk
  std::byte* limit_ = nullptr;   // the end of the newest chunk's blocks
  std::size_t in_use_ = 0;
  std::size_t peak_ = 0;
  std::size_t next_blocks_;
  pool_chunk* chunks_ = nullptr;  // newest first
  std::size_t chunk_count_ = 0;
  std::size_t capacity_ = 0;
  std::size_t from_upstream_ = 0;
  std::pmr::memory_resource* upstream_;
  mutable const pool_chunk* last_found_ = nullptr;  // speeds up chunk_of for nearby blocks
};

}  // namespace pmrkit::detail
