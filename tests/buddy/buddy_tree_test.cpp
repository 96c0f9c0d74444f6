// buddy_tree (buddy/detail): the one-region buddy algorithm over a plain word array, as
// buddy_resource runs it and as a shared-memory allocator would over words in a segment.
#include <pmr/buddy/detail/buddy_tree.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

using pmrkit::detail::buddy_layout;
using pmrkit::detail::buddy_tree;

// Free min-blocks over all levels.
std::size_t free_cells(const buddy_tree& tree) {
  std::size_t cells = 0;
  for (unsigned level = 0; level < tree.layout().levels(); ++level)
    cells += tree.free_count(level) << level;
  return cells;
}

TEST(BuddyTree, TakeSplitsAndGiveMerges) {
  const buddy_layout layout(5, false);  // 16 min-blocks
  std::vector<std::uint64_t> words(layout.words());
  const buddy_tree tree(layout, words.data());
  EXPECT_FALSE(tree.can_take(0));
  tree.free_range(0, 16);
  EXPECT_EQ(tree.level_mask(), 0b10000U);
  EXPECT_TRUE(tree.is_free(4, 0));
  EXPECT_EQ(tree.verify(0, 16), "");

  // A min-block from the whole region: the upper half of each half stays free.
  EXPECT_EQ(tree.take(0), 0U);
  EXPECT_EQ(tree.level_mask(), 0b01111U);
  for (unsigned level = 0; level < 4; ++level) {
    EXPECT_TRUE(tree.is_free(level, 1)) << level;
    EXPECT_EQ(tree.free_count(level), 1U) << level;
  }
  EXPECT_EQ(tree.verify(0, 16), "");
  // Best fit: the smallest free block that is large enough.
  EXPECT_EQ(tree.take(0), 1U);
  EXPECT_EQ(tree.level_mask(), 0b01110U);
  EXPECT_EQ(tree.take(2), 1U);  // min-blocks 4..7: the free block of level 2
  EXPECT_EQ(tree.level_mask(), 0b01010U);
  EXPECT_EQ(tree.take(1), 1U);  // min-blocks 2..3
  EXPECT_EQ(tree.level_mask(), 0b01000U);
  EXPECT_EQ(tree.take(1), 4U);  // splits min-blocks 8..15
  EXPECT_EQ(tree.level_mask(), 0b00110U);
  EXPECT_EQ(free_cells(tree), 6U);
  EXPECT_EQ(tree.verify(0, 16), "");

  // Freed in another order, everything merges back into the one block of the region.
  tree.give(0, 0);
  EXPECT_EQ(tree.level_mask(), 0b00111U);  // its buddy (min-block 1) is in use
  tree.give(1, 1);                         // merges with nothing: min-block 1 is in use
  EXPECT_EQ(tree.free_count(1), 2U);
  tree.give(0, 1);  // merges with 0, then with block 1 of level 1
  EXPECT_EQ(tree.level_mask(), 0b00110U);
  EXPECT_TRUE(tree.is_free(2, 0));
  tree.give(2, 1);  // min-blocks 0..7 (min-blocks 12..15 are still free at level 2)
  EXPECT_EQ(tree.level_mask(), 0b01110U);
  EXPECT_TRUE(tree.is_free(3, 0));
  tree.give(1, 4);  // and the whole region
  EXPECT_EQ(tree.level_mask(), 0b10000U);
  EXPECT_TRUE(tree.is_free(4, 0));
  EXPECT_EQ(free_cells(tree), 16U);
  EXPECT_EQ(tree.verify(0, 16), "");
}

// The events a caller with tables across regions (buddy_resource) gets: each level that gained its
// first free block or lost its last one, exactly the bits of the level mask that changed.
struct recorder {
  std::uint32_t* gained;
  std::uint32_t* lost;
  void level_gained(unsigned level) const noexcept { *gained |= std::uint32_t{1} << level; }
  void level_lost(unsigned level) const noexcept { *lost |= std::uint32_t{1} << level; }
};

