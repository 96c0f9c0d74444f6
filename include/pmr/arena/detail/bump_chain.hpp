// bump_chain: the chunk-list building block of the arenas and the stack.
//
// A chain of chunks taken from an upstream, in order, with a bump position in
// the current one. When the current chunk is exhausted the position moves to
// the next chunk, which is either one kept from an earlier pass (after a
// reset or rewind) or a new one whose size follows the chunk growth
// (core/detail/chunk_growth.hpp). Every chunk's usable part starts at the
// owner's least alignment (`start_of`), so an owner that keeps its cursor
// aligned finds it aligned after every pop, rewind and reset. Positions can
// be taken and returned to (`tell` / `rewind_to`; `where` and `position_at`
// turn them into chunk indices and offsets and back, so a marker needs no
// pointer), which is all a checkpointed arena needs; `pop` frees the newest
// block of a LIFO owner (a stack), stepping back to the previous chunk when
// it empties the current one; `reset` returns to the very start, keeping
// every chunk; `shrink`, `trim_to_first` and `release` give chunks back and
// say how many bytes went back upstream.
//
// Each chunk starts with a `chunk_header`; chunk sizes count the header, so
// the upstream sees exactly the growth sequence (4 KiB, 8 KiB, ...). In
// checked builds the unused part of every chunk is retired (filled and
// poisoned for ASan, see poison.hpp) and revived block by block as it is
// handed out.
//
// A chain may start from a caller's buffer (an owner's initial buffer): it
// is the chain's first chunk (index 0) for every position, rewind, pop and
// reset, but its header is the chain's own member (`buffer_`), not inside the
// buffer, so every byte of it from the least alignment on serves blocks. It
// never goes upstream: `release` keeps it (and makes it current again),
// `trim_to_first` keeps it as the first chunk, `shrink` never reaches it, it
// counts 0 in `bytes_from_upstream` and is not one of `chunk_count`. The
// first chunk from the upstream then follows the growth from the buffer's
// size (`restart_size`). It is retired when the chain takes it and revived,
// whole, when the chain is destroyed.
//
// Thread safety: none (its owners are single-threaded).
//
// Example:
//   std::pmr::memory_resource* upstream = std::pmr::new_delete_resource();
//   pmrkit::detail::bump_chain chain({.initial = 4096, .max = 65536, .factor = 2}, 16, upstream);
//   void* p = chain.try_bump(64, 8);  // nullptr: no chunk yet
//   if (p == nullptr) p = chain.bump_in_next_chunk(64, 8, "example");
//   assert(chain.owns(p) && chain.chunk_count() == 1);
#pragma once

#include <pmr/core/align.hpp>
#include <pmr/core/detail/chunk_growth.hpp>
#include <pmr/core/poison.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <span>
#include <string_view>

namespace pmrkit::detail {

/// The header at the start of every chunk.
struct chunk_header {
  chunk_header* next;
  std::size_t size;   // bytes taken from the upstream, header included
  std::size_t index;  // position in the chain: 0 for the first chunk
  std::byte* top;     // how far it was used when the position moved on (chain chunks)
  // For `pop`, set when the position enters the chunk: where it came from
  // (the chunk before this one), and where the first block since then starts
  // (lowered when the position goes below it: the chunk is then empty).
  chunk_header* previous;
  std::byte* first;

