// arena_resource: the port every arena strategy implements, so code can take
// "an arena" without caring how it gets its memory.
//
// An arena hands out memory by bumping a position and frees it in bulk:
// `reset()` frees everything and keeps memory for reuse as the strategy
// documents (the chunked arena keeps every chunk; the virtual memory arena
// keeps `retain_on_reset` bytes committed, decommits the rest and returns its
// overflow blocks; the stack, which shares this vocabulary without the port,
// keeps every chunk), and every marker becomes stale. `release()` gives
// everything back, `shrink()` gives back what is kept but not in use and
// returns how many bytes went (upstream, or to the OS for the virtual memory
// arena's pages), and `checkpoint()` / `rewind(marker)` free everything
// allocated after a marker. `deallocate` is a no-op except for the most
// recent block, which is rolled back (and `try_resize` grows or shrinks that
// block in place, see reallocate.hpp). The strategies are
// `chunked_arena_resource` (linked chunks from the upstream) and
// `vmem_arena_resource` (one reserved address range committed on demand);
// `make_arena` picks one at run time.
//
// Choose the port when the strategy is a deployment decision (configuration,
// platform); use a concrete strategy directly when it is not, so calls are
// devirtualised.
//
// Markers. An `arena_checkpoint` names its arena (by a number, not an
// address), the arena's reset count, its depth (how many allocations of the
// arena's history since the reset precede it, less those undone by rollbacks,
// pops and rewinds) and where the strategy was, as a typed payload whose
// fields each mean one thing: `chunked_arena_marker` {chunk index, offset,
// dedicated chunks in use}, `vmem_arena_marker` {position, overflow blocks},
// `stack_marker` {chunk index, offset}. No address takes part in comparing or
// validating a marker. Markers of one arena since its last reset compare by
// depth, then by place; for markers that are still valid that is the order
// they were taken in: a later marker compares greater (a marker with nothing
// allocated between it and another compares equal to it). Markers of
// different arenas or resets are unordered
// (`std::partial_ordering::unordered`). Rewinding to a marker that is no
// longer valid (taken before a reset, from another arena, beyond the current
// position, or freed by an earlier rewind or pop and grown past since)
// is a `stale_checkpoint` violation in checked builds and changes nothing.
// Unchecked builds keep no history of rewinds (it would cost the bump and
// rollback fast paths): there a marker from another arena, from before a
// reset or beyond the position still changes nothing, but one freed by an
// earlier rewind and grown past is judged by its place alone and rewinds
// there. The arena's bookkeeping stays whole either way (dedicated chunks and
// overflow blocks are counted, never compared by address).
//
// Thread safety: none; an arena belongs to one thread at a time (wrap it in
// synchronized_resource to share it).
//
// Example:
//   pmrkit::chunked_arena_resource concrete({}, std::pmr::new_delete_resource());
//   pmrkit::arena_resource& arena = concrete;
//   const pmrkit::arena_checkpoint start = arena.checkpoint();
//   std::pmr::vector<int> scratch({1, 2, 3}, &arena);
//   assert(arena.checkpoint() > start);
//   assert(std::holds_alternative<pmrkit::chunked_arena_marker>(start.where()));
#pragma once

#include <pmr/core/reallocate.hpp>

#include <compare>
#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <string_view>
#include <variant>

