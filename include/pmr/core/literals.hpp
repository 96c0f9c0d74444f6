// Size literals: `64_KiB`, `256_MiB`, `4_GiB`, as std::size_t byte counts.
//
// A literal whose value does not fit std::size_t does not compile.
//
// Thread safety: compile-time constants.
//
// Example:
//   using namespace pmrkit::literals;
//   static_assert(64_KiB == 65536);
//   std::vector<std::byte> buffer(2_MiB);
#pragma once

#include <cstddef>
#include <limits>

namespace pmrkit::literals {

namespace detail {
consteval std::size_t scale(unsigned long long value, unsigned shift) {
  if (value > (std::numeric_limits<std::size_t>::max() >> shift)) {
    throw "pmrkit: size literal overflows std::size_t";  // a compile error in consteval
  }
  return static_cast<std::size_t>(value) << shift;
}
}  // namespace detail

consteval std::size_t operator""_KiB(unsigned long long value) {
  return detail::scale(value, 10);
}
consteval std::size_t operator""_MiB(unsigned long long value) {
  return detail::scale(value, 20);
}
consteval std::size_t operator""_GiB(unsigned long long value) {
  return detail::scale(value, 30);
}

}  // namespace pmrkit::literals
