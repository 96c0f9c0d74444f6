// vmem_arena_resource: an arena in one reserved range of address space,
// committed on demand.
//
// The constructor reserves `reserve` bytes of address space (64 GiB by
// default on 64-bit systems), which costs no memory. Allocation bumps a
// position through the range and, when the position passes the committed end,
// commits `commit_step` more bytes. Blocks therefore lie one after another at
// increasing addresses, growth never moves or copies anything, pointer
// arithmetic across allocations works, and the most recent block grows in
// place (`pmrkit::reallocate`) as far as the reservation goes. `deallocate`
// frees nothing except the most recent block, which is rolled back. `reset()`
// keeps `retain_on_reset` bytes committed and gives the rest back to the OS,
// so resident memory really drops; `release()` decommits everything and keeps
// the reservation; `shrink()` decommits the pages beyond the position and
// returns how many bytes went back to the OS; the destructor unmaps the
// range. The range starts at a multiple of `alignment`, even above the page
// size, so the first block after a reset, a release or a rewind to the start
// is aligned like every other.
//
// When the reservation is exhausted, requests go to the upstream: the
// overflow, by default std::pmr::null_memory_resource(), in which case they
// throw allocation_error (out_of_capacity). Overflow blocks go back upstream
// on deallocate, on a rewind past them, and on reset, release or destruction.
// They are what the arena holds from its upstream:
// `stats().bytes_from_upstream` counts them (headers included),
// `bytes_committed` the pages of the range. Markers (`vmem_arena_marker`)
// hold the position and the count of overflow blocks, never an address.
//
// Choose it over chunked_arena_resource for one large arena whose final size
// is unknown (a parse, a compiler pass, a level load), when contiguity or
// in-place growth matters, or when a reset must return memory to the OS.
// Choose chunked_arena_resource for many small arenas, for memory from a
// particular upstream, or where there is no virtual memory: without it
// (PMRKIT_HAS_VIRTUAL_MEMORY is 0, or the OS refuses the reservation) the
// constructor throws allocation_error (out_of_capacity), which is what
// `make_arena` catches to fall back to the chunked arena.
//
// In checked builds, memory freed by reset, rewind or rollback is filled with
// a pattern and poisoned for AddressSanitizer, a deallocate of a pointer that
// is neither in the range nor an overflow block is a `foreign_pointer`
// violation, one past the position in the range (a block already rolled back
// or rewound) a `double_free`, a rollback with another size than the allocation's is a
// `size_mismatch`, and rewinding to a stale marker is a `stale_checkpoint`.
//
// Thread safety: none; use it from one thread at a time.
//
// Example:
//   if (!pmrkit::vmem_arena_resource::available()) return;  // no virtual memory here
//   pmrkit::vmem_arena_resource arena({.reserve = 1_GiB, .commit_step = 64_KiB});
//   {
//     std::pmr::vector<int> numbers(&arena);
//     for (int i = 0; i < 100000; ++i) numbers.push_back(i);
//   }
//   assert(arena.stats().bytes_committed > 64_KiB && arena.stats().bytes_reserved == 1_GiB);
//   arena.reset();  // keeps retain_on_reset (64 KiB) committed, returns the rest to the OS
//   assert(arena.stats().bytes_committed == 64_KiB && arena.stats().bytes_from_upstream == 0);
#pragma once

#include <pmr/arena/arena_resource.hpp>
#include <pmr/arena/detail/marker_history.hpp>
#include <pmr/core/align.hpp>
#include <pmr/core/config.hpp>
#include <pmr/core/poison.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory_resource>
#include <string>
#include <string_view>
#include <type_traits>

namespace pmrkit {

struct vmem_arena_options {
  /// Address space to reserve, rounded up to pages; it costs no memory until
  /// committed. 64 GiB on 64-bit systems, 256 MiB on 32-bit ones.
  std::size_t reserve =
      sizeof(void*) >= 8 ? static_cast<std::size_t>(std::uint64_t{1} << 36) : std::size_t{1} << 28;
  /// Bytes committed at a time when the position passes the committed end;
  /// rounded up to pages (to the huge page size with `huge_pages`).
  std::size_t commit_step = std::size_t{64} << 10;
  /// Bytes kept committed by reset(), rounded up to pages; the rest is
  /// decommitted. At most `reserve`.
  std::size_t retain_on_reset = std::size_t{64} << 10;
  /// The least alignment of every block, a power of two (above the page size
  /// too: the range is reserved at a multiple of it).
  std::size_t alignment = alignof(std::max_align_t);
  /// Asks the OS to back the range with transparent huge pages (madvise on
  /// Linux); a hint, ignored where unsupported.
  bool huge_pages = false;
  std::string_view name = "vmem_arena";  ///< shown in errors and violations (copied)
};

class vmem_arena_resource final : public arena_resource {
 public:
  /// True when this build and system can reserve address space (the
  /// constructor may still fail for a reservation larger than what is free).
  [[nodiscard]] static bool available() noexcept;