  [[nodiscard]] std::byte* begin() noexcept;
  [[nodiscard]] std::byte* end() noexcept { return reinterpret_cast<std::byte*>(this) + size; }
};

/// Chunks start this far into their upstream block, so they keep the
/// upstream's fundamental alignment.
inline constexpr std::size_t chunk_header_size =
    align_up(sizeof(chunk_header), alignof(std::max_align_t));
/// The alignment chunks are taken from the upstream with.
inline constexpr std::size_t chunk_alignment = alignof(std::max_align_t);

inline std::byte* chunk_header::begin() noexcept {
  return reinterpret_cast<std::byte*>(this) + chunk_header_size;
}

/// Upstream bytes a chunk needs to serve `bytes` at `alignment` wherever its
/// usable part starts; false when that overflows.
[[nodiscard]] constexpr bool chunk_size_for(std::size_t bytes, std::size_t alignment,
                                            std::size_t& result) noexcept {
  const std::size_t padding = alignment > chunk_alignment ? alignment - chunk_alignment : 0;
  return checked_add(bytes, padding, result) && checked_add(result, chunk_header_size, result);
}

/// For owners that round every block up to `granule`: the extent of a block
/// of `bytes`, and the upstream bytes a chunk needs to serve that extent at
/// `alignment` (at least the granule). Throws allocation_error (size
/// overflow) naming `name` when either overflows.
struct block_need {
  std::size_t extent;
  std::size_t chunk_bytes;
};
[[nodiscard]] block_need checked_block_need(std::size_t bytes, std::size_t granule,
                                            std::size_t alignment, std::string_view name);

/// The checks an owner of a bump_chain makes of its options' growth and least
/// alignment (initial_chunk_size at least 256 bytes, max_chunk_size at least
/// that, growth_factor 1 to 16, alignment a power of two up to 4096), thrown as
/// std::invalid_argument naming `class_name` and the field. Returns the growth.
/// Inline: an arena is often built per call (local_arena, a scratch arena),
/// and the growth returned out of line came back through memory, where the
/// constructor's wide loads of it waited for the callee's narrow stores.
[[nodiscard]] inline chunk_growth validated_chain_growth(std::string_view class_name,
                                                         std::size_t initial_chunk_size,
                                                         std::size_t max_chunk_size,
                                                         std::size_t growth_factor,
                                                         std::size_t alignment) {
  constexpr std::size_t min_chunk_size = 256;
  constexpr std::size_t max_alignment = 4096;
  require_option(is_power_of_two(alignment) && alignment <= max_alignment, class_name, "alignment",
                 "must be a power of two no greater than 4096");
  return validated_growth(
      {.initial = initial_chunk_size, .max = max_chunk_size, .factor = growth_factor},
      min_chunk_size, class_name, "initial_chunk_size", "max_chunk_size");
}

/// `buffer` when it is a valid initial buffer (no null data pointer with a
/// nonzero size), else std::invalid_argument naming `class_name` and the field
/// `initial_buffer`.
[[nodiscard]] std::span<std::byte> validated_initial_buffer(std::string_view class_name,
                                                            std::span<std::byte> buffer);

/// True when `chunk` can serve `bytes` at `alignment` from its start.
[[nodiscard]] bool chunk_fits(chunk_header* chunk, std::size_t bytes,
                              std::size_t alignment) noexcept;

/// Gives `chunk` back to `upstream` (revived first: the upstream may write to it).
void return_chunk(std::pmr::memory_resource* upstream, chunk_header* chunk) noexcept;

class bump_chain {
 public:
  /// A position in the chain: a chunk (null before the first) and a cursor in it.
  struct position {
    chunk_header* chunk = nullptr;
    std::byte* cursor = nullptr;
  };

  /// Chunks of `growth` from `upstream`, each used from `start_of`: its
  /// beginning rounded up to `alignment` (the owner's least alignment, a
  /// power of two).
  /// With a non-empty `buffer` (the caller's, outliving the chain) the chain
  /// starts in it; see the file comment.
  bump_chain(chunk_growth growth, std::size_t alignment, std::pmr::memory_resource* upstream,
             std::span<std::byte> buffer = {}) noexcept
      : growth_(growth),
        next_size_(restart_size(growth, buffer.size())),
        alignment_(alignment),
        upstream_(upstream) {
    if (!buffer.empty()) {
      buffer_begin_ = buffer.data();
      buffer_end_ = buffer.data() + buffer.size();
      // A buffer too small to reach the least alignment serves nothing.
      buffer_start_ = std::min(align_pointer(buffer_begin_, alignment_), buffer_end_);
      retire(buffer_begin_, buffer.size());
      enter_buffer();
    }
  }
  bump_chain(const bump_chain&) = delete;
  bump_chain& operator=(const bump_chain&) = delete;
  ~bump_chain() {
    // Out of line only when a chunk came from the upstream (an arena over a buffer that
    // sufficed, built per call, has none).
    if (first_ != nullptr && (first_ != &buffer_ || buffer_.next != nullptr)) give_back_chunks();
    revive(buffer_begin_, static_cast<std::size_t>(buffer_end_ - buffer_begin_));  // the caller's
  }

