// Contract violations: misuse of a resource that is reported, not absorbed.
//
// Freeing a pointer a resource never handed out, freeing it twice, passing a
// size or alignment to `deallocate` that differs from the allocation, popping
// a stack out of LIFO order or rewinding to a stale checkpoint are bugs in the
// caller. In checked builds (`PMRKIT_CHECKED`) resources describe such a bug
// as a `violation` and pass it to the process-wide violation handler;
// `test_resource`, whose job is checking, reports its misuse and leaks this
// way in every build. This handler is the one way misuse is reported: no
// resource aborts on its own. The default handler prints one line to stderr
// and aborts; tests install one that records (see
// <pmr/testing/violation_recorder.hpp>). When a handler returns, the
// resource ignores the offending call and stays usable.
//
// Thread safety: the handler is stored atomically; `report_violation` may be
// called from any thread, and the handler must be safe to call concurrently.
//
// Example:
//   pmrkit::violation_handler previous = pmrkit::set_violation_handler(
//       [](const pmrkit::violation& v) { std::clog << pmrkit::describe(v) << '\n'; });
//   pmrkit::report_violation({pmrkit::violation_kind::double_free, "nodes", nullptr, 32, 8});
//   pmrkit::set_violation_handler(previous);
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace pmrkit {

/// What kind of misuse was detected.
enum class violation_kind : unsigned char {
  foreign_pointer,     ///< the pointer was never handed out by this resource
  double_free,         ///< the block was already deallocated
  size_mismatch,       ///< deallocate's size differs from the allocation's
  alignment_mismatch,  ///< deallocate's alignment differs from the allocation's
  out_of_order,        ///< a LIFO resource was freed out of order
  stale_checkpoint,    ///< a checkpoint no longer valid was used to rewind
  buffer_overrun,      ///< bytes after the block were written (guard bytes)
  buffer_underrun,     ///< bytes before the block were written (guard bytes)
  leak,                ///< blocks were still in use when they should not be
};

/// The lower-case name of `kind`, e.g. "double free".
[[nodiscard]] std::string_view to_string(violation_kind kind) noexcept;

/// One detected misuse. `resource_name` refers to the reporting resource's
/// name and is valid only during the handler call.
struct violation {
  violation_kind kind{};
  std::string_view resource_name;
  const void* pointer = nullptr;  ///< the block concerned
  std::size_t size = 0;           ///< the size the caller passed (bytes leaked for `leak`)
  std::size_t alignment = 0;      ///< the alignment the caller passed
  std::size_t expected_size = 0;  ///< for mismatches: what the allocation had
  std::size_t expected_alignment = 0;
};

/// One line describing `v`, without a trailing newline, e.g.
/// "pmrkit: 'nodes' size mismatch: pointer 0x1234, size 32 (allocated 48), alignment 8".
[[nodiscard]] std::string describe(const violation& v);

using violation_handler = void (*)(const violation&);

/// Prints `describe(v)` to stderr and aborts.
[[noreturn]] void default_violation_handler(const violation& v) noexcept;

/// Installs `handler` (nullptr restores the default) and returns the previous one.
violation_handler set_violation_handler(violation_handler handler) noexcept;

/// The handler now installed.
[[nodiscard]] violation_handler get_violation_handler() noexcept;

/// Passes `v` to the installed handler. Cold path, out of line.
void report_violation(const violation& v);

}  // namespace pmrkit
