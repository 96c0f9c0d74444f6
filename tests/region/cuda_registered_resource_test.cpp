// cuda_registered_resource: construction, properties, bad requests, the
// parallel touch and the no-device path (the upstream's block goes back)
// run everywhere; the conformance suite, host and device access and the
// registration of a large block need a GPU and skip without one, saying why.
#include <pmr/core/config.hpp>
#include <pmr/core/error.hpp>
#include <pmr/region/cuda_registered_resource.hpp>
#include <pmr/testing/test_resource.hpp>
#include <pmr/testing/violation_recorder.hpp>

#include "conformance/conformance.hpp"
#include "cuda_test_support.hpp"

#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <memory_resource>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <typeinfo>
#include <vector>

using pmrkit::cuda_registered_resource;

namespace {

struct registered_traits {
  using resource_type = cuda_registered_resource;
  static constexpr std::string_view name = "pmrkit::cuda_registered_resource";
  static constexpr pmrkit::conformance::capabilities caps{};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    cuda_test::skip_without_device();  // marks the test skipped: its body does not run
    return std::make_unique<resource_type>(pmrkit::cuda_registered_options{.touch_threads = 2},
                                           upstream);
  }
  static void release(resource_type& r) { r.release(); }
};

}  // namespace

using registered_types = ::testing::Types<registered_traits>;
INSTANTIATE_TYPED_TEST_SUITE_P(cuda, resource_conformance, registered_types,
                               pmrkit::conformance::traits_names);

namespace {

constexpr std::size_t kib = std::size_t{1} << 10;
constexpr std::size_t mib = std::size_t{1} << 20;

static_assert(pmrkit::has_property<cuda_registered_resource, pmrkit::property::host_accessible>);
static_assert(pmrkit::has_property<cuda_registered_resource, pmrkit::property::device_accessible>);
static_assert(pmrkit::has_property<cuda_registered_resource, pmrkit::property::locked>);
static_assert(std::is_base_of_v<pmrkit::page_source, cuda_registered_resource>);
static_assert(std::is_final_v<cuda_registered_resource>);
static_assert(!std::is_copy_constructible_v<cuda_registered_resource>);
static_assert(!std::is_move_constructible_v<cuda_registered_resource>);

/// An upstream that fills each block with a pattern and checks, when it comes
/// back, that the pattern is intact: the touch before registering must not
/// change what the pages hold.
class pattern_upstream final : public std::pmr::memory_resource {
 public:
  std::size_t blocks_in_use = 0;
  std::size_t allocations = 0;
  std::size_t damaged = 0;
  std::size_t last_alignment = 0;

 private:
  static unsigned char pattern(std::size_t i) { return static_cast<unsigned char>(i * 131 + 7); }
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    void* p = std::pmr::new_delete_resource()->allocate(bytes, alignment);
    auto* c = static_cast<unsigned char*>(p);
    for (std::size_t i = 0; i < bytes; ++i)
      c[i] = pattern(i);
    ++blocks_in_use;
    ++allocations;
    last_alignment = alignment;
    return p;
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    const auto* c = static_cast<const unsigned char*>(p);
    for (std::size_t i = 0; i < bytes; ++i) {
      if (c[i] != pattern(i)) {
        ++damaged;
        break;
      }
    }
    --blocks_in_use;
    std::pmr::new_delete_resource()->deallocate(p, bytes, alignment);
  }
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }
};

TEST(cuda_registered_resource, ConstructedTheSixWays) {
  pmrkit::test_resource upstream("upstream");
  cuda_registered_resource a;
  cuda_registered_resource b(&upstream);
  cuda_registered_resource c({.touch_threads = 3, .name = "c"});
  cuda_registered_resource d({.touch_threads = 1}, &upstream);
  cuda_registered_resource e({});
  cuda_registered_resource f({}, &upstream);
  EXPECT_EQ(a.upstream_resource(), std::pmr::get_default_resource());
  EXPECT_EQ(b.upstream_resource(), &upstream);
  EXPECT_EQ(c.upstream_resource(), std::pmr::get_default_resource());
  EXPECT_EQ(d.upstream_resource(), &upstream);
  EXPECT_EQ(e.upstream_resource(), std::pmr::get_default_resource());
  EXPECT_EQ(f.upstream_resource(), &upstream);
  EXPECT_EQ(a.name(), "cuda_registered");
  EXPECT_EQ(c.name(), "c");
  EXPECT_EQ(c.touch_threads(), 3U);
  EXPECT_EQ(d.touch_threads(), 1U);
  EXPECT_EQ(a.touch_threads(), std::max(1U, std::thread::hardware_concurrency()))
      << "0 means one per hardware thread";
  EXPECT_EQ(upstream.stats().allocations, 0U) << "construction takes nothing";
}

