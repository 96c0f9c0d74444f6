#include <pmr/pool/detail/block_pool.hpp>

#include <pmr/core/align.hpp>
#include <pmr/core/error.hpp>
#include <pmr/core/options.hpp>
#include <pmr/core/upstream.hpp>
#include <pmr/core/violation.hpp>

#include <algorithm>
#include <cstring>
#include <functional>

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

// Under ASan or memcheck: poisons or unpoisons the link word of every block of the free list
// `head`.
void set_links_poisoned([[maybe_unused]] free_block* head,
                        [[maybe_unused]] bool poisoned) noexcept {
#if PMRKIT_POISONS_MEMORY
  while (head != nullptr) {
    unpoison(head, sizeof(free_block));
    free_block* next = head->next;
    if (poisoned) poison(head, sizeof(free_block));
    head = next;
  }
#endif
}

}  // namespace

std::size_t blocks_fitting(const block_pool_layout& layout, std::size_t bytes) noexcept {
  // chunk_bytes grows with the blocks: bisect for the most that fit.
  std::size_t low = 0;
  std::size_t high = bytes / layout.block_size;
  while (low < high) {
    const std::size_t middle = low + (high - low + 1) / 2;
    std::size_t trailer_offset = 0;
    std::size_t needed = 0;
    if (chunk_bytes(layout, middle, trailer_offset, needed) && needed <= bytes) {
      low = middle;
    } else {
      high = middle - 1;
    }
  }
  return low;
}

block_pool_layout validated_layout(std::string_view class_name, block_pool_layout requested) {
  constexpr std::size_t max_alignment = 4096;
  require_option(requested.block_size != 0, class_name, "block_size", "must not be 0");
  require_option(
      is_power_of_two(requested.block_alignment) && requested.block_alignment <= max_alignment,
      class_name, "block_alignment", "must be a power of two no greater than 4096");
  (void)validated_growth(requested.growth, 1, class_name, "initial_blocks", "max_blocks_per_chunk");
  // Every block holds the free-list link, and its size keeps the next block aligned.
  block_pool_layout layout = requested;
  layout.block_alignment = std::max(requested.block_alignment, alignof(free_block));
  std::size_t trailer_offset = 0;
  std::size_t bytes = 0;
  if (!checked_align_up(std::max(requested.block_size, sizeof(free_block)), layout.block_alignment,
                        layout.block_size) ||
      !chunk_bytes(layout, layout.growth.max, trailer_offset, bytes)) {
    throw_invalid_option(class_name, "block_size", "times max_blocks_per_chunk overflows");
  }
  return layout;
}

void* block_pool::allocate_from_new_chunk(std::string_view name) {
  pool_chunk* chunk = carving_ != nullptr ? carving_->next : chunks_;
  if (chunk == nullptr) {
    std::size_t trailer_offset = 0;
    std::size_t bytes = 0;
    if (!chunk_bytes(layout_, next_blocks_, trailer_offset, bytes)) {
      throw_allocation_error(failure_reason::size_overflow, layout_.block_size,
                             layout_.block_alignment, name);
    }
    auto* begin = static_cast<std::byte*>(
        allocate_from_upstream(upstream_, bytes, chunk_alignment(layout_), name, layout_.block_size,
                               layout_.block_alignment));
    chunk = reinterpret_cast<pool_chunk*>(begin + trailer_offset);
    *chunk = {.next = nullptr,
              .sequence = newest_ != nullptr ? newest_->sequence + 1 : 0,
              .begin = begin,
              .blocks = next_blocks_,
              .bytes = bytes,
              .free = 0};
    std::memset(chunk->in_use_bits(), 0, bitmap_bytes(chunk->blocks));
    (newest_ != nullptr ? newest_->next : chunks_) = chunk;
    newest_ = chunk;
    ++chunk_count_;
    capacity_ += chunk->blocks;
    from_upstream_ += bytes;
    retire(begin, static_cast<std::size_t>(chunk->end(layout_.block_size) - begin));
    next_blocks_ = layout_.growth.after(next_blocks_);
  }
  // try_allocate found no free block, so the cursor had reached the limit: nothing is dropped.
  carving_ = chunk;
  cursor_ = chunk->begin;
  limit_ = chunk->end(layout_.block_size);
  return try_allocate();
}

