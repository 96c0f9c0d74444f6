// docs/errors.md, "Typed helpers and adaptors": each row's test, named after it.
#include <pmr/arena/chunked_arena_resource.hpp>
#include <pmr/arena/strings.hpp>
#include <pmr/cache/lru_cache.hpp>
#include <pmr/core/reallocate.hpp>
#include <pmr/interop/boost_bridge.hpp>
#include <pmr/pool/multipool_resource.hpp>
#include <pmr/testing/test_resource.hpp>

#include <gtest/gtest.h>
#include <boost/container/pmr/global_resource.hpp>

#include <climits>
#include <cstring>
#include <limits>
#include <memory_resource>
#include <new>
#include <string>

#include "errors/errors_test_support.hpp"

namespace {

using errors_test::expect_allocation_error;
using pmrkit::failure_reason;
const std::size_t size_max = errors_test::opaque(std::numeric_limits<std::size_t>::max());

// reallocate to a size whose rounding overflows: size_overflow, and the old block is untouched
// (its contents kept, still to be freed with its old size).
TEST(TypedHelpers, ReallocateToOverflowingSize) {
  pmrkit::test_resource strict("strict", std::pmr::new_delete_resource());
  pmrkit::multipool_resource pool(&strict);
  pmrkit::chunked_arena_resource arena(&strict);
  for (std::pmr::memory_resource* r : {static_cast<std::pmr::memory_resource*>(&strict),
                                       static_cast<std::pmr::memory_resource*>(&pool),
                                       static_cast<std::pmr::memory_resource*>(&arena)}) {
    void* p = r->allocate(16, 8);
    std::memcpy(p, "0123456789abcde", 16);
    expect_allocation_error([&] { (void)pmrkit::reallocate(*r, p, 16, size_max, 8); },
                            failure_reason::size_overflow);
    EXPECT_EQ(std::memcmp(p, "0123456789abcde", 16), 0);
    r->deallocate(p, 16, 8);
  }
  EXPECT_TRUE(strict.errors().empty());
}

TEST(TypedHelpers, ReallocateBadAlignment) {
  pmrkit::test_resource strict("strict", std::pmr::new_delete_resource());
  void* p = strict.allocate(16, 8);
  expect_allocation_error([&] { (void)pmrkit::reallocate(strict, p, 16, 32, 24); },
                          failure_reason::bad_alignment);
  strict.deallocate(p, 16, 8);
}

// std::pmr::polymorphic_allocator<T>::allocate(n) with n * sizeof(T) past SIZE_MAX throws the
// standard's std::bad_array_new_length before any resource is asked (not a pmrkit error).
TEST(TypedHelpers, PolymorphicAllocatorCountOverflow) {
  pmrkit::test_resource strict("strict", std::pmr::new_delete_resource());
  std::pmr::polymorphic_allocator<long> allocator(&strict);
  EXPECT_THROW((void)allocator.allocate(size_max / sizeof(long) + 1), std::bad_array_new_length);
  EXPECT_EQ(strict.stats().allocations, 0u);
}

// copy_string_n clamps its count to the text: a huge count copies the text and cannot overflow.
TEST(TypedHelpers, CopyStringCountBeyondText) {
  pmrkit::test_resource strict("strict", std::pmr::new_delete_resource());
  const std::string_view copy = pmrkit::copy_string_n(strict, "abc", size_max);
  EXPECT_EQ(copy, "abc");
  EXPECT_EQ(copy.data()[3], '\0');
  strict.deallocate(const_cast<char*>(copy.data()), 4, 1);
}

// A format vsnprintf rejects (a field width past INT_MAX): std::invalid_argument naming
// format_string; nothing is allocated.
TEST(TypedHelpers, FormatStringRejected) {
  pmrkit::test_resource strict("strict", std::pmr::new_delete_resource());
  const std::string format = "%2147483648d";  // not a literal: GCC would reject it at compile time
  errors_test::expect_invalid_argument(
      [&] { (void)pmrkit::format_string(strict, format.c_str(), 1); }, "pmrkit::format_string");
  EXPECT_EQ(strict.stats().allocations, 0u);
}

// The resource's error passes through the string helpers unchanged.
TEST(TypedHelpers, StringHelpersPassAllocationErrors) {
  pmrkit::test_resource strict("strict", std::pmr::new_delete_resource());
  strict.set_allocation_limit(0);
  expect_allocation_error([&] { (void)pmrkit::copy_string(strict, "abc"); },
                          failure_reason::injected_failure);
  strict.set_allocation_limit(0);
  expect_allocation_error([&] { (void)pmrkit::format_string(strict, "%d", 42); },
                          failure_reason::injected_failure);
}

// An entry whose charge alone exceeds max_bytes is evicted at once: put returns nullptr.
TEST(TypedHelpers, LruCacheChargeAboveMaxBytes) {
  pmrkit::test_resource strict("strict", std::pmr::new_delete_resource());
  pmrkit::lru_cache<int, int> cache({.max_bytes = 100}, &strict);
  EXPECT_EQ(cache.put(1, 1, 1000), nullptr);
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_NE(cache.put(2, 2, 10), nullptr);
}

// The resource's failure reaches the caller of put, and the cache is as before.
TEST(TypedHelpers, LruCacheAllocationFails) {
  pmrkit::test_resource strict("strict", std::pmr::new_delete_resource());
  pmrkit::lru_cache<int, int> cache({}, &strict);
  ASSERT_NE(cache.put(1, 10), nullptr);
  strict.set_allocation_limit(0);
  expect_allocation_error([&] { (void)cache.put(2, 20); }, failure_reason::injected_failure);
  EXPECT_EQ(cache.size(), 1u);
  ASSERT_NE(cache.get(1), nullptr);
  EXPECT_EQ(*cache.get(1), 10);
}

// from_boost_resource: a bad alignment and a size whose over-aligned layout overflows are its
// own errors; Boost's failure (boost::container::bad_alloc is no std::bad_alloc) becomes
// upstream_failed with it nested.
TEST(Interop, FromBoostBadRequests) {
  pmrkit::from_boost_resource bridge(boost::container::pmr::new_delete_resource());
  expect_allocation_error([&] { (void)bridge.allocate(16, 3); }, failure_reason::bad_alignment);
  expect_allocation_error([&] { (void)bridge.allocate(16, 0); }, failure_reason::bad_alignment);
  expect_allocation_error([&] { (void)bridge.allocate(size_max - 10, 64); },
                          failure_reason::size_overflow);
#if !PMRKIT_HAS_ASAN  // ASan's operator new, under Boost's new_delete_resource(), aborts instead
  try {
    (void)bridge.allocate(std::size_t{1} << 62, 8);
    ADD_FAILURE() << "a block of 2^62 bytes";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), failure_reason::upstream_failed) << e.what();
  }
#endif
  errors_test::expect_usable(bridge);
}

// to_boost_resource passes the pmrkit upstream's errors through unchanged.
TEST(Interop, ToBoostPassesErrorsThrough) {
  pmrkit::test_resource strict("strict", std::pmr::new_delete_resource());
  pmrkit::to_boost_resource bridge(&strict);
  expect_allocation_error([&] { (void)bridge.allocate(16, 3); }, failure_reason::bad_alignment);
  expect_allocation_error([&] { (void)bridge.allocate(size_max, 8); },
                          failure_reason::size_overflow);
  strict.set_allocation_limit(0);
  expect_allocation_error([&] { (void)bridge.allocate(16, 8); }, failure_reason::injected_failure);
}

}  // namespace