namespace pmrkit {

/// How an arena gets its memory.
enum class arena_strategy : unsigned char {
  chained,         ///< linked chunks from the upstream (chunked_arena_resource)
  virtual_memory,  ///< one reserved address range, committed on demand (vmem_arena_resource)
};

/// "chained" or "virtual".
[[nodiscard]] std::string_view to_string(arena_strategy strategy) noexcept;

/// Where a chunked_arena_resource was when a marker was taken.
struct chunked_arena_marker {
  std::size_t chunk = 0;         ///< the index of the chunk in the arena's chain (0: the first)
  std::size_t offset = 0;        ///< bytes from that chunk's start to the position
  std::size_t large_chunks = 0;  ///< dedicated (large) chunks in use
  friend bool operator==(const chunked_arena_marker&, const chunked_arena_marker&) = default;
  friend auto operator<=>(const chunked_arena_marker&, const chunked_arena_marker&) = default;
};

/// Where a vmem_arena_resource was when a marker was taken.
struct vmem_arena_marker {
  std::size_t position = 0;         ///< bytes from the start of the reserved range
  std::size_t overflow_blocks = 0;  ///< overflow blocks allocated since the reset, not rewound
  friend bool operator==(const vmem_arena_marker&, const vmem_arena_marker&) = default;
  friend auto operator<=>(const vmem_arena_marker&, const vmem_arena_marker&) = default;
};

/// Where a stack_resource was when a marker was taken.
struct stack_marker {
  std::size_t chunk = 0;   ///< the index of the chunk in the stack's chain (0: the first)
  std::size_t offset = 0;  ///< bytes from that chunk's start to the position
  friend bool operator==(const stack_marker&, const stack_marker&) = default;
  friend auto operator<=>(const stack_marker&, const stack_marker&) = default;
};

class arena_checkpoint;

namespace detail {
/// How strategies build checkpoints; not for users.
struct checkpoint_access;
/// A number for a new arena, never 0 and never given twice in a process.
[[nodiscard]] std::uint64_t next_arena_id() noexcept;

/// An arena's number for its markers, taken from next_arena_id() when a
/// marker first asks for it: the counter is shared by every thread (a locked
/// instruction), which an arena made per call and never checkpointed does
/// not pay. Before that no marker can name the arena.
class arena_id {
 public:
  [[nodiscard]] std::uint64_t get() const noexcept {
    if (value_ == 0) value_ = next_arena_id();
    return value_;
  }
  /// True when `id` is this arena's.
  [[nodiscard]] bool is(std::uint64_t id) const noexcept { return value_ != 0 && id == value_; }

 private:
  mutable std::uint64_t value_ = 0;  // an arena is used by one thread at a time
};
}  // namespace detail

/// A marker of an arena's position (see the file comment for what it holds
/// and how markers compare).
class arena_checkpoint {
 public:
  /// The strategy's payload; std::monostate for a marker of no arena.
  using payload =
      std::variant<std::monostate, chunked_arena_marker, vmem_arena_marker, stack_marker>;

  /// A marker of no arena; rewinding to it is a stale_checkpoint violation.
  arena_checkpoint() = default;

  /// The number of the arena that took it (0: none).
  [[nodiscard]] std::uint64_t arena() const noexcept { return arena_; }
  /// How many times that arena had been reset (or released) before.
  [[nodiscard]] std::uint64_t epoch() const noexcept { return epoch_; }
  /// Allocations of the arena's history since that reset that precede it.
  [[nodiscard]] std::uint64_t depth() const noexcept { return depth_; }
  /// Where the strategy was.
  [[nodiscard]] const payload& where() const noexcept { return where_; }

  /// Equal when they mark the same place of the same arena since the same
  /// reset (one of them may be stale: equality says where, not whether).
  friend bool operator==(const arena_checkpoint& a, const arena_checkpoint& b) noexcept {
    return a.arena_ == b.arena_ && a.epoch_ == b.epoch_ && a.depth_ == b.depth_ &&
           a.where_ == b.where_;
  }
  /// By depth, then by place (chunk, offset, ...), within one arena and
  /// reset; unordered across arenas or resets.
  friend std::partial_ordering operator<=>(const arena_checkpoint& a,
                                           const arena_checkpoint& b) noexcept {
    if (a.arena_ != b.arena_ || a.epoch_ != b.epoch_) return std::partial_ordering::unordered;
    if (const auto by_depth = a.depth_ <=> b.depth_; by_depth != 0) return by_depth;
    return a.where_ <=> b.where_;
  }

 private:
  friend struct detail::checkpoint_access;