  /// The size of the first chunk from the upstream: the growth's initial
  /// size, or after a buffer of `buffer_bytes` the size that follows it
  /// (`growth_factor` times it, at most the maximum), at least the initial size.
  [[nodiscard]] static constexpr std::size_t restart_size(chunk_growth growth,
                                                          std::size_t buffer_bytes) noexcept {
    return buffer_bytes == 0 ? growth.initial
                             : std::max(growth.initial, growth.after(buffer_bytes));
  }

  /// The fast path: `bytes` at `alignment` in the current chunk, or nullptr
  /// when they do not fit there. `bytes` must not be 0.
  [[nodiscard]] void* try_bump(std::size_t bytes, std::size_t alignment) noexcept {
    const auto cursor = reinterpret_cast<std::uintptr_t>(cursor_);
    const auto limit = reinterpret_cast<std::uintptr_t>(limit_);
    const std::uintptr_t aligned = (cursor + alignment - 1) & ~(std::uintptr_t{alignment} - 1);
    if (aligned > limit || limit - aligned < bytes) return nullptr;
    cursor_ = reinterpret_cast<std::byte*>(aligned + bytes);
    void* block = reinterpret_cast<void*>(aligned);
    revive(block, bytes);
    return block;
  }

  /// The fastest path, for owners that keep the cursor aligned (they round
  /// every extent up to their least alignment): `extent` bytes at the cursor,
  /// or nullptr when they do not fit in the current chunk. `extent` must not be 0.
  [[nodiscard]] void* try_bump_at_cursor(std::size_t extent) noexcept {
    if (static_cast<std::size_t>(limit_ - cursor_) < extent) return nullptr;
    void* block = cursor_;
    cursor_ += extent;
    revive(block, extent);
    return block;
  }

  /// The slow path: moves to the next chunk (a kept one that fits, else a new
  /// one of at least the growth size) and bumps there. Throws
  /// allocation_error naming `name` when the size overflows or the upstream fails.
  [[nodiscard]] void* bump_in_next_chunk(std::size_t bytes, std::size_t alignment,
                                         std::string_view name);

  /// The size of the chunk the position would move to next: a kept chunk's
  /// size, or the growth size of a new one.
  [[nodiscard]] std::size_t next_chunk_size() const noexcept {
    const chunk_header* next = current_ != nullptr ? current_->next : first_;
    return next != nullptr ? next->size : next_size_;
  }
  /// Counts a chunk that an owner took outside the chain (a dedicated chunk
  /// for a large block), so the sequence goes on as if it were this chain's.
  void advance_growth() noexcept { next_size_ = growth_.after(next_size_); }

  /// Where blocks of `chunk` start: its beginning rounded up to the least
  /// alignment (the buffer's end when that lies beyond a tiny buffer).
  [[nodiscard]] std::byte* start_of(const chunk_header* chunk) const noexcept {
    return chunk == &buffer_ ? buffer_start_
                             : align_pointer(const_cast<chunk_header*>(chunk)->begin(), alignment_);
  }
  /// Where the usable part of `chunk` ends.
  [[nodiscard]] std::byte* end_of(const chunk_header* chunk) const noexcept {
    return chunk == &buffer_ ? buffer_end_ : const_cast<chunk_header*>(chunk)->end();
  }
  /// True when `chunk` is the caller's buffer.
  [[nodiscard]] bool is_buffer(const chunk_header* chunk) const noexcept {
    return chunk == &buffer_;
  }

