#include <pmr/arena/detail/bump_chain.hpp>

#include <pmr/core/error.hpp>
#include <pmr/core/options.hpp>
#include <pmr/core/upstream.hpp>

#include <algorithm>

namespace pmrkit::detail {

block_need checked_block_need(std::size_t bytes, std::size_t granule, std::size_t alignment,
                              std::string_view name) {
  block_need need{};
  if (!checked_block_extent(bytes, granule, need.extent) ||
      !chunk_size_for(need.extent, std::max(alignment, granule), need.chunk_bytes)) {
    throw_allocation_error(failure_reason::size_overflow, bytes, alignment, name);
  }
  return need;
}

void return_chunk(std::pmr::memory_resource* upstream, chunk_header* chunk) noexcept {
  revive(chunk->begin(), static_cast<std::size_t>(chunk->end() - chunk->begin()));
  upstream->deallocate(chunk, chunk->size, chunk_alignment);
}

std::span<std::byte> validated_initial_buffer(std::string_view class_name,
                                              std::span<std::byte> buffer) {
  require_option(buffer.data() != nullptr || buffer.empty(), class_name, "initial_buffer",
                 "must not have a null data pointer with a nonzero size");
  return buffer;
}

bool chunk_fits(chunk_header* chunk, std::size_t bytes, std::size_t alignment) noexcept {
  std::byte* start = align_pointer(chunk->begin(), alignment);
  return start <= chunk->end() && static_cast<std::size_t>(chunk->end() - start) >= bytes;
}

void* bump_chain::bump_in_next_chunk(std::size_t bytes, std::size_t alignment,
                                     std::string_view name) {
  chunk_header* next = current_ != nullptr ? current_->next : first_;
  if (next == nullptr || !fits(next, bytes, alignment)) {
    std::size_t needed = 0;
    if (!chunk_size_for(bytes, alignment, needed)) {
      throw_allocation_error(failure_reason::size_overflow, bytes, alignment, name);
    }
    const std::size_t size = std::max(needed, next_size_);
    auto* fresh = static_cast<chunk_header*>(
        allocate_from_upstream(upstream_, size, chunk_alignment, name, bytes, alignment));
    from_upstream_ += size;
    fresh->size = size;
    fresh->top = start_of(fresh);
    fresh->first = fresh->top;
    retire(fresh->begin(), static_cast<std::size_t>(fresh->end() - fresh->begin()));
    // A kept chunk too small for this request stays after the new one.
    fresh->next = next;
    if (current_ != nullptr) {
      current_->next = fresh;
    } else {
      first_ = fresh;
    }
    fresh->index = current_ != nullptr ? current_->index + 1 : 0;
    for (chunk_header* later = next; later != nullptr; later = later->next)
      ++later->index;
    advance_growth();
    next = fresh;
  }
  if (current_ != nullptr) {
    current_->top = cursor_;
    used_before_ += static_cast<std::size_t>(cursor_ - start_of(current_));
  }
  next->previous = current_;
  current_ = next;
  cursor_ = start_of(next);
  limit_ = end_of(next);
  void* block = try_bump(bytes, alignment);
  next->first = static_cast<std::byte*>(block);
  return block;
}

void bump_chain::step_back() noexcept {
  // The chunk before is the one the position came from: its top is where
  // the position was before entering the chunk just emptied.
  chunk_header* previous = current_->previous;
  if (previous == nullptr) {  // the first chunk: back to its start
    cursor_ = current_->first = start_of(current_);
    return;
  }
  current_ = previous;
  cursor_ = previous->top;
  limit_ = end_of(previous);
  used_before_ -= static_cast<std::size_t>(previous->top - start_of(previous));
}

void bump_chain::rewind_to(position to) noexcept {
  if (current_ == nullptr) return;
  // Everything from `to` up to the cursor is free again.
  chunk_header* chunk = to.chunk != nullptr ? to.chunk : first_;
  std::byte* from = to.chunk != nullptr ? to.cursor : start_of(first_);
  for (;;) {
    std::byte* end = chunk == current_ ? cursor_ : chunk->top;
    if (end > from) retire(from, static_cast<std::size_t>(end - from));
    if (chunk == current_) break;
    used_before_ -= static_cast<std::size_t>(chunk->top - start_of(chunk));
    chunk = chunk->next;
    from = start_of(chunk);
  }
  if (to.chunk != nullptr && to.cursor < to.chunk->first) {
    to.chunk->first = to.cursor;  // nothing is left in it
  }
  current_ = to.chunk;
  cursor_ = to.cursor;
  limit_ = to.chunk != nullptr ? end_of(to.chunk) : nullptr;
}

bool bump_chain::position_at(coordinates at, position& result) const noexcept {
  if (at.chunk == 0 && at.offset == 0) {  // the start, with or without a chunk
    result = start();
    return true;
  }
  if (current_ == nullptr || at.chunk > current_->index) return false;
  chunk_header* chunk = at.chunk == current_->index ? current_ : first_;
  while (chunk->index != at.chunk)
    chunk = chunk->next;
  std::byte* start = start_of(chunk);
  const std::byte* used_to = chunk == current_ ? cursor_ : chunk->top;
  if (at.offset > static_cast<std::size_t>(used_to - start)) return false;
  result = {chunk, start + at.offset};
  return true;
}

std::size_t bump_chain::give_back(chunk_header* chunk) noexcept {
  const std::size_t size = chunk->size;
  from_upstream_ -= size;
  return_chunk(upstream_, chunk);
  return size;
}

bool bump_chain::fits(const chunk_header* chunk, std::size_t bytes,
                      std::size_t alignment) const noexcept {
  std::byte* start = is_buffer(chunk)
                         ? align_pointer(buffer_begin_, alignment)
                         : align_pointer(const_cast<chunk_header*>(chunk)->begin(), alignment);
  std::byte* end = end_of(chunk);
  return start <= end && static_cast<std::size_t>(end - start) >= bytes;
}

std::size_t bump_chain::trim_to_first() noexcept {
  reset();
  if (first_ == nullptr) return 0;
  std::size_t given = 0;
  for (chunk_header* chunk = first_->next; chunk != nullptr;) {
    chunk_header* next = chunk->next;
    given += give_back(chunk);
    chunk = next;
  }
  first_->next = nullptr;
  return given;
}

std::size_t bump_chain::shrink() noexcept {
  chunk_header*& link = current_ != nullptr ? current_->next : first_;
  std::size_t given = 0;
  for (chunk_header* chunk = link; chunk != nullptr;) {
    chunk_header* next = chunk->next;
    given += give_back(chunk);
    chunk = next;
  }
  link = nullptr;
  return given;
}

void bump_chain::give_back_chunks() noexcept {
  for (chunk_header* chunk = first_; chunk != nullptr;) {
    chunk_header* next = chunk->next;
    if (!is_buffer(chunk)) (void)give_back(chunk);
    chunk = next;
  }
}

void bump_chain::release() noexcept {
  if (first_ == &buffer_) {  // what was used of the buffer is free again
    std::byte* used_to = current_ == &buffer_ ? cursor_ : buffer_.top;
    if (used_to > buffer_start_)
      retire(buffer_start_, static_cast<std::size_t>(used_to - buffer_start_));
  }
  give_back_chunks();
  if (buffer_end_ != buffer_begin_) {
    enter_buffer();
  } else {
    first_ = current_ = nullptr;
    cursor_ = limit_ = nullptr;
    used_before_ = 0;
  }
  next_size_ = restart_size(growth_, static_cast<std::size_t>(buffer_end_ - buffer_begin_));
}

chunk_header* bump_chain::chunk_of(const void* p) const noexcept {
  const auto address = reinterpret_cast<std::uintptr_t>(p);
  for (chunk_header* chunk = first_; chunk != nullptr; chunk = chunk->next) {
    const std::byte* begin = is_buffer(chunk) ? buffer_begin_ : chunk->begin();
    if (address >= reinterpret_cast<std::uintptr_t>(begin) &&
        address < reinterpret_cast<std::uintptr_t>(end_of(chunk))) {
      return chunk;
    }
  }
  return nullptr;
}

bool bump_chain::in_free_part(const void* p) const noexcept {
  const chunk_header* chunk = chunk_of(p);
  if (chunk == nullptr) return false;
  const auto address = reinterpret_cast<std::uintptr_t>(p);
  if (chunk == current_) return address >= reinterpret_cast<std::uintptr_t>(cursor_);
  for (const chunk_header* earlier = first_; earlier != current_; earlier = earlier->next) {
    if (earlier == chunk) return address >= reinterpret_cast<std::uintptr_t>(chunk->top);
  }
  return true;  // a kept chunk after the current one
}

std::size_t bump_chain::chunk_count() const noexcept {
  std::size_t count = 0;
  for (chunk_header* chunk = first_; chunk != nullptr; chunk = chunk->next)
    count += is_buffer(chunk) ? 0 : 1;  // the buffer is no chunk from the upstream
  return count;
}

bump_chain::usage bump_chain::measure() const noexcept {
  usage result;
  bool after_current = current_ == nullptr;
  for (chunk_header* chunk = first_; chunk != nullptr; chunk = chunk->next) {
    result.chunks += is_buffer(chunk) ? 0 : 1;  // the buffer is no chunk from the upstream
    result.from_upstream += chunk->size;        // 0 for the buffer
    std::byte* start = start_of(chunk);
    const auto capacity = static_cast<std::size_t>(end_of(chunk) - start);
    if (after_current) {
      result.available += capacity;
    } else if (chunk == current_) {
      result.used += static_cast<std::size_t>(cursor_ - start);
      result.available += static_cast<std::size_t>(limit_ - cursor_);
      after_current = true;
    } else {
      result.used += static_cast<std::size_t>(chunk->top - start);
    }
  }
  return result;
}

}  // namespace pmrkit::detail