  std::uint64_t arena_ = 0;
  std::uint64_t epoch_ = 0;
  std::uint64_t depth_ = 0;
  std::uint64_t stamp_ = 0;  // markers the arena had taken before, plus one
  payload where_;
};

namespace detail {
struct checkpoint_access {
  static arena_checkpoint make(std::uint64_t arena, std::uint64_t epoch, std::uint64_t depth,
                               std::uint64_t stamp, arena_checkpoint::payload where) noexcept {
    arena_checkpoint marker;
    marker.arena_ = arena;
    marker.epoch_ = epoch;
    marker.depth_ = depth;
    marker.stamp_ = stamp;
    marker.where_ = where;
    return marker;
  }
  static std::uint64_t stamp(const arena_checkpoint& m) noexcept { return m.stamp_; }
};
}  // namespace detail

/// What an arena holds and how well it uses it. The names shared with other
/// resources mean what docs/contract.md says.
struct arena_stats {
  /// Bytes held from the upstream now, exactly what was asked of it: chunks
  /// and dedicated chunks (chained), overflow blocks with their headers (virtual).
  std::size_t bytes_from_upstream = 0;
  std::size_t peak_bytes_from_upstream = 0;  ///< the most bytes_from_upstream has been
  /// Address space reserved (virtual); for chained, bytes_from_upstream plus
  /// the initial buffer's size (all the memory the arena holds).
  std::size_t bytes_reserved = 0;
  /// Pages of the range committed from the OS now (virtual); 0 for chained.
  std::size_t bytes_committed = 0;
  /// Consumed since the last reset, less what rollbacks, pops and rewinds
  /// gave back: blocks rounded to the least alignment, padding included
  /// (virtual: overflow blocks as requested).
  std::size_t bytes_in_use = 0;
  std::size_t peak_bytes_in_use = 0;  ///< the most bytes_in_use has been (see each strategy)
  std::size_t bytes_available = 0;    ///< still free to hand out without the upstream
  std::size_t waste = 0;  ///< neither in use nor available: padding, headers, chunk tails
  /// Chunks held from the upstream, dedicated chunks included (chained, the
  /// stack); the range plus the overflow blocks held (virtual).
  std::size_t chunk_count = 0;
  std::size_t large_blocks_in_use = 0;  ///< dedicated chunks (chained) or overflow blocks in use
  std::size_t large_bytes_in_use = 0;   ///< their sizes as requested (chained: rounded)
  std::size_t current_chunk_size = 0;   ///< the size the next chunk (or commit step) will have
};

/// The arena port. Strategies derive from it and are final.
class arena_resource : public std::pmr::memory_resource, public resizable_resource {
 public:
  /// Everything allocated is free again, memory is kept for reuse as the
  /// strategy documents (see above), and every marker becomes stale.
  virtual void reset() noexcept = 0;
  /// Everything goes back (upstream; the virtual arena decommits its pages);
  /// the arena stays usable.
  virtual void release() noexcept = 0;
  /// Gives back memory kept for reuse but not in use now; nothing in use
  /// moves. Returns the bytes given back (upstream, or to the OS for the
  /// virtual memory arena's pages).
  virtual std::size_t shrink() noexcept = 0;
  /// A marker of the current position.
  [[nodiscard]] virtual arena_checkpoint checkpoint() const noexcept = 0;
  /// Frees everything allocated after `marker`, keeping the memory for
  /// reuse. A stale marker changes nothing (a stale_checkpoint violation in
  /// checked builds; throws only what a violation handler throws).
  virtual void rewind(const arena_checkpoint& marker) = 0;

  [[nodiscard]] virtual arena_stats stats() const noexcept = 0;
  [[nodiscard]] virtual arena_strategy strategy() const noexcept = 0;
  [[nodiscard]] virtual std::string_view name() const noexcept = 0;
  [[nodiscard]] virtual std::pmr::memory_resource* upstream_resource() const noexcept = 0;
  /// True when `p` lies in memory this arena holds now.
  [[nodiscard]] virtual bool owns(const void* p) const noexcept = 0;
};

}  // namespace pmrkit
