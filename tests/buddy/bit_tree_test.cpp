// bit_tree (buddy/detail): a set of small integers as a bitmap with summary words, under the
// buddy's free sets.
#include <pmr/buddy/detail/bit_tree.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

namespace {

TEST(BitTree, ShapesCoverTheirSizeWithOneTopWord) {
  for (std::size_t size : {1U, 2U, 63U, 64U, 65U, 4096U, 4097U, 262144U, 262145U}) {
    const pmrkit::detail::bit_tree_shape shape(size);
    std::vector<std::uint64_t> words(shape.words());
    const pmrkit::detail::bit_tree tree(shape, words.data());
    EXPECT_EQ(tree.find_first(), pmrkit::detail::bit_tree::none) << size;
    tree.set(size - 1);
    EXPECT_EQ(tree.find_first(), size - 1) << size;
    tree.set(0);
    EXPECT_EQ(tree.find_first(), 0U) << size;
    EXPECT_EQ(tree.count(size), size == 1 ? 1U : 2U) << size;
    EXPECT_TRUE(tree.consistent(size)) << size;
    tree.clear(0);
    tree.clear(size - 1);
    EXPECT_TRUE(tree.empty()) << size;
    EXPECT_TRUE(std::all_of(words.begin(), words.end(), [](std::uint64_t w) { return w == 0; }))
        << size;
  }
  EXPECT_EQ(pmrkit::detail::bit_tree_shape(64).depth(), 1U);
  EXPECT_EQ(pmrkit::detail::bit_tree_shape(65).depth(), 2U);
  EXPECT_EQ(pmrkit::detail::bit_tree_shape(262144).depth(), 3U);
  EXPECT_EQ(pmrkit::detail::bit_tree_shape(262145).depth(), 4U);
}

TEST(BitTree, FindFirstFollowsARandomSet) {
  const std::size_t size = 20000;
  const pmrkit::detail::bit_tree_shape shape(size);
  std::vector<std::uint64_t> words(shape.words());
  const pmrkit::detail::bit_tree tree(shape, words.data());
  std::set<std::size_t> model;
  std::mt19937 rng(7);
  for (int step = 0; step < 20000; ++step) {
    const std::size_t i = rng() % size;
    if (model.contains(i)) {
      tree.clear(i);
      model.erase(i);
    } else {
      tree.set(i);
      model.insert(i);
    }
    ASSERT_EQ(tree.find_first(), model.empty() ? pmrkit::detail::bit_tree::none : *model.begin());
    ASSERT_EQ(tree.test(i), model.contains(i));
  }
  EXPECT_TRUE(tree.consistent(size));
  EXPECT_EQ(tree.count(size), model.size());
}

// Options.

TEST(BitTree, AShapeMayAskForMoreLevelsThanItsSizeNeeds) {
  const pmrkit::detail::bit_tree_shape shallow(100);
  const pmrkit::detail::bit_tree_shape deep(100, 4);
  EXPECT_EQ(shallow.depth(), 2U);
  EXPECT_EQ(deep.depth(), 4U);
  std::vector<std::uint64_t> words(deep.words());
  const pmrkit::detail::bit_tree tree(deep, words.data());
  tree.set(99);
  tree.set(3);
  EXPECT_EQ(tree.find_first(), 3U);
  tree.clear(3);
  EXPECT_EQ(tree.find_first(), 99U);
  EXPECT_TRUE(tree.consistent(100));
  tree.clear(99);
  EXPECT_TRUE(tree.empty());
}

TEST(BitTree, SeveralTreesShareOneWordArray) {
  const pmrkit::detail::bit_tree_shape shape(1000);
  std::vector<std::uint64_t> words(2 * shape.words());
  const pmrkit::detail::bit_tree first(shape, words.data());
  const pmrkit::detail::bit_tree second(shape, words.data() + shape.words());
  first.set(10);
  second.set(20);
  EXPECT_EQ(first.find_first(), 10U);
  EXPECT_EQ(second.find_first(), 20U);
  EXPECT_FALSE(first.test(20));
  EXPECT_EQ(first.count(1000) + second.count(1000), 2U);
}

}  // namespace
