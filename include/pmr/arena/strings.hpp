// String helpers for arenas: copy or format text into a memory resource.
//
// Parsers and loggers that keep their text in an arena want a NUL-terminated
// copy in one call. `copy_string` copies a string_view, `copy_string_n` at
// most n characters of it, and `format_string` formats printf-style; each
// returns a view of the new text, whose block is size() + 1 bytes at
// alignment 1 (free it with `resource.deallocate(p, view.size() + 1, 1)`
// where the resource frees at all; an arena frees it on reset). They work on
// any std::pmr::memory_resource.
//
// Thread safety: as the resource's.
//
// Example:
//   pmrkit::chunked_arena_resource arena({.alignment = 1});
//   std::string_view key = pmrkit::copy_string(arena, "user.name");
//   std::string_view head = pmrkit::copy_string_n(arena, "abcdef", 3);
//   std::string_view line = pmrkit::format_string(arena, "%s=%d", key.data(), 42);
//   assert(head == "abc" && line == "user.name=42" && line.data()[line.size()] == '\0');
#pragma once

#include <pmr/core/attributes.hpp>

#include <cstddef>
#include <memory_resource>
#include <string_view>

namespace pmrkit {

/// A NUL-terminated copy of `text` in `resource`. Throws what allocate throws.
[[nodiscard]] std::string_view copy_string(std::pmr::memory_resource& resource,
                                           std::string_view text);

/// A NUL-terminated copy of at most `count` characters of `text`.
[[nodiscard]] std::string_view copy_string_n(std::pmr::memory_resource& resource,
                                             std::string_view text, std::size_t count);

/// printf-style formatting into `resource`, NUL-terminated. Throws
/// std::invalid_argument when `format` is malformed (vsnprintf fails), and
/// what allocate throws.
[[nodiscard]] std::string_view format_string(std::pmr::memory_resource& resource,
                                             const char* format, ...) PMRKIT_PRINTF_FORMAT(2, 3);

}  // namespace pmrkit
