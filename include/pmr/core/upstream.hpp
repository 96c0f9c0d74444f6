// Taking memory from an upstream resource under pmrkit's error contract.
//
// An upstream may be anything, `new_delete_resource()` or a user's own
// resource included, and may throw a plain `std::bad_alloc` or one of its own
// subclasses. `allocate_from_upstream` is the call a resource makes to take
// memory from its upstream: a pmrkit `allocation_error` (a `budget_exceeded`
// further up the chain, say) passes through unchanged; any other
// `std::bad_alloc` becomes an `allocation_error` with reason
// `upstream_failed` naming the resource and the caller's request, thrown as
// if by `std::throw_with_nested`: it is also a `std::nested_exception`
// holding the upstream's exception (`std::rethrow_if_nested` recovers its
// type), and its message ends with "; upstream: <the upstream's what()>".
// Other exceptions pass unchanged.
//
// A decorator on its fast path calls the upstream itself, inline, and hands
// a failure to `rethrow_upstream_failure` from its `catch (...)` handler:
// the same translation, out of line, so the path that succeeds is the
// upstream call alone.
//
// `require_upstream` is the null check a constructor taking an upstream
// makes: a null pointer throws `std::invalid_argument` naming the class and
// the parameter.
//
// pmrkit's resources take upstream memory through `allocate_from_upstream`,
// or, on a decorator's fast path, call the upstream inline and hand a failure
// to `rethrow_upstream_failure`; their constructors check the upstream with
// `require_upstream`. Two places translate on their own: `from_boost_resource`
// (its upstream is a Boost resource, whose failures may not be a
// `std::bad_alloc` at all), and `pressure_resource`'s re-arming of its
// reserve, which swallows the failure by design. The conformance suite checks
// the outcome for every resource: each failure an `allocation_error`, a null
// upstream refused.
//
// Thread safety: as the upstream's.
//
// Example:
//   try {
//     (void)pmrkit::allocate_from_upstream(std::pmr::null_memory_resource(), 64, 8, "pool");
//   } catch (const pmrkit::allocation_error& e) {
//     assert(e.reason() == pmrkit::failure_reason::upstream_failed);
//     try {
//       std::rethrow_if_nested(e);  // the null resource's own std::bad_alloc
//     } catch (const std::bad_alloc& original) {
//       assert(dynamic_cast<const pmrkit::allocation_error*>(&original) == nullptr);
//     }
//   }
//   std::pmr::memory_resource* upstream = std::pmr::null_memory_resource();
//   assert(pmrkit::require_upstream(upstream, "pmrkit::example") == upstream);
//   try {
//     try {
//       (void)upstream->allocate(64, 8);  // a plain std::bad_alloc
//     } catch (...) {
//       pmrkit::rethrow_upstream_failure("decorator", 64, 8);
//     }
//   } catch (const pmrkit::allocation_error& e) {
//     assert(e.reason() == pmrkit::failure_reason::upstream_failed);
//   }
#pragma once

#include <cstddef>
#include <memory_resource>
#include <string_view>

namespace pmrkit {

/// `upstream->allocate(bytes, alignment)`, with a std::bad_alloc that is not
/// an allocation_error turned into allocation_error{upstream_failed,
/// requested, requested_alignment, resource_name} (the figures of the
/// caller's request that needed the memory) with the upstream's exception
/// nested and its what() in the message.
[[nodiscard]] void* allocate_from_upstream(std::pmr::memory_resource* upstream, std::size_t bytes,
                                           std::size_t alignment, std::string_view resource_name,
                                           std::size_t requested, std::size_t requested_alignment);

/// As above, when the caller's request is what goes upstream.
[[nodiscard]] inline void* allocate_from_upstream(std::pmr::memory_resource* upstream,
                                                  std::size_t bytes, std::size_t alignment,
                                                  std::string_view resource_name) {
  return allocate_from_upstream(upstream, bytes, alignment, resource_name, bytes, alignment);
}

/// Called from a `catch (...)` handler around an upstream allocation: rethrows
/// the exception being handled, except that a std::bad_alloc which is not an
/// allocation_error becomes allocation_error{upstream_failed, requested,
/// alignment, resource_name}, nesting it and quoting its what(). Out of line
/// and cold.
[[noreturn]] void rethrow_upstream_failure(std::string_view resource_name, std::size_t requested,
                                           std::size_t alignment);

/// Throws std::invalid_argument("<class_name>: <parameter> must not be null").
[[noreturn]] void throw_null_upstream(std::string_view class_name, std::string_view parameter);

/// Returns `upstream` (any resource pointer: std::pmr, Boost, a concrete
/// type); throws std::invalid_argument ("<class_name>: <parameter> must not be
/// null") when it is null.
template <class Resource>
Resource* require_upstream(Resource* upstream, std::string_view class_name,
                           std::string_view parameter = "upstream") {
  if (upstream == nullptr) throw_null_upstream(class_name, parameter);
  return upstream;
}

}  // namespace pmrkit
