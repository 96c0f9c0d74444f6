// shm_offset and full_ptr: where a block lies in a shared memory segment, as
// an offset every process understands and as a pointer this process can use.
//
// A process maps a segment wherever its system puts it, so a raw pointer into
// the segment means nothing to another process. `shm_offset` is the portable
// form: the distance in bytes from the segment's base (its first byte), a
// plain std::uint64_t, trivially copyable, so it can be sent in a message,
// written into the segment or hashed. Offset 0 is the segment's own header,
// never a block handed out, so the value 0 means null (`shm_offset::null()`,
// false in a boolean context).
//
// `full_ptr<T>` carries both (as Hermes SHM's FullPtr): the pointer in this
// process and the offset, so code that has one gets the other for free. The
// base it is built from is the mapping's address IN THIS PROCESS (a
// shm_segment's base()); the same offset gives a different pointer in each
// process, or in each of two mappings of the same segment in one process. Send
// `offset()`, never `get()`, and never a full_ptr: it holds a local pointer.
// (offset_ptr, <pmr/shm/offset_ptr.hpp>, is the other portable form: a
// pointer stored inside the segment, relative to its own address.)
//
// Thread safety: values; a full_ptr is as safe as the pointer it holds.
//
// Example:
//   alignas(16) std::byte mapping_a[256]{};  // the same segment, mapped twice
//   alignas(16) std::byte mapping_b[256]{};
//   auto* value = ::new (static_cast<void*>(mapping_a + 64)) int(7);
//   const pmrkit::full_ptr<int> here(mapping_a, value);
//   const pmrkit::shm_offset message = here.offset();  // what another process is sent
//   assert(message.value == 64);
//   const pmrkit::full_ptr<int> there(mapping_b, message);
//   assert(there.get() == reinterpret_cast<int*>(mapping_b + 64) && there.offset() == message);
//   assert(here.cast<const void>().get() == value);
//   assert(!pmrkit::full_ptr<int>(mapping_a, pmrkit::shm_offset::null()));
#pragma once

#include <cassert>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <type_traits>

namespace pmrkit {

/// An offset in bytes from a segment's base; 0 (the segment's header) is null.
struct shm_offset {
  std::uint64_t value = 0;

  /// The null offset (value 0).
  [[nodiscard]] static constexpr shm_offset null() noexcept { return shm_offset{}; }
  /// True when not null.
  constexpr explicit operator bool() const noexcept { return value != 0; }

  friend constexpr bool operator==(shm_offset, shm_offset) noexcept = default;
  friend constexpr std::strong_ordering operator<=>(shm_offset, shm_offset) noexcept = default;
};

static_assert(std::is_trivially_copyable_v<shm_offset> && std::is_standard_layout_v<shm_offset> &&
                  sizeof(shm_offset) == sizeof(std::uint64_t),
              "shm_offset is sent between processes as its bytes");

/// A pointer into a mapping together with its offset from the mapping's base.
template <class T>
class full_ptr {
 public:
  using element_type = T;

  /// Null (nullptr, null offset).
  full_ptr() noexcept = default;
  /// `ptr` inside the mapping at `base` (this process's address of the
  /// segment); a null `ptr` gives the null offset. `ptr` must not be `base`
  /// itself (offset 0 is the header, and null).
  full_ptr(std::byte* base, T* ptr) noexcept : ptr_(ptr), offset_(offset_of(base, ptr)) {}
  /// The block at `offset` in the mapping at `base`; the null offset gives nullptr.
  full_ptr(std::byte* base, shm_offset offset) noexcept
      : ptr_(offset ? reinterpret_cast<T*>(base + offset.value) : nullptr), offset_(offset) {}
  /// To const, or to (const) void: the same address, so the same offset.
  template <class U>
  requires(!std::is_same_v<U, T> && std::is_convertible_v<U*, T*> &&
           (std::is_void_v<T> || std::is_same_v<std::remove_cv_t<U>, std::remove_cv_t<T>>))
      full_ptr(const full_ptr<U>& other)
  noexcept : ptr_(other.get()), offset_(other.offset()) {}

  /// The pointer in this process (nullptr for null).
  [[nodiscard]] T* get() const noexcept { return ptr_; }
  /// The offset from the segment's base (null for null).
  [[nodiscard]] shm_offset offset() const noexcept { return offset_; }
  [[nodiscard]] bool is_null() const noexcept { return ptr_ == nullptr; }
  explicit operator bool() const noexcept { return ptr_ != nullptr; }

  T* operator->() const noexcept { return ptr_; }
  std::add_lvalue_reference_t<T> operator*() const noexcept requires(!std::is_void_v<T>) {
    return *ptr_;
  }

  /// The same block as a U (the pointer converted through void*, as
  /// static_cast from void* would: no base/derived adjustment); the offset is
  /// unchanged. Cannot cast const away.
  template <class U>
  [[nodiscard]] full_ptr<U> cast() const noexcept {
    using void_type = std::conditional_t<std::is_const_v<T>, const void, void>;
    return full_ptr<U>(typename full_ptr<U>::parts{},
                       static_cast<U*>(static_cast<void_type*>(ptr_)), offset_);
  }

  /// Equal when both the pointer and the offset are (the same block through
  /// the same mapping).
  friend bool operator==(const full_ptr&, const full_ptr&) noexcept = default;

 private:
  template <class U>
  friend class full_ptr;

  struct parts {};
  full_ptr(parts, T* ptr, shm_offset offset) noexcept : ptr_(ptr), offset_(offset) {}

  [[nodiscard]] static shm_offset offset_of(std::byte* base, T* ptr) noexcept {
    if (ptr == nullptr) return shm_offset::null();
    const auto address = reinterpret_cast<std::uintptr_t>(ptr);
    const auto start = reinterpret_cast<std::uintptr_t>(base);
    assert(address > start && "a full_ptr points inside its mapping, past the header at offset 0");
    return shm_offset{static_cast<std::uint64_t>(address - start)};
  }

  T* ptr_ = nullptr;
  shm_offset offset_{};
};

}  // namespace pmrkit

/// Hashes the offset's value.
template <>
struct std::hash<pmrkit::shm_offset> {
  [[nodiscard]] std::size_t operator()(pmrkit::shm_offset offset) const noexcept {
    return std::hash<std::uint64_t>{}(offset.value);
  }
};
