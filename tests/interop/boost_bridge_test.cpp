#include <pmr/interop/boost_bridge.hpp>

#include <pmr/arena/chunked_arena_resource.hpp>
#include <pmr/core/config.hpp>
#include <pmr/core/error.hpp>
#include <pmr/pool/multipool_resource.hpp>
#include <pmr/testing/test_resource.hpp>
#include <pmr/testing/violation_recorder.hpp>

#include "conformance/conformance.hpp"

#include <gtest/gtest.h>
#include <boost/container/pmr/global_resource.hpp>
#include <boost/container/pmr/map.hpp>
#include <boost/container/pmr/monotonic_buffer_resource.hpp>
#include <boost/container/pmr/polymorphic_allocator.hpp>
#include <boost/container/pmr/string.hpp>
#include <boost/container/pmr/unsynchronized_pool_resource.hpp>
#include <boost/container/pmr/vector.hpp>
#include <boost/container/throw_exception.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <memory_resource>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace {

namespace bpmr = boost::container::pmr;
using pmrkit::from_boost_resource;
using pmrkit::test_resource;
using pmrkit::to_boost_arena_resource;
using pmrkit::to_boost_resource;

// --- The conformance suite -----------------------------------------------------------------------

// from_boost_resource over a Boost resource over the suite's upstream, each chain owned by one
// object that make() hands out through an aliasing shared_ptr.
template <class BoostResource>
struct chain {
  explicit chain(std::pmr::memory_resource* upstream)
      : to_boost(upstream), boost_resource(&to_boost), from_boost(&boost_resource) {}
  to_boost_resource<> to_boost;
  BoostResource boost_resource;
  from_boost_resource from_boost;
};

template <class Chain>
std::shared_ptr<from_boost_resource> make_chain(std::pmr::memory_resource* upstream) {
  auto owner = std::make_shared<Chain>(upstream);
  return {owner, &owner->from_boost};
}

// Both directions in one chain, nothing in between: what reaches the upstream is what the suite
// asked for (over-aligned requests excepted, which take bytes + alignment at 16).
struct round_trip_chain {
  explicit round_trip_chain(std::pmr::memory_resource* upstream)
      : to_boost(upstream), from_boost(&to_boost) {}
  to_boost_resource<> to_boost;
  from_boost_resource from_boost;
};

struct round_trip_traits {
  using resource_type = from_boost_resource;
  static constexpr std::string_view name =
      "pmrkit::from_boost_resource over pmrkit::to_boost_resource";
  // It forwards every block and owns none; two round trips over one upstream are equal.
  static constexpr pmrkit::conformance::capabilities caps{.releases_on_destruction = false,
                                                          .equality_is_identity = false};
  static std::shared_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return make_chain<round_trip_chain>(upstream);
  }
};

// Boost's pool in between: it ignores alignment beyond 16, so every over-aligned request of the
// suite checks from_boost_resource's own alignment.
struct boost_pool_traits {
  using resource_type = from_boost_resource;
  static constexpr std::string_view name =
      "pmrkit::from_boost_resource over boost unsynchronized_pool_resource";
  static constexpr pmrkit::conformance::capabilities caps{};
  static std::shared_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return make_chain<chain<bpmr::unsynchronized_pool_resource>>(upstream);
  }
};

// Not Boost's monotonic_buffer_resource: after a request its upstream refused it keeps asking
// for a buffer that large, so it does not stay usable (HugeRequests...). It serves as an
// upstream below (BoostMonotonicBufferAsTheUpstreamOfAChunkedArena).
using bridge_types = ::testing::Types<round_trip_traits, boost_pool_traits>;
INSTANTIATE_TYPED_TEST_SUITE_P(interop, resource_conformance, bridge_types,
                               pmrkit::conformance::traits_names);

// --- Test doubles --------------------------------------------------------------------------------

constexpr pmrkit::test_options upstream_options{.name = "upstream"};

