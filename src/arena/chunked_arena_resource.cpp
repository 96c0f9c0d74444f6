#include <pmr/arena/chunked_arena_resource.hpp>

#include <pmr/core/error.hpp>
#include <pmr/core/options.hpp>
#include <pmr/core/upstream.hpp>
#include <pmr/core/violation.hpp>

#include <algorithm>
#include <limits>
#include <span>
#include <string>
#include <variant>

namespace pmrkit {

namespace {
std::size_t capacity(detail::chunk_header* chunk) noexcept {
  return static_cast<std::size_t>(chunk->end() - chunk->begin());
}
}  // namespace

chunked_arena_resource::chunked_arena_resource(const chunked_arena_options& options,
                                               std::span<std::byte> buffer,
                                               std::pmr::memory_resource* upstream,
                                               bool static_name)
    : options_(options),
      name_storage_(static_name ? std::string_view() : options.name),
      name_(static_name ? options.name : std::string_view(name_storage_)),
      fast_limit_(std::min(options.size_limit, std::numeric_limits<std::size_t>::max() / 2)),
      chain_(detail::validated_chain_growth("chunked_arena_resource", options.initial_chunk_size,
                                            options.max_chunk_size, options.growth_factor,
                                            options.alignment),
             options.alignment, require_upstream(upstream, "pmrkit::chunked_arena_resource"),
             detail::validated_initial_buffer("chunked_arena_resource", buffer)) {
  options_.name = name_;
  options_.initial_buffer = buffer;
}

void* chunked_arena_resource::allocate_slow(std::size_t bytes, std::size_t alignment) {
  // Aligned above the least alignment, up to max_align_t's (a packed arena asked for
  // allocate(n)): one align-up in the current chunk before anything else. Kept out of the inline
  // path, whose straight line at the least alignment it would lengthen.
  if (alignment <= alignof(std::max_align_t) && is_power_of_two(alignment) &&
      bytes <= fast_limit_) {
    if (void* p = chain_.try_bump(extent_of(bytes), alignment)) return handed_out(p, bytes);
  }
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
    note_peak();
    p = needed > chain_.next_chunk_size() ? allocate_large(extent, alignment)
                                          : chain_.bump_in_next_chunk(extent, alignment, name_);
    note_upstream();
  }
  return handed_out(p, bytes);
}

void* chunked_arena_resource::allocate_large(std::size_t extent, std::size_t alignment) {
  const std::size_t bytes = extent;
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
    large_from_upstream_ += needed;
    chain_.advance_growth();
  }
  chunk->next = large_;
  large_ = chunk;
  ++large_count_;
  large_bytes_ += extent;
  std::byte* p = align_pointer(chunk->begin(), alignment);
  chunk->first = p;
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
  } else if (chain_.in_free_part(p)) {
    // Past the position: a block already rolled back (or never handed out).
    report_violation({violation_kind::double_free, name_, p, bytes, alignment, 0, 0});
  }
}
#endif

bool chunked_arena_resource::try_resize(void* p, std::size_t old_size, std::size_t new_size,
                                        std::size_t /*alignment*/) noexcept {
  auto* block = static_cast<std::byte*>(p);
  if (new_size > fast_limit_ || old_size > fast_limit_) return false;
  if (!chain_.move_cursor(block + extent_of(old_size), block + extent_of(new_size))) return false;
  // The block is another one now: markers taken after it are stale.
  history_.pop();
  history_.push();
#if PMRKIT_CHECKED
  last_block_ = p;
  last_size_ = new_size;
#endif
  return true;
}

void chunked_arena_resource::free_everything() noexcept {
  note_peak();
  history_.clear();
  ++epoch_;
#if PMRKIT_CHECKED
  last_block_ = nullptr;
#endif
}

void chunked_arena_resource::reset() noexcept {
  free_everything();
  chain_.reset();
  keep_large_blocks_beyond(0);
}

void chunked_arena_resource::clear() noexcept {
  free_everything();
  (void)chain_.trim_to_first();
  release_large_blocks();
}

