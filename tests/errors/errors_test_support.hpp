// Shared checks of the errors_test rows (docs/errors.md).
#pragma once

#include <pmr/core/error.hpp>

#include <gtest/gtest.h>

#include <memory_resource>
#include <stdexcept>
#include <string>
#include <string_view>

namespace errors_test {

// `value` hidden from the optimiser, so that GCC does not reject a huge constant size passed to
// allocate (-Walloc-size-larger-than) that the test passes on purpose.
inline std::size_t opaque(std::size_t value) {
  volatile std::size_t hidden = value;
  return hidden;
}

// `body` throws std::invalid_argument whose what() contains `text` (the class and the field:
// "pmrkit::pool_resource: block_size").
template <class Body>
void expect_invalid_argument(Body&& body, std::string_view text) {
  try {
    body();
    ADD_FAILURE() << "no std::invalid_argument; expected one saying '" << text << "'";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos)
        << "what(): " << e.what() << "\nshould contain: " << text;
  }
}

// `body` throws pmrkit::allocation_error (never a plain std::bad_alloc) with `reason`.
template <class Body>
void expect_allocation_error(Body&& body, pmrkit::failure_reason reason) {
  try {
    body();
    ADD_FAILURE() << "no allocation_error; expected " << pmrkit::to_string(reason);
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), reason) << "what(): " << e.what();
  } catch (const std::bad_alloc& e) {
    ADD_FAILURE() << "a std::bad_alloc that is no pmrkit::allocation_error: " << e.what();
  }
}

// The resource still serves and takes back a block.
inline void expect_usable(std::pmr::memory_resource& r) {
  void* p = nullptr;
  EXPECT_NO_THROW(p = r.allocate(24, 8));
  if (p != nullptr) r.deallocate(p, 24, 8);
}

}  // namespace errors_test