// A Boost resource that throws what it is told to on every allocation.
template <class Exception>
class throwing_boost_resource final : public bpmr::memory_resource {
 public:
  std::size_t calls = 0;

 private:
  void* do_allocate(std::size_t, std::size_t) override {
    ++calls;
    throw Exception();
  }
  void do_deallocate(void*, std::size_t, std::size_t) override {}
  bool do_is_equal(const bpmr::memory_resource& other) const noexcept override {
    return this == &other;
  }
};

struct runtime_failure : std::runtime_error {
  runtime_failure() : std::runtime_error("not about memory") {}
};

bool aligned_to(const void* p, std::size_t alignment) {
  return reinterpret_cast<std::uintptr_t>(p) % alignment == 0;
}

void expect_upstream_clean(const test_resource& upstream) {
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
  EXPECT_EQ(upstream.error_count(), 0U);
  for (const pmrkit::violation& v : upstream.errors())
    ADD_FAILURE() << pmrkit::describe(v);
}

// --- to_boost_resource ---------------------------------------------------------------------------

TEST(ToBoostResource, DeducesTheUpstreamTypeAndReturnsIt) {
  pmrkit::chunked_arena_resource arena;
  to_boost_resource typed(&arena);
  static_assert(std::is_same_v<decltype(typed), to_boost_resource<pmrkit::chunked_arena_resource>>);
  EXPECT_EQ(typed.upstream_resource(), &arena);
  to_boost_resource any(std::pmr::new_delete_resource());
  static_assert(std::is_same_v<decltype(any), to_boost_resource<>>);
  EXPECT_EQ(any.upstream_resource(), std::pmr::new_delete_resource());
  to_boost_arena_resource arena_bridge(&arena);
  EXPECT_EQ(arena_bridge.upstream_resource(), &arena);
  EXPECT_EQ(typed.name(), "to_boost_resource");
  EXPECT_EQ(arena_bridge.name(), "to_boost_arena_resource");
}

TEST(ToBoostResource, ForwardsSizesAndAlignmentsExactly) {
  test_resource upstream(upstream_options);
  {
    to_boost_resource bridge(&upstream);
    bpmr::memory_resource& boost_side = bridge;
    struct request {
      std::size_t size;
      std::size_t alignment;
    };
    const request requests[] = {{1, 1},   {24, 8},  {100, 16},   {0, 16},
                                {64, 64}, {3, 128}, {1000, 4096}};
    std::vector<void*> blocks;
    for (const request& r : requests) {
      void* p = boost_side.allocate(r.size, r.alignment);
      blocks.push_back(p);
      const std::vector<pmrkit::block_info> in_use = upstream.leaks();
      ASSERT_FALSE(in_use.empty());
      EXPECT_EQ(in_use.back().pointer, p);
      EXPECT_EQ(in_use.back().size, r.size);
      EXPECT_EQ(in_use.back().alignment, r.alignment);
      EXPECT_TRUE(aligned_to(p, r.alignment)) << r.alignment;
    }
    EXPECT_EQ(upstream.blocks_in_use(), std::size(requests));
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      boost_side.deallocate(blocks[i], requests[i].size, requests[i].alignment);
    }
  }
  expect_upstream_clean(upstream);  // the test_resource checked each size and alignment
}

