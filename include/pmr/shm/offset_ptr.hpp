// offset_ptr: a self-relative pointer, valid wherever its memory is mapped.
//
// An offset_ptr<T> stores the distance in bytes from its own address to its
// target (a std::ptrdiff_t), not the target's address. Two processes that map
// the same shared memory at different addresses therefore both see a pointer
// stored inside it pointing at the same object, as long as the target lies in
// the same mapping; a block of memory copied byte for byte elsewhere keeps its
// inner pointers pointing inside the copy. It is boost::interprocess::offset_ptr
// without the extra template parameters, and a complete fancy pointer: use it
// as an allocator's `pointer` (Boost.Container's containers accept it, and
// are tested with it; how far a standard library's containers support fancy
// pointers varies), with std::pointer_traits, std::to_address, and as a
// contiguous iterator.
//
// Null: the stored value 1 means null (Boost's encoding). The value 1 would
// mean "the byte just after this pointer's first byte", which lies inside the
// pointer's own storage (static_assert: it is at least 2 bytes) and is
// misaligned for every type of alignment > 1 (static_assert: the pointer's
// alignment is at least 2), so no object other than the pointer's own bytes
// can be there. The one address an offset_ptr cannot hold is therefore
// `reinterpret_cast<std::byte*>(this) + 1`: pointing an offset_ptr<char>,
// <std::byte> or <void> at its own second byte is not supported (a debug
// build asserts). 0 is not null because it is a useful target: an offset_ptr
// at the start of a node pointing at the node itself (the empty head of a
// circular list) stores 0. Null stored as 1 survives a byte copy, as every
// other value does. The arithmetic is done on std::uintptr_t, modulo 2^N, so
// no pointer subtraction between unrelated objects is ever evaluated.
//
// Copying is not a byte copy: the copy constructor and assignment recompute
// the offset from the copy's own address, so offset_ptr is NOT trivially
// copyable (std::is_trivially_copyable is false). Never send one to another
// process in a message or keep one outside the mapping it points into: a
// message carries a shm_offset (<pmr/shm/full_ptr.hpp>), an offset from the
// segment's base, instead.
//
// void and const void work (conversions, comparisons, casts); the operators
// that need a complete object type (*, [], arithmetic, pointer_to) exist only
// for object types. For void, `reference` is a placeholder type, as in Boost,
// so that traits declaring `pointer_to(reference)` (Boost.Intrusive's) still
// instantiate.
//
// Thread safety: as a raw pointer: concurrent reads are fine, a write races
// with every other access to the same offset_ptr.
//
// Example:
//   struct record {
//     int value = 42;
//     pmrkit::offset_ptr<int> to_value;  // will point at `value` of the same record
//   };
//   alignas(record) std::byte first[sizeof(record)];
//   auto* a = ::new (static_cast<void*>(first)) record;
//   a->to_value = &a->value;
//   alignas(record) std::byte second[sizeof(record)];  // as if mapped at another address
//   for (std::size_t i = 0; i < sizeof(record); ++i) second[i] = first[i];
//   auto* b = std::launder(reinterpret_cast<record*>(second));
//   assert(b->to_value.get() == &b->value && *b->to_value == 42);
//   pmrkit::offset_ptr<const void> erased = b->to_value;  // to const void and back
//   assert(pmrkit::static_pointer_cast<const int>(erased) == &b->value);
//   assert(!pmrkit::offset_ptr<int>() && pmrkit::offset_ptr<int>() == nullptr);
#pragma once

#include <cassert>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <type_traits>

namespace pmrkit {

namespace detail {
/// What offset_ptr<cv void>::reference names: a type nothing converts to, so
/// it cannot be dereferenced, but a parameter of its reference type is valid.
struct offset_ptr_void_reference {
  offset_ptr_void_reference() = delete;
};
}  // namespace detail

// What the null encoding relies on (see the opening comment).
static_assert(sizeof(std::ptrdiff_t) >= 2 && alignof(std::ptrdiff_t) >= 2,
              "offset_ptr's null (1) must point inside the pointer, at a misaligned address");
static_assert(sizeof(std::uintptr_t) == sizeof(std::ptrdiff_t) &&
                  sizeof(void*) <= sizeof(std::uintptr_t),
              "offset_ptr computes offsets on std::uintptr_t, modulo 2^N, and stores them in "
              "std::ptrdiff_t");

/// A pointer to T stored as the distance from its own address to the target.
template <class T>
class offset_ptr {
 public:
  using element_type = T;
  using value_type = std::remove_cv_t<T>;
  using difference_type = std::ptrdiff_t;
  using pointer = T*;
  using reference = std::conditional_t<std::is_void_v<T>, detail::offset_ptr_void_reference, T>&;
  using iterator_category = std::random_access_iterator_tag;
  using iterator_concept = std::conditional_t<std::is_void_v<T>, std::random_access_iterator_tag,
                                              std::contiguous_iterator_tag>;
  template <class U>
  using rebind = offset_ptr<U>;

