// What the CUDA page sources' tests share: skipping where there is no GPU,
// saying why, and the ASan option the CUDA driver needs. Include it in exactly
// one .cpp of a test executable (it defines __asan_default_options).
#pragma once

#include <pmr/region/cuda_device.hpp>

#include <gtest/gtest.h>

#include <string>

namespace cuda_test {

/// The message of every skipped device test: "no CUDA device: <the runtime's reason>".
inline std::string no_device_message() {
  return "no CUDA device: " + pmrkit::cuda_unavailable_reason();
}

inline bool have_device() {
  return pmrkit::cuda_device_count() > 0;
}

}  // namespace cuda_test

/// Skips the running test (from the test body, SetUp, or a function they call)
/// when the CUDA runtime has no device.
#define CUDA_TEST_REQUIRE_DEVICE()                    \
  do {                                                \
    if (!cuda_test::have_device()) {                  \
      GTEST_SKIP() << cuda_test::no_device_message(); \
    }                                                 \
  } while (false)

// The CUDA driver maps memory in the range ASan protects as its shadow gap;
// with a GPU, cudaHostAlloc and cudaHostRegister fail under ASan unless it is
// left unprotected. ASAN_OPTIONS from the environment still override it.
namespace cuda_test {

/// CUDA_TEST_REQUIRE_DEVICE() for functions that return a value (a
/// conformance traits' make(), called from the fixture's SetUp): the test is
/// marked skipped and its body does not run.
inline void skip_without_device() {
  CUDA_TEST_REQUIRE_DEVICE();
}

}  // namespace cuda_test

#if defined(__SANITIZE_ADDRESS__)
#define CUDA_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CUDA_TEST_ASAN 1
#endif
#endif
#if defined(CUDA_TEST_ASAN)
extern "C" const char* __asan_default_options() {
  return "protect_shadow_gap=0";
}
#endif