TEST(ToBoostResource, BoostContainersOverAnArenaLeaveNothingBehind) {
  test_resource upstream(upstream_options);
  {
    pmrkit::chunked_arena_resource arena({}, &upstream);
    to_boost_resource bridge(&arena);
    bpmr::vector<int> numbers(&bridge);
    for (int i = 0; i < 10000; ++i)
      numbers.push_back(i);
    // Strings as elements: a standalone one trips GCC 12's -Warray-bounds at -O3 in Boost's
    // basic_string (it takes the long representation for the short one).
    bpmr::vector<bpmr::string> texts(&bridge);
    texts.emplace_back(64, 'x');  // longer than any small-string buffer
    bpmr::map<int, bpmr::string> names(&bridge);
    for (int i = 0; i < 500; ++i)
      names.emplace(i,
                    ("name number " + std::to_string(i) + " is long enough to allocate").c_str());
    EXPECT_EQ(numbers[9999], 9999);
    EXPECT_TRUE(arena.owns(numbers.data()));
    EXPECT_EQ(texts.back().get_allocator().resource(), &bridge);
    EXPECT_TRUE(arena.owns(texts.back().data()));
    // The map passed its allocator on to its strings (uses-allocator construction).
    EXPECT_EQ(names.at(7).get_allocator().resource(), &bridge);
    EXPECT_TRUE(arena.owns(names.at(7).data()));
    EXPECT_GT(upstream.blocks_in_use(), 0U);
  }
  expect_upstream_clean(upstream);
}

TEST(ToBoostResource, BoostContainersOverAPoolGiveEveryBlockBack) {
  test_resource upstream(upstream_options);
  {
    pmrkit::multipool_resource pool(&upstream);
    to_boost_resource bridge(&pool);
    {
      bpmr::map<int, bpmr::string> names(&bridge);
      for (int i = 0; i < 2000; ++i)
        names.emplace(i,
                      ("name number " + std::to_string(i) + " is long enough to allocate").c_str());
      bpmr::vector<double> values(5000, 1.5, &bridge);
      EXPECT_GT(pool.stats().bytes_in_use, 0U);
      EXPECT_EQ(names.at(1999).get_allocator().resource(), &bridge);
    }
    EXPECT_EQ(pool.stats().bytes_in_use, 0U);  // every free reached the pool
  }
  expect_upstream_clean(upstream);
}

TEST(ToBoostResource, LetsTheUpstreamsFailuresThrough) {
  test_resource upstream(upstream_options);
  to_boost_resource bridge(&upstream);
  upstream.set_allocation_limit(0);
  try {
    (void)bridge.allocate(64, 8);
    FAIL() << "expected allocation_error";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::injected_failure);
    EXPECT_EQ(e.requested(), 64U);
  }
  // A plain std::bad_alloc stays one: Boost code expects std::bad_alloc.
  to_boost_resource null_bridge(std::pmr::null_memory_resource());
  try {
    (void)null_bridge.allocate(64, 8);
    FAIL() << "expected std::bad_alloc";
  } catch (const pmrkit::allocation_error&) {
    FAIL() << "to_boost_resource translated the failure";
  } catch (const std::bad_alloc&) {
  }
  expect_upstream_clean(upstream);
}

TEST(ToBoostArenaResource, DropsFreesAndTheArenaTakesEverythingBack) {
  test_resource upstream(upstream_options);
  pmrkit::chunked_arena_resource arena({}, &upstream);
  to_boost_arena_resource bridge(&arena);
  bpmr::memory_resource& boost_side = bridge;
  void* first = boost_side.allocate(100, 8);
  void* second = boost_side.allocate(200, 16);
  EXPECT_TRUE(arena.owns(first) && arena.owns(second));
  EXPECT_TRUE(aligned_to(second, 16));
  const std::size_t used = arena.stats().bytes_in_use;
  boost_side.deallocate(second, 200, 16);  // the newest block: a forwarded free would roll it back
  boost_side.deallocate(first, 100, 8);
  EXPECT_EQ(arena.stats().bytes_in_use, used);
  {
    bpmr::vector<int> numbers(&bridge);
    for (int i = 0; i < 10000; ++i)
      numbers.push_back(i);
    EXPECT_EQ(numbers.back(), 9999);
  }
  arena.release();
  expect_upstream_clean(upstream);
}

TEST(ToBoostArenaResource, TellsBoostJsonThatItsFreesDoNothing) {
  // Boost.JSON's primary template is not needed to read the specialisation.
  static_assert(boost::json::is_deallocate_trivial<to_boost_arena_resource<>>::value);
  static_assert(boost::json::is_deallocate_trivial<
                to_boost_arena_resource<pmrkit::chunked_arena_resource>>::value);
}

