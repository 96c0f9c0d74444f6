// pmrkit errors: the exceptions every pmrkit resource throws when a request
// cannot be served.
//
// Every resource reports failure by throwing `allocation_error`, never by
// returning null and never through undefined behaviour. It derives from
// `std::bad_alloc`, so containers and existing handlers keep working, and it
// carries why the request failed, the requested size and alignment and the
// name of the resource, all of which `what()` states in one line.
// `budget_exceeded` adds the limit and what remained of it.
//
// The exception objects hold their text in fixed buffers: constructing or
// copying one never allocates, which matters when memory is what ran out.
//
// When an upstream throws a `std::bad_alloc` of its own (not a pmrkit
// error), the resource throws `allocation_error` with reason
// `upstream_failed` as if by `std::throw_with_nested`: the exception is also
// a `std::nested_exception` holding the upstream's, so
// `std::rethrow_if_nested(e)` recovers its type, and the message ends with
// "; upstream: <its what()>". A pmrkit error thrown by an upstream (a
// `budget_exceeded` under a pool) reaches the caller unchanged.
//
// Thread safety: the classes are immutable values; `throw_allocation_error`
// may be called from any thread.
//
// Example:
//   pmrkit::test_resource resource("tenant-a", std::pmr::null_memory_resource());
//   try {
//     (void)resource.allocate(1024);
//   } catch (const pmrkit::allocation_error& e) {
//     assert(e.reason() == pmrkit::failure_reason::upstream_failed);
//     std::string line = e.what();  // "pmrkit: 'tenant-a' upstream failed: requested 1024 ..."
//   }
#pragma once

#include <cstddef>
#include <new>
#include <string_view>

namespace pmrkit {

/// Why an allocation failed.
enum class failure_reason : unsigned char {
  out_of_capacity,   ///< the resource (or the OS) has no room for the request
  budget_exceeded,   ///< a budget decorator refused the request
  bad_alignment,     ///< the alignment is not a power of two, or is unsupported
  size_overflow,     ///< rounding the size (plus bookkeeping) overflows std::size_t
  upstream_failed,   ///< the upstream threw a std::bad_alloc that is not pmrkit's (nested)
  injected_failure,  ///< a test_resource allocation limit was reached on purpose
};

/// The lower-case name of `reason`, e.g. "out of capacity".
[[nodiscard]] std::string_view to_string(failure_reason reason) noexcept;

/// The exception every pmrkit resource throws when it cannot allocate.
class allocation_error : public std::bad_alloc {
 public:
  /// Builds the error; `resource_name` is copied (truncated to 63 characters).
  allocation_error(failure_reason reason, std::size_t requested, std::size_t alignment,
                   std::string_view resource_name) noexcept;
  /// As above, with `detail` appended to the message after "; " (the message
  /// is truncated to its fixed capacity, 383 characters).
  allocation_error(failure_reason reason, std::size_t requested, std::size_t alignment,
                   std::string_view resource_name, std::string_view detail) noexcept;

  [[nodiscard]] failure_reason reason() const noexcept { return reason_; }
  [[nodiscard]] std::size_t requested() const noexcept { return requested_; }
  [[nodiscard]] std::size_t alignment() const noexcept { return alignment_; }
  [[nodiscard]] std::string_view resource_name() const noexcept { return name_; }

  /// One line: "pmrkit: '<name>' <reason>: requested <n> bytes, alignment <a>",
  /// followed by "; <detail>" when there is one.
  [[nodiscard]] const char* what() const noexcept override { return message_; }

 private:
  static constexpr std::size_t name_capacity = 64;
  static constexpr std::size_t message_capacity = 384;

  failure_reason reason_;
  std::size_t requested_;
  std::size_t alignment_;
  char name_[name_capacity];
  char message_[message_capacity];
};

/// Thrown by budget decorators: the request would take use past the limit.
class budget_exceeded : public allocation_error {
 public:
  budget_exceeded(std::size_t requested, std::size_t alignment, std::string_view resource_name,
                  std::size_t limit, std::size_t remaining) noexcept;

  /// The budget's limit in bytes at the time of the request.
  [[nodiscard]] std::size_t limit() const noexcept { return limit_; }
  /// What was left of the budget when the request was refused.
  [[nodiscard]] std::size_t remaining() const noexcept { return remaining_; }

 private:
  std::size_t limit_;
  std::size_t remaining_;
};

/// Throws `allocation_error{reason, requested, alignment, resource_name}`.
/// Out of line and cold, so the fast paths that call it stay small.
[[noreturn]] void throw_allocation_error(failure_reason reason, std::size_t requested,
                                         std::size_t alignment, std::string_view resource_name);

}  // namespace pmrkit