  [[nodiscard]] position tell() const noexcept { return {current_, cursor_}; }
  /// The start of the first chunk ({} before there is one): as free as the
  /// very start, but rewinding there keeps the first chunk current, so the
  /// next bump takes the fast path.
  [[nodiscard]] position start() const noexcept {
    return first_ != nullptr ? position{first_, start_of(first_)} : position{};
  }
  /// The position as the index of its chunk in the chain and the bytes from
  /// that chunk's start ({0, 0} at the start, with or without a chunk).
  struct coordinates {
    std::size_t chunk = 0;
    std::size_t offset = 0;
  };
  [[nodiscard]] coordinates where() const noexcept {
    if (current_ == nullptr) return {};
    return {current_->index, static_cast<std::size_t>(cursor_ - start_of(current_))};
  }
  /// The position at `at`, when it lies at or before the position now (in a
  /// chunk before the current one, up to where that chunk was used, or in
  /// the current one up to the cursor); false otherwise.
  [[nodiscard]] bool position_at(coordinates at, position& result) const noexcept;
  /// Bytes consumed up to the position, as measure().used counts them, in O(1).
  [[nodiscard]] std::size_t used() const noexcept {
    return current_ == nullptr
               ? 0
               : used_before_ + static_cast<std::size_t>(cursor_ - start_of(current_));
  }
  /// Returns to `to`, an earlier position of this chain; what lay after it is
  /// free again (retired in checked builds) and its chunks are kept.
  void rewind_to(position to) noexcept;
  /// Back to the start of the first chunk; every chunk is kept.
  void reset() noexcept { rewind_to(start()); }
  /// Gives back every chunk but the first and returns to the start; the
  /// bytes given back upstream.
  std::size_t trim_to_first() noexcept;
  /// Gives back the kept chunks after the current one; the position stays.
  /// The bytes given back upstream.
  std::size_t shrink() noexcept;
  /// Gives back every chunk; the growth sequence starts again (from the
  /// buffer, which is current again).
  void release() noexcept;

  /// When the current block ends at the cursor (the most recent one), moves
  /// the cursor to `new_end` if that lies in the current chunk.
  bool move_cursor(std::byte* block_end, std::byte* new_end) noexcept {
    if (block_end != cursor_ || current_ == nullptr || new_end < start_of(current_) ||
        new_end > limit_) {
      return false;
    }
    if (new_end < cursor_) {
      retire(new_end, static_cast<std::size_t>(cursor_ - new_end));
      if (new_end < current_->first) current_->first = new_end;
    } else {
      revive(cursor_, static_cast<std::size_t>(new_end - cursor_));
    }
    cursor_ = new_end;
    return true;
  }

  /// Returns to `to`, which lies in the current chunk between its beginning
  /// and the cursor: rewind_to without the walk, for owners that checked that.
  void rewind_in_chunk(std::byte* to) noexcept {
    retire(to, static_cast<std::size_t>(cursor_ - to));
    if (to < current_->first) current_->first = to;  // nothing is left in it
    cursor_ = to;
  }

  /// For owners that free in LIFO order (a stack): frees the newest block,
  /// `extent` bytes at `block` ending at the cursor, and returns the cursor to
  /// `back_to`, where it was before the block was bumped (the owner knows:
  /// `block` itself unless alignment padding came first). When the block was
  /// the first of its chunk, the position returns instead to where it was
  /// before the chain entered the chunk (the previous chunk's top). So a whole
  /// LIFO sequence of pops undoes the bumps exactly, across chunk boundaries,
  /// and the current chunk always holds the newest block. Returns false,
  /// changing nothing, when the block does not end at the cursor. With
  /// `keep_contents` the freed bytes are not retired (the owner reads them
  /// once more, then retires them itself).
  bool pop(std::byte* block, std::size_t extent, std::byte* back_to,
           bool keep_contents = false) noexcept {
    // A null cursor (no chunk yet) fails this for any block a chain hands out.
    if (reinterpret_cast<std::uintptr_t>(cursor_) - reinterpret_cast<std::uintptr_t>(block) !=
        extent) {
      return false;
    }
    if (block <= current_->first) {
      if (!keep_contents) retire(block, extent);
      step_back();
    } else {
      if (!keep_contents) retire(back_to, static_cast<std::size_t>(cursor_ - back_to));
      cursor_ = back_to;
    }
    return true;
  }