// --- from_boost_resource -------------------------------------------------------------------------

TEST(FromBoostResource, ForwardsRequestsUpTo16BytesOfAlignmentExactly) {
  test_resource upstream(upstream_options);
  {
    to_boost_resource boost_side(&upstream);
    from_boost_resource std_side(&boost_side);
    EXPECT_EQ(std_side.upstream_resource(), &boost_side);
    EXPECT_EQ(std_side.name(), "from_boost_resource");
    for (const std::size_t alignment : {1, 2, 4, 8, 16}) {
      void* p = std_side.allocate(40 + alignment, alignment);
      const std::vector<pmrkit::block_info> in_use = upstream.leaks();
      ASSERT_EQ(in_use.size(), 1U);
      EXPECT_EQ(in_use[0].pointer, p);
      EXPECT_EQ(in_use[0].size, 40 + alignment);
      EXPECT_EQ(in_use[0].alignment, alignment);
      std_side.deallocate(p, 40 + alignment, alignment);
    }
  }
  expect_upstream_clean(upstream);
}

TEST(FromBoostResource, AZeroByteRequestAsksForOneByteSoItsAddressIsItsOwn) {
  test_resource upstream(upstream_options);
  {
    to_boost_resource boost_side(&upstream);
    bpmr::monotonic_buffer_resource monotonic(&boost_side);
    from_boost_resource std_side(&monotonic);
    void* empty = std_side.allocate(0, 1);
    void* next = std_side.allocate(8, 1);
    EXPECT_NE(empty, next);  // Boost's monotonic buffer alone would return one address twice
    std_side.deallocate(next, 8, 1);
    std_side.deallocate(empty, 0, 1);

    from_boost_resource direct(&boost_side);
    void* p = direct.allocate(0, 8);
    ASSERT_EQ(upstream.leaks().size(), 2U);  // the monotonic buffer's, and this one
    EXPECT_EQ(upstream.leaks().back().size, 1U);
    direct.deallocate(p, 0, 8);
  }
  expect_upstream_clean(upstream);
}

TEST(FromBoostResource, ServesLargerAlignmentsFromBytesPlusAlignmentAt16) {
  // A zero-byte block counts one byte, so that it lies inside its upstream block.
  test_resource upstream(upstream_options);
  {
    to_boost_resource boost_side(&upstream);
    from_boost_resource std_side(&boost_side);
    for (const std::size_t alignment : {32, 64, 256, 4096}) {
      for (const std::size_t size : {0, 1, 100, 5000}) {
        void* p = std_side.allocate(size, alignment);
        EXPECT_TRUE(aligned_to(p, alignment)) << size << " at " << alignment;
        const std::vector<pmrkit::block_info> in_use = upstream.leaks();
        ASSERT_EQ(in_use.size(), 1U);
        EXPECT_EQ(in_use[0].size, std::max<std::size_t>(size, 1) + alignment);
        EXPECT_EQ(in_use[0].alignment, from_boost_resource::max_align);
        const auto* base = static_cast<const std::byte*>(in_use[0].pointer);
        EXPECT_GE(static_cast<const std::byte*>(p), base + sizeof(void*));
        EXPECT_LE(static_cast<std::byte*>(p) + std::max<std::size_t>(size, 1),
                  base + in_use[0].size);
        std::memset(p, 0x5A, size);  // the test_resource's guards catch a write past the block
        std_side.deallocate(p, size, alignment);
      }
    }
  }
  expect_upstream_clean(upstream);
}

