#include <pmr/buddy/detail/buddy_tree.hpp>

#include <vector>

namespace pmrkit::detail {

std::size_t buddy_tree::used_count(unsigned level) const noexcept {
  std::size_t total = 0;
  const std::uint64_t* bits = words_ + layout_->used_offset(level);
  for (std::size_t w = 0; w < (layout_->blocks(level) + word_bits - 1) / word_bits; ++w)
    total += static_cast<std::size_t>(std::popcount(bits[w]));
  return total;
}

std::string buddy_tree::verify(std::size_t begin, std::size_t end,
                               std::span<const block> held) const {
  const unsigned top = layout_->top_level();
  if ((words_[0] >> layout_->levels()) != 0) return "the level mask has bits above the top level";
  // What each min-block is: 0 nothing yet, 1 in a free block, 2 in a used one, 3 in a held one.
  std::vector<unsigned char> cells(std::size_t{1} << top, 0);
  const auto cover = [&](unsigned level, std::size_t index, unsigned char what) {
    const std::size_t first = index << level;
    for (std::size_t cell = first; cell < first + (std::size_t{1} << level); ++cell) {
      if (cells[cell] != 0) return false;
      cells[cell] = what;
    }
    return true;
  };
  for (unsigned level = 0; level <= top; ++level) {
    const std::size_t blocks = layout_->blocks(level);
    const bit_tree tree = free_tree(level);
    const std::string at = "level " + std::to_string(level);
    if (!tree.consistent(blocks)) return at + ": summary words disagree with the bitmap";
    if (tree.empty() == ((words_[0] >> level & 1U) != 0)) {
      return at + ": the level mask disagrees with the bitmap";
    }
    for (std::size_t i = 0; i < blocks; ++i) {
      if (!tree.test(i)) continue;
      if (level < top && tree.test(i ^ 1U)) {
        return at + ": free buddies " + std::to_string(i & ~std::size_t{1}) + " and " +
               std::to_string(i | 1U) + " are not merged";
      }
      if (!cover(level, i, 1)) return at + ": free block " + std::to_string(i) + " overlaps";
    }
    if (!layout_->track_used()) continue;
    for (std::size_t i = 0; i < blocks; ++i) {
      if (!is_used(level, i)) continue;
      if (!cover(level, i, 2)) {
        return at + ": block in use " + std::to_string(i) + " overlaps a free or used block";
      }
    }
  }
  for (const block& b : held) {
    const std::string at =
        "held block " + std::to_string(b.index) + " of level " + std::to_string(b.level);
    if (b.level > top || b.index >= layout_->blocks(b.level)) return at + ": not in the region";
    if (!cover(b.level, b.index, 3)) return at + ": overlaps a free, used or held block";
  }
  for (std::size_t cell = 0; cell < cells.size(); ++cell) {
    const bool usable = cell >= begin && cell < end;
    if (!usable && cells[cell] != 0) {
      return "a block covers min-block " + std::to_string(cell) + ", outside the usable range";
    }
    if (usable && cells[cell] == 0 && layout_->track_used()) {
      return "min-block " + std::to_string(cell) + " is neither free, held nor in use";
    }
  }
  return {};
}

}  // namespace pmrkit::detail
