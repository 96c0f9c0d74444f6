// What shm_child and shm_process_test share: the queue of offsets that lives
// in the segment (a named object both sides find with the same type, so the
// same shm_type_tag), the per-child report, and the pattern written into
// every block so that any process can check a block another one filled.
#pragma once

#include <pmr/shm/full_ptr.hpp>

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace shm_process {

// Names of the named objects the test builds before the children start.
inline constexpr const char* queue_name = "queue";
inline constexpr const char* reports_name = "reports";
inline constexpr const char* joined_name = "joined";

// A bounded multi-producer multi-consumer queue of segment offsets (Vyukov's:
// each cell has a sequence number saying whose turn it is). Only lock-free,
// address-free atomics: any process mapping the segment anywhere may use it.
struct offset_queue {
  static constexpr std::size_t capacity = 256;  // a power of two
  static_assert(std::has_single_bit(capacity));
  static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

  struct cell {
    std::atomic<std::uint64_t> sequence;
    std::atomic<std::uint64_t> value;
  };

  alignas(64) std::atomic<std::uint64_t> tail{0};  // the next push
  alignas(64) std::atomic<std::uint64_t> head{0};  // the next pop
  alignas(64) cell cells[capacity];

  offset_queue() noexcept {
    for (std::size_t i = 0; i < capacity; ++i) {
      cells[i].sequence.store(i, std::memory_order_relaxed);
      cells[i].value.store(0, std::memory_order_relaxed);
    }
  }
  offset_queue(const offset_queue&) = delete;
  offset_queue& operator=(const offset_queue&) = delete;

  /// False when full.
  bool push(pmrkit::shm_offset offset) noexcept {
    std::uint64_t pos = tail.load(std::memory_order_relaxed);
    for (;;) {
      cell& c = cells[pos % capacity];
      const std::uint64_t seq = c.sequence.load(std::memory_order_acquire);
      const auto diff = static_cast<std::int64_t>(seq - pos);
      if (diff == 0) {
        if (tail.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          c.value.store(offset.value, std::memory_order_relaxed);
          c.sequence.store(pos + 1, std::memory_order_release);
          return true;
        }
      } else if (diff < 0) {
        return false;
      } else {
        pos = tail.load(std::memory_order_relaxed);
      }
    }
  }

  /// The null offset when empty.
  pmrkit::shm_offset pop() noexcept {
    std::uint64_t pos = head.load(std::memory_order_relaxed);
    for (;;) {
      cell& c = cells[pos % capacity];
      const std::uint64_t seq = c.sequence.load(std::memory_order_acquire);
      const auto diff = static_cast<std::int64_t>(seq - (pos + 1));
      if (diff == 0) {
        if (head.compare_exchange_weak(pos, pos + 1, std::memory_order_relaxed)) {
          const std::uint64_t value = c.value.load(std::memory_order_relaxed);
          c.sequence.store(pos + capacity, std::memory_order_release);
          return pmrkit::shm_offset{value};
        }
      } else if (diff < 0) {
        return pmrkit::shm_offset::null();
      } else {
        pos = head.load(std::memory_order_relaxed);
      }
    }
  }
};

// What one churn child did, written by it alone (the parent reads it after waitpid).
struct child_report {
  std::uint64_t base = 0;  // where the child mapped the segment
  std::uint64_t allocations = 0;
  std::uint64_t large_allocations = 0;  // above 8 KiB: the buddy's path
  std::uint64_t frees = 0;
  std::uint64_t pushed = 0;
  std::uint64_t popped = 0;   // blocks received from the queue and freed here
  std::uint64_t foreign = 0;  // of those, blocks another process allocated
  std::uint64_t out_of_capacity = 0;
  std::uint64_t done = 0;  // 1 when the child finished its loop
};

// Every block starts with two words: magic | log2(alignment) | size, then a tag
// (the allocating child's index in the top byte); the rest is a function of the
// tag and the position. So a consumer knows the size and alignment to free with.
inline constexpr std::uint64_t pattern_magic = 0xB10CULL << 48;
inline constexpr std::size_t min_block = 16;
inline constexpr std::size_t max_block = 64 * 1024;

inline std::uint64_t pattern_word(std::uint64_t tag, std::size_t at) noexcept {
  return (tag ^ (static_cast<std::uint64_t>(at) * 0x9E3779B97F4A7C15ULL)) * 0xFF51AFD7ED558CCDULL;
}

inline void write_pattern(void* block, std::size_t size, std::size_t alignment,
                          std::uint64_t tag) noexcept {
  auto* bytes = static_cast<unsigned char*>(block);
  const std::uint64_t head =
      pattern_magic | static_cast<std::uint64_t>(std::countr_zero(alignment)) << 40 | size;
  std::memcpy(bytes, &head, 8);
  std::memcpy(bytes + 8, &tag, 8);
  std::size_t at = 16;
  for (; at + 8 <= size; at += 8) {
    const std::uint64_t word = pattern_word(tag, at);
    std::memcpy(bytes + at, &word, 8);
  }
  for (; at < size; ++at)
    bytes[at] = static_cast<unsigned char>(pattern_word(tag, at));
}

struct block_info {
  std::size_t size = 0;
  std::size_t alignment = 0;
  std::uint64_t tag = 0;
  std::string error;  // empty when the block is intact
};

/// Reads a block's header and checks its whole pattern.
inline block_info check_pattern(const void* block) {
  const auto* bytes = static_cast<const unsigned char*>(block);
  block_info info;
  std::uint64_t head = 0;
  std::memcpy(&head, bytes, 8);
  std::memcpy(&info.tag, bytes + 8, 8);
  if ((head & (0xFFFFULL << 48)) != pattern_magic) {
    info.error = "bad magic in the block's header";
    return info;
  }
  info.size = static_cast<std::size_t>(head & 0xFFFFFFFFFFULL);
  const auto shift = static_cast<unsigned>((head >> 40) & 0xFF);
  if (info.size < min_block || info.size > max_block || shift > 12) {
    info.error = "bad size " + std::to_string(info.size) + " or alignment shift " +
                 std::to_string(shift) + " in the block's header";
    return info;
  }
  info.alignment = std::size_t{1} << shift;
  if (reinterpret_cast<std::uintptr_t>(block) % info.alignment != 0) {
    info.error = "the block is not aligned to " + std::to_string(info.alignment);
    return info;
  }
  std::size_t at = 16;
  for (; at + 8 <= info.size; at += 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, bytes + at, 8);
    if (word != pattern_word(info.tag, at)) {
      info.error =
          "pattern broken at byte " + std::to_string(at) + " of " + std::to_string(info.size);
      return info;
    }
  }
  for (; at < info.size; ++at) {
    if (bytes[at] != static_cast<unsigned char>(pattern_word(info.tag, at))) {
      info.error =
          "pattern broken at byte " + std::to_string(at) + " of " + std::to_string(info.size);
      return info;
    }
  }
  return info;
}

}  // namespace shm_process
