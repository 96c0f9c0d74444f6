// cuda_pinned_resource: construction, properties, bad requests and the
// no-device path run everywhere; the conformance suite, host and device
// access and the misuse reports need a GPU and skip without one, saying why.
#include <pmr/core/config.hpp>
#include <pmr/core/error.hpp>
#include <pmr/pool/pool_resource.hpp>
#include <pmr/region/cuda_pinned_resource.hpp>
#include <pmr/testing/violation_recorder.hpp>

#include "conformance/conformance.hpp"
#include "cuda_test_support.hpp"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <type_traits>
#include <typeinfo>
#include <vector>

#include <unistd.h>

using pmrkit::cuda_pinned_resource;

namespace {

struct pinned_traits {
  using resource_type = cuda_pinned_resource;
  static constexpr std::string_view name = "pmrkit::cuda_pinned_resource";
  // No upstream: the CUDA runtime is where its memory comes from.
  static constexpr pmrkit::conformance::capabilities caps{.survives_upstream_failures = false};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource*) {
    cuda_test::skip_without_device();  // marks the test skipped: its body does not run
    return std::make_unique<resource_type>(pmrkit::cuda_pinned_options{});
  }
  static void release(resource_type& r) { r.release(); }
};

}  // namespace

using pinned_types = ::testing::Types<pinned_traits>;
INSTANTIATE_TYPED_TEST_SUITE_P(cuda, resource_conformance, pinned_types,
                               pmrkit::conformance::traits_names);

