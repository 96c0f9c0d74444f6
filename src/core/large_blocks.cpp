#include <pmr/core/detail/large_blocks.hpp>

#include <pmr/core/align.hpp>
#include <pmr/core/config.hpp>
#include <pmr/core/error.hpp>
#include <pmr/core/upstream.hpp>
#include <pmr/core/violation.hpp>

#include <algorithm>

namespace pmrkit::detail {

struct large_blocks::header {
  header* next;
  header* previous;
  const large_blocks* owner;  // checked builds: tells foreign pointers
  std::size_t bytes;          // what the caller asked for
  std::size_t alignment;      // and at what alignment
};

namespace {

// Where the block starts in its upstream block: after the header, at the block's alignment.
constexpr std::size_t offset_for(std::size_t alignment) noexcept {
  return align_up(sizeof(large_blocks::header), std::max(alignment, alignof(std::max_align_t)));
}

constexpr std::size_t upstream_alignment(std::size_t alignment) noexcept {
  return std::max(alignment, alignof(std::max_align_t));
}

// The upstream bytes behind a block of `bytes`: a zero-size block takes one byte, so that its
// address lies inside its own upstream block and not at the start of the memory after it
// (another resource's block, with an upstream that hands out adjacent pages).
constexpr std::size_t user_bytes(std::size_t bytes) noexcept {
  return std::max<std::size_t>(bytes, 1);
}

}  // namespace

void* large_blocks::allocate(std::pmr::memory_resource* upstream, std::size_t bytes,
                             std::size_t alignment, std::string_view name) {
  const std::size_t offset = offset_for(alignment);
  std::size_t total = 0;
  if (!checked_add(user_bytes(bytes), offset, total)) {
    throw_allocation_error(failure_reason::size_overflow, bytes, alignment, name);
  }
  auto* base = static_cast<std::byte*>(allocate_from_upstream(
      upstream, total, upstream_alignment(alignment), name, bytes, alignment));
  std::byte* block = base + offset;
  auto* h = reinterpret_cast<header*>(block) - 1;
  *h = {
      .next = newest_, .previous = nullptr, .owner = this, .bytes = bytes, .alignment = alignment};
  if (newest_ != nullptr) newest_->previous = h;
  newest_ = h;
  ++count_;
  bytes_ += bytes;
  from_upstream_ += total;
  return block;
}

void large_blocks::deallocate(std::pmr::memory_resource* upstream, void* p, std::size_t bytes,
                              std::size_t alignment,
                              [[maybe_unused]] std::string_view name) noexcept {
  auto* h = static_cast<header*>(p) - 1;
#if PMRKIT_CHECKED
  if (h->owner != this) {
    report_violation({violation_kind::foreign_pointer, name, p, bytes, alignment});
    return;
  }
  if (h->bytes != bytes || h->alignment != alignment) {
    report_violation(
        {violation_kind::size_mismatch, name, p, bytes, alignment, h->bytes, h->alignment});
    return;
  }
#else
  (void)bytes;
  (void)alignment;
#endif
  unlink_and_return(upstream, h);
}

void large_blocks::unlink_and_return(std::pmr::memory_resource* upstream, header* h) noexcept {
  h->owner = nullptr;
  (h->previous != nullptr ? h->previous->next : newest_) = h->next;
  if (h->next != nullptr) h->next->previous = h->previous;
  const std::size_t offset = offset_for(h->alignment);
  const std::size_t alignment = h->alignment;
  --count_;
  bytes_ -= h->bytes;
  from_upstream_ -= user_bytes(h->bytes) + offset;
  upstream->deallocate(reinterpret_cast<std::byte*>(h + 1) - offset, user_bytes(h->bytes) + offset,
                       upstream_alignment(alignment));
}

void large_blocks::release(std::pmr::memory_resource* upstream) noexcept {
  while (newest_ != nullptr)
    unlink_and_return(upstream, newest_);
}

}  // namespace pmrkit::detail
