// chunked_arena_resource: bump allocation in linked chunks from the upstream,
// freed in bulk.
//
// Allocation rounds the position in the current chunk up to the alignment and
// moves it past the block: a few instructions, inline. When the chunk is
// exhausted the next one is taken, growing by `growth_factor` (2: doubling;
// 1: constant) from `initial_chunk_size` up to `max_chunk_size`. A request
// larger than the next chunk gets a dedicated chunk of its own size, and the
// growth sequence goes on as if the normal chunk had been taken, so one big
// request does not inflate every later chunk (unlike
// std::pmr::monotonic_buffer_resource). `deallocate` frees nothing except the
// most recent block, which is rolled back; `pmrkit::reallocate` grows that
// block in place. `reset()` frees everything but keeps every chunk (and the
// grown chunk size), so a second identical pass takes nothing from the
// upstream; `clear()` keeps only the first chunk; `shrink()` returns the kept
// chunks not in use (and says how many bytes went upstream); `release()`
// returns everything. Checkpoints rewind to a marker (`chunked_arena_marker`:
// the chunk's index, the offset in it and the dedicated chunks in use, never
// an address).
//
// Initial buffer. `initial_buffer` hands the arena a caller's memory (a
// stack array) to use before the upstream, as monotonic_buffer_resource's
// buffer constructors do: every byte of it serves blocks (its header lives in
// the arena object, not in the buffer), at any address (blocks are aligned
// inside it to their alignment and the least alignment; a buffer too small
// for one block just passes the request on), and a zero-sized one is none. It
// is the arena's first chunk (index 0 in markers): blocks in it roll back,
// grow in place and rewind like any other; `owns` is true for them;
// `reset()`, `clear()` and `release()` make it the current space again
// (`clear()` keeps it as the first chunk and returns every upstream chunk);
// `shrink()` never counts it and it never goes to the upstream. The first
// chunk from the upstream grows from the buffer's size as the standard's
// next_buffer_size does: `growth_factor` times the buffer's size, at least
// `initial_chunk_size` and at most `max_chunk_size` (again after `release()`).
// In `stats()` it counts like a chunk in `bytes_in_use`, `bytes_available`,
// `waste` (its alignment padding and unused tail) and `bytes_reserved` (the
// chunks' bytes plus the buffer's: all the memory the arena holds), never in
// `bytes_from_upstream` nor `chunk_count` (chunks from the upstream). Checked
// builds fill and poison its free parts as they do a chunk's, and the
// destructor unpoisons all of it before the caller has it back.
//
// Choose it for many short-lived allocations freed together (per request, per
// frame, per parse) when you want a fixed small footprint and any upstream;
// choose vmem_arena_resource for one contiguous, very large arena, and
// stack_resource when blocks are freed in LIFO order.
//
// In checked builds, memory freed by reset, clear, rewind or rollback is
// filled with a pattern and poisoned for AddressSanitizer, a deallocate of a
// pointer the arena does not hold is a `foreign_pointer` violation, one of
// memory past the position (a block already rolled back or rewound) a
// `double_free`, and a rollback with another size than the allocation's is a
// `size_mismatch`.
//
// Thread safety: none; use it from one thread at a time.
//
// Example:
//   pmrkit::chunked_arena_resource arena({.initial_chunk_size = 4_KiB});
//   for (int pass = 0; pass < 3; ++pass) {
//     {
//       std::pmr::vector<std::pmr::string> words({"alpha", "beta"}, &arena);
//     }
//     arena.reset();  // after the first pass, nothing more comes from the upstream
//   }
//   assert(arena.stats().chunk_count == 1);
//
//   std::byte stack_buffer[1024];  // used first: the upstream is asked only beyond it
//   pmrkit::chunked_arena_resource local({.initial_buffer = stack_buffer},
//                                        std::pmr::null_memory_resource());
//   std::pmr::vector<int> small({1, 2, 3}, &local);
//   assert(local.owns(small.data()) && local.stats().bytes_from_upstream == 0);
//
//   // std::pmr::monotonic_buffer_resource's form: the cheapest to build per call.
//   std::byte call_buffer[256];
//   pmrkit::chunked_arena_resource per_call(call_buffer, sizeof call_buffer);
//   assert(per_call.owns(per_call.allocate(16)) && per_call.stats().bytes_from_upstream == 0);
#pragma once

#include <pmr/arena/arena_resource.hpp>
#include <pmr/arena/detail/bump_chain.hpp>
#include <pmr/arena/detail/marker_history.hpp>
#include <pmr/core/align.hpp>
#include <pmr/core/config.hpp>