  /// Reserves the range; commits nothing yet. `upstream` serves the overflow.
  /// Throws std::invalid_argument naming the field when an option is invalid
  /// (reserve smaller than a page, commit_step 0, alignment not a power of
  /// two, retain_on_reset above reserve) or `upstream` is null;
  /// allocation_error (out_of_capacity) when the address space cannot be
  /// reserved or the build has no virtual memory; std::bad_alloc when copying
  /// the name fails.
  explicit vmem_arena_resource(
      const vmem_arena_options& options = {},
      std::pmr::memory_resource* upstream = std::pmr::null_memory_resource());
  /// The default options with `upstream` as the overflow (a template, so
  /// that `{}` never reads as a null upstream).
  template <std::derived_from<std::pmr::memory_resource> Upstream>
  explicit vmem_arena_resource(Upstream* upstream)
      : vmem_arena_resource(vmem_arena_options{}, upstream) {}
  /// Not copyable. Declared on a non-const reference so that `{}` does not
  /// convert to it and `vmem_arena_resource a({})` means the default options.
  vmem_arena_resource(vmem_arena_resource&) = delete;
  vmem_arena_resource& operator=(const vmem_arena_resource&) = delete;
  /// Returns the overflow blocks upstream and unmaps the range.
  ~vmem_arena_resource() override;

  // Bulk operations.

  /// Everything is free; `retain_on_reset` bytes stay committed, the rest is
  /// decommitted; overflow blocks go back upstream; markers become stale.
  /// Throws nothing.
  void reset() noexcept override;
  /// Everything is free and decommitted, overflow blocks go back upstream;
  /// the reservation is kept, so the arena stays usable. Throws nothing.
  void release() noexcept override;
  /// Decommits the committed pages beyond the position; nothing in use
  /// moves. Returns the bytes decommitted (given back to the OS; nothing
  /// goes upstream: overflow blocks in use are in use).
  std::size_t shrink() noexcept override;
  /// A marker of the position and of the overflow blocks allocated so far.
  [[nodiscard]] arena_checkpoint checkpoint() const noexcept override {
    const detail::arena_marker_history::mark mark = history_.take();
    return detail::checkpoint_access::make(
        id_.get(), epoch_, mark.depth, mark.stamp,
        vmem_arena_marker{.position = position_, .overflow_blocks = overflow_count_});
  }
  /// Frees everything allocated after `marker`, overflow blocks included; the
  /// range stays committed. A marker of another arena, from before a reset or
  /// release, beyond the position, or freed by an earlier rewind or rollback
  /// and grown past since is stale: it changes nothing, in every build, and
  /// is a stale_checkpoint violation in checked builds. Throws what the
  /// violation handler throws.
  void rewind(const arena_checkpoint& marker) override;

  /// Grows or shrinks the most recent block where it lies, committing more
  /// as needed; false for any other block or when the reservation (or the
  /// OS) has no room.
  bool try_resize(void* p, std::size_t old_size, std::size_t new_size,
                  std::size_t alignment) noexcept override;

  // Observers.

  /// bytes_from_upstream: the overflow blocks held, headers included (what
  /// the upstream holds for this arena); bytes_committed: the committed
  /// pages of the range; bytes_reserved: the range; bytes_in_use: the
  /// position (padding included) plus the overflow blocks' bytes; waste: the
  /// overflow blocks' headers and alignment; chunk_count: 1 (the range) plus
  /// the overflow blocks held; large_blocks_in_use: the overflow blocks held;
  /// large_bytes_in_use: their sizes as requested; current_chunk_size: the
  /// commit step.
  [[nodiscard]] arena_stats stats() const noexcept override;
  [[nodiscard]] arena_strategy strategy() const noexcept override {
    return arena_strategy::virtual_memory;
  }
  [[nodiscard]] std::string_view name() const noexcept override { return name_; }
  /// The overflow.
  [[nodiscard]] std::pmr::memory_resource* upstream_resource() const noexcept override {
    return upstream_;
  }
  /// True for the committed part of the range and for overflow blocks.
  [[nodiscard]] bool owns(const void* p) const noexcept override;
  /// The options in effect: reserve, commit_step and retain_on_reset rounded.
  [[nodiscard]] const vmem_arena_options& options() const noexcept { return options_; }

 private:
  struct overflow_header;
  // Larger requests take the slow path, where rounding them is checked.
  static constexpr std::size_t fast_limit = std::numeric_limits<std::size_t>::max() / 2;

