#include <pmr/arena/vmem_arena_resource.hpp>

#include <pmr/core/error.hpp>
#include <pmr/core/options.hpp>
#include <pmr/core/upstream.hpp>
#include <pmr/core/violation.hpp>

#include <algorithm>
#include <new>
#include <string>
#include <variant>

#if PMRKIT_HAS_VIRTUAL_MEMORY
#include "../os/pages.hpp"
#else
// Without the OS layer the constructor throws before any of these is called;
// they only keep the members below compiling.
namespace pmrkit::detail::os {
namespace {
std::size_t page_size() noexcept {
  return 4096;
}
std::size_t huge_page_size() noexcept {
  return 0;
}
void* reserve(std::size_t, std::size_t = 0) noexcept {
  return nullptr;
}
bool commit(void*, std::size_t) noexcept {
  return false;
}
void decommit(void*, std::size_t) noexcept {}
void release(void*, std::size_t) noexcept {}
bool advise_huge_pages(void*, std::size_t) noexcept {
  return false;
}
bool virtual_memory_available() noexcept {
  return false;
}
}  // namespace
}  // namespace pmrkit::detail::os
#endif

namespace pmrkit {

/// Precedes every overflow block, so the block is found from its pointer and
/// every one can be returned on reset without a side list.
struct vmem_arena_resource::overflow_header {
  overflow_header* previous;  // newer
  overflow_header* next;      // older
  std::size_t size;           // as requested (1 for 0)
  std::size_t alignment;      // the upstream block's
  std::size_t total;          // bytes from the upstream
  std::size_t sequence;       // 1 for the first overflow block after a reset

