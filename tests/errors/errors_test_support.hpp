// Shared checks of the errors_test rows (docs/errors.md).
#pragma once

#include <pmr/core/error.hpp>
#include <pmr/core/poison.hpp>  // PMRKIT_HAS_ASAN

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

// What the all-resource rows allocate from: std::pmr::new_delete_resource(). Under
// AddressSanitizer, whose operator new aborts ("out of memory") instead of throwing
// std::bad_alloc when it cannot serve a request, a resource in front of it that throws
// std::bad_alloc itself for requests past 1 TiB, as new_delete_resource() does elsewhere.
inline std::pmr::memory_resource* heap() {
#if PMRKIT_HAS_ASAN
  struct refusing_huge final : std::pmr::memory_resource {
    void* do_allocate(std::size_t bytes, std::size_t alignment) override {
      if (bytes > (std::size_t{1} << 40)) throw std::bad_alloc();
      return std::pmr::new_delete_resource()->allocate(bytes, alignment);
    }
    void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
      std::pmr::new_delete_resource()->deallocate(p, bytes, alignment);
    }
    [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
      return this == &other;
    }
  };
  static refusing_huge resource;
  return &resource;
#else
  return std::pmr::new_delete_resource();
#endif
}

// The resource still serves and takes back a block.
inline void expect_usable(std::pmr::memory_resource& r) {
  void* p = nullptr;
  EXPECT_NO_THROW(p = r.allocate(24, 8));
  if (p != nullptr) r.deallocate(p, 24, 8);
}

}  // namespace errors_test
