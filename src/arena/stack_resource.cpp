#include <pmr/arena/stack_resource.hpp>

#include <pmr/core/error.hpp>
#include <pmr/core/options.hpp>
#include <pmr/core/upstream.hpp>
#include <pmr/core/violation.hpp>

#include <algorithm>
#include <cstring>
#include <new>
#include <string>
#include <variant>

namespace pmrkit {

stack_resource::stack_resource(const stack_options& options, std::pmr::memory_resource* upstream)
    : options_(options),
      name_(options.name),
      chain_(detail::validated_chain_growth("stack_resource", options.initial_chunk_size,
                                            options.max_chunk_size, options.growth_factor,
                                            options.alignment),
             options.alignment, require_upstream(upstream, "pmrkit::stack_resource"),
             detail::validated_initial_buffer("stack_resource", options.initial_buffer)) {
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
    note_peak();
    p = chain_.bump_in_next_chunk(extent, effective, name_);
    note_upstream();
  }
  history_.push();
#if PMRKIT_CHECKED
  records_.push_back({static_cast<std::byte*>(p), bytes, alignment});
#endif
  return p;
}

// Alignment padding before a block would leave the cursor short of where it
// was when the block is popped, and the block before it no longer ending at
// the cursor: the cursor the bump started from is kept just below the block.
// (The first block of a chunk needs none: popping it leaves the chunk.)
// Nothing changes when the block does not fit: the bytes at the cursor may
// still be a popped block's that reallocate_newest is about to copy.
void* stack_resource::bump_over_aligned(std::size_t extent, std::size_t alignment) noexcept {
  const detail::bump_chain::position at = chain_.tell();
  std::byte* from = at.cursor;
  const std::size_t link = extent_of(sizeof from);
  if (from == nullptr) return nullptr;
  const auto end = reinterpret_cast<std::uintptr_t>(chain_.end_of(at.chunk));
  const auto linked = reinterpret_cast<std::uintptr_t>(from) + link;
  const std::uintptr_t aligned = (linked + alignment - 1) & ~(std::uintptr_t{alignment} - 1);
  if (linked > end || aligned > end || end - aligned < extent) return nullptr;
  (void)chain_.try_bump_at_cursor(link);
  auto* block = static_cast<std::byte*>(chain_.try_bump(extent, alignment));
  detail::revive(block - sizeof from, sizeof from);
  std::memcpy(block - sizeof from, &from, sizeof from);
  return block;
}

bool stack_resource::pop_over_aligned(std::byte* block, std::size_t extent,
                                      bool keep_contents) noexcept {
  const detail::bump_chain::position at = chain_.tell();
  if (at.chunk == nullptr ||
      static_cast<std::size_t>(reinterpret_cast<std::uintptr_t>(at.cursor) -
                               reinterpret_cast<std::uintptr_t>(block)) != extent) {
    return false;
  }
  std::byte* back_to = block;
  if (block != at.chunk->first) std::memcpy(&back_to, block - sizeof back_to, sizeof back_to);
  return chain_.pop(block, extent, back_to, keep_contents);
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
      extent_of(new_size) > static_cast<std::size_t>(chain_.end_of(at.chunk) - block)) {
    return false;
  }
  if (!chain_.move_cursor(at.cursor, block + extent_of(new_size))) return false;
  // The block is another one now: markers taken after it are stale.
  history_.pop();
  history_.push();
#if PMRKIT_CHECKED
  records_.back().size = new_size;
#endif
  return true;
}