  // Every block takes a multiple of the least alignment (its extent), so the
  // position stays aligned and the fast path needs no alignment arithmetic.
  [[nodiscard]] std::size_t extent_of(std::size_t bytes) const noexcept {
    return block_extent(bytes, options_.alignment);
  }

  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    if (alignment <= options_.alignment && is_power_of_two(alignment) && bytes <= fast_limit)
        [[likely]] {
      const std::size_t extent = extent_of(bytes);
      if (committed_ - position_ >= extent) [[likely]] {
        return bump(position_, extent, bytes);
      }
    }
    return allocate_slow(bytes, alignment);
  }

  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    const auto offset =
        reinterpret_cast<std::uintptr_t>(p) - reinterpret_cast<std::uintptr_t>(base_);
    if (offset >= reserved_) {
      deallocate_outside(p, bytes, alignment);
      return;
    }
    // The most recent block ends at the position: roll it back. Others wait for a reset.
    if (bytes <= fast_limit && offset + extent_of(bytes) == position_) {
      note_peak();
      retire_range(offset, position_);
      position_ = offset;
      history_.pop();
#if PMRKIT_CHECKED
      last_block_ = nullptr;
#endif
      return;
    }
#if PMRKIT_CHECKED
    report_rollback_mismatch(p, bytes, alignment);
#endif
  }

  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  /// Bytes from `position` to the next multiple of max(alignment, the least).
  [[nodiscard]] std::size_t padding_at(std::size_t position, std::size_t alignment) const noexcept {
    const std::size_t effective = alignment < options_.alignment ? options_.alignment : alignment;
    const auto address = reinterpret_cast<std::uintptr_t>(base_) + position;
    return static_cast<std::size_t>((std::uintptr_t{0} - address) & (effective - 1));
  }

  /// Hands out [start, start + extent), committed, as the most recent block.
  void* bump(std::size_t start, std::size_t extent, [[maybe_unused]] std::size_t bytes) noexcept {
    std::byte* block = base_ + start;
    position_ = start + extent;
    history_.push();
#if PMRKIT_CHECKED
    last_block_ = block;
    last_size_ = bytes;
#endif
    detail::revive(block, extent);
    return block;
  }

  /// Checked builds: fills and poisons [from, to) of the range. Revived first,
  /// because alignment padding in it may already be poisoned and the fill
  /// would then be an ASan report.
  void retire_range(std::size_t from, std::size_t to) noexcept {
    detail::revive(base_ + from, to - from);
    detail::retire(base_ + from, to - from);
  }

  void note_peak() noexcept {
    const std::size_t used = position_ + overflow_bytes_;
    if (used > peak_used_) peak_used_ = used;
  }

  void* allocate_slow(std::size_t bytes, std::size_t alignment);
  void* allocate_overflow(std::size_t bytes, std::size_t alignment, std::size_t size);
  void deallocate_outside(void* p, std::size_t bytes, std::size_t alignment);
  void report_rollback_mismatch(void* p, std::size_t bytes, std::size_t alignment);
  [[nodiscard]] bool commit_to(std::size_t end) noexcept;
  void free_overflow(overflow_header* header) noexcept;
  void free_overflow_after(std::size_t sequence) noexcept;
  /// reset (keeping `retain` bytes committed) and release (keeping none).
  void free_all_keeping(std::size_t retain) noexcept;

  vmem_arena_options options_;
  std::string name_;
  std::pmr::memory_resource* upstream_;
  std::byte* base_ = nullptr;  // the reservation, a multiple of the least alignment
  std::size_t reserved_ = 0;   // its size in bytes
  std::size_t committed_ = 0;  // [base_, base_ + committed_) is readable and writable
  std::size_t position_ = 0;   // bytes handed out from base_, padding included
#if PMRKIT_CHECKED
  std::byte* last_block_ = nullptr;  // the most recent block, to tell a rollback of another size
  std::size_t last_size_ = 0;
#endif
  overflow_header* overflow_ = nullptr;  // overflow blocks in use, newest first
  std::size_t overflow_count_ = 0;       // overflow blocks allocated since the last reset
  std::size_t overflow_live_ = 0;        // overflow blocks in use
  std::size_t overflow_bytes_ = 0;       // their sizes, as requested
  std::size_t overflow_overhead_ = 0;    // their headers and alignment padding
  std::size_t peak_from_upstream_ = 0;
  std::size_t peak_used_ = 0;
  detail::arena_marker_history history_;
  detail::arena_id id_;
  std::uint64_t epoch_ = 0;
};

static_assert(std::is_base_of_v<std::pmr::memory_resource, vmem_arena_resource>);
static_assert(std::is_base_of_v<arena_resource, vmem_arena_resource>);
static_assert(!std::is_copy_constructible_v<vmem_arena_resource> &&
              !std::is_move_constructible_v<vmem_arena_resource>);

}  // namespace pmrkit
