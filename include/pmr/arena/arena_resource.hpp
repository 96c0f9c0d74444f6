// arena_resource: the port every arena strategy implements, so code can take
// "an arena" without caring how it gets its memory.
//
// An arena hands out memory by bumping a position and frees it in bulk:
// `reset()` makes everything free again but keeps the memory for the next
// pass, `release()` gives it all back upstream, and `checkpoint()` /
// `rewind(marker)` free everything allocated after a marker. `deallocate` is
// a no-op except for the most recent block, which is rolled back (and
// `try_resize` grows or shrinks that block in place, see reallocate.hpp).
// The strategies are `chunked_arena_resource` (linked chunks from the
// upstream) and `vmem_arena_resource` (one reserved address range committed on
// demand); `make_arena` picks one at run time.
//
// Choose the port when the strategy is a deployment decision (configuration,
// platform); use a concrete strategy directly when it is not, so calls are
// devirtualised.
//
// Checkpoints are comparable: a later marker compares greater. Rewinding to a
// marker that is no longer valid (taken before a reset, beyond the current
// position after an earlier rewind, or from another arena) is a
// `stale_checkpoint` violation in checked builds.
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
#pragma once

#include <pmr/core/reallocate.hpp>

#include <compare>
#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <string_view>

namespace pmrkit {

/// How an arena gets its memory.
enum class arena_strategy : unsigned char {
  chained,         ///< linked chunks from the upstream (chunked_arena_resource)
  virtual_memory,  ///< one reserved address range, committed on demand (vmem_arena_resource)
};

/// "chained" or "virtual".
[[nodiscard]] std::string_view to_string(arena_strategy strategy) noexcept;

class arena_checkpoint;

namespace detail {
/// How strategies build and read checkpoints; not for users.
struct checkpoint_access;
}  // namespace detail

/// An opaque marker of an arena's position. Markers of one arena, taken
/// between two resets, order as the positions they mark.
class arena_checkpoint {
 public:
  /// A marker of no arena; rewinding to it is a stale_checkpoint violation.
  arena_checkpoint() = default;

  friend bool operator==(const arena_checkpoint&, const arena_checkpoint&) = default;
  friend std::strong_ordering operator<=>(const arena_checkpoint&,
                                          const arena_checkpoint&) = default;

 private:
  friend struct detail::checkpoint_access;

  const void* owner_ = nullptr;  // the arena that made it
  std::uint64_t epoch_ = 0;      // the arena's reset count when it was made
  std::size_t chunk_ = 0;        // index of the chunk (vmem: overflow blocks then live)
  std::size_t offset_ = 0;       // bytes into that chunk (or the range)
  void* handle_ = nullptr;       // the chunk itself, so rewinding needs no search
  const void* aux_ = nullptr;    // strategy-specific (the chunked arena's newest large block)
};

namespace detail {
struct checkpoint_access {
  static arena_checkpoint make(const void* owner, std::uint64_t epoch, std::size_t chunk,
                               std::size_t offset, void* handle,
                               const void* aux = nullptr) noexcept {
    arena_checkpoint marker;
    marker.owner_ = owner;
    marker.epoch_ = epoch;
    marker.chunk_ = chunk;
    marker.offset_ = offset;
    marker.handle_ = handle;
    marker.aux_ = aux;
    return marker;
  }
  static const void* owner(const arena_checkpoint& m) noexcept { return m.owner_; }
  static std::uint64_t epoch(const arena_checkpoint& m) noexcept { return m.epoch_; }
  static std::size_t chunk(const arena_checkpoint& m) noexcept { return m.chunk_; }
  static std::size_t offset(const arena_checkpoint& m) noexcept { return m.offset_; }
  static void* handle(const arena_checkpoint& m) noexcept { return m.handle_; }
  static const void* aux(const arena_checkpoint& m) noexcept { return m.aux_; }
};
}  // namespace detail

/// What an arena holds and how well it uses it.
struct arena_stats {
  std::size_t bytes_from_upstream = 0;  ///< held now: chunks (chained) or committed bytes (virtual)
  std::size_t bytes_reserved =
      0;  ///< address space reserved (virtual); = bytes_from_upstream for chained
  std::size_t bytes_used = 0;       ///< handed out since the last reset, as requested
  std::size_t peak_bytes_used = 0;  ///< the most bytes_used has been
  std::size_t bytes_available = 0;  ///< still free to hand out without the upstream
  std::size_t waste = 0;            ///< neither used nor available: padding, headers, chunk tails
  std::size_t chunk_count = 0;      ///< chunks held (1 for a contiguous range)
  std::size_t current_chunk_size = 0;  ///< the size the next chunk (or commit step) will have
  std::size_t overflow_bytes = 0;      ///< virtual: bytes served by the overflow upstream now
};

/// The arena port. Strategies derive from it and are final.
class arena_resource : public std::pmr::memory_resource, public resizable_resource {
 public:
  /// Everything allocated is free again; the memory is kept for reuse and all
  /// checkpoints become stale.
  virtual void reset() = 0;
  /// Everything goes back upstream; the arena stays usable.
  virtual void release() = 0;
  /// Gives back memory kept for reuse but not in use now; nothing in use moves.
  virtual void shrink() noexcept = 0;
  /// A marker of the current position.
  [[nodiscard]] virtual arena_checkpoint checkpoint() const noexcept = 0;
  /// Frees everything allocated after `marker`, keeping the memory for reuse.
  virtual void rewind(const arena_checkpoint& marker) = 0;

  [[nodiscard]] virtual arena_stats stats() const noexcept = 0;
  [[nodiscard]] virtual arena_strategy strategy() const noexcept = 0;
  [[nodiscard]] virtual std::string_view name() const noexcept = 0;
  [[nodiscard]] virtual std::pmr::memory_resource* upstream_resource() const noexcept = 0;
  /// True when `p` lies in memory this arena holds now.
  [[nodiscard]] virtual bool owns(const void* p) const noexcept = 0;
};

}  // namespace pmrkit
