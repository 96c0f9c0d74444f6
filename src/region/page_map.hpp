// The live blocks of a page source (page_resource, locked_page_resource, and in pmrkit::cuda
// cuda_pinned_resource, cuda_registered_resource): address -> what was mapped, locked, pinned or
// registered for it, so that release() finds every block and, in checked builds, a
// foreign pointer, a double free or a mismatched size or alignment is told apart and reported.
//
// Internal to pmrkit. Not synchronised: the page source holds its mutex around every call, and
// reports what take() found after letting go of it (a violation handler may call back).
#pragma once

#include <pmr/core/config.hpp>
#include <pmr/core/violation.hpp>

#include <array>
#include <cstddef>
#include <optional>
#include <string_view>
#include <unordered_map>

namespace pmrkit::detail {

/// One live block.
struct page_block {
  std::size_t extent = 0;     ///< what was mapped (or taken upstream and locked) for it
  std::size_t requested = 0;  ///< the caller's size
  std::size_t alignment = 0;  ///< the caller's alignment
  bool huge = false;          ///< explicit huge pages (page_resource)
  /// Where the backing block starts when the pointer handed out lies inside it (an
  /// over-aligned cudaHostAlloc block); nullptr: at the pointer.
  void* base = nullptr;
  std::size_t upstream_alignment = 0;  ///< the alignment the backing block was taken at
};

/// What take() found: the block, or the misuse to report (the call is then ignored).
struct page_take {
  std::optional<page_block> block;
  std::optional<violation> problem;  ///< resource_name left empty: the caller fills it in
};

/// After page_map::take, outside the lock: reports the misuse it found, naming the resource
/// (a violation handler may call the resource back), and returns the block to give back, if
/// any.
[[nodiscard]] inline std::optional<page_block> settle(page_take& taken,
                                                      std::string_view resource_name) {
  if (taken.problem) {
    taken.problem->resource_name = resource_name;
    report_violation(*taken.problem);
    return std::nullopt;
  }
  return taken.block;
}

class page_map {
 public:
  /// Records a new block at `p`. Throws std::bad_alloc (the map's node); nothing changes then.
  void insert(void* p, const page_block& block) {
    live_.emplace(p, block);
    forget_freed(p);
  }

  /// Removes the block at `p` freed as (bytes, alignment). Unchecked builds trust the caller
  /// (a pointer not found is ignored, the recorded extent used); checked builds return a
  /// violation instead of the block for a foreign pointer, a double free (one of the last
  /// frees), or a size or alignment other than the allocation's, and keep the block.
  [[nodiscard]] page_take take(void* p, [[maybe_unused]] std::size_t bytes,
                               [[maybe_unused]] std::size_t alignment) noexcept {
    const auto found = live_.find(p);
    if (found == live_.end()) {
#if PMRKIT_CHECKED
      const bool recent = was_freed(p);
      return {std::nullopt,
              violation{recent ? violation_kind::double_free : violation_kind::foreign_pointer,
                        {},
                        p,
                        bytes,
                        alignment}};
#else
      return {};
#endif
    }
    const page_block block = found->second;
#if PMRKIT_CHECKED
    if (block.requested != bytes) {
      return {std::nullopt, violation{violation_kind::size_mismatch,
                                      {},
                                      p,
                                      bytes,
                                      alignment,
                                      block.requested,
                                      block.alignment}};
    }
    if (block.alignment != alignment) {
      return {std::nullopt, violation{violation_kind::alignment_mismatch,
                                      {},
                                      p,
                                      bytes,
                                      alignment,
                                      block.requested,
                                      block.alignment}};
    }
    remember_freed(p);
#endif
    live_.erase(found);
    return {block, std::nullopt};
  }

  /// Moves every block out (the map is empty afterwards). noexcept: a swap.
  [[nodiscard]] std::unordered_map<void*, page_block> take_all() noexcept {
    std::unordered_map<void*, page_block> all;
    all.swap(live_);
    return all;
  }

  [[nodiscard]] std::size_t size() const noexcept {
    return live_.size();
  }

 private:
#if PMRKIT_CHECKED
  void remember_freed(const void* p) noexcept {
    freed_[next_freed_] = p;
    next_freed_ = (next_freed_ + 1) % freed_.size();
  }
  [[nodiscard]] bool was_freed(const void* p) const noexcept {
    for (const void* q : freed_)
      if (q == p) return true;
    return false;
  }
  void forget_freed(const void* p) noexcept {
    for (const void*& q : freed_)
      if (q == p) q = nullptr;
  }
  std::array<const void*, 64> freed_{};
  std::size_t next_freed_ = 0;
#else
  void forget_freed(const void*) noexcept {}
#endif
  std::unordered_map<void*, page_block> live_;
};

}  // namespace pmrkit::detail
