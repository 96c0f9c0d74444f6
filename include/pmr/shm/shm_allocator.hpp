// shm_allocator: an allocator whose pointers are offset_ptrs, so that
// Boost.Container's containers can live inside a shared memory segment that
// every process maps at a different address.
//
// A container that lives in a segment is read by every process that maps it,
// each at its own address. std::pmr containers cannot do that: their
// polymorphic_allocator holds the memory_resource* of one process and their
// nodes hold raw pointers, so they are valid only where the segment is mapped
// at the same address (and, for the resource pointer, in the process that
// built them). shm_allocator<T> fixes both. Its `pointer` is offset_ptr<T>
// (and const_pointer, void_pointer, const_void_pointer are offset_ptrs), so
// a container that accepts fancy pointers (Boost.Container's vector, deque,
// list, map, set, flat_map, string, ...) stores offsets, valid at any
// address (deque and basic_string initialise pointers from a literal 0,
// which offset_ptr must accept unambiguously for them to compile). And the
// allocator itself, which the container keeps inside itself and so inside
// the segment, holds no process-local pointer: only an offset_ptr to the
// segment's first byte. Each allocate and deallocate finds this process's
// resource over that mapping with shm_resource::from_base (a thread
// remembers its last answer: two loads and a compare when it is the same
// segment as the last call).
//
//   using shm_vector = boost::container::vector<int, pmrkit::shm_allocator<int>>;
//   auto& v = shm.find_or_construct<shm_vector>("v", shm);  // in any process
//   v.push_back(42);
//
// Choose it for containers that several processes share by name. The price
// is offset arithmetic on every pointer access (an add on each load and a
// subtract on each store) and a lookup of the resource on each allocation:
// for a container that one process alone uses, a std::pmr container over
// the shm_resource is faster (about 2x in bench/README.md's shm_map_insert,
// where this one is 3.8x faster than Boost.Interprocess's map). The
// elements must themselves be position independent: plain data,
// offset_ptrs, or containers with a shm_allocator (nest them with
// boost::container::scoped_allocator_adaptor so that the inner containers
// get the outer one's segment).
//
// Equality: two shm_allocators are equal when they refer to the same mapping
// of the same segment (the same base address in this process), whatever
// their value types: either frees what the other allocated. A process that
// maps one segment twice sees the allocators reached through the two
// mappings as unequal. The propagate_on_container_* traits are all false, as
// polymorphic_allocator's: a container's memory stays in the container's
// segment, so a move assignment between containers of different segments
// moves the elements, never the buffer. As with any unequal allocators, swap
// only containers of the same segment. is_always_equal is false.
//
// Errors: an allocation with no shm_resource of this process over the
// segment's mapping throws shm_error (code not_found, the message names the
// address); a count whose bytes overflow std::size_t throws allocation_error
// (size_overflow); the resource throws its own errors (out_of_capacity, ...).
// deallocate does not throw: without a resource it reports a
// foreign_pointer violation (<pmr/core/violation.hpp>; the default handler
// aborts) and leaves the block allocated if the handler returns.
//
// Thread safety: as the shm_resource: any thread of any process may allocate
// and deallocate through copies of one allocator at once. The containers
// built on it are not thread-safe (guard a shared container with a
// process-shared lock in the segment).
//
// Example:
//   pmrkit::shm_resource shm({.segment_size = 1 << 20});
//   // What a container does: allocate through allocator_traits, keep offset_ptrs.
//   using traits = std::allocator_traits<pmrkit::shm_allocator<long>>;
//   pmrkit::shm_allocator<long> longs(shm);  // implicit from the resource
//   pmrkit::offset_ptr<long> block = traits::allocate(longs, 8);
//   for (int i = 0; i < 8; ++i) traits::construct(longs, std::to_address(block + i), i);
//   assert(shm.segment().contains(block.get()) && block[7] == 7);
//   // The allocator lives in the segment too: it finds this process's resource by itself.
//   struct record {
//     pmrkit::shm_allocator<long> allocator;
//     pmrkit::offset_ptr<long> values;
//   };
//   auto& stored = shm.construct<record>("record", record{longs, block});
//   assert(stored.allocator == longs && &stored.allocator.resource() == &shm);
//   pmrkit::shm_allocator<char> chars = stored.allocator;  // rebound: still equal
//   assert(chars == longs);
//   stored.allocator.deallocate(stored.values, 8);
//   assert(shm.destroy<record>("record"));
//   shm.flush_thread_cache();
//   assert(shm.stats().bytes_in_use == 0);
#pragma once

