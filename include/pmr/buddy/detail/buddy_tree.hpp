// buddy_tree: the buddy algorithm over one region, as a view of a word array
// that holds the region's whole state, so that the state may live anywhere
// (in a heap block, or inside a shared-memory segment mapped at different
// addresses in different processes).
//
// A region of 2^top_level min-blocks is cut into blocks of level l (2^l
// min-blocks each, aligned to their size). A block is named by its level and
// its index (its offset in the region divided by its size), never by an
// address: the tree never reads or writes the blocks themselves, and its words
// hold no pointers, only bits.
//
// The state is two parts:
// - `buddy_layout`: where things lie in the word array; plain data, trivially
//   copyable, a function of (levels, track_used) alone, so it may be stored
//   next to the words or recomputed identically by every process. Word 0 is the
//   level mask (bit l: a free block of level l exists), then per level a free
//   set (a bit_tree, detail/bit_tree.hpp, every level as deep as level 0 so all
//   run the same loops), then, with track_used, per level an in-use bitmap (what
//   buddy_resource keeps in checked builds to tell a double free from a size
//   mismatch).
// - `buddy_tree`: a view, `layout` over `words` (layout.words() of them,
//   zeroed for a region with no free block); the layout must outlive it.
//
// take(L) splits the smallest free block of level >= L and returns a block of
// level L; give(L, i) frees block i of level L and merges it with its buddy
// while the buddy is free; free_range(begin, end) makes free the largest aligned
// blocks that tile [begin, end) (in min-blocks) of a region that had none
// there. All are O(levels) word operations. A caller that keeps tables across
// regions learns which levels of the region gained their first free block or
// lost their last one through an optional `Events` argument (level_gained,
// level_lost), inlined where the bit changes, so it costs what the change
// itself does; comparing level_mask() before and after tells the same.
// A caller that keeps freed blocks aside before giving them back
// (buddy_resource's per-order caches) names them to verify() as `held`
// blocks: neither free in the tree nor in use, but covering their bytes.
//
// Thread safety: none; the words are plain (a shared user serializes access).
//
// Example:
//   const pmrkit::detail::buddy_layout layout(5, false);  // 16 min-blocks, levels 0..4
//   std::vector<std::uint64_t> words(layout.words());
//   const pmrkit::detail::buddy_tree tree(layout, words.data());
//   tree.free_range(0, 12);  // 12 usable min-blocks: one block of 8 and one of 4
//   assert(tree.level_mask() == 0b01100 && tree.is_free(3, 0) && tree.is_free(2, 2));
//   const std::size_t a = tree.take(0);  // splits the 4-block at index 2
//   assert(a == 8 && tree.level_mask() == 0b01011);
//   tree.give(0, a);  // merges back
//   assert(tree.level_mask() == 0b01100 && tree.verify(0, 12).empty());
#pragma once

#include <pmr/buddy/detail/bit_tree.hpp>

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>

namespace pmrkit::detail {

/// Where a region's state lies in its word array: plain data, no pointers.
class buddy_layout {
 public:
  /// Levels 0 (one min-block) to 30 (2^30 min-blocks).
  static constexpr std::size_t max_levels = 31;

  buddy_layout() = default;
  /// A region of 2^(levels - 1) min-blocks (1 <= levels <= max_levels); with
  /// `track_used`, an in-use bitmap per level too.
  constexpr buddy_layout(std::size_t levels, bool track_used) noexcept
      : levels_(static_cast<std::uint32_t>(levels)),
        top_level_(static_cast<std::uint32_t>(levels - 1)),
        track_used_(track_used) {
    const std::size_t top = levels - 1;
    // Every level's tree as deep as level 0's: the same loops whatever the level.
    min_depth_ = bit_tree_shape(std::size_t{1} << top).depth();
    std::size_t words = 1;  // word 0: the level mask
    for (std::size_t level = 0; level < levels; ++level) {
      free_shape_[level] = bit_tree_shape(std::size_t{1} << (top - level), min_depth_);
      free_offset_[level] = static_cast<std::uint32_t>(words);
      words += free_shape_[level].words();
    }
    if (track_used) {
      for (std::size_t level = 0; level < levels; ++level) {
        used_offset_[level] = static_cast<std::uint32_t>(words);
        words += ((std::size_t{1} << (top - level)) + word_bits - 1) / word_bits;
      }
    }
    words_ = words;
  }