#include <concepts>
#include <cstddef>
#include <limits>
#include <memory_resource>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

namespace pmrkit {

struct chunked_arena_options {
  /// Bytes of the first chunk from the upstream (header included); after an
  /// initial_buffer, its least size (see the file comment).
  std::size_t initial_chunk_size = 4096;
  std::size_t max_chunk_size = 65536;  ///< growth stops here
  /// 1 to 16; 1 keeps every chunk at the first one's size (initial_chunk_size
  /// without an initial_buffer).
  std::size_t growth_factor = 2;
  /// The least alignment of every block, and the granule sizes are rounded up to: requests
  /// aligned to it or less are one compare and an add. alignof(void*) packs small blocks as
  /// std::pmr::monotonic_buffer_resource does (a 40-byte std::map node takes 40 bytes, not 48:
  /// 16% less memory for a map of ints); requests aligned above it (allocate(n) without an
  /// alignment asks for max_align_t's) then take a short out-of-line path with an align-up.
  std::size_t alignment = alignof(std::max_align_t);
  /// Requests larger than this throw allocation_error (out of capacity).
  std::size_t size_limit = std::numeric_limits<std::size_t>::max();
  /// A caller's buffer (a stack array, say) used before any chunk from the
  /// upstream, and again after reset, clear and release; empty: none. Not
  /// owned: it must outlive the arena. Every byte of it serves blocks (no
  /// header inside it), at any address (blocks are aligned inside it). A null
  /// data pointer with a nonzero size is invalid.
  std::span<std::byte> initial_buffer = {};
  std::string_view name = "chunked_arena";  ///< shown in errors and violations (copied)
};

template <std::size_t N>
class local_arena;

class chunked_arena_resource final : public arena_resource {
 public:
  /// Throws std::invalid_argument naming the field when an option is invalid
  /// (initial_chunk_size below 256 bytes, max_chunk_size below
  /// initial_chunk_size, growth_factor not 1 to 16, alignment not a power of
  /// two or above 4096, initial_buffer with a null data pointer and a
  /// nonzero size) or `upstream` is null.
  explicit chunked_arena_resource(
      const chunked_arena_options& options = {},
      std::pmr::memory_resource* upstream = std::pmr::get_default_resource())
      : chunked_arena_resource(options, options.initial_buffer, upstream) {}
  /// The default options over `upstream` (a template, so that `{}` never
  /// reads as a null upstream).
  template <std::derived_from<std::pmr::memory_resource> Upstream>
  explicit chunked_arena_resource(Upstream* upstream)
      : chunked_arena_resource(default_options, {}, upstream, true) {}
  /// std::pmr::monotonic_buffer_resource's buffer constructor: the default
  /// options with the `buffer_size` bytes at `buffer` as the initial buffer.
  /// The cheapest way to build an arena per call: an options object the
  /// caller has just filled in is read back with wide loads that wait for its
  /// narrow stores (about 15 ns on the development machine), this form has
  /// none. Throws std::invalid_argument for a null `buffer` with a nonzero
  /// size or a null `upstream`.
  chunked_arena_resource(void* buffer, std::size_t buffer_size,
                         std::pmr::memory_resource* upstream = std::pmr::get_default_resource())
      : chunked_arena_resource(default_options, {static_cast<std::byte*>(buffer), buffer_size},
                               upstream, true) {}
  /// Not copyable. Declared on a non-const reference so that `{}` does not
  /// convert to it and `chunked_arena_resource a({})` means the default options.
  chunked_arena_resource(chunked_arena_resource&) = delete;
  chunked_arena_resource& operator=(const chunked_arena_resource&) = delete;
  ~chunked_arena_resource() override {
    if (large_ != nullptr || large_kept_ != nullptr) release_large_blocks();
  }

  // Bulk operations.

  /// Everything is free; every chunk is kept, the chunk size stays grown.
  void reset() noexcept override;
  /// Everything is free; the first chunk is kept, the others go back upstream.
  void clear() noexcept;
  /// Everything goes back upstream; the growth sequence starts again.
  void release() noexcept override;
  /// Gives back what is kept but not in use: chunks after the current one and
  /// dedicated chunks freed by reset or rewind. Nothing in use moves. Returns
  /// the bytes given back upstream.
  std::size_t shrink() noexcept override;
  [[nodiscard]] arena_checkpoint checkpoint() const noexcept override;
  /// Frees everything allocated after `marker` (kept for reuse). A stale
  /// marker is a stale_checkpoint violation in checked builds and is ignored.
  void rewind(const arena_checkpoint& marker) override;

