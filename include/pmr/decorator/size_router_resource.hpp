// size_router_resource: small requests to one resource, the rest to another.
//
// A request of at most `threshold` bytes, aligned at most `max_small_alignment`,
// goes to `small`; every other request goes to `large`. Deallocation follows
// the same rule on the size and alignment it is given, which are those of the
// allocation (the std::pmr contract), so a block always goes back where it
// came from without any lookup.
//
// Choose it to give small objects a pool and send the rare large buffer
// elsewhere (the default resource, an arena, a budget), or to keep large
// buffers out of a pool's chunks. It owns no memory and keeps no figures:
// wrap either side in a statistics_resource to count it.
//
// Constructed with `small` first, then as every decorator: `r(small)`,
// `r(small, large)`, `r(small, options)`, `r(small, options, large)`,
// `r(small, {})` or `r(small, {}, large)`; `large` defaults to the default
// resource. It keeps no figures, so it has no `threading` option.
//
// Thread safety: as its two resources'; it keeps no state of its own.
//
// Example:
//   pmrkit::pool_resource nodes({.block_size = 64});
//   pmrkit::size_router_resource router(&nodes, {.threshold = 64},
//                                       std::pmr::new_delete_resource());
//   {
//     std::pmr::list<int> values({1, 2, 3}, &router);  // nodes of at most 64 bytes: the pool
//     std::pmr::vector<char> buffer(4096, &router);   // large: new_delete_resource
//     assert(nodes.stats().blocks_in_use == 3);
//   }
//   assert(nodes.stats().blocks_in_use == 0);
#pragma once

#include <pmr/core/align.hpp>
#include <pmr/core/upstream.hpp>

#include <concepts>
#include <cstddef>
#include <memory_resource>
#include <string>
#include <string_view>
#include <type_traits>

namespace pmrkit {

struct size_router_options {
  std::size_t threshold = 256;  ///< the largest request `small` serves, in bytes (not 0)
  /// The largest alignment `small` serves (a power of two).
  std::size_t max_small_alignment = alignof(std::max_align_t);
  std::string_view name = "size_router";  ///< shown in errors (copied)
};

class size_router_resource final : public std::pmr::memory_resource {
 public:
  /// Throws std::invalid_argument naming the field when threshold is 0 or
  /// max_small_alignment is not a power of two, and naming the resource when
  /// `small` or `large` is null.
  explicit size_router_resource(
      std::pmr::memory_resource* small, size_router_options options = {},
      std::pmr::memory_resource* large = std::pmr::get_default_resource());
  /// The default options, `small` and `large` (a template, so that `{}` never
  /// reads as a null resource).
  template <std::convertible_to<std::pmr::memory_resource*> Large>
  explicit size_router_resource(std::pmr::memory_resource* small, Large large)
      : size_router_resource(small, size_router_options{}, large) {}
  size_router_resource(const size_router_resource&) = delete;
  size_router_resource& operator=(const size_router_resource&) = delete;
  ~size_router_resource() override = default;

  // Observers.

  /// Whether a request (or a deallocation) of `bytes` at `alignment` goes to `small`.
  [[nodiscard]] bool is_small(std::size_t bytes, std::size_t alignment) const noexcept {
    return bytes <= threshold_ && alignment <= max_small_alignment_;
  }
  [[nodiscard]] std::size_t threshold() const noexcept { return threshold_; }
  [[nodiscard]] std::size_t max_small_alignment() const noexcept { return max_small_alignment_; }
  [[nodiscard]] std::pmr::memory_resource* small_resource() const noexcept { return small_; }
  [[nodiscard]] std::pmr::memory_resource* large_resource() const noexcept { return large_; }
  [[nodiscard]] std::string_view name() const noexcept { return name_; }

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    check_request(bytes, alignment, name_);
    try {
      return (is_small(bytes, alignment) ? small_ : large_)->allocate(bytes, alignment);
    } catch (...) {
      rethrow_upstream_failure(name_, bytes, alignment);
    }
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    (is_small(bytes, alignment) ? small_ : large_)->deallocate(p, bytes, alignment);
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  std::size_t threshold_;
  std::size_t max_small_alignment_;
  std::pmr::memory_resource* small_;
  std::pmr::memory_resource* large_;
  std::string name_;
};

static_assert(std::is_base_of_v<std::pmr::memory_resource, size_router_resource>);

}  // namespace pmrkit