TEST(FromBoostResource, AZeroByteOverAlignedBlockLiesInsideItsUpstreamBlock) {
  // Hands out consecutive bytes of a 64-aligned buffer, 16-aligned, as a pool may.
  class bump_boost_resource final : public bpmr::memory_resource {
   public:
    alignas(64) std::byte buffer[1024];
    std::size_t used = 0;

   private:
    void* do_allocate(std::size_t bytes, std::size_t) override {
      void* p = buffer + used;
      used += (bytes + 15) / 16 * 16;
      return p;
    }
    void do_deallocate(void*, std::size_t, std::size_t) override {}
    bool do_is_equal(const bpmr::memory_resource& other) const noexcept override {
      return this == &other;
    }
  } bump;
  from_boost_resource std_side(&bump);
  void* empty = std_side.allocate(0, 64);
  void* next = std_side.allocate(16, 16);
  EXPECT_TRUE(aligned_to(empty, 64));
  EXPECT_NE(empty, next);  // with bytes + alignment = 64 it would sit where `next` starts
  std_side.deallocate(next, 16, 16);
  std_side.deallocate(empty, 0, 64);
}

TEST(FromBoostResource, HonoursLargeAlignmentsOverABoostPoolThatIgnoresThem) {
  test_resource upstream(upstream_options);
  {
    to_boost_resource boost_side(&upstream);
    bpmr::unsynchronized_pool_resource pool(&boost_side);
    from_boost_resource std_side(&pool);
    std::vector<void*> blocks;
    for (int i = 0; i < 64; ++i) {
      blocks.push_back(std_side.allocate(48, 128));
      EXPECT_TRUE(aligned_to(blocks.back(), 128));
    }
    for (void* p : blocks)
      std_side.deallocate(p, 48, 128);
  }
  expect_upstream_clean(upstream);
}

TEST(FromBoostResource, ServesAlignmentsThatBoostsMonotonicBufferRefuses) {
  test_resource upstream(upstream_options);
  {
    to_boost_resource boost_side(&upstream);
    bpmr::monotonic_buffer_resource monotonic(&boost_side);
    EXPECT_THROW((void)monotonic.allocate(48, 128), std::bad_alloc);  // Boost 1.81 alone
    from_boost_resource std_side(&monotonic);
    for (int i = 0; i < 64; ++i)
      EXPECT_TRUE(aligned_to(std_side.allocate(48, 128), 128));
  }
  expect_upstream_clean(upstream);
}

TEST(FromBoostResource, TurnsBoostFailuresIntoAllocationErrors) {
  from_boost_resource over_null(bpmr::null_memory_resource());  // throws std::bad_alloc
  throwing_boost_resource<boost::container::bad_alloc_t> boost_bad_alloc;
  from_boost_resource over_boost_bad_alloc(&boost_bad_alloc);
  for (from_boost_resource* resource : {&over_null, &over_boost_bad_alloc}) {
    for (const std::size_t alignment : {8, 64}) {  // the direct and the over-aligned path
      try {
        (void)resource->allocate(100, alignment);
        FAIL() << "expected allocation_error";
      } catch (const pmrkit::allocation_error& e) {
        EXPECT_EQ(e.reason(), pmrkit::failure_reason::upstream_failed);
        EXPECT_EQ(e.requested(), 100U);
        EXPECT_EQ(e.alignment(), alignment);
        EXPECT_EQ(e.resource_name(), "from_boost_resource");
      }
    }
  }
  EXPECT_EQ(boost_bad_alloc.calls, 2U);
}

TEST(FromBoostResource, NestsTheBoostFailureAndQuotesIt) {
  from_boost_resource over_null(bpmr::null_memory_resource());  // throws std::bad_alloc
  throwing_boost_resource<boost::container::bad_alloc_t> boost_bad_alloc;
  from_boost_resource over_boost_bad_alloc(&boost_bad_alloc);
  for (from_boost_resource* resource : {&over_null, &over_boost_bad_alloc}) {
    for (const std::size_t alignment : {8, 64}) {  // the direct and the over-aligned path
      try {
        (void)resource->allocate(100, alignment);
        FAIL() << "expected allocation_error";
      } catch (const pmrkit::allocation_error& e) {
        EXPECT_NE(std::string_view(e.what()).find("; upstream: "), std::string_view::npos)
            << e.what();
        const auto* nested = dynamic_cast<const std::nested_exception*>(&e);
        ASSERT_NE(nested, nullptr) << "the upstream's exception is not nested";
        EXPECT_NE(nested->nested_ptr(), nullptr);
      }
    }
  }
}