namespace {

constexpr std::size_t kib = std::size_t{1} << 10;
constexpr std::size_t mib = std::size_t{1} << 20;

static_assert(pmrkit::has_property<cuda_pinned_resource, pmrkit::property::host_accessible>);
static_assert(pmrkit::has_property<cuda_pinned_resource, pmrkit::property::device_accessible>);
static_assert(pmrkit::has_property<cuda_pinned_resource, pmrkit::property::locked>);
static_assert(std::is_base_of_v<pmrkit::page_source, cuda_pinned_resource>);
static_assert(std::is_final_v<cuda_pinned_resource>);
static_assert(!std::is_copy_constructible_v<cuda_pinned_resource>);
static_assert(!std::is_move_constructible_v<cuda_pinned_resource>);
static_assert(!std::is_constructible_v<cuda_pinned_resource, std::pmr::memory_resource*>,
              "a root: it takes no upstream");

TEST(cuda_pinned_resource, ConstructedTheWaysOfARoot) {
  cuda_pinned_resource a;
  cuda_pinned_resource b({});
  cuda_pinned_resource c(
      {.portable = false, .mapped = false, .write_combined = true, .name = "staging"});
  EXPECT_EQ(a.name(), "cuda_pinned");
  EXPECT_EQ(b.name(), "cuda_pinned");
  EXPECT_EQ(c.name(), "staging");
  EXPECT_TRUE(a.options().portable && a.options().mapped && !a.options().write_combined);
  EXPECT_TRUE(!c.options().portable && !c.options().mapped && c.options().write_combined);
  EXPECT_EQ(c.options().name.data(), c.name().data()) << "options().name is the resource's copy";
  EXPECT_EQ(a.granule(), static_cast<std::size_t>(sysconf(_SC_PAGESIZE)));
  EXPECT_EQ(a.stats().blocks_in_use, 0U);
  EXPECT_EQ(a.stats().bytes_pinned, 0U);
  EXPECT_TRUE(a.is_equal(a));
  EXPECT_FALSE(a.is_equal(b));
}

TEST(cuda_pinned_resource, NameIsCopied) {
  std::string name = "temporary name";
  cuda_pinned_resource r({.name = name});
  name.assign(name.size(), 'x');
  EXPECT_EQ(r.name(), "temporary name");
}

TEST(cuda_pinned_resource, SaysWhatItsMemoryIs) {
  cuda_pinned_resource r;
  const pmrkit::page_properties p = r.properties();
  EXPECT_TRUE(p.host_accessible);
  EXPECT_TRUE(p.device_accessible);
  EXPECT_TRUE(p.locked);
  EXPECT_FALSE(p.huge_pages);
  EXPECT_EQ(r.backing(), "cuda pinned");
  const std::pmr::memory_resource* any = &r;
  const std::optional<pmrkit::page_properties> found = pmrkit::page_properties_of(any);
  ASSERT_TRUE(found.has_value());
  EXPECT_TRUE(found->device_accessible && found->locked);
}

TEST(cuda_pinned_resource, BadAlignmentIsAnAllocationErrorAndAsksNothingOfCuda) {
  cuda_pinned_resource r({.name = "aligned"});
  for (const std::size_t alignment : {std::size_t{0}, std::size_t{3}, std::size_t{48}}) {
    try {
      (void)r.allocate(64, alignment);
      ADD_FAILURE() << "alignment " << alignment << " was accepted";
    } catch (const pmrkit::allocation_error& e) {
      EXPECT_EQ(e.reason(), pmrkit::failure_reason::bad_alignment);
      EXPECT_EQ(e.alignment(), alignment);
      EXPECT_EQ(e.resource_name(), "aligned");
    }
  }
  EXPECT_EQ(r.stats().cuda_failures, 0U) << "refused before asking the CUDA runtime";
}

TEST(cuda_pinned_resource, SizeOverflowIsAnAllocationError) {
  cuda_pinned_resource r;
  for (const std::size_t alignment : {std::size_t{8}, std::size_t{1} << 20}) {
    try {
      (void)r.allocate(std::numeric_limits<std::size_t>::max() - 100, alignment);
      ADD_FAILURE() << "a size that cannot be rounded to pages was accepted";
    } catch (const pmrkit::allocation_error& e) {
      EXPECT_EQ(e.reason(), pmrkit::failure_reason::size_overflow);
    }
  }
  EXPECT_EQ(r.stats().cuda_failures, 0U);
}

TEST(cuda_pinned_resource, DeviceCountAndReasonAgree) {
  const int count = pmrkit::cuda_device_count();
  const std::string reason = pmrkit::cuda_unavailable_reason();
  if (count > 0) {
    EXPECT_TRUE(reason.empty()) << reason;
    EXPECT_EQ(cudaGetLastError(), cudaSuccess) << "the runtime's error state was left set";
  } else {
    EXPECT_EQ(count, 0);
    EXPECT_EQ(reason.rfind("cuda", 0), 0U) << "the runtime's error name first: " << reason;
    EXPECT_NE(reason.find(": "), std::string::npos) << reason;
  }
}

// Without a device the CUDA runtime refuses every cudaHostAlloc: the error is
// pmrkit's, names the call and the CUDA error, and the resource stays usable.
TEST(cuda_pinned_resource, WithoutDeviceAllocateThrowsAllocationErrorWithTheCudaError) {
  if (cuda_test::have_device()) {
    GTEST_SKIP() << "a CUDA device is present: the no-device path cannot be reached here";
  }
  cuda_pinned_resource r({.name = "no-gpu"});
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      (void)r.allocate(64 * kib, 4096);
      FAIL() << "cudaHostAlloc succeeded without a device";
    } catch (const pmrkit::allocation_error& e) {
      EXPECT_EQ(typeid(e), typeid(pmrkit::allocation_error));
      EXPECT_EQ(e.reason(), pmrkit::failure_reason::upstream_failed);
      EXPECT_EQ(e.requested(), 64 * kib);
      EXPECT_EQ(e.alignment(), 4096U);
      EXPECT_EQ(e.resource_name(), "no-gpu");
      const std::string what = e.what();
      EXPECT_NE(what.find("; cudaHostAlloc: cudaError"), std::string::npos) << what;
      EXPECT_NE(what.find(pmrkit::cuda_unavailable_reason()), std::string::npos)
          << what << "\nshould quote: " << pmrkit::cuda_unavailable_reason();
    } catch (const std::bad_alloc& e) {
      FAIL() << "a std::bad_alloc that is no pmrkit::allocation_error: " << e.what();
    }
    // (Without a driver every runtime call, cudaGetLastError included, answers the
    // initialisation error: there is no error state to check here.)
  }
  const pmrkit::cuda_pinned_stats s = r.stats();
  EXPECT_EQ(s.cuda_failures, 2U);
  EXPECT_EQ(s.allocations, 0U);
  EXPECT_EQ(s.blocks_in_use, 0U);
  EXPECT_EQ(s.bytes_pinned, 0U);
  // Still usable: its own checks answer as before.
  EXPECT_THROW((void)r.allocate(64, 3), pmrkit::allocation_error);
  // A pool over it passes the error on as pmrkit's, unchanged.
  pmrkit::pool_resource pool({.block_size = 64 * kib}, &r);
  try {
    (void)pool.allocate(64 * kib);
    FAIL() << "the pool got a chunk without a device";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.resource_name(), "no-gpu") << "the pinned resource's own error, unchanged";
  }
  r.release();
}

