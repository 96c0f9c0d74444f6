// bit_tree: a set of small integers as a bitmap with summary words above it,
// so finding a member is a few word reads however large the set.
//
// The leaf level holds one bit per element; each level above holds one bit
// per word of the level below, set when that word is not zero; the top level
// is a single word. With 64-bit words, depth 3 covers 2^18 elements and depth
// 6 covers 2^36. set, clear and find_first touch one word per level without a
// data-dependent branch, so their cost is the same every time (a shape may ask
// for more levels than its size needs, so trees of different sizes run the
// same loops and the branch predictor sees one pattern).
//
// The tree does not own its words: a `bit_tree_shape` says where each level
// starts in a caller's array of `words()` zeroed words, so one allocation can
// hold many trees of the same shape (buddy_resource keeps one tree per block
// order for each region, all in the region's metadata block).
//
// Thread safety: none.
//
// Example:
//   const pmrkit::detail::bit_tree_shape shape(10000);
//   std::vector<std::uint64_t> words(shape.words());
//   const pmrkit::detail::bit_tree tree(shape, words.data());
//   assert(tree.empty());
//   tree.set(9000);
//   tree.set(4242);
//   assert(tree.find_first() == 4242 && tree.test(9000) && !tree.test(9001));
//   tree.clear(4242);
//   assert(tree.find_first() == 9000);
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace pmrkit::detail {

/// Where the levels of a tree over `size` elements lie in its word array.
class bit_tree_shape {
 public:
  static constexpr std::size_t word_bits = 64;
  static constexpr std::size_t max_depth = 6;  // 2^36 elements

  bit_tree_shape() = default;
  /// A tree over [0, size) with at least `min_depth` levels; 0 < size <= 2^36,
  /// min_depth <= max_depth.
  explicit constexpr bit_tree_shape(std::size_t size, std::size_t min_depth = 1) noexcept {
    // Word counts from the leaves up, until one word covers the level below.
    std::array<std::size_t, max_depth> counts{};
    std::size_t levels = 0;
    std::size_t bits = size;
    do {
      counts[levels] = (bits + word_bits - 1) / word_bits;
      bits = counts[levels++];
    } while ((bits > 1 || levels < min_depth) && levels < max_depth);
    depth_ = static_cast<std::uint32_t>(levels);
    // Stored top first: offsets_[0] is the top word, offsets_[depth - 1] the leaves.
    std::size_t offset = 0;
    for (std::size_t d = 0; d < levels; ++d) {
      offsets_[d] = static_cast<std::uint32_t>(offset);
      offset += counts[levels - 1 - d];
    }
    words_ = offset;
  }

  /// Words the tree needs.
  [[nodiscard]] constexpr std::size_t words() const noexcept { return words_; }
  [[nodiscard]] constexpr std::uint32_t depth() const noexcept { return depth_; }
  /// Where level `d` starts (0: the top word).
  [[nodiscard]] constexpr std::uint32_t offset(std::uint32_t d) const noexcept {
    return offsets_[d];
  }

 private:
  std::size_t words_ = 0;
  std::uint32_t depth_ = 0;
  std::array<std::uint32_t, max_depth> offsets_{};
};

/// A view of one tree: `shape` over `words` (shape.words() of them, zero for an empty set).
class bit_tree {
 public:
  static constexpr std::size_t none = ~std::size_t{0};

  bit_tree(const bit_tree_shape& shape, std::uint64_t* words) noexcept
      : shape_(&shape), words_(words) {}

  [[nodiscard]] bool empty() const noexcept { return words_[0] == 0; }
  [[nodiscard]] bool test(std::size_t i) const noexcept {
    return (leaf(i) >> (i % word_bits) & 1U) != 0;
  }
  /// Adds `i`.
  void set(std::size_t i) const noexcept {
    for (std::uint32_t d = shape_->depth(); d-- > 0; i /= word_bits)
      words_[shape_->offset(d) + i / word_bits] |= bit(i);  // the summaries: this word is not empty
  }
  /// Removes `i`.
  void clear(std::size_t i) const noexcept {
    std::uint64_t remove = bit(i);
    for (std::uint32_t d = shape_->depth(); d-- > 0;) {
      std::uint64_t& word = words_[shape_->offset(d) + i / word_bits];
      word &= ~remove;
      i /= word_bits;
      // The summary bit above goes only when this word became empty.
      remove = static_cast<std::uint64_t>(word == 0) << (i % word_bits);
    }
  }
  /// The smallest member, or `none`.
  [[nodiscard]] std::size_t find_first() const noexcept {
    if (words_[0] == 0) return none;
    std::size_t i = static_cast<std::size_t>(std::countr_zero(words_[0]));
    for (std::uint32_t d = 1; d < shape_->depth(); ++d) {
      i = i * word_bits + static_cast<std::size_t>(std::countr_zero(words_[shape_->offset(d) + i]));
    }
    return i;
  }
  /// Members, counted over the leaves.
  [[nodiscard]] std::size_t count(std::size_t size) const noexcept {
    std::size_t total = 0;
    const std::uint64_t* leaves = words_ + shape_->offset(shape_->depth() - 1);
    for (std::size_t w = 0; w < (size + word_bits - 1) / word_bits; ++w)
      total += static_cast<std::size_t>(std::popcount(leaves[w]));
    return total;
  }
  /// True when every summary bit says exactly whether the word below is non-zero.
  [[nodiscard]] bool consistent(std::size_t size) const noexcept {
    std::size_t below = (size + word_bits - 1) / word_bits;  // words in level d
    for (std::uint32_t d = shape_->depth() - 1; d > 0; --d) {
      for (std::size_t w = 0; w < below; ++w) {
        const bool nonzero = words_[shape_->offset(d) + w] != 0;
        const bool summary =
            (words_[shape_->offset(d - 1) + w / word_bits] >> (w % word_bits) & 1U) != 0;
        if (nonzero != summary) return false;
      }
      below = (below + word_bits - 1) / word_bits;
    }
    return true;
  }

 private:
  static constexpr std::size_t word_bits = bit_tree_shape::word_bits;
  static constexpr std::uint64_t bit(std::size_t i) noexcept {
    return std::uint64_t{1} << (i % word_bits);
  }
  [[nodiscard]] std::uint64_t leaf(std::size_t i) const noexcept {
    return words_[shape_->offset(shape_->depth() - 1) + i / word_bits];
  }

  const bit_tree_shape* shape_;
  std::uint64_t* words_;
};

}  // namespace pmrkit::detail