  /// Null.
  offset_ptr() noexcept = default;
  /// Points at `target` (implicit, as a raw pointer converts); nullptr and a
  /// literal 0 give null (Boost.Container's deque and string write `= 0`, so
  /// there is no separate nullptr_t constructor to make that ambiguous).
  offset_ptr(T* target) noexcept : offset_(encode(target)) {}
  /// Recomputes the offset from this object's address.
  offset_ptr(const offset_ptr& other) noexcept : offset_(encode(other.get())) {}
  /// From a pointer to U when U* converts to T* (to const, to void, to a base).
  template <class U>
  requires(!std::is_same_v<U, T> && std::is_convertible_v<U*, T*>)
      offset_ptr(const offset_ptr<U>& other)
  noexcept : offset_(encode(other.get())) {}

  offset_ptr& operator=(const offset_ptr& other) noexcept {
    offset_ = encode(other.get());
    return *this;
  }
  offset_ptr& operator=(T* target) noexcept {
    offset_ = encode(target);
    return *this;
  }
  template <class U>
  requires(!std::is_same_v<U, T> && std::is_convertible_v<U*, T*>) offset_ptr& operator=(
      const offset_ptr<U>& other) noexcept {
    offset_ = encode(other.get());
    return *this;
  }

  ~offset_ptr() = default;

  /// The pointer to `object` (for std::pointer_traits; object types only).
  [[nodiscard]] static offset_ptr pointer_to(reference object) noexcept
      requires(!std::is_void_v<T>) {
    return offset_ptr(std::addressof(object));
  }

  /// The target's address in this process (nullptr for null).
  [[nodiscard]] T* get() const noexcept {
    if (offset_ == null_offset) return nullptr;
    return reinterpret_cast<T*>(self() + static_cast<std::uintptr_t>(offset_));
  }
  /// The stored distance in bytes from this object to its target (1 for null).
  [[nodiscard]] std::ptrdiff_t offset() const noexcept { return offset_; }

  T* operator->() const noexcept { return get(); }
  reference operator*() const noexcept requires(!std::is_void_v<T>) { return *get(); }
  reference operator[](difference_type index) const noexcept requires(!std::is_void_v<T>) {
    return get()[index];
  }
  explicit operator bool() const noexcept { return offset_ != null_offset; }

  offset_ptr& operator+=(difference_type count) noexcept requires(!std::is_void_v<T>) {
    offset_ = encode(get() + count);
    return *this;
  }
  offset_ptr& operator-=(difference_type count) noexcept requires(!std::is_void_v<T>) {
    offset_ = encode(get() - count);
    return *this;
  }
  offset_ptr& operator++() noexcept requires(!std::is_void_v<T>) { return *this += 1; }
  offset_ptr& operator--() noexcept requires(!std::is_void_v<T>) { return *this -= 1; }
  offset_ptr operator++(int) noexcept requires(!std::is_void_v<T>) {
    offset_ptr before(*this);
    *this += 1;
    return before;
  }
  offset_ptr operator--(int) noexcept requires(!std::is_void_v<T>) {
    offset_ptr before(*this);
    *this -= 1;
    return before;
  }

  /// Exchanges the targets (each offset recomputed for its own address).
  friend void swap(offset_ptr& a, offset_ptr& b) noexcept {
    T* const target = a.get();
    a = b.get();
    b = target;
  }

 private:
  static constexpr std::ptrdiff_t null_offset = 1;

  [[nodiscard]] std::uintptr_t self() const noexcept {
    return reinterpret_cast<std::uintptr_t>(this);
  }
  [[nodiscard]] std::ptrdiff_t encode(T* target) const noexcept {
    if (target == nullptr) return null_offset;
    // Modulo 2^N, then the two's complement value (well defined since C++20).
    const auto distance =
        static_cast<std::ptrdiff_t>(reinterpret_cast<std::uintptr_t>(target) - self());
    assert(distance != null_offset && "an offset_ptr cannot point at its own second byte");
    return distance;
  }

