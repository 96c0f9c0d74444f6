// stack_resource: bump allocation freed in LIFO order, block by block or back
// to a checkpoint.
//
// Allocation moves the position in the current chunk past the block, its size
// rounded up to the least `alignment` (so the fast path is a compare and an
// add, inline); deallocating the newest block pops it, so frees in reverse
// allocation order give the memory back one block at a time, across chunk
// boundaries too. `checkpoint()` takes a comparable marker (`stack_marker`:
// the chunk's index and the offset in it, never an address) and
// `rewind(marker)` frees everything allocated after it in one step;
// `stack_scope` rewinds when it leaves its scope. Chunks come from the
// upstream growing by `growth_factor` (2: doubling; 1: constant) from
// `initial_chunk_size` up to `max_chunk_size` and stay cached after pops,
// rewinds and `reset()`, so a per-frame loop takes from the upstream only in
// its first frames; `shrink()` gives back the cached chunks above the current
// one and `release()` all of them. `pmrkit::reallocate` grows or shrinks the
// newest block in place when its chunk has room, and otherwise moves it to a
// new block that is then the newest, the old one freed: LIFO order is kept.
//
// Initial buffer. `initial_buffer` hands the stack a caller's memory (a stack
// array) to use before the upstream, as chunked_arena_resource's does: every
// byte of it serves blocks (its header lives in the stack object), at any
// address; it is the first chunk (index 0 in markers), popped into and
// rewound into like any other; `reset()` and `release()` make it current
// again, `shrink()` never counts it and it never goes to the upstream. The
// first chunk from the upstream grows from its size (`growth_factor` times
// it, within [initial_chunk_size, max_chunk_size]). In `stats()` it counts in
// `bytes_in_use`, `bytes_available`, `waste` and `bytes_reserved`, never in
// `bytes_from_upstream` nor `chunk_count`. A workload that fits takes nothing
// from the upstream.
//
// Choose it over chunked_arena_resource when lifetimes nest (recursion,
// frames, scratch buffers of a call tree): memory is reused as soon as the
// inner scope ends, not at the next reset. Choose an arena when blocks die in
// any order: a container that grows (std::pmr::vector::push_back) frees its
// old buffer after taking the new one, which a stack reports as out of order;
// reserve its capacity up front, or give it an arena.
//
// Frees must be newest first. A free of any other block changes nothing (the
// block waits for a rewind), in every build. In checked builds
// (PMRKIT_CHECKED) the stack also keeps a side record of its blocks and
// reports, through report_violation, a free out of LIFO order
// (`out_of_order`), a size or alignment that differs from the allocation's
// (`size_mismatch`, `alignment_mismatch`), a pointer that is no block in use
// (`foreign_pointer`) and a rewind to a marker no longer valid
// (`stale_checkpoint`); the call is then ignored. A stale marker is ignored
// in every build. Freed memory is filled and poisoned for AddressSanitizer.
// Unchecked builds keep nothing but the position, a short record of the
// cuts that tell a stale marker (detail/marker_history.hpp) and, below a
// block aligned beyond `alignment`, where the position was before it, so
// that popping it returns there exactly.
//
// Thread safety: none; use it from one thread at a time.
//
// Example:
//   pmrkit::stack_resource stack({.initial_chunk_size = 4_KiB});
//   for (int frame = 0; frame < 3; ++frame) {
//     pmrkit::stack_scope scope(stack);  // declared first: rewinds after the others are gone
//     std::pmr::vector<int> ids(&stack);
//     ids.reserve(100);                  // one block, never regrown
//     void* scratch = stack.allocate(256);
//     stack.deallocate(scratch, 256);    // the newest block: popped
//   }
//   assert(stack.stats().chunk_count == 1 && stack.stats().bytes_in_use == 0);
//
//   std::byte local[2048];  // a call tree's scratch, nothing from the upstream while it fits
//   pmrkit::stack_resource scratch({.initial_buffer = local}, std::pmr::null_memory_resource());
//   void* a = scratch.allocate(1000);
//   scratch.deallocate(a, 1000);
//   assert(scratch.stats().bytes_from_upstream == 0);
#pragma once

#include <pmr/arena/arena_resource.hpp>
#include <pmr/arena/detail/bump_chain.hpp>
#include <pmr/arena/detail/marker_history.hpp>
#include <pmr/core/align.hpp>
#include <pmr/core/config.hpp>
#include <pmr/core/reallocate.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory_resource>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#if PMRKIT_CHECKED
#include <vector>
#endif

