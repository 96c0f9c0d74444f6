// docs/errors.md, "CUDA page sources": each row's test, named after it. Built with the
// component pmrkit::cuda only; the no-device rows skip where a GPU is present (the path cannot be
// reached there), the others run everywhere.
#include <pmr/core/error.hpp>
#include <pmr/region/cuda_pinned_resource.hpp>
#include <pmr/region/cuda_registered_resource.hpp>
#include <pmr/region/page_resource.hpp>

#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "errors/errors_test_support.hpp"
#include "region/cuda_test_support.hpp"

namespace {

using errors_test::expect_allocation_error;
using pmrkit::failure_reason;

TEST(Cuda, RegisteredBadOptions) {
  pmrkit::page_resource pages;
  errors_test::expect_invalid_argument(
      [&] { pmrkit::cuda_registered_resource r({.touch_threads = 5000}, &pages); },
      "pmrkit::cuda_registered_resource: touch_threads");
  errors_test::expect_invalid_argument(
      [&] {
        std::pmr::memory_resource* none = nullptr;
        pmrkit::cuda_registered_resource r(none);
      },
      "cuda_registered_resource: upstream must not be null");
}

// Checked before CUDA is asked: the same with or without a device.
TEST(Cuda, BadAlignmentAndSizeOverflow) {
  pmrkit::cuda_pinned_resource pinned;
  pmrkit::page_resource pages;
  pmrkit::cuda_registered_resource registered(&pages);
  const std::size_t huge = errors_test::opaque(std::numeric_limits<std::size_t>::max() - 100);
  for (std::pmr::memory_resource* r : {static_cast<std::pmr::memory_resource*>(&pinned),
                                       static_cast<std::pmr::memory_resource*>(&registered)}) {
    expect_allocation_error([&] { (void)r->allocate(64, 3); }, failure_reason::bad_alignment);
    expect_allocation_error([&] { (void)r->allocate(huge, 8); }, failure_reason::size_overflow);
  }
}

// Without a device: upstream_failed quoting the CUDA call and the runtime's error name.
TEST(Cuda, PinnedWithoutDevice) {
  if (cuda_test::have_device()) {
    GTEST_SKIP() << "a CUDA device is present: the no-device path cannot be reached here";
  }
  pmrkit::cuda_pinned_resource pinned({.name = "no-gpu"});
  try {
    (void)pinned.allocate(4096, 4096);
    ADD_FAILURE() << "cudaHostAlloc succeeded without a device";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), failure_reason::upstream_failed);
    EXPECT_NE(std::string(e.what()).find("; cudaHostAlloc: cudaError"), std::string::npos)
        << e.what();
  }
}

TEST(Cuda, RegisteredWithoutDevice) {
  if (cuda_test::have_device()) {
    GTEST_SKIP() << "a CUDA device is present: the no-device path cannot be reached here";
  }
  pmrkit::page_resource pages;
  pmrkit::cuda_registered_resource registered({.name = "no-gpu"}, &pages);
  try {
    (void)registered.allocate(4096, 64);
    ADD_FAILURE() << "cudaHostRegister succeeded without a device";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), failure_reason::upstream_failed);
    EXPECT_NE(std::string(e.what()).find("; cudaHostRegister: cudaError"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(pages.stats().blocks_in_use, 0u) << "the upstream's block must go back";
}

}  // namespace