void block_pool::restart_carving() noexcept {
  magazine_.clear();
  listed_ = carved_ = 0;
  free_ = nullptr;
  carving_ = chunks_;
  cursor_ = chunks_->begin;
  limit_ = chunks_->end(layout_.block_size);
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

void block_pool::spill() noexcept {
  const std::uint32_t moved = magazine_.size() / 2;
  magazine_.take_oldest(moved, [this](void* block) { push_free(static_cast<free_block*>(block)); });
  listed_ += moved;
}

void block_pool::empty_magazine() noexcept {
  listed_ += magazine_.size();
  magazine_.take_all([this](void* block) { push_free(static_cast<free_block*>(block)); });
}

std::size_t block_pool::shrink() noexcept {
  if (chunks_ == nullptr) return 0;
  empty_magazine();
  // Sorting and unlinking read and write the free blocks' links: unpoisoned until the end.
  set_links_poisoned(free_, false);
  const std::size_t size = layout_.block_size;
  // Blocks not carved yet are free: the rest of the carving chunk and every chunk after it.
  const std::size_t uncarved = static_cast<std::size_t>(limit_ - cursor_) / size;
  bool carved_before = carving_ != nullptr;  // chunks before the carving one are all carved
  for (pool_chunk* chunk = chunks_; chunk != nullptr; chunk = chunk->next) {
    if (chunk == carving_) {
      chunk->free = uncarved;
      carved_before = false;
    } else {
      chunk->free = carved_before ? 0 : chunk->blocks;
    }
  }
  // With both lists in address order, one merged walk counts each chunk's free blocks.
  chunks_ = sort_list(chunks_, [](const pool_chunk* c) { return c->begin; });
  free_ = sort_list(free_, [](const free_block* b) { return b; });
  pool_chunk* chunk = chunks_;
  for (free_block* block = free_; block != nullptr; block = block->next) {
    while (reinterpret_cast<std::byte*>(block) >= chunk->end(size))
      chunk = chunk->next;
    ++chunk->free;
  }
  // Unlink the blocks of fully free chunks from the free list, then the chunks.
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
  // Back to chain order, which carving follows.
  chunks_ = sort_list(chunks_, [](const pool_chunk* c) { return c->sequence; });
  std::size_t returned = 0;
  pool_chunk* kept = nullptr;
  pool_chunk** tail = &kept;
  pool_chunk* carving = nullptr;  // the carving chunk if kept, else the newest kept before it
  bool past_carving = carving_ == nullptr;
  for (pool_chunk* next = nullptr; chunks_ != nullptr; chunks_ = next) {
    next = chunks_->next;
    const bool is_carving = chunks_ == carving_;
    if (chunks_->free == chunks_->blocks) {
      // Every carved block of the chunk was on the free list.
      const std::size_t carved =
          is_carving ? chunks_->blocks - uncarved : (past_carving ? 0 : chunks_->blocks);
      carved_ -= carved;
      listed_ -= carved;
      returned += chunks_->bytes;
      return_chunk(chunks_);
    } else {
      *tail = chunks_;
      tail = &chunks_->next;
      if (!past_carving) carving = chunks_;
    }
    if (is_carving) past_carving = true;
  }
  *tail = nullptr;
  chunks_ = kept;
  newest_ = nullptr;
  for (pool_chunk* c = chunks_; c != nullptr; c = c->next)
    newest_ = c;
  if (carving != carving_) cursor_ = limit_ = nullptr;  // the carving chunk went back
  carving_ = carving;
  last_found_ = nullptr;
  set_links_poisoned(free_, true);
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
  newest_ = nullptr;
  forget_carving();
  next_blocks_ = layout_.growth.initial;
  last_found_ = nullptr;
}

block_pool_counts block_pool::counts() const noexcept {
  return {.blocks_in_use = blocks_in_use(),
          .peak_blocks_in_use = peak_,
          .capacity_blocks = capacity_,
          .chunks = chunk_count_,
          .bytes_from_upstream = from_upstream_};
}

}  // namespace pmrkit::detail