TEST(cuda_registered_resource, BadOptionsNameTheField) {
  try {
    cuda_registered_resource r({.touch_threads = 1025});
    FAIL() << "touch_threads 1025 was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "pmrkit::cuda_registered_resource: touch_threads must be at most 1024");
  }
  try {
    cuda_registered_resource r({}, static_cast<std::pmr::memory_resource*>(nullptr));
    FAIL() << "a null upstream was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "pmrkit::cuda_registered_resource: upstream must not be null");
  }
}

TEST(cuda_registered_resource, SaysWhatItsMemoryIs) {
  cuda_registered_resource r;
  const pmrkit::page_properties p = r.properties();
  EXPECT_TRUE(p.host_accessible && p.device_accessible && p.locked);
  EXPECT_FALSE(p.huge_pages);
  EXPECT_EQ(r.backing(), "cuda registered");
  EXPECT_TRUE(pmrkit::is_power_of_two(r.granule()));
  const std::pmr::memory_resource* any = &r;
  ASSERT_TRUE(pmrkit::page_properties_of(any).has_value());
  EXPECT_TRUE(pmrkit::page_properties_of(any)->device_accessible);
}

TEST(cuda_registered_resource, BadRequestsAreAllocationErrorsAndAskNothingUpstream) {
  pmrkit::test_resource upstream("upstream");
  cuda_registered_resource r({.name = "reg"}, &upstream);
  try {
    (void)r.allocate(64, 24);
    ADD_FAILURE() << "alignment 24 was accepted";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::bad_alignment);
    EXPECT_EQ(e.resource_name(), "reg");
  }
  try {
    (void)r.allocate(std::numeric_limits<std::size_t>::max() - 10, 8);
    ADD_FAILURE() << "a size that cannot be rounded to pages was accepted";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::size_overflow);
  }
  EXPECT_EQ(upstream.stats().allocations, 0U);
}

TEST(cuda_registered_resource, AnUpstreamFailureReachesTheCallerAsTheContractSays) {
  pmrkit::test_resource upstream("upstream");
  cuda_registered_resource r({.name = "reg"}, &upstream);
  upstream.set_allocation_limit(0);
  try {
    (void)r.allocate(64 * kib);
    FAIL() << "the failing upstream was not noticed";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::injected_failure)
        << "a pmrkit error from the upstream passes unchanged";
  }
  upstream.set_allocation_limit(-1);
  EXPECT_EQ(r.stats().cuda_failures, 0U);
  EXPECT_EQ(r.stats().bytes_from_upstream, 0U);
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
}

