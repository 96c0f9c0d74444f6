#include <pmr/pool/detail/block_pool.hpp>

#include <pmr/core/align.hpp>
#include <pmr/core/error.hpp>
#include <pmr/core/upstream.hpp>
#include <pmr/core/violation.hpp>

#include <algorithm>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>

namespace pmrkit::detail {

namespace {

// Bitmap words after the trailer: only checked builds keep one.
constexpr std::size_t bitmap_bytes([[maybe_unused]] std::size_t blocks) noexcept {
#if PMRKIT_CHECKED
  return (blocks + 63) / 64 * sizeof(std::uint64_t);
#else
  return 0;
#endif
}

// Upstream bytes for a chunk of `blocks` blocks, with where its trailer sits; false on overflow.
bool chunk_bytes(const block_pool_layout& layout, std::size_t blocks, std::size_t& trailer_offset,
                 std::size_t& bytes) noexcept {
  std::size_t block_bytes = 0;
  return checked_multiply(blocks, layout.block_size, block_bytes) &&
         checked_align_up(block_bytes, alignof(pool_chunk), trailer_offset) &&
         checked_add(trailer_offset, sizeof(pool_chunk) + bitmap_bytes(blocks), bytes);
}

std::size_t chunk_alignment(const block_pool_layout& layout) noexcept {
  return std::max(layout.block_alignment, alignof(pool_chunk));
}

// Merge sort of a singly linked list through `next`, ascending by `key`.
template <class Node, class Key>
Node* sort_list(Node* head, Key key) noexcept {
  if (head == nullptr || head->next == nullptr) return head;
  Node* slow = head;
  for (Node* fast = head->next; fast != nullptr && fast->next != nullptr; fast = fast->next->next) {
    slow = slow->next;
  }
  Node* second = slow->next;
  slow->next = nullptr;
  Node* a = sort_list(head, key);
  Node* b = sort_list(second, key);
  Node* merged = nullptr;
  Node** tail = &merged;
  while (a != nullptr && b != nullptr) {
    Node*& smaller = std::less<>{}(key(b), key(a)) ? b : a;
    *tail = smaller;
    tail = &smaller->next;
    smaller = smaller->next;
  }
  *tail = a != nullptr ? a : b;
  return merged;
}

}  // namespace

block_pool_layout validated_layout(std::string_view resource, block_pool_layout requested,
                                   const std::pmr::memory_resource* upstream) {
  constexpr std::size_t max_alignment = 4096;
  constexpr std::size_t max_growth_factor = 16;
  const auto invalid = [resource](const char* what) {
    throw std::invalid_argument("pmrkit::" + std::string(resource) + ": " + what);
  };
  if (requested.block_size == 0) invalid("block_size must not be 0");
  if (!is_power_of_two(requested.block_alignment) || requested.block_alignment > max_alignment) {
    invalid("block_alignment must be a power of two no greater than 4096");
  }
  if (requested.initial_blocks == 0) invalid("initial_blocks must not be 0");
  if (requested.max_blocks < requested.initial_blocks) {
    invalid("max_blocks_per_chunk must be at least initial_blocks");
  }
  if (requested.growth_factor == 0 || requested.growth_factor > max_growth_factor) {
    invalid("growth_factor must be between 1 and 16");
  }
  if (upstream == nullptr) invalid("upstream must not be null");
  // Every block holds the free-list link, and its size keeps the next block aligned.
  block_pool_layout layout = requested;
  layout.block_alignment = std::max(requested.block_alignment, alignof(free_block));
  std::size_t trailer_offset = 0;
  std::size_t bytes = 0;
  if (!checked_align_up(std::max(requested.block_size, sizeof(free_block)), layout.block_alignment,
                        layout.block_size) ||
      !chunk_bytes(layout, layout.max_blocks, trailer_offset, bytes)) {
    invalid("block_size times max_blocks_per_chunk overflows");
  }
  return layout;
}

void* block_pool::allocate_from_new_chunk(std::string_view name) {
  std::size_t trailer_offset = 0;
  std::size_t bytes = 0;
  if (!chunk_bytes(layout_, next_blocks_, trailer_offset, bytes)) {
    throw_allocation_error(failure_reason::size_overflow, layout_.block_size,
                           layout_.block_alignment, name);
  }
  auto* begin = static_cast<std::byte*>(
      allocate_from_upstream(upstream_, bytes, chunk_alignment(layout_), name, layout_.block_size,
                             layout_.block_alignment));
  auto* chunk = reinterpret_cast<pool_chunk*>(begin + trailer_offset);
  *chunk = {.next = chunks_,
            .previous = nullptr,
            .begin = begin,
            .blocks = next_blocks_,
            .bytes = bytes,
            .free = 0};
  std::memset(chunk->in_use_bits(), 0, bitmap_bytes(chunk->blocks));
  if (chunks_ != nullptr) chunks_->previous = chunk;
  chunks_ = chunk;
  ++chunk_count_;
  capacity_ += chunk->blocks;
  from_upstream_ += bytes;
  // What the previous chunk had left uncarved is dropped: try_allocate found no free block, so
  // the cursor had reached the limit.
  cursor_ = begin;
  limit_ = chunk->end(layout_.block_size);
  retire(cursor_, static_cast<std::size_t>(limit_ - cursor_));
  std::size_t grown = 0;
  next_blocks_ = checked_multiply(next_blocks_, layout_.growth_factor, grown)
                     ? std::min(grown, layout_.max_blocks)
                     : layout_.max_blocks;
  return try_allocate();
}

pool_chunk* block_pool::chunk_of(const void* p) const noexcept {
  const auto* address = static_cast<const std::byte*>(p);
  const auto holds = [&](const pool_chunk* chunk) {
    return address >= chunk->begin && address < chunk->end(layout_.block_size);
  };
  const pool_chunk* found = nullptr;
  if (last_found_ != nullptr && holds(last_found_)) {
    found = last_found_;
  } else {
    for (const pool_chunk* chunk = chunks_; chunk != nullptr; chunk = chunk->next) {
      if (holds(chunk)) {
        found = last_found_ = chunk;
        break;
      }
    }
  }
  if (found == nullptr ||
      static_cast<std::size_t>(address - found->begin) % layout_.block_size != 0) {
    return nullptr;
  }
  return const_cast<pool_chunk*>(found);
}

bool block_pool::in_use([[maybe_unused]] const pool_chunk* chunk,
                        [[maybe_unused]] const void* p) const noexcept {
#if PMRKIT_CHECKED
  const std::size_t index = block_index(chunk, p);
  return (const_cast<pool_chunk*>(chunk)->in_use_bits()[index / 64] >> (index % 64) & 1U) != 0;
#else
  return true;
#endif
}

#if PMRKIT_CHECKED
void block_pool::mark_in_use(const void* p) noexcept {
  pool_chunk* chunk = chunk_of(p);
  const std::size_t index = block_index(chunk, p);
  chunk->in_use_bits()[index / 64] |= std::uint64_t{1} << (index % 64);
}

void block_pool::mark_free(const void* p) noexcept {
  pool_chunk* chunk = chunk_of(p);
  const std::size_t index = block_index(chunk, p);
  chunk->in_use_bits()[index / 64] &= ~(std::uint64_t{1} << (index % 64));
}
#endif

bool block_pool::check_deallocate(const void* p, std::string_view name, std::size_t bytes,
                                  std::size_t alignment) const {
  const pool_chunk* chunk = chunk_of(p);
  if (chunk == nullptr) {
    report_violation({violation_kind::foreign_pointer, name, p, bytes, alignment});
    return false;
  }
  if (!in_use(chunk, p)) {
    report_violation({violation_kind::double_free, name, p, bytes, alignment});
    return false;
  }
  return true;
}

std::size_t block_pool::shrink() noexcept {
  if (chunks_ == nullptr) return 0;
  const std::size_t size = layout_.block_size;
  // The uncarved rest of the newest chunk is free too.
  pool_chunk* carving = chunks_;
  carving->free = static_cast<std::size_t>(limit_ - cursor_) / size;
  for (pool_chunk* chunk = chunks_->next; chunk != nullptr; chunk = chunk->next)
    chunk->free = 0;
  // With both lists in address order, one merged walk counts each chunk's free blocks.
  chunks_ = sort_list(chunks_, [](const pool_chunk* c) { return c->begin; });
  free_ = sort_list(free_, [](const free_block* b) { return b; });
  pool_chunk* chunk = chunks_;
  for (free_block* block = free_; block != nullptr; block = block->next) {
    while (reinterpret_cast<std::byte*>(block) >= chunk->end(size))
      chunk = chunk->next;
    ++chunk->free;
  }
  // Unlink the fully free blocks from the free list, then their chunks.
  free_block** link = &free_;
  chunk = chunks_;
  while (*link != nullptr) {
    while (reinterpret_cast<std::byte*>(*link) >= chunk->end(size))
      chunk = chunk->next;
    if (chunk->free == chunk->blocks) {
      *link = (*link)->next;
    } else {
      link = &(*link)->next;
    }
  }
  std::size_t returned = 0;
  pool_chunk* kept = nullptr;
  pool_chunk** tail = &kept;
  for (pool_chunk* next = nullptr; chunks_ != nullptr; chunks_ = next) {
    next = chunks_->next;
    if (chunks_->free == chunks_->blocks) {
      if (chunks_ == carving) cursor_ = limit_ = nullptr;
      return_chunk(chunks_);
      ++returned;
    } else {
      *tail = chunks_;
      tail = &chunks_->next;
    }
  }
  *tail = nullptr;
  chunks_ = kept;
  for (pool_chunk *previous = nullptr, *c = chunks_; c != nullptr; previous = c, c = c->next)
    c->previous = previous;
  last_found_ = nullptr;
  return returned;
}

void block_pool::return_chunk(pool_chunk* chunk) noexcept {
  --chunk_count_;
  capacity_ -= chunk->blocks;
  from_upstream_ -= chunk->bytes;
  const std::size_t bytes = chunk->bytes;
  std::byte* begin = chunk->begin;
  revive(begin, static_cast<std::size_t>(chunk->end(layout_.block_size) - begin));
  upstream_->deallocate(begin, bytes, chunk_alignment(layout_));
}

void block_pool::release() noexcept {
  while (chunks_ != nullptr) {
    pool_chunk* next = chunks_->next;
    return_chunk(chunks_);
    chunks_ = next;
  }
  free_ = nullptr;
  cursor_ = limit_ = nullptr;
  in_use_ = 0;
  next_blocks_ = layout_.initial_blocks;
  last_found_ = nullptr;
}

block_pool_counts block_pool::counts() const noexcept {
  return {.blocks_in_use = in_use_,
          .peak_blocks_in_use = peak_,
          .capacity_blocks = capacity_,
          .chunks = chunk_count_,
          .bytes_from_upstream = from_upstream_};
}

}  // namespace pmrkit::detail