  /// Levels 0 .. levels() - 1; the top one is the whole region.
  [[nodiscard]] constexpr std::uint32_t levels() const noexcept { return levels_; }
  [[nodiscard]] constexpr std::uint32_t top_level() const noexcept { return top_level_; }
  [[nodiscard]] constexpr bool track_used() const noexcept { return track_used_; }
  /// The depth of every level's free tree.
  [[nodiscard]] constexpr std::uint32_t min_depth() const noexcept { return min_depth_; }
  /// Words the region's state needs.
  [[nodiscard]] constexpr std::size_t words() const noexcept { return words_; }
  /// Blocks of `level` in the region.
  [[nodiscard]] constexpr std::size_t blocks(unsigned level) const noexcept {
    return std::size_t{1} << (top_level() - level);
  }
  [[nodiscard]] constexpr const bit_tree_shape& free_shape(unsigned level) const noexcept {
    return free_shape_[level];
  }
  [[nodiscard]] constexpr std::size_t free_offset(unsigned level) const noexcept {
    return free_offset_[level];
  }
  /// Only with track_used().
  [[nodiscard]] constexpr std::size_t used_offset(unsigned level) const noexcept {
    return used_offset_[level];
  }

  /// Same levels and tracking: the same words at the same places.
  friend constexpr bool operator==(const buddy_layout& a, const buddy_layout& b) noexcept {
    if (a.levels_ != b.levels_ || a.top_level_ != b.top_level_ || a.track_used_ != b.track_used_ ||
        a.min_depth_ != b.min_depth_ || a.words_ != b.words_) {
      return false;
    }
    for (std::size_t level = 0; level < a.levels_; ++level) {
      const bit_tree_shape& x = a.free_shape_[level];
      const bit_tree_shape& y = b.free_shape_[level];
      if (x.words() != y.words() || x.depth() != y.depth() ||
          a.free_offset_[level] != b.free_offset_[level] ||
          a.used_offset_[level] != b.used_offset_[level]) {
        return false;
      }
      for (std::uint32_t d = 0; d < x.depth(); ++d) {
        if (x.offset(d) != y.offset(d)) return false;
      }
    }
    return true;
  }

 private:
  static constexpr std::size_t word_bits = bit_tree_shape::word_bits;

  std::uint32_t levels_ = 0;
  std::uint32_t top_level_ = 0;
  std::uint32_t min_depth_ = 0;
  bool track_used_ = false;
  std::size_t words_ = 0;
  std::array<bit_tree_shape, max_levels> free_shape_{};
  // 32 bits (a region's words stay below 2^27): a store to a word cannot change them, so the
  // compiler need not read them again after one.
  std::array<std::uint32_t, max_levels> free_offset_{};
  std::array<std::uint32_t, max_levels> used_offset_{};
};

static_assert(std::is_trivially_copyable_v<buddy_layout>);

/// What take, give and free_range tell their caller by default: nothing. A
/// caller that keeps tables across regions passes its own, with the same two
/// members, called when a level of the region gains its first free block or
/// loses its last one (in the middle of the operation: the words are then
/// half-updated, so they must not read the tree).
struct no_level_events {
  void level_gained(unsigned /*level*/) const noexcept {}
  void level_lost(unsigned /*level*/) const noexcept {}
};

/// A view of one region's state: `layout` over `words`.
class buddy_tree {
 public:
  /// A block named by its level and index (for verify's held blocks).
  struct block {
    unsigned level;
    std::size_t index;
  };

  buddy_tree(const buddy_layout& layout, std::uint64_t* words) noexcept
      : layout_(&layout), words_(words) {}

  [[nodiscard]] const buddy_layout& layout() const noexcept { return *layout_; }
  [[nodiscard]] std::uint64_t* words() const noexcept { return words_; }

  /// Bit l: a free block of level l exists.
  [[nodiscard]] std::uint32_t level_mask() const noexcept {
    return static_cast<std::uint32_t>(words_[0]);
  }
  /// True when take(level) may be called.
  [[nodiscard]] bool can_take(unsigned level) const noexcept { return (words_[0] >> level) != 0; }

  /// Takes a block of `level` from the smallest free block of that level or
  /// above, splitting it (each unused upper half stays free); returns its
  /// index. Precondition: can_take(level).
  template <class Events = no_level_events>
  std::size_t take(unsigned level, Events events = {}) const noexcept {
    return take_from(level + static_cast<unsigned>(std::countr_zero(words_[0] >> level)), level,
                     events);
  }
  /// The same, splitting a free block of level `from` (at least `level`; one
  /// must exist): take passes the smallest such level; a caller that knows it
  /// already saves the search.
  template <class Events = no_level_events>
  std::size_t take_from(unsigned from, unsigned level, Events events = {}) const noexcept {
    const bit_tree source = free_tree(from);
    std::size_t index = source.find_first();
    source.clear(index);
    if (source.empty()) lost(from, events);
    while (from > level) {
      --from;
      index <<= 1;
      free_tree(from).set(index | 1U);
      gained(from, events);
    }
    return index;
  }