TEST(FromBoostResource, PassesAllocationErrorsAndOtherExceptionsUnchanged) {
  test_resource upstream(upstream_options);
  to_boost_resource boost_side(&upstream);
  from_boost_resource std_side(&boost_side);
  upstream.set_allocation_limit(0);
  try {
    (void)std_side.allocate(64, 8);
    FAIL() << "expected allocation_error";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::injected_failure);
    EXPECT_EQ(e.resource_name(), "upstream");
  }
  throwing_boost_resource<runtime_failure> throws_other;
  from_boost_resource over_other(&throws_other);
  EXPECT_THROW((void)over_other.allocate(64, 8), runtime_failure);
  expect_upstream_clean(upstream);
}

TEST(FromBoostResource, RejectsBadAlignmentsAndOverflowWithoutAskingTheUpstream) {
  test_resource upstream(upstream_options);
  to_boost_resource boost_side(&upstream);
  from_boost_resource std_side(&boost_side);
  for (const std::size_t alignment : {0, 3, 12, 48}) {
    try {
      (void)std_side.allocate(64, alignment);
      FAIL() << "expected allocation_error for alignment " << alignment;
    } catch (const pmrkit::allocation_error& e) {
      EXPECT_EQ(e.reason(), pmrkit::failure_reason::bad_alignment);
    }
  }
  try {
    (void)std_side.allocate(std::numeric_limits<std::size_t>::max() - 10, 64);
    FAIL() << "expected allocation_error";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::size_overflow);
  }
  EXPECT_EQ(upstream.stats().allocations, 0U);
}

#if PMRKIT_CHECKED
TEST(FromBoostResource, FreeingWithAnAlignmentNoAllocationHadIsAViolation) {
  pmrkit::violation_recorder violations;
  test_resource upstream(upstream_options);
  to_boost_resource boost_side(&upstream);
  from_boost_resource std_side(&boost_side);
  void* p = std_side.allocate(64, 32);
  std_side.deallocate(p, 64, 48);
  EXPECT_EQ(violations.count(pmrkit::violation_kind::alignment_mismatch), 1U);
  std_side.deallocate(p, 64, 32);
  expect_upstream_clean(upstream);
}
#endif

// --- Boost resources as upstreams of pmrkit resources --------------------------------------------

TEST(FromBoostResource, BoostPoolAsTheUpstreamOfAMultipool) {
  test_resource upstream(upstream_options);
  {
    to_boost_resource boost_side(&upstream);  // so the test_resource sees the Boost pool's chunks
    bpmr::unsynchronized_pool_resource boost_pool(&boost_side);
    from_boost_resource std_side(&boost_pool);
    pmrkit::multipool_resource pool(&std_side);
    {
      std::pmr::map<int, std::pmr::string> names(&pool);
      for (int i = 0; i < 3000; ++i)
        names.emplace(i,
                      ("name number " + std::to_string(i) + " is long enough to allocate").c_str());
      std::pmr::vector<std::byte> large(100000, std::byte{1}, &pool);  // past the size classes
      EXPECT_EQ(names.at(2999).get_allocator().resource(), &pool);
      EXPECT_GT(upstream.blocks_in_use(), 0U);
    }
    const std::size_t with_chunks = upstream.blocks_in_use();
    pool.release();
    EXPECT_LT(upstream.blocks_in_use(), with_chunks);  // the large block went back through both
  }
  expect_upstream_clean(upstream);  // and the Boost pool gave back the rest when destroyed
}