namespace pmrkit {

struct stack_options {
  /// Bytes of the first chunk from the upstream (header included); after an
  /// initial_buffer, its least size (see the file comment).
  std::size_t initial_chunk_size = 4096;
  std::size_t max_chunk_size = 65536;  ///< growth stops here
  /// 1 to 16; 1 keeps every chunk at the first one's size (initial_chunk_size
  /// without an initial_buffer).
  std::size_t growth_factor = 2;
  std::size_t alignment = alignof(std::max_align_t);  ///< the least alignment of every block
  /// A caller's buffer (a stack array, say) used before any chunk from the
  /// upstream, and again after reset and release; empty: none. Not owned: it
  /// must outlive the stack. Every byte of it serves blocks (no header inside
  /// it), at any address. A null data pointer with a nonzero size is invalid.
  std::span<std::byte> initial_buffer = {};
  std::string_view name = "stack";  ///< shown in errors and violations (copied)
};

class stack_resource final : public std::pmr::memory_resource, public resizable_resource {
 public:
  /// Throws std::invalid_argument naming the field when an option is invalid
  /// (initial_chunk_size below 256 bytes, max_chunk_size below
  /// initial_chunk_size, growth_factor not 1 to 16, alignment not a power of
  /// two or above 4096, initial_buffer with a null data pointer and a nonzero
  /// size) or `upstream` is null.
  explicit stack_resource(const stack_options& options = {},
                          std::pmr::memory_resource* upstream = std::pmr::get_default_resource());
  /// The default options over `upstream` (a template, so that `{}` never
  /// reads as a null upstream).
  template <std::derived_from<std::pmr::memory_resource> Upstream>
  explicit stack_resource(Upstream* upstream) : stack_resource(stack_options{}, upstream) {}
  /// Not copyable. Declared on a non-const reference so that `{}` does not
  /// convert to it and `stack_resource s({})` means the default options.
  stack_resource(stack_resource&) = delete;
  stack_resource& operator=(const stack_resource&) = delete;
  /// Gives every chunk back upstream, blocks still in use included.
  ~stack_resource() override = default;

  // Checkpoints and bulk operations.

  /// A marker of the current position; markers of one stack order as the
  /// positions they mark (see arena_resource.hpp). Throws nothing.
  [[nodiscard]] arena_checkpoint checkpoint() const noexcept {
    const detail::bump_chain::coordinates at = chain_.where();
    const detail::arena_marker_history::mark mark = history_.take();
    return detail::checkpoint_access::make(id_.get(), epoch_, mark.depth, mark.stamp,
                                           stack_marker{.chunk = at.chunk, .offset = at.offset});
  }
  /// Frees everything allocated after `marker`, keeping the chunks; O(1)
  /// within one chunk. A marker of another stack, from before a reset() or
  /// release(), beyond the current position, or freed by an earlier pop or
  /// rewind and grown past since is stale: a stale_checkpoint violation in
  /// checked builds, and ignored (unchecked builds judge the last kind by its
  /// place alone, see arena_resource.hpp). Throws only what an installed
  /// violation handler throws.
  void rewind(const arena_checkpoint& marker);
  /// Everything is free; every chunk is kept, the chunk size stays grown, and
  /// every checkpoint becomes stale. Throws nothing.
  void reset() noexcept;
  /// Everything goes back upstream; the growth sequence starts again and the
  /// stack stays usable. Throws nothing.
  void release() noexcept;
  /// Gives back the cached chunks above the current one; nothing in use
  /// moves. Returns the bytes given back upstream.
  std::size_t shrink() noexcept { return chain_.shrink(); }

  /// Grows or shrinks the newest block in place when its chunk has room, and
  /// returns true; false, changing nothing, for any other block.
  bool try_resize(void* p, std::size_t old_size, std::size_t new_size,
                  std::size_t alignment) noexcept override;
  /// What pmrkit::reallocate calls when the newest block cannot be resized
  /// in place: pops it without losing its bytes, allocates the new block (so
  /// it is the newest), copies into it and returns it; the old block is
  /// freed, LIFO order kept. nullptr, changing nothing, for any other block.
  /// Throws what allocate throws; the block is then unchanged, still the
  /// newest, and the markers taken after it stay valid.
  void* reallocate_newest(void* p, std::size_t old_size, std::size_t new_size,
                          std::size_t alignment) override;

  // Observers.

  /// Chunks and their use (arena_stats; bytes_committed, large_blocks_in_use
  /// and large_bytes_in_use are 0: a large block is one more chunk).
  /// peak_bytes_in_use is the most seen at a rewind, reset, release or chunk
  /// change, or now: single pops are not watched, to keep them free. Throws
  /// nothing.
  [[nodiscard]] arena_stats stats() const noexcept;
  [[nodiscard]] std::string_view name() const noexcept { return name_; }
  [[nodiscard]] std::pmr::memory_resource* upstream_resource() const noexcept {
    return chain_.upstream();
  }
  /// True when `p` lies in a chunk this stack holds now. Throws nothing.
  [[nodiscard]] bool owns(const void* p) const noexcept { return chain_.owns(p); }
  [[nodiscard]] const stack_options& options() const noexcept { return options_; }