void chunked_arena_resource::release() noexcept {
  free_everything();
  chain_.release();
  release_large_blocks();
}

std::size_t chunked_arena_resource::shrink() noexcept {
  std::size_t given = chain_.shrink();
  while (large_kept_ != nullptr) {
    detail::chunk_header* next = large_kept_->next;
    given += large_kept_->size;
    large_from_upstream_ -= large_kept_->size;
    detail::return_chunk(chain_.upstream(), large_kept_);
    large_kept_ = next;
  }
  return given;
}

arena_checkpoint chunked_arena_resource::checkpoint() const noexcept {
  const detail::bump_chain::coordinates at = chain_.where();
  const detail::arena_marker_history::mark mark = history_.take();
  return detail::checkpoint_access::make(
      id_.get(), epoch_, mark.depth, mark.stamp,
      chunked_arena_marker{.chunk = at.chunk, .offset = at.offset, .large_chunks = large_count_});
}

void chunked_arena_resource::rewind(const arena_checkpoint& marker) {
  const auto* where = std::get_if<chunked_arena_marker>(&marker.where());
  detail::bump_chain::position to;
  // Whose it is, since which reset, whether the history was cut below it
  // since, and (should that record have forgotten) whether its place is at
  // or before the position now: never an address.
  const bool valid = where != nullptr && id_.is(marker.arena()) && marker.epoch() == epoch_ &&
                     history_.valid({marker.depth(), detail::checkpoint_access::stamp(marker)}) &&
                     where->large_chunks <= large_count_ &&
                     chain_.position_at({where->chunk, where->offset}, to);
  if (!valid) {
#if PMRKIT_CHECKED
    report_violation({violation_kind::stale_checkpoint, name_, nullptr, 0, 0, 0, 0});
#endif
    return;
  }
  note_peak();
  chain_.rewind_to(to);
  keep_large_blocks_beyond(where->large_chunks);
  history_.cut_to(marker.depth());
#if PMRKIT_CHECKED
  last_block_ = nullptr;
#endif
}

void chunked_arena_resource::keep_large_blocks_beyond(std::size_t count) noexcept {
  while (large_count_ > count) {
    detail::chunk_header* chunk = large_;
    large_ = chunk->next;
    --large_count_;
    large_bytes_ -= static_cast<std::size_t>(chunk->top - chunk->first);
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
  large_count_ = large_bytes_ = large_from_upstream_ = 0;
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
  result.bytes_from_upstream = chain.from_upstream + large_from_upstream_;
  result.peak_bytes_from_upstream = std::max(peak_from_upstream_, result.bytes_from_upstream);
  result.bytes_in_use = chain.used + large_bytes_;
  result.bytes_available = chain.available;
  result.chunk_count = chain.chunks;
  for (detail::chunk_header* chunk = large_; chunk != nullptr; chunk = chunk->next)
    ++result.chunk_count;
  for (detail::chunk_header* chunk = large_kept_; chunk != nullptr; chunk = chunk->next) {
    result.bytes_available += capacity(chunk);
    ++result.chunk_count;
  }
  // The memory the arena holds: its chunks and the caller's buffer.
  result.bytes_reserved = result.bytes_from_upstream + options_.initial_buffer.size();
  result.waste = result.bytes_reserved - result.bytes_in_use - result.bytes_available;
  result.peak_bytes_in_use = std::max(peak_used_, result.bytes_in_use);
  result.large_blocks_in_use = large_count_;
  result.large_bytes_in_use = large_bytes_;
  result.current_chunk_size = chain_.growth_size();
  return result;
}

void chunked_arena_resource::note_peak() noexcept {
  const std::size_t used = chain_.used() + large_bytes_;
  if (used > peak_used_) peak_used_ = used;
}

void chunked_arena_resource::note_upstream() noexcept {
  const std::size_t held = chain_.bytes_from_upstream() + large_from_upstream_;
  if (held > peak_from_upstream_) peak_from_upstream_ = held;
}

}  // namespace pmrkit
