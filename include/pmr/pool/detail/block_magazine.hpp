// block_magazine: the fast path every pool shares, a stack of the addresses
// of free blocks of one size, newest on top.
//
// Freeing pushes an address and allocating pops the newest one, so neither
// touches the block itself: freeing a cold block and allocating another costs
// no cache miss on either, which an intrusive free list (the block's first
// word linking to the next) would cost on both. The newest block, the one
// most likely still in the CPU's cache, is handed out first. When a magazine
// is full its owner moves its oldest blocks somewhere slower (`take_oldest`):
// block_pool onto its intrusive free list (pool_resource, multipool_resource);
// concurrent_pool_resource, whose threads each hold one magazine per class,
// to the class's locked depot as one batch.
//
// The addresses live in the magazine itself when its capacity is a
// template argument (block_pool's 32: the count and the slots share a cache
// line, with nothing to load first), or in storage the owner provides (the
// slots after a concurrent pool's thread cache, a capacity per class).
//
// Thread safety: one thread pushes and pops. With
// `magazine_count::shared` `size()` may also be read by other threads at any
// time (the count is a relaxed atomic: plain loads and stores on the
// platforms pmrkit supports, but each access is made), as
// concurrent_pool_resource's stats do; block_pool's magazine keeps a plain
// count, which the compiler reads once per call however often the code names it.
//
// Example:
//   pmrkit::detail::block_magazine<pmrkit::detail::magazine_count::owner_only, 4> magazine;
//   alignas(16) std::byte blocks[4][16];
//   for (auto& block : blocks) magazine.push(block);
//   assert(magazine.full() && magazine.pop() == blocks[3]);
//   std::vector<void*> taken;
//   magazine.take_oldest(2, [&](void* oldest) { taken.push_back(oldest); });
//   assert(taken[0] == blocks[0] && taken[1] == blocks[1]);
//   assert(magazine.size() == 1 && magazine.try_pop() == blocks[2]);
//   assert(magazine.try_pop() == nullptr);
#pragma once

#include <pmr/core/attributes.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <type_traits>

namespace pmrkit::detail {

/// Who may read a magazine's count: its owner only, or any thread.
enum class magazine_count { owner_only, shared };

/// A magazine of `InlineCapacity` slots held inside it, or with 0 (the
/// default) of slots the owner provides.
template <magazine_count Count = magazine_count::owner_only, std::uint32_t InlineCapacity = 0>
class block_magazine {
  static constexpr bool holds_slots = InlineCapacity != 0;
  struct no_field {};

 public:
  /// Empty, its slots inside it.
  block_magazine() noexcept requires holds_slots = default;
  /// Empty, over `capacity` slots at `slots` (which must outlive it).
  block_magazine(void** slots, std::uint32_t capacity) noexcept requires(!holds_slots)
      : capacity_(capacity), slots_(slots) {}
  block_magazine(const block_magazine&) = delete;
  block_magazine& operator=(const block_magazine&) = delete;

  [[nodiscard]] std::uint32_t size() const noexcept {
    if constexpr (Count == magazine_count::shared) {
      return count_.load(std::memory_order_relaxed);
    } else {
      return count_;
    }
  }
  [[nodiscard]] std::uint32_t capacity() const noexcept {
    if constexpr (holds_slots) {
      return InlineCapacity;
    } else {
      return capacity_;
    }
  }
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }
  [[nodiscard]] bool full() const noexcept { return size() == capacity(); }

  /// The newest block; the magazine must not be empty.
  [[nodiscard]] void* pop() noexcept {
    const std::uint32_t count = size() - 1;
    set_size(count);
    return slots()[count];
  }
  /// The newest block, or nullptr when the magazine is empty (one read of the count).
  [[nodiscard]] void* try_pop() noexcept {
    const std::uint32_t count = size();
    if (count == 0) return nullptr;
    set_size(count - 1);
    void* block = slots()[count - 1];
    PMRKIT_ASSUME(block != nullptr);  // push's contract: the caller's check tests only the count
    return block;
  }
  /// Adds `block` (not null) on top; the magazine must not be full.
  void push(void* block) noexcept {
    const std::uint32_t count = size();
    slots()[count] = block;
    set_size(count + 1);
  }
  /// Adds `block` (not null) on top unless the magazine is full (one read of the count).
  [[nodiscard]] bool try_push(void* block) noexcept {
    const std::uint32_t count = size();
    if (count == capacity()) return false;
    slots()[count] = block;
    set_size(count + 1);
    return true;
  }

  /// Removes the `n` oldest blocks (at most size()), passing each to `take`
  /// oldest first; the newer ones stay, in their order.
  template <class Take>
  void take_oldest(std::uint32_t n, Take take) noexcept {
    const std::uint32_t count = size();
    for (std::uint32_t i = 0; i < n; ++i)
      take(slots()[i]);
    std::copy(slots() + n, slots() + count, slots());
    set_size(count - n);
  }
  /// Removes every block, passing each to `take`, newest first.
  template <class Take>
  void take_all(Take take) noexcept {
    for (std::uint32_t count = size(); count != 0;) {
      --count;
      set_size(count);
      take(slots()[count]);
    }
  }
  /// Forgets every block (their memory is being given back as a whole).
  void clear() noexcept { set_size(0); }

  /// True when `block` is in the magazine (a linear search: for checks only).
  [[nodiscard]] bool contains(const void* block) const noexcept {
    return std::find(slots(), slots() + size(), block) != slots() + size();
  }

 private:
  [[nodiscard]] void** slots() noexcept { return &slots_[0]; }
  [[nodiscard]] void* const* slots() const noexcept { return &slots_[0]; }
  void set_size(std::uint32_t count) noexcept {
    if constexpr (Count == magazine_count::shared) {
      count_.store(count, std::memory_order_relaxed);
    } else {
      count_ = count;
    }
  }

  // Written by the owning thread only.
  std::conditional_t<Count == magazine_count::shared, std::atomic<std::uint32_t>, std::uint32_t>
      count_{0};
  [[no_unique_address]] std::conditional_t<holds_slots, no_field, std::uint32_t> capacity_{};
  std::conditional_t<holds_slots, std::array<void*, holds_slots ? InlineCapacity : 1>, void**>
      slots_;
};

}  // namespace pmrkit::detail