// Without a device cudaHostRegister fails: the error is pmrkit's and quotes
// CUDA, the upstream's block went back (touched, its contents intact), and
// the figures say how the block was set up.
TEST(cuda_registered_resource, WithoutDeviceTheUpstreamBlockGoesBackAndTheErrorQuotesCuda) {
  if (cuda_test::have_device()) {
    GTEST_SKIP() << "a CUDA device is present: the no-device path cannot be reached here";
  }
  pattern_upstream upstream;
  cuda_registered_resource r({.touch_threads = 4, .name = "no-gpu"}, &upstream);
  const std::size_t page = r.granule();
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      (void)r.allocate(64 * mib + 1, 64);
      FAIL() << "cudaHostRegister succeeded without a device";
    } catch (const pmrkit::allocation_error& e) {
      EXPECT_EQ(typeid(e), typeid(pmrkit::allocation_error));
      EXPECT_EQ(e.reason(), pmrkit::failure_reason::upstream_failed);
      EXPECT_EQ(e.requested(), 64 * mib + 1);
      EXPECT_EQ(e.alignment(), 64U);
      EXPECT_EQ(e.resource_name(), "no-gpu");
      const std::string what = e.what();
      EXPECT_NE(what.find("; cudaHostRegister: cudaError"), std::string::npos) << what;
    } catch (const std::bad_alloc& e) {
      FAIL() << "a std::bad_alloc that is no pmrkit::allocation_error: " << e.what();
    }
  }
  EXPECT_EQ(upstream.allocations, 2U);
  EXPECT_EQ(upstream.blocks_in_use, 0U) << "the upstream's block must go back";
  EXPECT_EQ(upstream.damaged, 0U) << "touching changed the pages' contents";
  EXPECT_EQ(upstream.last_alignment, page) << "whole pages, at page alignment";
  const pmrkit::cuda_registered_stats s = r.stats();
  EXPECT_EQ(s.cuda_failures, 2U);
  EXPECT_EQ(s.allocations, 0U);
  EXPECT_EQ(s.registrations, 0U);
  EXPECT_EQ(s.bytes_registered, 0U);
  EXPECT_EQ(s.bytes_from_upstream, 0U);
  EXPECT_EQ(s.blocks_in_use, 0U);
  EXPECT_EQ(s.last_registration_bytes, 64 * mib + page);
  EXPECT_EQ(s.last_touch_threads, 4U) << "64 MiB is 16 shares of 4 MiB: all 4 threads";
  EXPECT_GT(s.last_touch_ns, 0U);
}

TEST(cuda_registered_resource, TouchThreadsTakeAtLeastFourMiBEach) {
  if (cuda_test::have_device()) {
    GTEST_SKIP() << "a CUDA device is present: the figures of a refused block are not reached";
  }
  pmrkit::test_resource upstream("upstream");
  cuda_registered_resource r({.touch_threads = 16}, &upstream);
  const std::pair<std::size_t, unsigned> cases[] = {
      {4 * kib, 1}, {4 * mib, 1}, {8 * mib, 2}, {12 * mib, 3}, {128 * mib, 16}};
  for (const auto& [bytes, threads] : cases) {
    EXPECT_THROW((void)r.allocate(bytes, 4096), pmrkit::allocation_error);
    EXPECT_EQ(r.stats().last_touch_threads, threads) << bytes << " bytes";
  }
  cuda_registered_resource serial({.touch_threads = 1}, &upstream);
  EXPECT_THROW((void)serial.allocate(64 * mib, 4096), pmrkit::allocation_error);
  EXPECT_EQ(serial.stats().last_touch_threads, 1U);
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
  EXPECT_TRUE(upstream.errors().empty());
}

#if PMRKIT_CHECKED
TEST(cuda_registered_resource, AForeignPointerIsReportedAndIgnored) {
  pmrkit::violation_recorder violations;
  pmrkit::test_resource upstream("upstream");
  cuda_registered_resource r({.name = "reg"}, &upstream);
  alignas(64) static std::byte outside[64];
  r.deallocate(outside, sizeof outside, 64);
  ASSERT_EQ(violations.size(), 1U);
  EXPECT_EQ(violations.count(pmrkit::violation_kind::foreign_pointer), 1U);
  EXPECT_EQ(upstream.stats().deallocations, 0U) << "nothing went upstream";
}
#endif

// --- With a GPU -----------------------------------------------------------

