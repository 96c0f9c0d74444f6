#include <pmr/interop/boost_bridge.hpp>

#include <pmr/core/config.hpp>
#include <pmr/core/error.hpp>
#include <pmr/core/upstream.hpp>
#include <pmr/core/violation.hpp>

#include <boost/container/throw_exception.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <stdexcept>

namespace pmrkit {

namespace detail {

to_boost_resource_base::to_boost_resource_base(std::pmr::memory_resource* upstream,
                                               std::string_view class_name)
    : upstream_(require_upstream(upstream, class_name)) {}

bool to_boost_resource_base::do_is_equal(
    const boost::container::pmr::memory_resource& other) const noexcept {
  const auto* bridge = dynamic_cast<const to_boost_resource_base*>(&other);
  return bridge != nullptr && *bridge->upstream_ == *upstream_;
}

}  // namespace detail

from_boost_resource::from_boost_resource(boost::container::pmr::memory_resource* upstream)
    : upstream_(require_upstream(upstream, "pmrkit::from_boost_resource")) {}

bool from_boost_resource::do_is_equal(const std::pmr::memory_resource& other) const noexcept {
  const auto* bridge = dynamic_cast<const from_boost_resource*>(&other);
  return bridge != nullptr && *bridge->upstream_ == *upstream_;
}

void from_boost_resource::rethrow_failure(std::size_t bytes, std::size_t alignment) const {
#if !defined(BOOST_CONTAINER_USE_STD_EXCEPTIONS)
  try {
    throw;
  } catch (const boost::container::bad_alloc& upstream_error) {
    // Boost.Container's own bad_alloc derives from std::exception only: nested
    // and quoted as rethrow_upstream_failure does for a std::bad_alloc.
    char detail[256];
    std::snprintf(detail, sizeof detail, "upstream: %s", upstream_error.what());
    std::throw_with_nested(
        allocation_error(failure_reason::upstream_failed, bytes, alignment, name(), detail));
  } catch (...) {
  }
#endif
  // An allocation_error passes unchanged; any other std::bad_alloc is nested.
  rethrow_upstream_failure(name(), bytes, alignment);
}

// Layout: [padding][the upstream's pointer][block at `alignment`], in one
// upstream block of `bytes + alignment` at max_align (a zero-byte block
// counts one byte, so that its address lies inside that upstream block, not
// at its end, where another block may start). The upstream's block starts at
// a multiple of max_align, so the first multiple of `alignment` with room for
// a pointer before it lies at most `alignment` bytes in.
void* from_boost_resource::allocate_over_aligned(std::size_t bytes, std::size_t alignment) {
  if (!is_power_of_two(alignment)) {
    throw_allocation_error(failure_reason::bad_alignment, bytes, alignment, name());
  }
  std::size_t total = 0;
  if (!checked_add(at_least_one(bytes), alignment, total)) {
    throw_allocation_error(failure_reason::size_overflow, bytes, alignment, name());
  }
  void* raw = nullptr;
  try {
    raw = upstream_->allocate(total, max_align);
  } catch (...) {
    rethrow_failure(bytes, alignment);
  }
  const auto address = reinterpret_cast<std::uintptr_t>(raw);
  if (address % alignof(void*) != 0) {  // below what every Boost resource promises
    upstream_->deallocate(raw, total, max_align);
    throw_allocation_error(failure_reason::bad_alignment, bytes, alignment, name());
  }
  const std::uintptr_t block = (address + sizeof(void*) + alignment - 1) & ~(alignment - 1);
  std::memcpy(reinterpret_cast<void*>(block - sizeof(void*)), &raw, sizeof raw);
  return reinterpret_cast<void*>(block);
}

void from_boost_resource::deallocate_over_aligned(void* p, std::size_t bytes,
                                                  std::size_t alignment) noexcept {
  if (!is_power_of_two(alignment)) {  // no allocation had it: nothing to read before `p`
#if PMRKIT_CHECKED
    report_violation({violation_kind::alignment_mismatch, name(), p, bytes, alignment});
#endif
    return;
  }
  void* raw = nullptr;
  std::memcpy(&raw, static_cast<std::byte*>(p) - sizeof(void*), sizeof raw);
  upstream_->deallocate(raw, at_least_one(bytes) + alignment, max_align);
}

}  // namespace pmrkit
