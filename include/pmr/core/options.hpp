// Checking a resource's options: the one place that turns a bad option into
// `std::invalid_argument`.
//
// Every options struct in pmrkit follows one rule: it is named after its
// class with the `_resource` suffix replaced by `_options`
// (`chunked_arena_resource` takes `chunked_arena_options`, `pool_resource`
// takes `pool_options`, `test_resource` takes `test_options`), its fields
// come in the order sizes and limits, then policies, then flags, and `name`
// comes last in every options struct that has a resource behind it. A field
// that breaks its rule is reported here with one message shape,
// "pmrkit::<class>: <field> <rule>", so a user reads which class, which field
// and what it must be.
//
// Thread safety: pure functions.
//
// Example:
//   try {
//     pmrkit::require_option(false, "pool_resource", "block_size", "must not be 0");
//   } catch (const std::invalid_argument& e) {
//     assert(std::string(e.what()) == "pmrkit::pool_resource: block_size must not be 0");
//   }
#pragma once

#include <string_view>

namespace pmrkit {

/// Throws std::invalid_argument("pmrkit::<class_name>: <field> <rule>").
/// `class_name` is given without the namespace.
[[noreturn]] void throw_invalid_option(std::string_view class_name, std::string_view field,
                                       std::string_view rule);

/// Throws as throw_invalid_option when `holds` is false.
inline void require_option(bool holds, std::string_view class_name, std::string_view field,
                           std::string_view rule) {
  if (!holds) throw_invalid_option(class_name, field, rule);
}

}  // namespace pmrkit
