// boost_bridge: adaptors both ways between std::pmr::memory_resource and
// boost::container::pmr::memory_resource.
//
// `to_boost_resource` is a Boost memory resource that forwards every call to
// a std::pmr one, so a pmrkit resource serves boost::container::pmr
// containers and Boost.JSON (whose storage_ptr takes a
// boost::container::pmr::memory_resource*). `to_boost_arena_resource` is the
// same over an arena, except that it drops frees: the arena takes everything
// back on reset() or release(), and Boost.JSON, told so through its
// is_deallocate_trivial trait (specialised here), then skips destroying a
// value element by element, as it does for its own monotonic_resource. Pick
// it for a Boost.JSON document parsed into an arena; pick to_boost_resource
// for everything else. `from_boost_resource` is a std::pmr memory resource
// over a Boost one, so a Boost resource serves std::pmr containers or is the
// upstream of a pmrkit resource. None owns its upstream, which must outlive
// it; none keeps state of its own (no stats(): put a statistics_resource on
// the std side to count).
//
// Cost: one forwarded call. The Boost-side adaptors are templates over the
// upstream's type, deduced from the constructor: in `to_boost_resource
// bridge(&arena)` the final chunked_arena_resource's inline fast path is
// inlined into the bridge, so Boost's virtual call is the only indirect one;
// `to_boost_resource<>` takes any std::pmr::memory_resource*.
//
// Failures. `to_boost_resource` lets the upstream's exception through: a
// std::bad_alloc (pmrkit's allocation_error or the standard one), which is
// what Boost.Container and Boost.JSON expect. `from_boost_resource` keeps
// pmrkit's contract: a non-power-of-two alignment is allocation_error
// (bad_alignment); what the Boost resource throws for lack of memory,
// std::bad_alloc or boost::container::bad_alloc (which is not a
// std::bad_alloc), becomes allocation_error (upstream_failed); an
// allocation_error from further down passes unchanged.
//
// Alignment and size. A Boost resource need align only to `max_align` (16
// bytes): Boost 1.81's pools and new_delete_resource() ignore a larger
// alignment, its monotonic_buffer_resource throws. So `from_boost_resource`
// serves a larger alignment itself, taking `bytes + alignment` at
// `max_align` and aligning inside. Requests up to `max_align` reach the Boost
// resource exactly as made. Either way a zero-byte request counts one byte,
// so that it gets an address of its own whatever the Boost resource does
// with zero. The Boost-side adaptors forward every request exactly as made.
//
// Equality (differs from identity, rule 8 of docs/contract.md): two adaptors of the same
// direction are equal when their upstreams are equal (the Boost-side ones
// whatever their template arguments), so memory taken through one may be
// freed through the other, and Boost containers over two bridges to one
// arena swap and move their buffers instead of copying.
//
// Thread safety: as the upstream's.
//
// A component of its own: this header is not included by <pmr/pmrkit.hpp>,
// and its code is in the library pmrkit_boost (CMake: the target
// pmrkit::boost, from find_package(pmrkit CONFIG REQUIRED COMPONENTS boost);
// pkg-config: pmrkit-boost; Conan: the component pmrkit::boost), which links
// Boost.Container. The core library pmrkit needs no Boost.
//
// Example:
//   pmrkit::chunked_arena_resource arena;
//   pmrkit::to_boost_resource boost_side(&arena);  // for Boost.Container's pmr containers
//   boost::container::pmr::memory_resource& as_boost = boost_side;
//   void* block = as_boost.allocate(64);
//   pmrkit::from_boost_resource std_side(&boost_side);  // and back: std::pmr over Boost
//   std::pmr::vector<int> numbers({1, 2, 3}, &std_side);
//   assert(arena.owns(block) && arena.owns(numbers.data()));
//   assert(std_side == pmrkit::from_boost_resource(&boost_side));  // equal upstreams
#pragma once

#include <pmr/arena/arena_resource.hpp>
#include <pmr/core/align.hpp>

#include <boost/container/pmr/memory_resource.hpp>

#include <concepts>
#include <cstddef>
#include <memory_resource>
#include <string_view>
#include <type_traits>

namespace pmrkit {

namespace detail {

/// What the Boost-side adaptors share, so that they compare by their
/// upstreams whatever their template arguments.
class to_boost_resource_base : public boost::container::pmr::memory_resource {
 public:
  to_boost_resource_base(const to_boost_resource_base&) = delete;
  to_boost_resource_base& operator=(const to_boost_resource_base&) = delete;

 protected:
  /// Checks `upstream` through require_upstream: throws
  /// std::invalid_argument ("<class_name>: upstream must not be null") when
  /// it is null.
  to_boost_resource_base(std::pmr::memory_resource* upstream, std::string_view class_name);
  ~to_boost_resource_base() override = default;

 private:
  [[nodiscard]] bool do_is_equal(
      const boost::container::pmr::memory_resource& other) const noexcept final;