void* stack_resource::reallocate_newest(void* p, std::size_t old_size, std::size_t new_size,
                                        std::size_t alignment) {
  auto* block = static_cast<std::byte*>(p);
  const detail::bump_chain::position at = chain_.tell();
  if (at.chunk == nullptr || old_size > fast_limit ||
      reinterpret_cast<std::uintptr_t>(at.cursor) - reinterpret_cast<std::uintptr_t>(block) !=
          extent_of(old_size)) {
    return nullptr;  // not the newest block
  }
#if PMRKIT_CHECKED
  if (records_.empty() || records_.back().block != block || records_.back().size != old_size ||
      records_.back().alignment != alignment) {
    return nullptr;  // reallocate's deallocate reports what is wrong
  }
#endif
  // Popped first, so that the new block is the newest; its bytes stay as
  // they are until they are copied. Should the allocation fail (a bad size,
  // the upstream), the pop is undone exactly: the same block, the same markers.
  const detail::bump_chain::pop_undo undo = chain_.before_pop();
  const detail::arena_marker_history history = history_;
#if PMRKIT_CHECKED
  const record old = records_.back();
  records_.pop_back();
#endif
  if (!pop_newest(block, old_size, alignment, /*keep_contents=*/true)) {
#if PMRKIT_CHECKED
    records_.push_back(old);
#endif
    return nullptr;
  }
  void* moved = nullptr;
  try {
    moved = allocate(new_size, alignment);
  } catch (...) {
    chain_.undo_pop(undo);
    history_ = history;
#if PMRKIT_CHECKED
    records_.push_back(old);  // the capacity it had
#endif
    throw;
  }
  const std::size_t kept = old_size < new_size ? old_size : new_size;
  std::memmove(moved, block, kept);
  // Retire what the old block held and the new one does not cover.
  const std::size_t old_extent = extent_of(old_size);
  auto* fresh = static_cast<std::byte*>(moved);
  std::byte* fresh_end = fresh + extent_of(new_size);
  if (fresh_end <= block || fresh >= block + old_extent) {
    detail::retire(block, old_extent);
  } else {
    if (block < fresh) detail::retire(block, static_cast<std::size_t>(fresh - block));
    if (fresh_end < block + old_extent) {
      detail::retire(fresh_end, static_cast<std::size_t>(block + old_extent - fresh_end));
    }
  }
  return moved;
}

void stack_resource::rewind(const arena_checkpoint& marker) {
  const auto* where = std::get_if<stack_marker>(&marker.where());
  detail::bump_chain::position to;
  // Whose it is, since which reset, whether the history was cut below it
  // since, and (should that record have forgotten) whether its place is at
  // or before the position now: never an address.
  bool valid = where != nullptr && id_.is(marker.arena()) && marker.epoch() == epoch_ &&
               history_.valid({marker.depth(), detail::checkpoint_access::stamp(marker)}) &&
               chain_.position_at({where->chunk, where->offset}, to);
#if PMRKIT_CHECKED
  // The blocks kept are the first `depth`; the newest of them must end at or
  // before the marker (the record above cannot have forgotten that).
  if (valid && marker.depth() > 0) {
    const record& newest = records_[static_cast<std::size_t>(marker.depth()) - 1];
    const detail::chunk_header* chunk = chain_.chunk_of(newest.block);
    valid = chunk != nullptr && to.chunk != nullptr &&
            (chunk->index < to.chunk->index ||
             (chunk == to.chunk && newest.block + extent_of(newest.size) <= to.cursor));
  }
#endif
  if (!valid) {
#if PMRKIT_CHECKED
    report_violation({violation_kind::stale_checkpoint, name_, nullptr, 0, 0, 0, 0});
#endif
    return;
  }
  note_peak();
  const detail::bump_chain::position at = chain_.tell();
  if (to.chunk == at.chunk) {
    // The frame-loop case: no walk. No chunk yet (a stack that never allocated): nothing to do.
    if (at.chunk != nullptr) chain_.rewind_in_chunk(to.cursor);
  } else {
    chain_.rewind_to(to);
  }
  history_.cut_to(marker.depth());
#if PMRKIT_CHECKED
  records_.resize(static_cast<std::size_t>(marker.depth()));
#endif
}

void stack_resource::reset() noexcept {
  note_peak();
  chain_.reset();
  history_.clear();
  ++epoch_;
#if PMRKIT_CHECKED
  records_.clear();
#endif
}

void stack_resource::release() noexcept {
  note_peak();
  chain_.release();
  history_.clear();
  ++epoch_;
#if PMRKIT_CHECKED
  std::vector<record>().swap(records_);
#endif
}

arena_stats stack_resource::stats() const noexcept {
  const detail::bump_chain::usage chain = chain_.measure();
  arena_stats result;
  result.bytes_from_upstream = chain.from_upstream;
  result.peak_bytes_from_upstream = std::max(peak_from_upstream_, chain.from_upstream);
  // The memory the stack holds: its chunks and the caller's buffer.
  result.bytes_reserved = chain.from_upstream + options_.initial_buffer.size();
  result.bytes_in_use = chain.used;
  result.peak_bytes_in_use = std::max(peak_used_, chain.used);
  result.bytes_available = chain.available;
  result.waste = result.bytes_reserved - chain.used - chain.available;
  result.chunk_count = chain.chunks;
  result.current_chunk_size = chain_.growth_size();
  return result;
}

}  // namespace pmrkit