TEST(FromBoostResource, BoostMonotonicBufferAsTheUpstreamOfAChunkedArena) {
  test_resource upstream(upstream_options);
  {
    to_boost_resource boost_side(&upstream);
    bpmr::monotonic_buffer_resource boost_monotonic(&boost_side);
    from_boost_resource std_side(&boost_monotonic);
    pmrkit::chunked_arena_resource arena({.initial_chunk_size = 4096}, &std_side);
    for (int pass = 0; pass < 3; ++pass) {
      {
        std::pmr::vector<std::pmr::string> words(&arena);
        for (int i = 0; i < 1000; ++i)
          words.emplace_back("word number " + std::to_string(i) + " is long enough to allocate");
        EXPECT_TRUE(arena.owns(words.back().data()));
      }
      arena.reset();
    }
    EXPECT_GT(upstream.blocks_in_use(), 0U);
    arena.release();
    boost_monotonic.release();
    EXPECT_EQ(upstream.blocks_in_use(), 0U);
  }
  expect_upstream_clean(upstream);
}

// --- Construction and equality -------------------------------------------------------------------

TEST(BoostBridge, NullUpstreamThrowsInvalidArgument) {
  EXPECT_THROW(to_boost_resource<>(nullptr), std::invalid_argument);
  EXPECT_THROW(to_boost_arena_resource<>(nullptr), std::invalid_argument);
  EXPECT_THROW(from_boost_resource(nullptr), std::invalid_argument);
  try {
    from_boost_resource bridge(nullptr);
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "pmrkit::from_boost_resource: upstream must not be null");
  }
  try {
    to_boost_resource<> bridge(nullptr);
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "pmrkit::to_boost_resource: upstream must not be null");
  }
}

TEST(BoostBridge, AdaptorsAreEqualWhenTheirUpstreamsAre) {
  pmrkit::chunked_arena_resource arena;
  pmrkit::chunked_arena_resource other_arena;
  to_boost_resource typed(&arena);
  to_boost_resource<> untyped(&arena);
  to_boost_arena_resource dropping_frees(&arena);
  to_boost_resource elsewhere(&other_arena);
  EXPECT_TRUE(typed == untyped);
  EXPECT_TRUE(untyped.is_equal(typed));
  EXPECT_TRUE(typed == dropping_frees);
  EXPECT_FALSE(typed == elsewhere);
  EXPECT_FALSE(typed == *bpmr::new_delete_resource());
  // Boost's allocators over equal bridges compare equal, so containers move buffers.
  EXPECT_TRUE(bpmr::polymorphic_allocator<int>(&typed) ==
              bpmr::polymorphic_allocator<int>(&untyped));

  from_boost_resource std_typed(&typed);
  from_boost_resource std_untyped(&untyped);  // a different Boost resource, equal to `typed`
  from_boost_resource std_elsewhere(&elsewhere);
  EXPECT_TRUE(std_typed == std_untyped);
  EXPECT_FALSE(std_typed == std_elsewhere);
  EXPECT_FALSE(std_typed == arena);
  EXPECT_FALSE(std_typed == *std::pmr::new_delete_resource());

  // Through both directions: bridges over equal std-side bridges are equal.
  to_boost_resource back(&std_typed);
  to_boost_resource back_again(&std_untyped);
  EXPECT_TRUE(back == back_again);
  EXPECT_FALSE(back == typed);  // no unwrapping: over-aligned blocks differ in layout
}

TEST(BoostBridge, MoveBetweenContainersOverEqualBridgesKeepsTheBuffer) {
  pmrkit::chunked_arena_resource arena;
  to_boost_resource first(&arena);
  to_boost_resource<> second(&arena);
  bpmr::vector<int> source({1, 2, 3, 4}, &first);
  const int* buffer = source.data();
  bpmr::vector<int> target(&second);
  target = std::move(source);
  EXPECT_EQ(target.data(), buffer);
}

}  // namespace