  std::ptrdiff_t offset_ = null_offset;
};

static_assert(sizeof(offset_ptr<void>) == sizeof(std::ptrdiff_t) &&
                  alignof(offset_ptr<void>) == alignof(std::ptrdiff_t),
              "offset_ptr is its offset alone");

// Arithmetic (object types only).

template <class T>
requires(!std::is_void_v<T>) [[nodiscard]] offset_ptr<T> operator+(const offset_ptr<T>& p,
                                                                   std::ptrdiff_t count) noexcept {
  return offset_ptr<T>(p.get() + count);
}
template <class T>
requires(!std::is_void_v<T>) [[nodiscard]] offset_ptr<T> operator+(
    std::ptrdiff_t count, const offset_ptr<T>& p) noexcept {
  return offset_ptr<T>(p.get() + count);
}
template <class T>
requires(!std::is_void_v<T>) [[nodiscard]] offset_ptr<T> operator-(const offset_ptr<T>& p,
                                                                   std::ptrdiff_t count) noexcept {
  return offset_ptr<T>(p.get() - count);
}
/// The number of elements from `b` to `a` (same element type up to cv).
template <class T, class U>
requires(!std::is_void_v<T> && std::is_same_v<std::remove_cv_t<T>, std::remove_cv_t<U>>)
    [[nodiscard]] std::ptrdiff_t
    operator-(const offset_ptr<T>& a, const offset_ptr<U>& b) noexcept {
  return a.get() - b.get();
}

// Comparisons: by target address, with each other, with raw pointers and with nullptr.

template <class T, class U>
requires std::equality_comparable_with<T*, U*>
[[nodiscard]] bool operator==(const offset_ptr<T>& a, const offset_ptr<U>& b) noexcept {
  return a.get() == b.get();
}
template <class T, class U>
requires std::three_way_comparable_with<T*, U*>
[[nodiscard]] std::strong_ordering operator<=>(const offset_ptr<T>& a,
                                               const offset_ptr<U>& b) noexcept {
  return std::compare_three_way{}(a.get(), b.get());
}
template <class T, class U>
requires std::equality_comparable_with<T*, U*>
[[nodiscard]] bool operator==(const offset_ptr<T>& a, U* b) noexcept {
  return a.get() == b;
}
template <class T, class U>
requires std::three_way_comparable_with<T*, U*>
[[nodiscard]] std::strong_ordering operator<=>(const offset_ptr<T>& a, U* b) noexcept {
  return std::compare_three_way{}(a.get(), b);
}
template <class T>
[[nodiscard]] bool operator==(const offset_ptr<T>& a, std::nullptr_t) noexcept {
  return !a;
}
template <class T>
[[nodiscard]] std::strong_ordering operator<=>(const offset_ptr<T>& a, std::nullptr_t) noexcept {
  return std::compare_three_way{}(a.get(), static_cast<T*>(nullptr));
}

// Casts, as Boost.Interprocess provides them (and std does for shared_ptr):
// static_pointer_cast<U>(p) is offset_ptr<U>(static_cast<U*>(p.get())), and so on.

template <class U, class T>
[[nodiscard]] offset_ptr<U> static_pointer_cast(const offset_ptr<T>& p) noexcept {
  return offset_ptr<U>(static_cast<U*>(p.get()));
}
template <class U, class T>
[[nodiscard]] offset_ptr<U> const_pointer_cast(const offset_ptr<T>& p) noexcept {
  return offset_ptr<U>(const_cast<U*>(p.get()));
}
template <class U, class T>
[[nodiscard]] offset_ptr<U> reinterpret_pointer_cast(const offset_ptr<T>& p) noexcept {
  return offset_ptr<U>(reinterpret_cast<U*>(p.get()));
}
/// A failed dynamic_cast gives null.
template <class U, class T>
[[nodiscard]] offset_ptr<U> dynamic_pointer_cast(const offset_ptr<T>& p) noexcept {
  return offset_ptr<U>(dynamic_cast<U*>(p.get()));
}

/// The raw pointer (found by ADL; std::to_address works too, through operator->).
template <class T>
[[nodiscard]] T* to_address(const offset_ptr<T>& p) noexcept {
  return p.get();
}

}  // namespace pmrkit