  /// Grows or shrinks the most recent block in place when its chunk has room.
  bool try_resize(void* p, std::size_t old_size, std::size_t new_size,
                  std::size_t alignment) noexcept override;

  // Observers.

  /// The figures of arena_stats; peak_bytes_in_use is the most seen at a
  /// rollback, rewind, reset, clear, release or chunk change, or now.
  [[nodiscard]] arena_stats stats() const noexcept override;
  [[nodiscard]] arena_strategy strategy() const noexcept override {
    return arena_strategy::chained;
  }
  [[nodiscard]] std::string_view name() const noexcept override { return name_; }
  [[nodiscard]] std::pmr::memory_resource* upstream_resource() const noexcept override {
    return chain_.upstream();
  }
  [[nodiscard]] bool owns(const void* p) const noexcept override;
  [[nodiscard]] const chunked_arena_options& options() const noexcept { return options_; }

 private:
  template <std::size_t N>
  friend class local_arena;

  static constexpr chunked_arena_options default_options{};

  /// `options` but for its initial buffer, which is `buffer`. `static_name`:
  /// options.name is a literal of static storage (a class's default
  /// options), kept as it is instead of copied.
  chunked_arena_resource(const chunked_arena_options& options, std::span<std::byte> buffer,
                         std::pmr::memory_resource* upstream, bool static_name = false);

  // Every block takes a multiple of the least alignment (its extent), so the
  // cursor stays aligned and the fast path needs no alignment arithmetic.
  [[nodiscard]] std::size_t extent_of(std::size_t bytes) const noexcept {
    return block_extent(bytes, options_.alignment);
  }

  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    if (alignment <= options_.alignment && is_power_of_two(alignment) && bytes <= fast_limit_)
        [[likely]] {
      if (void* p = chain_.try_bump_at_cursor(extent_of(bytes))) [[likely]] {
        return handed_out(p, bytes);
      }
    }
    return allocate_slow(bytes, alignment);
  }
  /// Notes `p`, a new block of `bytes`, as the newest (the one a deallocate rolls back).
  void* handed_out(void* p, [[maybe_unused]] std::size_t bytes) noexcept {
    history_.push();
#if PMRKIT_CHECKED
    last_block_ = p;
    last_size_ = bytes;
#endif
    return p;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    auto* block = static_cast<std::byte*>(p);
    // The most recent block ends at the cursor: roll it back.
    if (chain_.move_cursor(block + extent_of(bytes), block)) [[likely]] {
      history_.pop();
#if PMRKIT_CHECKED
      last_block_ = nullptr;
#endif
      return;
    }
#if PMRKIT_CHECKED
    report_misuse(p, bytes, alignment);
#else
    (void)alignment;
#endif
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  void* allocate_slow(std::size_t bytes, std::size_t alignment);
  void* allocate_large(std::size_t extent, std::size_t alignment);
  void release_large_blocks() noexcept;
#if PMRKIT_CHECKED
  void report_misuse(void* p, std::size_t bytes, std::size_t alignment) const;
#endif
  void keep_large_blocks_beyond(std::size_t count) noexcept;
  void free_everything() noexcept;  // what reset, clear and release share, chunks aside
  void note_peak() noexcept;
  void note_upstream() noexcept;

  chunked_arena_options options_;
  std::string name_storage_;  // a copy of the caller's name, empty for a static default name
  std::string_view name_;     // name_storage_ or the static default
  std::size_t fast_limit_;    // size_limit, capped so rounding an extent cannot overflow
  detail::bump_chain chain_;
  detail::arena_marker_history history_;
  detail::chunk_header* large_ = nullptr;       // dedicated chunks in use, newest first
  detail::chunk_header* large_kept_ = nullptr;  // dedicated chunks kept by reset/rewind
  std::size_t large_count_ = 0;                 // dedicated chunks in use
  std::size_t large_bytes_ = 0;                 // their extents
  std::size_t large_from_upstream_ = 0;         // the sizes of those in use and kept
  std::size_t peak_from_upstream_ = 0;
  detail::arena_id id_;
  std::uint64_t epoch_ = 0;
  std::size_t peak_used_ = 0;
#if PMRKIT_CHECKED
  const void* last_block_ = nullptr;  // to tell a rollback with a wrong size
  std::size_t last_size_ = 0;
#endif
};

static_assert(std::is_base_of_v<std::pmr::memory_resource, chunked_arena_resource>);
static_assert(std::is_base_of_v<arena_resource, chunked_arena_resource>);
static_assert(!std::is_copy_constructible_v<chunked_arena_resource> &&
              !std::is_move_constructible_v<chunked_arena_resource>);

}  // namespace pmrkit
