// size_classes: the block sizes of the multi-size pools, and the O(1) map
// from a request to its class.
//
// Classes step by 16 bytes up to 128 (16, 32, ..., 128), then four per
// doubling (160, 192, 224, 256, 320, 384, 448, 512, ...), so a block wastes
// at most a quarter of its size beyond 128 bytes (an eighth on average over
// the mixed workload), not the half of power-of-two classes. The class of a
// size is a shift and a bit scan, no table and no loop.
//
// A class's blocks are aligned to the largest power of two dividing its size
// (capped at `max_class_alignment`): 48-byte blocks to 16, 160 to 32, 4096 to
// 4096. A request with a larger alignment moves up to the next class whose
// alignment suffices (every fourth class is a power of two).
//
// multipool_resource and concurrent_pool_resource share it.
//
// Thread safety: pure functions.
//
// Example:
//   namespace size_classes = pmrkit::detail::size_classes;
//   assert(size_classes::class_size(size_classes::index_of(100)) == 112);
//   assert(size_classes::class_size(size_classes::index_of(1000)) == 1024);
//   assert(size_classes::class_alignment(size_classes::index_of(160)) == 32);
#pragma once

#include <pmr/pool/detail/block_pool.hpp>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <memory_resource>

namespace pmrkit::detail::size_classes {

/// The smallest block: room for the free-list link of block_pool.
inline constexpr std::size_t min_size = 16;
/// Sizes up to here step by min_size.
inline constexpr std::size_t linear_limit = 128;
inline constexpr std::size_t linear_classes = linear_limit / min_size;  // 8
/// Classes per doubling above linear_limit.
inline constexpr std::size_t classes_per_doubling = 4;
/// Blocks are never aligned beyond this by their class; larger alignments are served elsewhere.
inline constexpr std::size_t max_class_alignment = 4096;
/// The largest class any pool may have.
inline constexpr std::size_t max_size = std::size_t{1} << 20;

/// The class of a request of `bytes` bytes (0 counts as 1).
[[nodiscard]] constexpr std::size_t index_of(std::size_t bytes) noexcept {
  const std::size_t last = bytes == 0 ? 0 : bytes - 1;
  if (last < linear_limit) return last / min_size;
  const auto octave = static_cast<std::size_t>(std::bit_width(last)) - 1;  // >= 7
  const std::size_t step = (last >> (octave - 2)) - classes_per_doubling;  // 0..3
  return linear_classes + (octave - 7) * classes_per_doubling + step;
}

/// The block size of class `index`.
[[nodiscard]] constexpr std::size_t class_size(std::size_t index) noexcept {
  if (index < linear_classes) return (index + 1) * min_size;
  const std::size_t above = index - linear_classes;
  const std::size_t octave = 7 + above / classes_per_doubling;
  return (classes_per_doubling + 1 + above % classes_per_doubling) << (octave - 2);
}

/// The alignment of class `index`'s blocks.
[[nodiscard]] constexpr std::size_t class_alignment(std::size_t index) noexcept {
  const std::size_t size = class_size(index);
  const std::size_t lowest_bit = size & (~size + 1);
  return lowest_bit < max_class_alignment ? lowest_bit : max_class_alignment;
}

/// How many classes cover blocks up to `largest` bytes (the last class may be larger).
[[nodiscard]] constexpr std::size_t count_for(std::size_t largest) noexcept {
  return index_of(largest) + 1;
}

/// The class serving `bytes` at `alignment` (a power of two), or `classes`
/// (one past the last) when no class of the first `classes` does.
[[nodiscard]] constexpr std::size_t index_of(std::size_t bytes, std::size_t alignment,
                                             std::size_t classes) noexcept {
  if (alignment > max_class_alignment) return classes;
  std::size_t index = index_of(bytes < alignment ? alignment : bytes);
  while (index < classes && class_alignment(index) < alignment)
    ++index;
  return index < classes ? index : classes;
}

/// Bytes of blocks in a class's first chunk, and the most a chunk grows to
/// (a class whose one block is larger takes one block per chunk).
inline constexpr std::size_t initial_chunk_bytes = 4096;
inline constexpr std::size_t max_chunk_bytes = 65536;
/// The most blocks a class's chunk holds when the caller sets no limit.
inline constexpr std::size_t default_max_blocks_per_chunk = 1024;

/// The largest pooled block when the caller sets no limit.
inline constexpr std::size_t default_largest_block = std::size_t{64} << 10;

/// The std::pmr::pool_options a pool of these classes works with, given the
/// requested ones, as the standard means them: 0 or a value above the limit
/// is replaced by the default or the limit, and the largest block is rounded
/// up to its class.
[[nodiscard]] constexpr std::pmr::pool_options effective_options(
    std::size_t max_blocks_per_chunk, std::size_t largest_required_pool_block) noexcept {
  const std::size_t largest = largest_required_pool_block == 0
                                  ? default_largest_block
                                  : std::min(largest_required_pool_block, max_size);
  return {
      .max_blocks_per_chunk = max_blocks_per_chunk == 0
                                  ? default_max_blocks_per_chunk
                                  : std::min(max_blocks_per_chunk, default_max_blocks_per_chunk),
      .largest_required_pool_block = class_size(index_of(largest))};
}

/// The block_pool layout of class `index`: chunks of about initial_chunk_bytes
/// doubling up to max_chunk_bytes, and never more than `max_blocks_per_chunk`
/// blocks (0: default_max_blocks_per_chunk), as std::pmr::pool_options means it.
[[nodiscard]] constexpr block_pool_layout layout_of(std::size_t index,
                                                    std::size_t max_blocks_per_chunk) noexcept {
  const std::size_t size = class_size(index);
  const std::size_t limit =
      max_blocks_per_chunk == 0 ? default_max_blocks_per_chunk : max_blocks_per_chunk;
  const std::size_t max_blocks = std::clamp<std::size_t>(max_chunk_bytes / size, 1, limit);
  return {.block_size = size,
          .block_alignment = class_alignment(index),
          .growth = {.initial = std::clamp<std::size_t>(initial_chunk_bytes / size, 1, max_blocks),
                     .max = max_blocks,
                     .factor = 2}};
}

static_assert(index_of(1) == 0 && index_of(16) == 0 && index_of(17) == 1);
static_assert(index_of(128) == 7 && index_of(129) == 8 && class_size(8) == 160);
static_assert(class_size(index_of(4096)) == 4096 && class_size(index_of(4097)) == 5120);
static_assert(class_alignment(index_of(48)) == 16 && class_alignment(index_of(4096)) == 4096);

}  // namespace pmrkit::detail::size_classes