 private:
  // Every block takes a multiple of the least alignment (its extent), so the
  // cursor stays aligned and the fast path needs no alignment arithmetic.
  // Zero-byte blocks take one byte so every block has a distinct address.
  [[nodiscard]] std::size_t extent_of(std::size_t bytes) const noexcept {
    return block_extent(bytes, options_.alignment);
  }
  static constexpr std::size_t fast_limit = std::numeric_limits<std::size_t>::max() / 2;

  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
#if PMRKIT_CHECKED
    // The record must have room before the bump, so that keeping it cannot throw.
    if (records_.size() == records_.capacity()) [[unlikely]] {
      return allocate_slow(bytes, alignment);
    }
#endif
    // alignment in [1, least alignment] and a power of two, without a popcount.
    if (alignment - 1 < options_.alignment && (alignment & (alignment - 1)) == 0 &&
        bytes <= fast_limit) [[likely]] {
      if (void* p = chain_.try_bump_at_cursor(extent_of(bytes))) [[likely]] {
        history_.push();
#if PMRKIT_CHECKED
        records_.push_back({static_cast<std::byte*>(p), bytes, alignment});
#endif
        return p;
      }
    }
    return allocate_slow(bytes, alignment);
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
#if PMRKIT_CHECKED
    pop_checked(p, bytes, alignment);
#else
    // Anything but the newest block is ignored (checked builds report it).
    (void)pop_newest(static_cast<std::byte*>(p), bytes, alignment);
#endif
  }
  // Pops the block at `block` if it is the newest, which ends at the cursor.
  // With `keep_contents` its bytes are not retired (the caller does that).
  bool pop_newest(std::byte* block, std::size_t bytes, std::size_t alignment,
                  bool keep_contents = false) noexcept {
    if (bytes > fast_limit) return false;
    const bool popped = alignment <= options_.alignment
                            ? chain_.pop(block, extent_of(bytes), block, keep_contents)
                            : pop_over_aligned(block, extent_of(bytes), keep_contents);
    if (popped) [[likely]]
      history_.pop();
    return popped;
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  void* allocate_slow(std::size_t bytes, std::size_t alignment);
  void* bump_over_aligned(std::size_t extent, std::size_t alignment) noexcept;
  bool pop_over_aligned(std::byte* block, std::size_t extent, bool keep_contents) noexcept;
  void note_peak() noexcept {
    const std::size_t used = chain_.used();
    if (used > peak_used_) peak_used_ = used;
  }
  void note_upstream() noexcept {
    const std::size_t held = chain_.bytes_from_upstream();
    if (held > peak_from_upstream_) peak_from_upstream_ = held;
  }

  stack_options options_;
  std::string name_;
  detail::bump_chain chain_;
  detail::arena_marker_history history_;
  detail::arena_id id_;
  std::uint64_t epoch_ = 0;  // bumped by reset and release: older markers are stale
  std::size_t peak_used_ = 0;
  std::size_t peak_from_upstream_ = 0;
#if PMRKIT_CHECKED
  // The blocks in use, oldest first: what LIFO order and sizes are checked
  // against. There is one per allocation of the history (history_.depth()).
  struct record {
    std::byte* block;
    std::size_t size;       // as requested
    std::size_t alignment;  // as requested
  };
  void pop_checked(void* p, std::size_t bytes, std::size_t alignment);
  std::vector<record> records_;
#endif
};

/// Rewinds a stack to where it was when the scope began. Declare it before
/// the objects that allocate from the stack in the same scope, so they are
/// destroyed (and free their blocks) before it rewinds.
class stack_scope {
 public:
  /// Takes a checkpoint of `stack`, which must outlive the scope. Throws nothing.
  [[nodiscard]] explicit stack_scope(stack_resource& stack) noexcept
      : stack_(stack), marker_(stack.checkpoint()) {}
  stack_scope(const stack_scope&) = delete;
  stack_scope& operator=(const stack_scope&) = delete;
  /// Rewinds to the checkpoint (a violation in checked builds if it is stale).
  ~stack_scope() { stack_.rewind(marker_); }

  [[nodiscard]] stack_resource& stack() const noexcept { return stack_; }
  [[nodiscard]] const arena_checkpoint& marker() const noexcept { return marker_; }

 private:
  stack_resource& stack_;
  arena_checkpoint marker_;
};

static_assert(std::is_base_of_v<std::pmr::memory_resource, stack_resource>);
static_assert(std::is_base_of_v<resizable_resource, stack_resource>);
static_assert(std::is_final_v<stack_resource>);
static_assert(!std::is_copy_constructible_v<stack_resource> &&
              !std::is_move_constructible_v<stack_resource>);
static_assert(!std::is_copy_constructible_v<stack_scope> &&
              !std::is_move_constructible_v<stack_scope>);

}  // namespace pmrkit
