// basic_address_map<Value>: the live blocks of a traced resource or program,
// address -> Value (an id; for trace_resource the id, size and alignment), in
// an open-addressing table (linear probing, deletion by backward
// shift, so no tombstones) whose memory comes straight from the OS page layer,
// never from malloc or an upstream: the preload library records malloc
// itself, and trace_resource must not show up in what it traces. Internal to
// pmrkit (not installed).
//
// Value must be trivially copyable (the table moves it with plain copies and
// its pages read as zero). The table doubles when half full. insert() returns false when the OS
// refuses the pages for a larger table (the caller then stops tracing).
//
// Thread safety: none; the owner serializes every call.
#pragma once

#include "../os/pages.hpp"

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace pmrkit::detail {

template <class Value>
class basic_address_map {
  static_assert(std::is_trivially_copyable_v<Value>);

 public:
  basic_address_map() noexcept = default;
  basic_address_map(const basic_address_map&) = delete;
  basic_address_map& operator=(const basic_address_map&) = delete;
  ~basic_address_map() {
    if (slots_ != nullptr) os::release(slots_, bytes_for(capacity_));
  }

  /// Maps `address` (not 0) to `value`. False when the table could not grow.
  [[nodiscard]] bool insert(std::uintptr_t address, const Value& value) noexcept {
    if ((size_ + 1) * 2 > capacity_ && !grow()) return false;
    place(address, value);
    ++size_;
    return true;
  }

  /// What `address` maps to, or nullptr.
  [[nodiscard]] const Value* find(std::uintptr_t address) const noexcept {
    const std::size_t i = slot_of(address);
    return i == npos ? nullptr : &slots_[i].value;
  }

  /// Removes `address` and sets `value` to what it mapped to; false when absent.
  [[nodiscard]] bool take(std::uintptr_t address, Value& value) noexcept {
    const Value* found = find(address);
    if (found == nullptr) return false;
    value = *found;
    erase(found);
    return true;
  }

  /// Removes the entry `found` (what find() returned), without looking it up again.
  void erase(const Value* found) noexcept {
    // The slot holding `found`: found points at that slot's value member.
    const auto offset = reinterpret_cast<const unsigned char*>(found) -
                        reinterpret_cast<const unsigned char*>(slots_);
    const std::size_t i = static_cast<std::size_t>(offset) / sizeof(slot);
    // Backward shift: move later entries of the run into the hole when their
    // home does not lie strictly between the hole and them.
    std::size_t hole = i;
    for (std::size_t j = (i + 1) & (capacity_ - 1); slots_[j].address != 0;
         j = (j + 1) & (capacity_ - 1)) {
      const std::size_t h = home(slots_[j].address);
      if (((j - h) & (capacity_ - 1)) >= ((j - hole) & (capacity_ - 1))) {
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    slots_[hole] = slot{};
    --size_;
  }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }

 private:
  struct slot {
    std::uintptr_t address = 0;
    Value value{};
  };
  static constexpr std::size_t npos = ~std::size_t{0};

  [[nodiscard]] std::size_t slot_of(std::uintptr_t address) const noexcept {
    if (capacity_ == 0) return npos;
    std::size_t i = home(address);
    while (slots_[i].address != address) {
      if (slots_[i].address == 0) return npos;
      i = (i + 1) & (capacity_ - 1);
    }
    return i;
  }

  static std::size_t bytes_for(std::size_t capacity) noexcept {
    const std::size_t page = os::page_size();
    return (capacity * sizeof(slot) + page - 1) / page * page;
  }
  [[nodiscard]] std::size_t home(std::uintptr_t address) const noexcept {
    // Fibonacci hashing of the address without its always-zero low bits.
    return static_cast<std::size_t>(((address >> 4) * 0x9E3779B97F4A7C15ULL) >> shift_);
  }
  void place(std::uintptr_t address, const Value& value) noexcept {
    std::size_t i = home(address);
    while (slots_[i].address != 0)
      i = (i + 1) & (capacity_ - 1);
    slots_[i] = slot{address, value};
  }
  bool grow() noexcept {
    const std::size_t capacity = capacity_ == 0 ? 4096 : capacity_ * 2;
    const std::size_t bytes = bytes_for(capacity);
    void* memory = os::reserve(bytes);
    if (memory == nullptr) return false;
    if (!os::commit(memory, bytes)) {
      os::release(memory, bytes);
      return false;
    }
    slot* old = slots_;
    const std::size_t old_capacity = capacity_;
    slots_ = static_cast<slot*>(memory);  // committed pages read as zero: every slot empty
    capacity_ = capacity;
    shift_ = 64 - static_cast<unsigned>(std::countr_zero(capacity));
    for (std::size_t i = 0; i < old_capacity; ++i) {
      if (old[i].address != 0) place(old[i].address, old[i].value);
    }
    if (old != nullptr) os::release(old, bytes_for(old_capacity));
    return true;
  }

  slot* slots_ = nullptr;
  std::size_t capacity_ = 0;  // a power of two, or 0
  std::size_t size_ = 0;
  unsigned shift_ = 64;
};

/// Address -> id: the preload library's table.
using address_map = basic_address_map<std::uint64_t>;

}  // namespace pmrkit::detail