  [[nodiscard]] std::byte* block() noexcept { return reinterpret_cast<std::byte*>(this + 1); }
  [[nodiscard]] std::byte* upstream_block() noexcept { return block() - offset(alignment); }
  /// Bytes from the upstream block's start to the user block: the header ends
  /// right before the user block, which is aligned.
  [[nodiscard]] static constexpr std::size_t offset(std::size_t alignment) noexcept {
    return align_up(sizeof(overflow_header), alignment);
  }
};

namespace {
constexpr std::string_view class_name = "vmem_arena_resource";

/// Checks what needs no OS, rounds the rest to pages; the options in effect.
vmem_arena_options validated(vmem_arena_options options, std::pmr::memory_resource* upstream) {
  require_option(options.reserve != 0, class_name, "reserve", "must be at least one page");
  require_option(options.commit_step != 0, class_name, "commit_step", "must be greater than 0");
  require_option(is_power_of_two(options.alignment), class_name, "alignment",
                 "must be a power of two");
  require_option(options.retain_on_reset <= options.reserve, class_name, "retain_on_reset",
                 "must not be greater than reserve");
  (void)require_upstream(upstream, "pmrkit::vmem_arena_resource");
  if constexpr (PMRKIT_HAS_VIRTUAL_MEMORY == 0) {
    throw_allocation_error(failure_reason::out_of_capacity, options.reserve, 0, options.name);
  }
  const std::size_t page = detail::os::page_size();
  if (options.reserve < page) {
    throw_invalid_option(class_name, "reserve",
                         "must be at least one page (" + std::to_string(page) + " bytes)");
  }
  // A reserve this close to SIZE_MAX is beyond any address space.
  if (!checked_align_up(options.reserve, page, options.reserve)) {
    throw_allocation_error(failure_reason::out_of_capacity, options.reserve, page, options.name);
  }
  std::size_t step_unit = page;
  if (options.huge_pages && detail::os::huge_page_size() > page) {
    // Huge pages back whole aligned huge-page ranges only.
    step_unit = detail::os::huge_page_size();
  }
  if (!checked_align_up(options.commit_step, step_unit, options.commit_step)) {
    options.commit_step = options.reserve;  // larger than any reserve anyway
  }
  options.retain_on_reset = align_up(options.retain_on_reset, page);  // <= reserve, rounded
  return options;
}
}  // namespace

bool vmem_arena_resource::available() noexcept {
  return PMRKIT_HAS_VIRTUAL_MEMORY != 0 && detail::os::virtual_memory_available();
}

vmem_arena_resource::vmem_arena_resource(const vmem_arena_options& options,
                                         std::pmr::memory_resource* upstream)
    : options_(validated(options, upstream)), name_(options.name), upstream_(upstream) {
  options_.name = name_;
  // At a multiple of the least alignment, so that position 0 is aligned (the
  // fast path never aligns), even when that is above the page size.
  const std::size_t huge = options_.huge_pages ? detail::os::huge_page_size() : 0;
  base_ = static_cast<std::byte*>(
      detail::os::reserve(options_.reserve, std::max(huge, options_.alignment)));
  if (base_ == nullptr) {
    throw_allocation_error(failure_reason::out_of_capacity, options_.reserve,
                           detail::os::page_size(), name_);
  }
  reserved_ = options_.reserve;
  if (options_.huge_pages) (void)detail::os::advise_huge_pages(base_, reserved_);
}

vmem_arena_resource::~vmem_arena_resource() {
  free_overflow_after(0);
  // Unpoisoned before it goes: the OS may map these addresses again for
  // someone else, and ASan's shadow would still say "freed".
  detail::revive(base_, committed_);
  detail::os::release(base_, reserved_);
}

void* vmem_arena_resource::allocate_slow(std::size_t bytes, std::size_t alignment) {
  check_request(bytes, alignment, name_);
  std::size_t extent = 0;
  if (!checked_block_extent(bytes, options_.alignment, extent)) {
    throw_allocation_error(failure_reason::size_overflow, bytes, alignment, name_);
  }
  const std::size_t padding = padding_at(position_, alignment);
  const std::size_t room = reserved_ - position_;
  // A commit the OS refuses sends the request to the overflow too.
  if (padding <= room && extent <= room - padding && commit_to(position_ + padding + extent)) {
    return bump(position_ + padding, extent, bytes);
  }
  return allocate_overflow(bytes, alignment, bytes + static_cast<std::size_t>(bytes == 0));
}

void* vmem_arena_resource::allocate_overflow(std::size_t bytes, std::size_t alignment,
                                             std::size_t size) {
  const std::size_t block_alignment =
      std::max({alignment, options_.alignment, alignof(overflow_header)});
  std::size_t offset = 0;
  std::size_t total = 0;
  if (!checked_align_up(sizeof(overflow_header), block_alignment, offset) ||
      !checked_add(offset, size, total)) {
    throw_allocation_error(failure_reason::size_overflow, bytes, alignment, name_);
  }
  // The null resource would say "upstream failed"; the truth is that the
  // reservation is exhausted.
  if (upstream_ == std::pmr::null_memory_resource()) {
    throw_allocation_error(failure_reason::out_of_capacity, bytes, alignment, name_);
  }
  auto* raw = static_cast<std::byte*>(
      allocate_from_upstream(upstream_, total, block_alignment, name_, bytes, alignment));
  auto* header = ::new (raw + offset - sizeof(overflow_header))
      overflow_header{nullptr, overflow_, size, block_alignment, total, overflow_count_ + 1};
  if (overflow_ != nullptr) overflow_->previous = header;
  overflow_ = header;
  ++overflow_count_;
  ++overflow_live_;
  overflow_bytes_ += size;
  overflow_overhead_ += total - size;
  peak_from_upstream_ = std::max(peak_from_upstream_, overflow_bytes_ + overflow_overhead_);
  history_.push();
  return header->block();
}

void vmem_arena_resource::deallocate_outside(void* p, std::size_t bytes,
                                             [[maybe_unused]] std::size_t alignment) {
#if PMRKIT_CHECKED
  overflow_header* header = overflow_;
  while (header != nullptr && header->block() != p)
    header = header->next;
  if (header == nullptr) {
    report_violation({violation_kind::foreign_pointer, name_, p, bytes, alignment, 0, 0});
    return;
  }
  const std::size_t size = bytes + static_cast<std::size_t>(bytes == 0);
  if (header->size != size) {
    report_violation(
        {violation_kind::size_mismatch, name_, p, bytes, alignment, header->size, alignment});
    return;
  }
#else
  (void)bytes;
  overflow_header* header = static_cast<overflow_header*>(p) - 1;
#endif
  note_peak();
  free_overflow(header);
}

void vmem_arena_resource::report_rollback_mismatch([[maybe_unused]] void* p,
                                                   [[maybe_unused]] std::size_t bytes,
                                                   [[maybe_unused]] std::size_t alignment) {
#if PMRKIT_CHECKED
  if (p == last_block_ && bytes != last_size_) {
    report_violation(
        {violation_kind::size_mismatch, name_, p, bytes, alignment, last_size_, alignment});
  } else if (static_cast<std::size_t>(reinterpret_cast<std::uintptr_t>(p) -
                                      reinterpret_cast<std::uintptr_t>(base_)) >= position_) {
    // Past the position: a block already rolled back (or never handed out).
    report_violation({violation_kind::double_free, name_, p, bytes, alignment, 0, 0});
  }
#endif
}

bool vmem_arena_resource::commit_to(std::size_t end) noexcept {
  if (end <= committed_) return true;
  if (end > reserved_) return false;
  // Whole steps from the committed end, the last one cut at the reservation's end.
  const std::size_t needed = end - committed_;
  const std::size_t remaining = reserved_ - committed_;
  std::size_t grow = needed;
  if (const std::size_t partial = needed % options_.commit_step; partial != 0) {
    const std::size_t rest = options_.commit_step - partial;
    grow = rest > remaining - needed ? remaining : needed + rest;
  }
  if (!detail::os::commit(base_ + committed_, grow)) return false;
  committed_ += grow;
  return true;
}

void vmem_arena_resource::free_overflow(overflow_header* header) noexcept {
  if (header->previous != nullptr) {
    header->previous->next = header->next;
  } else {
    overflow_ = header->next;
  }
  if (header->next != nullptr) header->next->previous = header->previous;
  --overflow_live_;
  overflow_bytes_ -= header->size;
  overflow_overhead_ -= header->total - header->size;
  const std::size_t total = header->total;
  const std::size_t alignment = header->alignment;
  std::byte* raw = header->upstream_block();
  header->~overflow_header();
  upstream_->deallocate(raw, total, alignment);
}

void vmem_arena_resource::free_overflow_after(std::size_t sequence) noexcept {
  // Newest first, so the blocks allocated after `sequence` lead the list.
  while (overflow_ != nullptr && overflow_->sequence > sequence)
    free_overflow(overflow_);
}

void vmem_arena_resource::reset() noexcept {
  free_all_keeping(options_.retain_on_reset);
}

void vmem_arena_resource::release() noexcept {
  free_all_keeping(0);
}

std::size_t vmem_arena_resource::shrink() noexcept {
  const std::size_t keep = std::min(committed_, align_up(position_, detail::os::page_size()));
  if (committed_ <= keep) return 0;
  const std::size_t given = committed_ - keep;
  detail::revive(base_ + keep, given);
  detail::os::decommit(base_ + keep, given);
  committed_ = keep;
  return given;
}

void vmem_arena_resource::free_all_keeping(std::size_t retain) noexcept {
  note_peak();
  free_overflow_after(0);
  const std::size_t keep = std::min(committed_, retain);
  retire_range(0, std::min(position_, keep));
  if (committed_ > keep) {
    // Revived first: the pages come back zeroed and unpoisoned when committed again.
    detail::revive(base_ + keep, committed_ - keep);
    detail::os::decommit(base_ + keep, committed_ - keep);
    committed_ = keep;
  }
  position_ = 0;
#if PMRKIT_CHECKED
  last_block_ = nullptr;
#endif
  overflow_count_ = 0;
  history_.clear();
  ++epoch_;
}

void vmem_arena_resource::rewind(const arena_checkpoint& marker) {
  const auto* where = std::get_if<vmem_arena_marker>(&marker.where());
  // Whose it is, since which reset, whether the history was cut below it
  // since, and (should that record have forgotten) whether its place is at
  // or before the position now: never an address.
  const bool valid = where != nullptr && id_.is(marker.arena()) && marker.epoch() == epoch_ &&
                     history_.valid({marker.depth(), detail::checkpoint_access::stamp(marker)}) &&
                     where->position <= position_ && where->overflow_blocks <= overflow_count_;
  if (!valid) {
#if PMRKIT_CHECKED
    report_violation({violation_kind::stale_checkpoint, name_, nullptr, 0, 0, 0, 0});
#endif
    return;
  }
  note_peak();
  free_overflow_after(where->overflow_blocks);
  overflow_count_ = where->overflow_blocks;
  retire_range(where->position, position_);
  position_ = where->position;
  history_.cut_to(marker.depth());
#if PMRKIT_CHECKED
  last_block_ = nullptr;
#endif
}

bool vmem_arena_resource::try_resize(void* p, std::size_t old_size, std::size_t new_size,
                                     std::size_t /*alignment*/) noexcept {
  auto* block = static_cast<std::byte*>(p);
  const auto start = reinterpret_cast<std::uintptr_t>(p) - reinterpret_cast<std::uintptr_t>(base_);
  if (p == nullptr || start >= reserved_ || old_size > fast_limit || new_size > fast_limit) {
    return false;
  }
  const std::size_t old_end = start + extent_of(old_size);
  if (old_end != position_) return false;
  const std::size_t new_extent = extent_of(new_size);
  if (new_extent > reserved_ - start || !commit_to(start + new_extent)) return false;
  const std::size_t new_end = start + new_extent;
  // The block is another one now: markers taken after it are stale.
  history_.pop();
  history_.push();
  if (new_end < old_end) {
    note_peak();
    retire_range(new_end, old_end);
  } else {
    detail::revive(base_ + old_end, new_end - old_end);
  }
  position_ = new_end;
#if PMRKIT_CHECKED
  last_block_ = block;
  last_size_ = new_size;
#else
  (void)block;
#endif
  return true;
}

arena_stats vmem_arena_resource::stats() const noexcept {
  arena_stats s;
  s.bytes_from_upstream = overflow_bytes_ + overflow_overhead_;
  s.peak_bytes_from_upstream = std::max(peak_from_upstream_, s.bytes_from_upstream);
  s.bytes_reserved = reserved_;
  s.bytes_committed = committed_;
  s.bytes_in_use = position_ + overflow_bytes_;
  s.peak_bytes_in_use = std::max(peak_used_, s.bytes_in_use);
  s.bytes_available = committed_ - position_;
  s.waste = overflow_overhead_;
  s.chunk_count = 1 + overflow_live_;  // the range and the overflow blocks
  s.large_blocks_in_use = overflow_live_;
  s.large_bytes_in_use = overflow_bytes_;
  s.current_chunk_size = options_.commit_step;
  return s;
}

bool vmem_arena_resource::owns(const void* p) const noexcept {
  const auto offset = reinterpret_cast<std::uintptr_t>(p) - reinterpret_cast<std::uintptr_t>(base_);
  if (offset < committed_) return true;
  const auto address = reinterpret_cast<std::uintptr_t>(p);
  for (overflow_header* header = overflow_; header != nullptr; header = header->next) {
    const auto block = reinterpret_cast<std::uintptr_t>(header->block());
    if (address - block < header->size) return true;
  }
  return false;
}

}  // namespace pmrkit
