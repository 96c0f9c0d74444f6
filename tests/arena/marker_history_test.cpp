// detail::marker_history, which tells the arenas and the stack whether a
// marker is still valid from their own history alone: rewinds and pops cut
// it, and a marker cut below and grown past again is stale.
#include <pmr/arena/detail/marker_history.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace {

using pmrkit::detail::marker_history;

TEST(MarkerHistory, MarkersStayValidWhileTheHistoryIsNotCutBelowThem) {
  marker_history history;
  const marker_history::mark start = history.take();
  history.push();
  const marker_history::mark one = history.take();
  history.push();
  history.push();
  const marker_history::mark three = history.take();
  EXPECT_TRUE(history.valid(start));
  EXPECT_TRUE(history.valid(one));
  EXPECT_TRUE(history.valid(three));
  history.cut_to(one.depth);  // a rewind to `one`
  EXPECT_TRUE(history.valid(start));
  EXPECT_TRUE(history.valid(one));
  EXPECT_FALSE(history.valid(three)) << "beyond the history now";
  history.push();
  history.push();
  EXPECT_FALSE(history.valid(three)) << "cut below it and grown past: another history";
  EXPECT_TRUE(history.valid(one));
}

TEST(MarkerHistory, APopBelowAMarkerMakesItStaleEvenAtTheSameDepthAgain) {
  marker_history history;
  history.push();
  const marker_history::mark after_a = history.take();
  history.pop();
  history.push();  // another block at the same depth
  EXPECT_FALSE(history.valid(after_a));
  const marker_history::mark after_b = history.take();
  EXPECT_TRUE(history.valid(after_b));
  history.pop();
  history.push();
  history.push();
  EXPECT_FALSE(history.valid(after_b));
}

TEST(MarkerHistory, ManyRisingCutsNeverMakeAValidMarkerStale) {
  marker_history history;
  std::vector<marker_history::mark> valid;
  // Scratch regions at rising depths: take a marker, allocate, rewind to it,
  // allocate one block for good; far more cuts than the record keeps.
  for (int i = 0; i < 100; ++i) {
    valid.push_back(history.take());
    history.push();
    const marker_history::mark scratch = history.take();
    history.push();
    history.push();
    history.cut_to(scratch.depth);
  }
  for (const marker_history::mark& m : valid)
    EXPECT_TRUE(history.valid(m)) << m.depth;
  history.clear();
  EXPECT_FALSE(history.valid(valid.back())) << "beyond the position after clear";
}

TEST(MarkerHistory, AMarkerNeverTakenIsNotValid) {
  marker_history history;
  EXPECT_FALSE(history.valid({}));
  EXPECT_FALSE(history.valid({.depth = 0, .stamp = 5}));
}

}  // namespace