  /// What `pop` changes, taken before it, so that an owner whose next
  /// allocation fails can undo the pop exactly (`undo_pop`).
  struct pop_undo {
    chunk_header* chunk = nullptr;
    std::byte* cursor = nullptr;
    std::byte* first = nullptr;  // the chunk's first block
    std::size_t used_before = 0;
  };
  [[nodiscard]] pop_undo before_pop() const noexcept {
    return {current_, cursor_, current_ != nullptr ? current_->first : nullptr, used_before_};
  }
  /// Undoes a pop made with `keep_contents` after `undo` was taken; nothing
  /// but failed bumps may have happened since.
  void undo_pop(const pop_undo& undo) noexcept {
    current_ = undo.chunk;
    cursor_ = undo.cursor;
    limit_ = end_of(current_);
    current_->first = undo.first;
    used_before_ = undo.used_before;
  }

  [[nodiscard]] bool owns(const void* p) const noexcept { return chunk_of(p) != nullptr; }
  /// True when `p` lies in a chunk of the chain where no block is: at or past
  /// the cursor in the current chunk, past the top of an earlier one, or in a
  /// kept chunk after the current one (so a free of it frees nothing live).
  [[nodiscard]] bool in_free_part(const void* p) const noexcept;
  /// The chunk `p` lies in, or nullptr.
  [[nodiscard]] chunk_header* chunk_of(const void* p) const noexcept;
  [[nodiscard]] std::pmr::memory_resource* upstream() const noexcept { return upstream_; }
  [[nodiscard]] std::size_t growth_size() const noexcept { return next_size_; }
  /// The bytes of the chunks held now, headers included, in O(1).
  [[nodiscard]] std::size_t bytes_from_upstream() const noexcept { return from_upstream_; }
  [[nodiscard]] std::size_t chunk_count() const noexcept;

  /// Byte counts over the whole chain.
  struct usage {
    std::size_t from_upstream = 0;  // chunk sizes, headers included
    std::size_t used = 0;           // consumed up to each chunk's top and the cursor
    std::size_t available = 0;      // left in the current chunk and in the kept ones after it
    std::size_t chunks = 0;
  };
  [[nodiscard]] usage measure() const noexcept;

 private:
  void step_back() noexcept;
  std::size_t give_back(chunk_header* chunk) noexcept;
  void give_back_chunks() noexcept;  // every chunk from the upstream; the position is left stale
  // The buffer alone, current, from its start. Inline: the constructor stores the buffer's
  // bounds just before, and an out-of-line copy read them back with wide loads that waited for
  // those narrow stores.
  void enter_buffer() noexcept {
    buffer_.next = nullptr;
    buffer_.size = 0;  // nothing from the upstream
    buffer_.index = 0;
    buffer_.top = buffer_.first = buffer_start_;
    buffer_.previous = nullptr;
    first_ = current_ = &buffer_;
    cursor_ = buffer_start_;
    limit_ = buffer_end_;
    used_before_ = 0;
  }
  [[nodiscard]] bool fits(const chunk_header* chunk, std::size_t bytes,
                          std::size_t alignment) const noexcept;

  chunk_growth growth_;
  std::size_t next_size_;
  std::size_t alignment_;
  std::pmr::memory_resource* upstream_;
  std::size_t from_upstream_ = 0;
  chunk_header* first_ = nullptr;
  chunk_header* current_ = nullptr;
  std::byte* cursor_ = nullptr;
  std::byte* limit_ = nullptr;
  std::size_t used_before_ = 0;  // bytes used in the chunks before the current one
  // The caller's buffer, when there is one: its header here, its bounds, where its blocks start.
  chunk_header buffer_{};
  std::byte* buffer_begin_ = nullptr;
  std::byte* buffer_end_ = nullptr;
  std::byte* buffer_start_ = nullptr;
};

}  // namespace pmrkit::detail
