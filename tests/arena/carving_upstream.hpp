// A test upstream that carves its blocks from one big buffer, at rising or
// at falling addresses, and never reuses them: it shows an arena whose
// markers would depend on the order of its upstream's addresses (glibc hands
// out falling addresses for successive blocks of a few hundred KiB).
#pragma once

#include <pmr/core/align.hpp>

#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <new>

namespace pmrkit_test {

class carving_upstream final : public std::pmr::memory_resource {
 public:
  enum class direction : unsigned char { rising, falling };

  explicit carving_upstream(direction order, std::size_t capacity = std::size_t{16} << 20)
      : order_(order),
        capacity_(capacity),
        buffer_(static_cast<std::byte*>(::operator new (capacity, std::align_val_t{4096}))),
        low_(buffer_),
        high_(buffer_ + capacity) {}
  carving_upstream(const carving_upstream&) = delete;
  carving_upstream& operator=(const carving_upstream&) = delete;
  ~carving_upstream() override { ::operator delete (buffer_, std::align_val_t{4096}); }

  [[nodiscard]] std::size_t bytes_in_use() const noexcept { return bytes_in_use_; }
  [[nodiscard]] std::size_t blocks_in_use() const noexcept { return blocks_in_use_; }
  [[nodiscard]] std::size_t allocations() const noexcept { return allocations_; }

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    const auto low = reinterpret_cast<std::uintptr_t>(low_);
    const auto high = reinterpret_cast<std::uintptr_t>(high_);
    std::uintptr_t start = 0;
    if (order_ == direction::rising) {
      start = (low + alignment - 1) & ~(std::uintptr_t{alignment} - 1);
      if (start > high || high - start < bytes) throw std::bad_alloc();
      low_ = reinterpret_cast<std::byte*>(start + bytes);
    } else {
      if (high - low < bytes) throw std::bad_alloc();
      start = (high - bytes) & ~(std::uintptr_t{alignment} - 1);
      if (start < low) throw std::bad_alloc();
      high_ = reinterpret_cast<std::byte*>(start);
    }
    bytes_in_use_ += bytes;
    ++blocks_in_use_;
    ++allocations_;
    return reinterpret_cast<void*>(start);
  }
  void do_deallocate(void*, std::size_t bytes, std::size_t) override {
    bytes_in_use_ -= bytes;
    --blocks_in_use_;
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  direction order_;
  std::size_t capacity_;
  std::byte* buffer_;
  std::byte* low_;
  std::byte* high_;
  std::size_t bytes_in_use_ = 0;
  std::size_t blocks_in_use_ = 0;
  std::size_t allocations_ = 0;
};

/// True when [a, a + a_size) and [b, b + b_size) share a byte.
inline bool overlap(const void* a, std::size_t a_size, const void* b, std::size_t b_size) noexcept {
  const auto x = reinterpret_cast<std::uintptr_t>(a);
  const auto y = reinterpret_cast<std::uintptr_t>(b);
  return x < y + b_size && y < x + a_size;
}

}  // namespace pmrkit_test