  /// Frees block `index` of `level` (not free), merging it with its buddy
  /// while the buddy is free.
  template <class Events = no_level_events>
  void give(unsigned level, std::size_t index, Events events = {}) const noexcept {
    while (level < layout_->top_level()) {
      const bit_tree buddies = free_tree(level);
      if (!buddies.test(index ^ 1U)) break;
      buddies.clear(index ^ 1U);
      if (buddies.empty()) lost(level, events);
      index >>= 1;
      ++level;
    }
    free_tree(level).set(index);
    gained(level, events);
  }

  /// Makes free the min-blocks [begin, end), none of them free or in a free
  /// block before (a fresh region: all of it, or the part a buffer covers), as
  /// the largest aligned blocks that tile them. begin <= end <= 2^top_level.
  template <class Events = no_level_events>
  void free_range(std::size_t begin, std::size_t end, Events events = {}) const noexcept {
    for (std::size_t at = begin; at < end;) {
      unsigned level = layout_->top_level();
      while ((at & ((std::size_t{1} << level) - 1)) != 0 || at + (std::size_t{1} << level) > end) {
        --level;
      }
      free_tree(level).set(at >> level);
      gained(level, events);
      at += std::size_t{1} << level;
    }
  }

  /// True when block `index` of `level` is a free block (not merely inside one).
  [[nodiscard]] bool is_free(unsigned level, std::size_t index) const noexcept {
    return free_tree(level).test(index);
  }
  /// Free blocks of `level`. O(blocks / 64).
  [[nodiscard]] std::size_t free_count(unsigned level) const noexcept {
    return free_tree(level).count(layout_->blocks(level));
  }

  // The in-use bitmaps: only with layout().track_used().

  void set_used(unsigned level, std::size_t index) const noexcept {
    used_word(level, index) |= bit(index);
  }
  void clear_used(unsigned level, std::size_t index) const noexcept {
    used_word(level, index) &= ~bit(index);
  }
  [[nodiscard]] bool is_used(unsigned level, std::size_t index) const noexcept {
    return (used_word(level, index) & bit(index)) != 0;
  }
  /// Blocks of `level` in use. O(blocks / 64).
  [[nodiscard]] std::size_t used_count(unsigned level) const noexcept;

  /// Checks the region's state, whose usable min-blocks are [begin, end): the
  /// level mask and the summary words match the bitmaps, no two free buddies
  /// are left unmerged, no free block overlaps another or lies outside the
  /// usable range and, with used tracking, no block in use overlaps another
  /// and free plus used blocks tile the usable range. Returns an empty string,
  /// or what is wrong. O(2^top_level).
  /// `held`: blocks the caller keeps aside, neither free in the tree nor in use
  /// (freed, waiting to be given back): each must lie in the usable range and
  /// overlap no free, used or other held block, and they count in the tiling.
  [[nodiscard]] std::string verify(std::size_t begin, std::size_t end,
                                   std::span<const block> held = {}) const;

 private:
  static constexpr std::size_t word_bits = bit_tree_shape::word_bits;
  static constexpr std::uint64_t bit(std::size_t i) noexcept {
    return std::uint64_t{1} << (i % word_bits);
  }
  // The level mask after a block of `level` became free, or the last one was taken.
  template <class Events>
  void gained(unsigned level, Events& events) const noexcept {
    if ((words_[0] >> level & 1U) == 0) {
      words_[0] |= std::uint64_t{1} << level;
      events.level_gained(level);
    }
  }
  template <class Events>
  void lost(unsigned level, Events& events) const noexcept {
    words_[0] &= ~(std::uint64_t{1} << level);
    events.level_lost(level);
  }
  [[nodiscard]] bit_tree free_tree(unsigned level) const noexcept {
    return bit_tree(layout_->free_shape(level), words_ + layout_->free_offset(level));
  }
  [[nodiscard]] std::uint64_t& used_word(unsigned level, std::size_t index) const noexcept {
    return words_[layout_->used_offset(level) + index / word_bits];
  }

  const buddy_layout* layout_;
  std::uint64_t* words_;
};

}  // namespace pmrkit::detail
