// marker_history: tells an arena which of its markers are still valid,
// without keeping the markers and without looking at any address.
//
// An arena's history is the sequence of its allocations since the last
// reset, less those undone: a rollback or a pop removes the newest, a rewind
// goes back to a marker. `depth` is its length; a marker records the depth
// at which it was taken and a stamp (how many markers came before it). A
// marker is valid while the history has never been cut below its depth since
// it was taken: rewinding to it then frees exactly what was allocated after
// it. A marker cut below and grown past again (the same depth, another
// history) is stale, even when its chunk and offset look like a position
// before the current one.
//
// Cuts are noted cheaply (a compare per pop) and written down only when a
// marker is taken or checked, as (stamp, depth) pairs: every marker up to
// that stamp deeper than that depth is stale. Only pairs that can still
// decide something are kept (their depths rise with their stamps), at most
// `capacity`; beyond that the oldest is forgotten, so a very old marker may
// then be judged by its position alone (never a valid marker reported stale).
//
// Thread safety: none (its owners are single-threaded).
//
// Example:
//   pmrkit::detail::marker_history history;
//   history.push();                                      // an allocation
//   const pmrkit::detail::marker_history::mark m = history.take();
//   history.push();
//   history.cut_to(m.depth);                             // a rewind to m
//   assert(history.valid(m));
//   history.pop();                                       // below m
//   history.push();                                      // and past it again
//   assert(!history.valid(m));
#pragma once

#include <pmr/core/config.hpp>

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace pmrkit::detail {

class marker_history {
 public:
  static constexpr std::size_t capacity = 16;

  /// What a marker records.
  struct mark {
    std::uint64_t depth = 0;  ///< allocations in the history before it
    std::uint64_t stamp = 0;  ///< markers taken before it, plus one
  };

  [[nodiscard]] std::uint64_t depth() const noexcept { return depth_; }
  /// An allocation.
  void push() noexcept { ++depth_; }
  /// The newest allocation undone (a rollback, a pop).
  void pop() noexcept {
    --depth_;
    if (depth_ < low_) low_ = depth_;
  }
  /// Back to `depth` (a rewind).
  void cut_to(std::uint64_t depth) noexcept {
    depth_ = depth;
    if (depth_ < low_) low_ = depth_;
  }
  /// Everything forgotten: the history starts again (a reset or release).
  void clear() noexcept {
    depth_ = low_ = noted_depth_ = 0;
    size_ = 0;
  }

  /// A marker of the present.
  [[nodiscard]] mark take() const noexcept {
    note_cuts();
    return {depth_, ++stamps_};
  }
  /// True when rewinding to `m` (taken from this history since its last
  /// clear) frees only what was allocated after it.
  [[nodiscard]] bool valid(mark m) const noexcept {
    if (m.depth > depth_ || m.stamp == 0 || m.stamp > stamps_) return false;
    note_cuts();
    for (std::size_t i = 0; i < size_; ++i) {
      // The first cut after the marker was taken is the lowest of them all.
      if (cuts_[i].stamp >= m.stamp) return m.depth <= cuts_[i].depth;
    }
    return true;
  }

 private:
  struct cut {
    std::uint64_t stamp;  // markers up to this one were taken before the cut
    std::uint64_t depth;  // the history went down to this depth
  };

  void note_cuts() const noexcept {
    if (low_ < noted_depth_) add(stamps_, low_);
    low_ = noted_depth_ = depth_;
  }
  void add(std::uint64_t stamp, std::uint64_t depth) const noexcept {
    // A cut as deep or deeper decides for every marker an earlier one did.
    while (size_ > 0 && cuts_[size_ - 1].depth >= depth)
      --size_;
    if (size_ > 0 && cuts_[size_ - 1].stamp == stamp) return;  // a deeper one decides already
    if (size_ == capacity) {                                   // forget the oldest
      for (std::size_t i = 1; i < size_; ++i)
        cuts_[i - 1] = cuts_[i];
      --size_;
    }
    cuts_[size_++] = {stamp, depth};
  }

  std::uint64_t depth_ = 0;
  // Markers are taken by const arenas (checkpoint() is const): what they
  // write down here changes no answer an arena gives.
  mutable std::uint64_t low_ = 0;          // the lowest depth since cuts were last noted
  mutable std::uint64_t noted_depth_ = 0;  // the depth when cuts were last noted
  mutable std::uint64_t stamps_ = 0;       // markers taken
  mutable std::size_t size_ = 0;
  mutable cut cuts_[capacity] = {};
};

/// The history of unchecked builds: none. Counting every allocation and
/// free costs the bump and rollback fast paths a few nanoseconds (a chain of
/// stores and loads through the arena), which release builds do not pay: a
/// marker is then judged by its owner, its reset count and its place alone.
/// A stale marker whose place is at or before the position rewinds there,
/// which keeps the arena's own bookkeeping whole (dedicated chunks and
/// overflow blocks are counted, never compared by address) but frees blocks
/// the caller may still use: the misuse that checked builds report.
class no_marker_history {
 public:
  using mark = marker_history::mark;
  [[nodiscard]] static constexpr std::uint64_t depth() noexcept { return 0; }
  static constexpr void push() noexcept {}
  static constexpr void pop() noexcept {}
  static constexpr void cut_to(std::uint64_t) noexcept {}
  static constexpr void clear() noexcept {}
  [[nodiscard]] static constexpr mark take() noexcept { return {0, 1}; }
  [[nodiscard]] static constexpr bool valid(mark) noexcept { return true; }
};

/// What the arenas and the stack keep: the history in checked builds, nothing otherwise.
using arena_marker_history =
    std::conditional_t<PMRKIT_CHECKED != 0, marker_history, no_marker_history>;

}  // namespace pmrkit::detail