TEST(BuddyTree, EventsAreTheChangedBitsOfTheLevelMask) {
  const buddy_layout layout(9, false);
  std::vector<std::uint64_t> words(layout.words());
  const buddy_tree tree(layout, words.data());
  std::uint32_t gained = 0;
  std::uint32_t lost = 0;
  tree.free_range(0, 200, recorder{&gained, &lost});
  EXPECT_EQ(gained, tree.level_mask());
  EXPECT_EQ(lost, 0U);
  std::vector<std::pair<unsigned, std::size_t>> held;
  std::mt19937 rng(9);
  for (int step = 0; step < 2000; ++step) {
    const std::uint32_t before = tree.level_mask();
    gained = lost = 0;
    const auto level = static_cast<unsigned>(rng() % 4);
    if (rng() % 2 == 0 && tree.can_take(level)) {
      // take_from with the smallest free level at or above: what take does.
      const auto from = level + static_cast<unsigned>(std::countr_zero(before >> level));
      held.emplace_back(level, tree.take_from(from, level, recorder{&gained, &lost}));
    } else if (!held.empty()) {
      const std::size_t k = rng() % held.size();
      tree.give(held[k].first, held[k].second, recorder{&gained, &lost});
      held.erase(held.begin() + static_cast<std::ptrdiff_t>(k));
    }
    ASSERT_EQ(gained, tree.level_mask() & ~before) << step;
    ASSERT_EQ(lost, before & ~tree.level_mask()) << step;
  }
  EXPECT_EQ(tree.verify(0, 200), "");
}

TEST(BuddyTree, OneLevelIsOneBlock) {
  const buddy_layout layout(1, true);
  std::vector<std::uint64_t> words(layout.words());
  const buddy_tree tree(layout, words.data());
  tree.free_range(0, 1);
  ASSERT_TRUE(tree.can_take(0));
  EXPECT_EQ(tree.take(0), 0U);
  tree.set_used(0, 0);
  EXPECT_FALSE(tree.can_take(0));
  EXPECT_EQ(tree.verify(0, 1), "");
  tree.clear_used(0, 0);
  tree.give(0, 0);
  EXPECT_EQ(tree.level_mask(), 1U);
  EXPECT_EQ(tree.verify(0, 1), "");
}

// A usable range that is not a power of two (a buffer's part of its window): the largest
// aligned blocks tile it, every min-block of it can be taken, and nothing outside it.
TEST(BuddyTree, UsableRangeNotAPowerOfTwo) {
  const buddy_layout layout(7, true);  // 64 min-blocks
  std::vector<std::uint64_t> words(layout.words());
  const buddy_tree tree(layout, words.data());
  tree.free_range(5, 50);
  // 5 | 6..7 | 8..15 | 16..31 | 32..47 | 48..49
  EXPECT_TRUE(tree.is_free(0, 5));
  EXPECT_TRUE(tree.is_free(1, 3));
  EXPECT_TRUE(tree.is_free(3, 1));
  EXPECT_TRUE(tree.is_free(4, 1));
  EXPECT_TRUE(tree.is_free(4, 2));
  EXPECT_TRUE(tree.is_free(1, 24));
  EXPECT_EQ(tree.free_count(1), 2U);
  EXPECT_EQ(tree.free_count(4), 2U);
  EXPECT_EQ(tree.level_mask(), 0b0011011U);
  EXPECT_EQ(free_cells(tree), 45U);
  EXPECT_EQ(tree.verify(5, 50), "");
  const std::vector<std::uint64_t> fresh = words;

  std::vector<std::size_t> taken;
  while (tree.can_take(0)) {
    const std::size_t i = tree.take(0);
    tree.set_used(0, i);
    taken.push_back(i);
    ASSERT_EQ(tree.verify(5, 50), "") << i;
  }
  ASSERT_EQ(taken.size(), 45U);
  std::vector<std::size_t> sorted = taken;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t k = 0; k < sorted.size(); ++k)
    EXPECT_EQ(sorted[k], 5 + k);
  EXPECT_EQ(tree.level_mask(), 0U);
  EXPECT_EQ(tree.used_count(0), 45U);

  // Given back in another order, the blocks merge into the same tiling as before.
  std::mt19937 rng(3);
  std::shuffle(taken.begin(), taken.end(), rng);
  for (const std::size_t i : taken) {
    tree.clear_used(0, i);
    tree.give(0, i);
    ASSERT_EQ(tree.verify(5, 50), "") << i;
  }
  EXPECT_EQ(words, fresh);
}