#include <pmr/core/error.hpp>
#include <pmr/core/violation.hpp>
#include <pmr/shm/offset_ptr.hpp>
#include <pmr/shm/shm_error.hpp>
#include <pmr/shm/shm_resource.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <type_traits>

namespace pmrkit {

namespace detail {
/// Thrown by shm_allocator when no shm_resource of this process maps the segment at `base`.
[[noreturn, gnu::cold, gnu::noinline]] inline void throw_no_shm_resource(const void* base) {
  char address[2 + 2 * sizeof(void*) + 1] = {};
  std::snprintf(address, sizeof address, "%p", base);
  throw shm_error(shm_errc::not_found,
                  std::string("pmrkit::shm_allocator: no shm_resource of this process maps the "
                              "segment at ") +
                      address + " (construct one over the segment before using its containers)");
}
}  // namespace detail

/// An allocator of Ts in a shared memory segment, with offset_ptr pointers;
/// it holds only where the segment starts (as an offset), so it may be stored
/// inside the segment.
template <class T>
class shm_allocator {
 public:
  using value_type = T;
  using pointer = offset_ptr<T>;
  using const_pointer = offset_ptr<const T>;
  using void_pointer = offset_ptr<void>;
  using const_void_pointer = offset_ptr<const void>;
  using size_type = std::size_t;
  using difference_type = std::ptrdiff_t;
  // A container's memory stays in its own segment (see the opening comment).
  using propagate_on_container_copy_assignment = std::false_type;
  using propagate_on_container_move_assignment = std::false_type;
  using propagate_on_container_swap = std::false_type;
  using is_always_equal = std::false_type;
  template <class U>
  struct rebind {
    using other = shm_allocator<U>;
  };

  /// Allocates in `resource`'s segment (implicit, so a container takes the
  /// resource where it takes an allocator). Only the mapping's base is kept:
  /// each call finds this process's resource over it (the newest, if several).
  shm_allocator(const shm_resource& resource) noexcept : base_(resource.base()) {}
  /// The offset is recomputed for the copy's own address.
  shm_allocator(const shm_allocator& other) noexcept : base_(other.base_) {}
  /// Rebinding: the same segment.
  template <class U>
  requires(!std::is_same_v<U, T>) shm_allocator(const shm_allocator<U>& other)
  noexcept : base_(other.segment_base()) {}
  shm_allocator& operator=(const shm_allocator& other) noexcept {
    base_ = other.base_;
    return *this;
  }
  ~shm_allocator() = default;

  /// `n` uninitialised Ts, aligned for T.
  [[nodiscard]] pointer allocate(size_type n) {
    if (n > max_size()) [[unlikely]] {
      throw allocation_error(failure_reason::size_overflow, n, alignof(T), "shm_allocator",
                             "the element count times sizeof(T) overflows std::size_t");
    }
    return pointer(static_cast<T*>(resource().allocate(n * sizeof(T), alignof(T))));
  }
  /// Returns `p`, from allocate(n) of an equal allocator.
  void deallocate(pointer p, size_type n) noexcept {
    shm_resource* const found = shm_resource::from_base(base_.get());
    if (found == nullptr) [[unlikely]] {
      report_violation({violation_kind::foreign_pointer,
                        "shm_allocator (no shm_resource of this "
                        "process maps its segment)",
                        p.get(), n * sizeof(T), alignof(T)});
      return;
    }
    found->deallocate(p.get(), n * sizeof(T), alignof(T));
  }
  [[nodiscard]] size_type max_size() const noexcept { return SIZE_MAX / sizeof(T); }

  /// This process's resource over the segment; shm_error (not_found) if there is none.
  [[nodiscard]] shm_resource& resource() const {
    shm_resource* const found = shm_resource::from_base(base_.get());
    if (found == nullptr) [[unlikely]]
      detail::throw_no_shm_resource(base_.get());
    return *found;
  }
  /// Where this process maps the segment: what equality compares.
  [[nodiscard]] std::byte* segment_base() const noexcept { return base_.get(); }

 private:
  offset_ptr<std::byte> base_;
};

/// Equal when both refer to the same mapping of the same segment.
template <class T, class U>
[[nodiscard]] bool operator==(const shm_allocator<T>& a, const shm_allocator<U>& b) noexcept {
  return a.segment_base() == b.segment_base();
}

}  // namespace pmrkit