TEST(cuda_registered_resource, HostWritesReachTheDeviceAndBack) {
  CUDA_TEST_REQUIRE_DEVICE();
  pmrkit::test_resource upstream("upstream");
  cuda_registered_resource r({.touch_threads = 2}, &upstream);
  constexpr std::size_t bytes = 16 * mib;
  auto* host = static_cast<std::uint64_t*>(r.allocate(bytes));
  const std::size_t count = bytes / sizeof(std::uint64_t);
  for (std::size_t i = 0; i < count; ++i)
    host[i] = i * 0x9e3779b97f4a7c15ULL;
  void* device = nullptr;
  ASSERT_EQ(cudaMalloc(&device, bytes), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(device, host, bytes, cudaMemcpyHostToDevice), cudaSuccess);
  std::memset(host, 0, bytes);
  ASSERT_EQ(cudaMemcpy(host, device, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
  for (std::size_t i = 0; i < count; i += 1009) {
    ASSERT_EQ(host[i], i * 0x9e3779b97f4a7c15ULL) << "at " << i;
  }
  EXPECT_EQ(cudaFree(device), cudaSuccess);
  void* mapped = nullptr;
  EXPECT_EQ(cudaHostGetDevicePointer(&mapped, host, 0), cudaSuccess) << "registered as mapped";
  EXPECT_NE(mapped, nullptr);
  const pmrkit::cuda_registered_stats s = r.stats();
  EXPECT_EQ(s.bytes_registered, bytes);
  EXPECT_EQ(s.bytes_from_upstream, upstream.bytes_in_use());
  EXPECT_EQ(s.registrations, 1U);
  r.deallocate(host, bytes);
  EXPECT_EQ(r.stats().bytes_registered, 0U);
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
}

TEST(cuda_registered_resource, ALargeBlockRegistersWithOneTouchThreadOrMany) {
  CUDA_TEST_REQUIRE_DEVICE();
  constexpr std::size_t bytes = 512 * mib;
  const unsigned many = std::max(2U, std::thread::hardware_concurrency());
  for (const unsigned threads : {1U, many}) {
    cuda_registered_resource r({.touch_threads = threads});
    void* p = r.allocate(bytes);
    const pmrkit::cuda_registered_stats s = r.stats();
    EXPECT_EQ(s.bytes_registered, bytes);
    EXPECT_EQ(s.last_touch_threads, std::min<unsigned>(threads, bytes / (4 * mib)));
    std::printf("  512 MiB, %u touch thread(s): touch %.1f ms, cudaHostRegister %.1f ms\n",
                s.last_touch_threads, static_cast<double>(s.last_touch_ns) / 1e6,
                static_cast<double>(s.last_register_ns) / 1e6);
    void* device = nullptr;
    ASSERT_EQ(cudaMalloc(&device, bytes), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(device, p, bytes, cudaMemcpyHostToDevice), cudaSuccess);
    EXPECT_EQ(cudaFree(device), cudaSuccess);
    r.deallocate(p, bytes);
  }
}

#if PMRKIT_CHECKED
TEST(cuda_registered_resource, MisuseIsReportedAndTheBlockKept) {
  CUDA_TEST_REQUIRE_DEVICE();
  pmrkit::violation_recorder violations;
  pmrkit::test_resource upstream("upstream");
  cuda_registered_resource r({}, &upstream);
  void* p = r.allocate(1000, 16);
  r.deallocate(p, 1001, 16);
  EXPECT_EQ(violations.count(pmrkit::violation_kind::size_mismatch), 1U);
  EXPECT_EQ(upstream.blocks_in_use(), 1U) << "a mismatched free is ignored";
  r.deallocate(p, 1000, 16);
  r.deallocate(p, 1000, 16);
  EXPECT_EQ(violations.count(pmrkit::violation_kind::double_free), 1U);
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
}
#endif

TEST(cuda_registered_resource, ThreadsShareIt) {
  CUDA_TEST_REQUIRE_DEVICE();
  pmrkit::test_resource upstream("upstream");
  cuda_registered_resource r({.touch_threads = 2}, &upstream);
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&r, t] {
      for (int i = 0; i < 10; ++i) {
        const std::size_t bytes = static_cast<std::size_t>(1 + (i + t) % 4) * mib;
        auto* p = static_cast<unsigned char*>(r.allocate(bytes));
        std::memset(p, t, bytes);
        r.deallocate(p, bytes);
      }
    });
  }
  for (std::thread& thread : threads)
    thread.join();
  EXPECT_EQ(r.stats().registrations, 60U);
  EXPECT_EQ(r.stats().bytes_registered, 0U);
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
}

}  // namespace