// Random takes and gives of every level, against a model of the blocks in use.
TEST(BuddyTree, RandomSequenceKeepsTheInvariants) {
  const buddy_layout layout(11, true);  // 1024 min-blocks
  std::vector<std::uint64_t> words(layout.words());
  const buddy_tree tree(layout, words.data());
  tree.free_range(3, 1000);
  std::map<std::size_t, unsigned> in_use;  // first min-block -> level
  std::size_t used_cells = 0;
  std::mt19937 rng(11);
  for (int step = 0; step < 3000; ++step) {
    const auto level = static_cast<unsigned>(rng() % 6);
    if (rng() % 2 == 0 && tree.can_take(level)) {
      const std::size_t i = tree.take(level);
      tree.set_used(level, i);
      ASSERT_TRUE(in_use.emplace(i << level, level).second) << step;
      used_cells += std::size_t{1} << level;
    } else if (!in_use.empty()) {
      auto victim = in_use.begin();
      std::advance(victim, static_cast<std::ptrdiff_t>(rng() % in_use.size()));
      const auto [cell, l] = *victim;
      tree.clear_used(l, cell >> l);
      tree.give(l, cell >> l);
      used_cells -= std::size_t{1} << l;
      in_use.erase(victim);
    }
    ASSERT_EQ(free_cells(tree) + used_cells, 997U) << step;
    if (step % 50 == 0) {
      ASSERT_EQ(tree.verify(3, 1000), "") << step;
    }
  }
  for (const auto& [cell, l] : in_use) {
    tree.clear_used(l, cell >> l);
    tree.give(l, cell >> l);
  }
  EXPECT_EQ(tree.verify(3, 1000), "");
  std::vector<std::uint64_t> fresh(layout.words());
  buddy_tree(layout, fresh.data()).free_range(3, 1000);
  EXPECT_EQ(words, fresh);
}

// The leaf word of level `level`'s free tree that holds block `index`.
std::uint64_t& free_leaf(const buddy_layout& layout, std::vector<std::uint64_t>& words,
                         unsigned level, std::size_t index) {
  const auto& shape = layout.free_shape(level);
  return words[layout.free_offset(level) + shape.offset(shape.depth() - 1) + index / 64];
}

TEST(BuddyTree, VerifyFindsCorruptedWords) {
  const buddy_layout layout(9, false);  // 256 min-blocks
  std::vector<std::uint64_t> words(layout.words());
  const buddy_tree tree(layout, words.data());
  tree.free_range(0, 256);
  EXPECT_EQ(tree.take(0), 0U);
  ASSERT_EQ(tree.verify(0, 256), "");

  // Min-block 0 marked free while its buddy, min-block 1, is free too.
  std::vector<std::uint64_t> corrupt = words;
  free_leaf(layout, corrupt, 0, 0) |= 1U;
  EXPECT_EQ(buddy_tree(layout, corrupt.data()).verify(0, 256),
            "level 0: free buddies 0 and 1 are not merged");

  // A free block of level 2 overlapping the free block of level 1 at min-blocks 2..3.
  corrupt = words;
  free_leaf(layout, corrupt, 2, 0) |= 1U;
  corrupt[0] |= 0b100U;
  EXPECT_NE(buddy_tree(layout, corrupt.data()).verify(0, 256), "");

  // The level mask says level 0 has no free block.
  corrupt = words;
  corrupt[0] &= ~std::uint64_t{1};
  EXPECT_EQ(buddy_tree(layout, corrupt.data()).verify(0, 256),
            "level 0: the level mask disagrees with the bitmap");

  // A free block outside the usable range.
  EXPECT_NE(tree.verify(0, 128), "");
}

TEST(BuddyTree, VerifyChecksTheUsedBitmapsWhenTracked) {
  const buddy_layout layout(6, true);
  std::vector<std::uint64_t> words(layout.words());
  const buddy_tree tree(layout, words.data());
  tree.free_range(0, 64);
  const std::size_t a = tree.take(3);
  EXPECT_NE(tree.verify(0, 64), "");  // taken but not marked in use: uncovered min-blocks
  tree.set_used(3, a);
  EXPECT_EQ(tree.verify(0, 64), "");
  EXPECT_TRUE(tree.is_used(3, a));
  tree.set_used(0, (a << 3) + 1);  // in use inside a block in use
  EXPECT_NE(tree.verify(0, 64), "");
  tree.clear_used(0, (a << 3) + 1);
  EXPECT_EQ(tree.verify(0, 64), "");
}

