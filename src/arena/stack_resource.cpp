#include <pmr/arena/stack_resource.hpp>

#include <pmr/core/error.hpp>
#include <pmr/core/violation.hpp>

#include <algorithm>
#include <cstring>
#include <new>
#include <stdexcept>
#include <string>

namespace pmrkit {

stack_resource::stack_resource(stack_options options, std::pmr::memory_resource* upstream)
    : options_(options),
      name_(options.name),
      chain_(detail::validated_growth("stack_resource", detail::growth_of(options),
                                      options.alignment, upstream),
             upstream) {
  options_.name = name_;
}

void* stack_resource::allocate_slow(std::size_t bytes, std::size_t alignment) {
  check_request(bytes, alignment, name_);
  const std::size_t effective = std::max(alignment, options_.alignment);
  const std::size_t extent =
      detail::checked_block_need(bytes, options_.alignment, alignment, name_).extent;
#if PMRKIT_CHECKED
  if (records_.size() == records_.capacity()) {
    try {
      records_.reserve(std::max<std::size_t>(64, 2 * records_.size()));
    } catch (const std::bad_alloc&) {
      throw_allocation_error(failure_reason::out_of_capacity, bytes, alignment, name_);
    }
  }
#endif
  // Aligned to at least the least alignment, with a rounded extent: the cursor stays aligned.
  void* p = alignment > options_.alignment ? bump_over_aligned(extent, alignment)
                                           : chain_.try_bump_at_cursor(extent);
  if (p == nullptr) {
    p = chain_.bump_in_next_chunk(extent, effective, name_);
    note_peak();
  }
#if PMRKIT_CHECKED
  records_.push_back({static_cast<std::byte*>(p), bytes, alignment, chain_.tell().chunk});
#endif
  return p;
}

// Alignment padding before a block would leave the cursor short of where it
// was when the block is popped, and the block before it no longer ending at
// the cursor: the cursor the bump started from is kept just below the block.
// (The first block of a chunk needs none: popping it leaves the chunk.)
void* stack_resource::bump_over_aligned(std::size_t extent, std::size_t alignment) noexcept {
  std::byte* from = chain_.tell().cursor;
  const std::size_t link = extent_of(sizeof from);
  if (from == nullptr || chain_.try_bump_at_cursor(link) == nullptr) return nullptr;
  auto* block = static_cast<std::byte*>(chain_.try_bump(extent, alignment));
  if (block == nullptr) {
    (void)chain_.move_cursor(from + link, from);
    return nullptr;
  }
  detail::revive(block - sizeof from, sizeof from);
  std::memcpy(block - sizeof from, &from, sizeof from);
  return block;
}

bool stack_resource::pop_over_aligned(std::byte* block, std::size_t extent) noexcept {
  const detail::bump_chain::position at = chain_.tell();
  if (at.chunk == nullptr ||
      static_cast<std::size_t>(reinterpret_cast<std::uintptr_t>(at.cursor) -
                               reinterpret_cast<std::uintptr_t>(block)) != extent) {
    return false;
  }
  std::byte* back_to = block;
  if (block != at.chunk->first) std::memcpy(&back_to, block - sizeof back_to, sizeof back_to);
  return chain_.pop(block, extent, back_to);
}

#if PMRKIT_CHECKED
void stack_resource::pop_checked(void* p, std::size_t bytes, std::size_t alignment) {
  if (records_.empty() || records_.back().block != p) {
    const bool in_use = std::any_of(records_.begin(), records_.end(),
                                    [p](const record& r) { return r.block == p; });
    report_violation({in_use ? violation_kind::out_of_order : violation_kind::foreign_pointer,
                      name_, p, bytes, alignment, 0, 0});
    return;
  }
  const record& top = records_.back();
  if (bytes != top.size || alignment != top.alignment) {
    report_violation(
        {bytes != top.size ? violation_kind::size_mismatch : violation_kind::alignment_mismatch,
         name_, p, bytes, alignment, top.size, top.alignment});
    return;
  }
  records_.pop_back();
  (void)pop_newest(static_cast<std::byte*>(p), bytes, alignment);  // the newest block: it pops
}
#endif

bool stack_resource::try_resize(void* p, std::size_t old_size, std::size_t new_size,
                                [[maybe_unused]] std::size_t alignment) noexcept {
#if PMRKIT_CHECKED
  if (records_.empty() || records_.back().block != p || records_.back().size != old_size ||
      records_.back().alignment != alignment) {
    return false;
  }
#endif
  // The newest block ends at the cursor (pops return it there exactly).
  const detail::bump_chain::position at = chain_.tell();
  auto* block = static_cast<std::byte*>(p);
  if (at.chunk == nullptr || old_size > fast_limit || new_size > fast_limit ||
      reinterpret_cast<std::uintptr_t>(at.cursor) - reinterpret_cast<std::uintptr_t>(block) !=
          extent_of(old_size) ||
      extent_of(new_size) > static_cast<std::size_t>(at.chunk->end() - block)) {
    return false;
  }
  if (!chain_.move_cursor(at.cursor, block + extent_of(new_size))) return false;
#if PMRKIT_CHECKED
  records_.back().size = new_size;
#endif
  return true;
}

void stack_resource::rewind_slow(const arena_checkpoint& marker) {
  using access = detail::checkpoint_access;
  auto* chunk = static_cast<detail::chunk_header*>(access::handle(marker));
  bool valid =
      access::owner(marker) == this && access::epoch(marker) == epoch_ && marker <= checkpoint();
  std::byte* to = nullptr;
  if (valid && chunk != nullptr) {
    // Same epoch: the chunk is still held. A chunk inserted before it since
    // has moved it past the position (its index changed); a marker at or below
    // the chunk's first block was freed by an earlier rewind, and the chunk
    // re-entered since.
    to = chunk->begin() + access::offset(marker);
    valid = chunk->index == access::chunk(marker) && to > chunk->first;
  }
#if PMRKIT_CHECKED
  std::size_t kept = records_.size();
  if (valid) {
    const auto before_marker = [&](const record& r) {
      return chunk != nullptr &&
             (r.chunk->index < chunk->index || (r.chunk == chunk && r.block < to));
    };
    while (kept > 0 && !before_marker(records_[kept - 1]))
      --kept;
    // A block in use across the marker: the marker was freed by an earlier
    // pop or rewind, and the stack has grown past it again.
    if (kept > 0) {
      const record& newest = records_[kept - 1];
      valid = newest.chunk != chunk ||
              static_cast<std::size_t>(to - newest.block) >= extent_of(newest.size);
    }
  }
#endif
  if (!valid) {
#if PMRKIT_CHECKED
    report_violation({violation_kind::stale_checkpoint, name_, access::handle(marker), 0, 0, 0, 0});
#endif
    return;
  }
  note_peak();
  chain_.rewind_to(chunk != nullptr ? detail::bump_chain::position{chunk, to} : chain_.start());
#if PMRKIT_CHECKED
  records_.erase(records_.begin() + static_cast<std::ptrdiff_t>(kept), records_.end());
#endif
}

void stack_resource::reset() noexcept {
  note_peak();
  chain_.rewind_to(chain_.start());
  ++epoch_;
#if PMRKIT_CHECKED
  records_.clear();
#endif
}

void stack_resource::release() noexcept {
  note_peak();
  chain_.release();
  ++epoch_;
#if PMRKIT_CHECKED
  std::vector<record>().swap(records_);
#endif
}

arena_stats stack_resource::stats() const noexcept {
  const detail::bump_chain::usage chain = chain_.measure();
  arena_stats result;
  result.bytes_from_upstream = chain.from_upstream;
  result.bytes_reserved = chain.from_upstream;
  result.bytes_used = chain.used;
  result.bytes_available = chain.available;
  result.chunk_count = chain.chunks;
  result.waste = chain.from_upstream - chain.used - chain.available;
  result.peak_bytes_used = std::max(peak_used_, chain.used);
  result.current_chunk_size = chain_.growth_size();
  return result;
}

}  // namespace pmrkit