  std::pmr::memory_resource* upstream_;
};

}  // namespace detail

/// A boost::container::pmr::memory_resource that forwards to `Upstream`, a
/// std::pmr::memory_resource (any, with the default).
template <class Upstream = std::pmr::memory_resource>
requires std::derived_from<Upstream, std::pmr::memory_resource>
class to_boost_resource final : public detail::to_boost_resource_base {
 public:
  /// Throws std::invalid_argument ("pmrkit::to_boost_resource: upstream must
  /// not be null") when `upstream` is null.
  explicit to_boost_resource(Upstream* upstream)
      : to_boost_resource_base(upstream, "pmrkit::to_boost_resource"), upstream_(upstream) {}

  [[nodiscard]] Upstream* upstream_resource() const noexcept { return upstream_; }
  [[nodiscard]] std::string_view name() const noexcept { return "to_boost_resource"; }

 private:
  // Throws what the upstream throws.
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    return upstream_->allocate(bytes, alignment);
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    upstream_->deallocate(p, bytes, alignment);
  }

  Upstream* upstream_;  // typed, so a final upstream's fast path is inlined here
};

/// A boost::container::pmr::memory_resource that takes its memory from
/// `Arena` and drops frees: the arena's reset() or release() takes
/// everything back. Boost.JSON skips destroying values stored there.
template <class Arena = arena_resource>
requires std::derived_from<Arena, arena_resource>
class to_boost_arena_resource final : public detail::to_boost_resource_base {
 public:
  /// Throws std::invalid_argument ("pmrkit::to_boost_arena_resource:
  /// upstream must not be null") when `arena` is null.
  explicit to_boost_arena_resource(Arena* arena)
      : to_boost_resource_base(arena, "pmrkit::to_boost_arena_resource"), arena_(arena) {}

  [[nodiscard]] Arena* upstream_resource() const noexcept { return arena_; }
  [[nodiscard]] std::string_view name() const noexcept { return "to_boost_arena_resource"; }

 private:
  // Throws what the arena throws.
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    return arena_->allocate(bytes, alignment);
  }
  void do_deallocate(void*, std::size_t, std::size_t) override {}

  Arena* arena_;
};

/// A std::pmr::memory_resource that forwards to a boost::container::pmr::memory_resource.
class from_boost_resource final : public std::pmr::memory_resource {
 public:
  /// The alignment every Boost resource honours; larger ones are served by
  /// over-allocating (see the opening comment).
  static constexpr std::size_t max_align = boost::container::pmr::memory_resource::max_align;

  /// Throws std::invalid_argument ("pmrkit::from_boost_resource: upstream
  /// must not be null") when `upstream` is null.
  explicit from_boost_resource(boost::container::pmr::memory_resource* upstream);
  from_boost_resource(const from_boost_resource&) = delete;
  from_boost_resource& operator=(const from_boost_resource&) = delete;

  [[nodiscard]] boost::container::pmr::memory_resource* upstream_resource() const noexcept {
    return upstream_;
  }
  [[nodiscard]] std::string_view name() const noexcept { return "from_boost_resource"; }

 private:
  // Throws allocation_error: bad_alignment, size_overflow (over-aligned
  // requests), upstream_failed, or the upstream's own allocation_error.
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    if (alignment <= max_align && is_power_of_two(alignment)) [[likely]] {
      try {
        return upstream_->allocate(at_least_one(bytes), alignment);
      } catch (...) {
        rethrow_failure(bytes, alignment);
      }
    }
    return allocate_over_aligned(bytes, alignment);
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    if (alignment <= max_align) [[likely]] {
      upstream_->deallocate(p, at_least_one(bytes), alignment);
    } else {
      deallocate_over_aligned(p, bytes, alignment);
    }
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override;

  // Some Boost resources (monotonic_buffer_resource) answer a zero-byte
  // request with the address of the next block.
  static constexpr std::size_t at_least_one(std::size_t bytes) noexcept {
    return bytes + static_cast<std::size_t>(bytes == 0);
  }
  [[noreturn]] void rethrow_failure(std::size_t bytes, std::size_t alignment) const;
  void* allocate_over_aligned(std::size_t bytes, std::size_t alignment);
  void deallocate_over_aligned(void* p, std::size_t bytes, std::size_t alignment) noexcept;

  boost::container::pmr::memory_resource* upstream_;
};

static_assert(std::is_base_of_v<boost::container::pmr::memory_resource, to_boost_resource<>>);
static_assert(std::is_base_of_v<boost::container::pmr::memory_resource, to_boost_arena_resource<>>);
static_assert(std::is_base_of_v<std::pmr::memory_resource, from_boost_resource>);

}  // namespace pmrkit

// Boost.JSON's trait, declared as Boost.JSON 1.81 declares it (so this header
// needs none of Boost.JSON): deallocating through a to_boost_arena_resource
// does nothing.
namespace boost::json {
template <class T>
struct is_deallocate_trivial;

template <class Arena>
struct is_deallocate_trivial<pmrkit::to_boost_arena_resource<Arena>> {
  static constexpr bool value = true;
};
}  // namespace boost::json