// Blocks a caller holds aside (buddy_resource's caches): they cover their min-blocks, must
// overlap nothing and must lie in the usable range.
TEST(BuddyTree, VerifyCountsHeldBlocks) {
  const buddy_layout layout(6, true);  // 32 min-blocks
  std::vector<std::uint64_t> words(layout.words());
  const buddy_tree tree(layout, words.data());
  tree.free_range(0, 24);
  const std::size_t a = tree.take(2);  // 4 min-blocks, neither free nor marked in use: held
  const std::size_t b = tree.take(0);
  tree.set_used(0, b);
  EXPECT_NE(tree.verify(0, 24), "");  // a is uncovered without being named
  const std::vector<buddy_tree::block> held{{2, a}};
  EXPECT_EQ(tree.verify(0, 24, held), "");
  // Held twice, or held and free, or held and in use, or outside the usable range: reported.
  EXPECT_NE(tree.verify(0, 24, std::vector<buddy_tree::block>{{2, a}, {2, a}}), "");
  EXPECT_NE(tree.verify(0, 24, std::vector<buddy_tree::block>{{2, a}, {0, b}}), "");
  ASSERT_TRUE(tree.is_free(0, b ^ 1U));  // b's buddy, free after the split
  EXPECT_NE(tree.verify(0, 24, std::vector<buddy_tree::block>{{2, a}, {0, b ^ 1U}}), "");
  EXPECT_NE(tree.verify(0, 24, std::vector<buddy_tree::block>{{2, a}, {3, 3}}), "");  // 24..31
  EXPECT_NE(tree.verify(0, 24, std::vector<buddy_tree::block>{{2, a}, {6, 0}}), "");  // no level
}

TEST(BuddyTree, LayoutIsPlainDataAndRecomputedIdentically) {
  static_assert(std::is_trivially_copyable_v<buddy_layout>);
  static_assert(std::is_standard_layout_v<buddy_layout>);
  const buddy_layout a(15, true);
  const buddy_layout b(15, true);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, buddy_layout(15, false));
  EXPECT_NE(a, buddy_layout(14, true));
  EXPECT_EQ(a.levels(), 15U);
  EXPECT_EQ(a.top_level(), 14U);
  EXPECT_EQ(a.min_depth(), pmrkit::detail::bit_tree_shape(std::size_t{1} << 14).depth());
  for (unsigned level = 0; level < a.levels(); ++level)
    EXPECT_EQ(a.free_shape(level).depth(), a.min_depth()) << level;
  // Without tracking, the layout ends where the in-use bitmaps would start.
  EXPECT_EQ(buddy_layout(15, false).words(), a.used_offset(0));
  constexpr buddy_layout at_compile_time(8, false);
  static_assert(at_compile_time.words() > 1);

  // Stored as bytes (in a segment, say) and read back: the same layout.
  alignas(buddy_layout) unsigned char stored[sizeof(buddy_layout)];
  std::memcpy(stored, &a, sizeof a);
  buddy_layout c;
  std::memcpy(&c, stored, sizeof c);
  EXPECT_EQ(c, a);
}

// The state is the word array and nothing else: copied anywhere, with the layout stored or
// recomputed, it goes on exactly as the original does.
TEST(BuddyTree, WordsArePositionIndependent) {
  const buddy_layout layout(11, true);  // 1024 min-blocks
  std::vector<std::uint64_t> original(layout.words());
  const buddy_tree first(layout, original.data());
  first.free_range(1, 1000);
  std::vector<std::pair<unsigned, std::size_t>> held;
  std::mt19937 rng(5);
  for (int step = 0; step < 200; ++step) {
    const auto level = static_cast<unsigned>(rng() % 5);
    if (first.can_take(level)) {
      const std::size_t i = first.take(level);
      first.set_used(level, i);
      held.emplace_back(level, i);
    }
  }

  // Somewhere else (not at the start of its array), and with a layout computed anew.
  std::vector<std::uint64_t> elsewhere(layout.words() + 7);
  std::memcpy(elsewhere.data() + 7, original.data(), layout.words() * sizeof(std::uint64_t));
  const buddy_layout recomputed(11, true);
  const buddy_tree second(recomputed, elsewhere.data() + 7);
  ASSERT_EQ(second.verify(1, 1000), "");
  ASSERT_EQ(second.level_mask(), first.level_mask());

  // The same operations on both: the same answers and the same words.
  for (int step = 0; step < 400; ++step) {
    const auto level = static_cast<unsigned>(rng() % 5);
    if (rng() % 2 == 0 && first.can_take(level)) {
      ASSERT_TRUE(second.can_take(level));
      const std::size_t i = first.take(level);
      ASSERT_EQ(second.take(level), i) << step;
      first.set_used(level, i);
      second.set_used(level, i);
      held.emplace_back(level, i);
    } else if (!held.empty()) {
      const std::size_t k = rng() % held.size();
      const auto [l, i] = held[k];
      held.erase(held.begin() + static_cast<std::ptrdiff_t>(k));
      for (const buddy_tree* tree : {&first, &second}) {
        tree->clear_used(l, i);
        tree->give(l, i);
      }
    }
    ASSERT_TRUE(std::equal(original.begin(), original.end(), elsewhere.begin() + 7)) << step;
  }
  EXPECT_EQ(second.verify(1, 1000), "");
}

}  // namespace