#if PMRKIT_CHECKED
TEST(cuda_pinned_resource, AForeignPointerIsReportedAndIgnored) {
  pmrkit::violation_recorder violations;
  cuda_pinned_resource r({.name = "pinned"});
  alignas(64) static std::byte outside[64];
  r.deallocate(outside, sizeof outside, 64);
  ASSERT_EQ(violations.size(), 1U);
  EXPECT_EQ(violations.count(pmrkit::violation_kind::foreign_pointer), 1U);
  EXPECT_EQ(r.stats().deallocations, 1U);
}
#endif

// --- With a GPU -----------------------------------------------------------

TEST(cuda_pinned_resource, HostWritesReachTheDeviceAndBack) {
  CUDA_TEST_REQUIRE_DEVICE();
  cuda_pinned_resource r;
  constexpr std::size_t bytes = 8 * mib;
  auto* host = static_cast<std::uint32_t*>(r.allocate(bytes, 4096));
  const std::size_t count = bytes / sizeof(std::uint32_t);
  for (std::size_t i = 0; i < count; ++i)
    host[i] = static_cast<std::uint32_t>(i * 2654435761U);
  void* device = nullptr;
  ASSERT_EQ(cudaMalloc(&device, bytes), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(device, host, bytes, cudaMemcpyHostToDevice), cudaSuccess);
  std::memset(host, 0, bytes);
  ASSERT_EQ(cudaMemcpy(host, device, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
  for (std::size_t i = 0; i < count; i += 997) {
    ASSERT_EQ(host[i], static_cast<std::uint32_t>(i * 2654435761U)) << "at " << i;
  }
  EXPECT_EQ(cudaFree(device), cudaSuccess);
  // Mapped: the device sees the same memory through a device pointer.
  void* mapped = nullptr;
  EXPECT_EQ(cudaHostGetDevicePointer(&mapped, host, 0), cudaSuccess);
  EXPECT_NE(mapped, nullptr);
  cudaPointerAttributes attributes{};
  ASSERT_EQ(cudaPointerGetAttributes(&attributes, host), cudaSuccess);
  EXPECT_EQ(attributes.type, cudaMemoryTypeHost) << "pinned host memory, as CUDA sees it";
  r.deallocate(host, bytes, 4096);
}

TEST(cuda_pinned_resource, LargeAlignmentsAreMetInsideALargerBlock) {
  CUDA_TEST_REQUIRE_DEVICE();
  cuda_pinned_resource r;
  const std::size_t page = r.granule();
  void* small = r.allocate(100, 64);
  EXPECT_TRUE(pmrkit::is_aligned(small, page)) << "whole pages";
  EXPECT_EQ(r.stats().bytes_pinned, page);
  void* big = r.allocate(3 * page, 2 * mib);
  EXPECT_TRUE(pmrkit::is_aligned(big, 2 * mib));
  EXPECT_EQ(r.stats().bytes_pinned, page + 3 * page + 2 * mib);
  std::memset(big, 0x5a, 3 * page);
  EXPECT_EQ(r.stats().blocks_in_use, 2U);
  EXPECT_EQ(r.stats().bytes_in_use, 100 + 3 * page);
  r.deallocate(big, 3 * page, 2 * mib);
  r.deallocate(small, 100, 64);
  EXPECT_EQ(r.stats().bytes_pinned, 0U);
  EXPECT_EQ(r.stats().peak_blocks_in_use, 2U);
}

#if PMRKIT_CHECKED
TEST(cuda_pinned_resource, MisuseIsReportedAndTheBlockKept) {
  CUDA_TEST_REQUIRE_DEVICE();
  pmrkit::violation_recorder violations;
  cuda_pinned_resource r;
  void* p = r.allocate(1000, 16);
  r.deallocate(p, 999, 16);
  EXPECT_EQ(violations.count(pmrkit::violation_kind::size_mismatch), 1U);
  r.deallocate(p, 1000, 32);
  EXPECT_EQ(violations.count(pmrkit::violation_kind::alignment_mismatch), 1U);
  EXPECT_EQ(r.stats().blocks_in_use, 1U) << "a mismatched free is ignored";
  r.deallocate(p, 1000, 16);
  EXPECT_EQ(r.stats().blocks_in_use, 0U);
  r.deallocate(p, 1000, 16);
  EXPECT_EQ(violations.count(pmrkit::violation_kind::double_free), 1U);
  EXPECT_EQ(violations.size(), 3U);
}
#endif

TEST(cuda_pinned_resource, ReleaseFreesEveryBlockAndKeepsItUsable) {
  CUDA_TEST_REQUIRE_DEVICE();
  cuda_pinned_resource r;
  for (int i = 0; i < 8; ++i)
    (void)r.allocate(64 * kib, 4096);
  EXPECT_EQ(r.stats().blocks_in_use, 8U);
  r.release();
  EXPECT_EQ(r.stats().blocks_in_use, 0U);
  EXPECT_EQ(r.stats().bytes_pinned, 0U);
  void* p = r.allocate(64 * kib, 4096);
  r.deallocate(p, 64 * kib, 4096);
}

TEST(cuda_pinned_resource, ThreadsShareIt) {
  CUDA_TEST_REQUIRE_DEVICE();
  cuda_pinned_resource r;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&r, t] {
      for (int i = 0; i < 20; ++i) {
        const std::size_t bytes = static_cast<std::size_t>(1 + (i * 7 + t) % 5) * 16 * kib;
        auto* p = static_cast<unsigned char*>(r.allocate(bytes, 256));
        std::memset(p, t, bytes);
        r.deallocate(p, bytes, 256);
      }
    });
  }
  for (std::thread& thread : threads)
    thread.join();
  EXPECT_EQ(r.stats().allocations, 160U);
  EXPECT_EQ(r.stats().deallocations, 160U);
  EXPECT_EQ(r.stats().blocks_in_use, 0U);
}

TEST(cuda_pinned_resource, APoolOverItServesBlocksFromFewCudaAllocations) {
  CUDA_TEST_REQUIRE_DEVICE();
  cuda_pinned_resource r;
  pmrkit::pool_resource pool({.block_size = 64 * kib}, &r);
  std::vector<void*> blocks;
  for (int i = 0; i < 100; ++i)
    blocks.push_back(pool.allocate(64 * kib));
  EXPECT_LE(r.stats().allocations, 2U) << "the pool takes chunks, not blocks";
  for (void* p : blocks)
    pool.deallocate(p, 64 * kib);
}

}  // namespace
