#include <pmr/arena/chunked_arena_resource.hpp>

#include <pmr/core/error.hpp>
#include <pmr/core/upstream.hpp>
#include <pmr/core/violation.hpp>

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

namespace pmrkit {

namespace {
std::size_t capacity(detail::chunk_header* chunk) noexcept {
  return static_cast<std::size_t>(chunk->end() - chunk->begin());
}
}  // namespace

chunked_arena_resource::chunked_arena_resource(chunked_arena_options options,
                                               std::pmr::memory_resource* upstream)
    : options_(options),
      name_(options.name),
      fast_limit_(std::min(options.size_limit, std::numeric_limits<std::size_t>::max() / 2)),
      chain_(detail::validated_growth("chunked_arena_resource", detail::growth_of(options),
                                      options.alignment, upstream),
             upstream) {
  options_.name = name_;
}

void* chunked_arena_resource::allocate_slow(std::size_t bytes, std::size_t alignment) {
  check_request(bytes, alignment, name_);
  alignment = std::max(alignment, options_.alignment);
  if (bytes > options_.size_limit) {
    throw_allocation_error(failure_reason::out_of_capacity, bytes, alignment, name_);
  }
  const auto [extent, needed] =
      detail::checked_block_need(bytes, options_.alignment, alignment, name_);
  // Aligned to at least the least alignment, with a rounded extent: the cursor stays aligned.
  void* p = chain_.try_bump(extent, alignment);
  if (p == nullptr) {
    p = needed > chain_.next_chunk_size() ? allocate_large(extent, alignment)
                                          : chain_.bump_in_next_chunk(extent, alignment, name_);
  }
#if PMRKIT_CHECKED
  last_block_ = p;
  last_size_ = bytes;
#endif
  return p;
}

void* chunked_arena_resource::allocate_large(std::size_t bytes, std::size_t alignment) {
  // A kept dedicated chunk serves again when one fits: the smallest such.
  detail::chunk_header** best = nullptr;
  for (detail::chunk_header** link = &large_kept_; *link != nullptr; link = &(*link)->next) {
    if (detail::chunk_fits(*link, bytes, alignment) &&
        (best == nullptr || (*link)->size < (*best)->size)) {
      best = link;
    }
  }
  detail::chunk_header* chunk = nullptr;
  if (best != nullptr) {
    chunk = *best;
    *best = chunk->next;
  } else {
    std::size_t needed = 0;
    (void)detail::chunk_size_for(bytes, alignment, needed);  // checked by the caller
    chunk = static_cast<detail::chunk_header*>(allocate_from_upstream(
        chain_.upstream(), needed, detail::chunk_alignment, name_, bytes, alignment));
    chunk->size = needed;
    chunk->index = 0;
    chain_.advance_growth();
  }
  chunk->next = large_;
  large_ = chunk;
  std::byte* p = align_pointer(chunk->begin(), alignment);
  chunk->top = p + bytes;
  detail::revive(p, bytes);
  return p;
}

#if PMRKIT_CHECKED
void chunked_arena_resource::report_misuse(void* p, std::size_t bytes,
                                           std::size_t alignment) const {
  if (p == last_block_ && bytes != last_size_) {
    report_violation(
        {violation_kind::size_mismatch, name_, p, bytes, alignment, last_size_, alignment});
  } else if (!owns(p)) {
    report_violation({violation_kind::foreign_pointer, name_, p, bytes, alignment, 0, 0});
  }
}
#endif

bool chunked_arena_resource::try_resize(void* p, std::size_t old_size, std::size_t new_size,
                                        std::size_t /*alignment*/) noexcept {
  auto* block = static_cast<std::byte*>(p);
  if (new_size > fast_limit_ || old_size > fast_limit_) return false;
  if (!chain_.move_cursor(block + extent_of(old_size), block + extent_of(new_size))) return false;
#if PMRKIT_CHECKED
  last_block_ = p;
  last_size_ = new_size;
#endif
  return true;
}

void chunked_arena_resource::reset() {
  note_peak();
  chain_.reset();
  keep_large_blocks_after(nullptr);
  ++epoch_;
#if PMRKIT_CHECKED
  last_block_ = nullptr;
#endif
}

void chunked_arena_resource::clear() {
  note_peak();
  chain_.trim_to_first();
  release_large_blocks();
  ++epoch_;
#if PMRKIT_CHECKED
  last_block_ = nullptr;
#endif
}

void chunked_arena_resource::release() {
  note_peak();
  chain_.release();
  release_large_blocks();
  ++epoch_;
#if PMRKIT_CHECKED
  last_block_ = nullptr;
#endif
}

void chunked_arena_resource::shrink() noexcept {
  chain_.shrink();
  while (large_kept_ != nullptr) {
    detail::chunk_header* next = large_kept_->next;
    detail::return_chunk(chain_.upstream(), large_kept_);
    large_kept_ = next;
  }
}

arena_checkpoint chunked_arena_resource::checkpoint() const noexcept {
  const detail::bump_chain::position at = chain_.tell();
  const std::size_t index = at.chunk != nullptr ? at.chunk->index : 0;
  const std::size_t offset =
      at.chunk != nullptr ? static_cast<std::size_t>(at.cursor - at.chunk->begin()) : 0;
  return detail::checkpoint_access::make(this, epoch_, index, offset, at.chunk, large_);
}

void chunked_arena_resource::rewind(const arena_checkpoint& marker) {
  using access = detail::checkpoint_access;
  const bool valid =
      access::owner(marker) == this && access::epoch(marker) == epoch_ && marker <= checkpoint();
  if (!valid) {
#if PMRKIT_CHECKED
    report_violation({violation_kind::stale_checkpoint, name_, access::handle(marker), 0, 0, 0, 0});
#endif
    return;
  }
  note_peak();
  auto* chunk = static_cast<detail::chunk_header*>(access::handle(marker));
  chain_.rewind_to({chunk, chunk != nullptr ? chunk->begin() + access::offset(marker) : nullptr});
  keep_large_blocks_after(static_cast<const detail::chunk_header*>(access::aux(marker)));
#if PMRKIT_CHECKED
  last_block_ = nullptr;
#endif
}

void chunked_arena_resource::keep_large_blocks_after(
    const detail::chunk_header* newest_kept) noexcept {
  while (large_ != nullptr && large_ != newest_kept) {
    detail::chunk_header* chunk = large_;
    large_ = chunk->next;
    detail::retire(chunk->begin(), capacity(chunk));
    chunk->next = large_kept_;
    large_kept_ = chunk;
  }
}

void chunked_arena_resource::release_large_blocks() noexcept {
  for (detail::chunk_header* list : {large_, large_kept_}) {
    while (list != nullptr) {
      detail::chunk_header* next = list->next;
      detail::return_chunk(chain_.upstream(), list);
      list = next;
    }
  }
  large_ = large_kept_ = nullptr;
}

bool chunked_arena_resource::owns(const void* p) const noexcept {
  if (chain_.owns(p)) return true;
  const auto address = reinterpret_cast<std::uintptr_t>(p);
  for (detail::chunk_header* list : {large_, large_kept_}) {
    for (; list != nullptr; list = list->next) {
      if (address >= reinterpret_cast<std::uintptr_t>(list->begin()) &&
          address < reinterpret_cast<std::uintptr_t>(list->end())) {
        return true;
      }
    }
  }
  return false;
}

arena_stats chunked_arena_resource::stats() const noexcept {
  const detail::bump_chain::usage chain = chain_.measure();
  arena_stats result;
  result.bytes_from_upstream = chain.from_upstream;
  result.bytes_used = chain.used;
  result.bytes_available = chain.available;
  result.chunk_count = chain.chunks;
  for (detail::chunk_header* chunk = large_; chunk != nullptr; chunk = chunk->next) {
    result.bytes_from_upstream += chunk->size;
    result.bytes_used += static_cast<std::size_t>(chunk->top - chunk->begin());
    ++result.chunk_count;
  }
  for (detail::chunk_header* chunk = large_kept_; chunk != nullptr; chunk = chunk->next) {
    result.bytes_from_upstream += chunk->size;
    result.bytes_available += capacity(chunk);
    ++result.chunk_count;
  }
  result.bytes_reserved = result.bytes_from_upstream;
  result.waste = result.bytes_from_upstream - result.bytes_used - result.bytes_available;
  result.peak_bytes_used = std::max(peak_used_, result.bytes_used);
  result.current_chunk_size = chain_.growth_size();
  return result;
}

void chunked_arena_resource::note_peak() noexcept {
  peak_used_ = stats().peak_bytes_used;
}

}  // namespace pmrkit
