#include <pmr/pool/object_pool.hpp>

#include <pmr/core/error.hpp>
#include <pmr/testing/exception_test.hpp>
#include <pmr/testing/test_resource.hpp>
#include <pmr/testing/violation_recorder.hpp>

#include "pool/chunks_shrunk.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <memory_resource>
#include <set>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

// Every non-template member compiles.
template class pmrkit::object_pool<int>;

namespace {

using pmrkit::object_pool;
using pmrkit::test_resource;

constexpr pmrkit::test_options upstream_options{.name = "upstream"};

// Counts its constructions and destructions; the constructor throws on the
// construction numbered `throw_on` (1-based; 0 never).
struct counted {
  static inline int constructed = 0;
  static inline int destroyed = 0;
  static inline int throw_on = 0;
  static void reset() { constructed = destroyed = throw_on = 0; }

  explicit counted(int v) : value(v) {
    if (++constructed == throw_on) throw std::runtime_error("constructor failed");
  }
  counted(const counted&) = delete;
  counted& operator=(const counted&) = delete;
  ~counted() { ++destroyed; }

  int value;
};

class ObjectPool : public ::testing::Test {
 protected:
  void SetUp() override { counted::reset(); }
};

TEST_F(ObjectPool, AcquireConstructsAndDestroyDestroys) {
  object_pool<counted> pool;
  counted* a = pool.acquire(7);
  counted* b = pool.acquire(8);
  EXPECT_EQ(a->value, 7);
  EXPECT_EQ(b->value, 8);
  EXPECT_EQ(counted::constructed, 2);
  EXPECT_EQ(pool.live(), 2U);
  EXPECT_EQ(pool.stats().blocks_in_use, 2U);
  pool.destroy(a);
  EXPECT_EQ(counted::destroyed, 1);
  EXPECT_EQ(pool.live(), 1U);
  pool.destroy(b);
  EXPECT_EQ(counted::destroyed, 2);
  EXPECT_EQ(pool.live(), 0U);
  EXPECT_EQ(pool.stats().blocks_in_use, 0U);
}

TEST_F(ObjectPool, DestroyingNullDoesNothing) {
  object_pool<counted> pool;
  pool.destroy(nullptr);
  EXPECT_EQ(pool.live(), 0U);
  EXPECT_EQ(counted::destroyed, 0);
}

TEST_F(ObjectPool, ThrowingConstructorReturnsTheBlock) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  object_pool<counted> pool({.initial_blocks = 4}, &upstream);
  counted::throw_on = 3;
  counted* first = pool.acquire(1);
  counted* second = pool.acquire(2);
  EXPECT_THROW((void)pool.acquire(3), std::runtime_error);
  EXPECT_EQ(pool.live(), 2U);
  EXPECT_EQ(pool.stats().blocks_in_use, 2U);
  EXPECT_EQ(counted::destroyed, 0);  // a T whose constructor threw is not destroyed
  // The block went onto the free list: it is the next one handed out.
  counted* third = pool.acquire(4);
  EXPECT_EQ(third->value, 4);
  EXPECT_EQ(pool.stats().capacity_blocks, 4U);
  EXPECT_EQ(pool.stats().peak_blocks_in_use, 3U);
  pool.destroy(third);
  pool.destroy(second);
  pool.destroy(first);
  EXPECT_EQ(pool.live(), 0U);
  EXPECT_TRUE(upstream.errors().empty());
}

// Allocates from the upstream in its constructor, so that a failure can
// strike the pool's chunk or the object's own buffer.
struct buffered {
  buffered(int v, std::pmr::memory_resource* upstream) : values(16, v, upstream) {}
  std::pmr::vector<int> values;
};

TEST_F(ObjectPool, NothingLeaksWhenAnyAllocationFails) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  const std::size_t runs = pmrkit::exception_test(upstream, [&] {
    object_pool<buffered> pool({.initial_blocks = 2, .max_blocks_per_chunk = 8}, &upstream);
    std::vector<object_pool<buffered>::handle> handles;
    try {
      for (int i = 0; i < 20; ++i)
        handles.push_back(pool.make(i, &upstream));
    } catch (const std::bad_alloc&) {
      EXPECT_EQ(pool.live(), handles.size());
      EXPECT_EQ(pool.stats().blocks_in_use, handles.size());
      throw;
    }
    EXPECT_EQ(handles[19]->values[0], 19);
  });
  // 20 buffers and 2 + 4 + 8 + 8 blocks in 4 chunks: 24 allocations, 25 runs.
  EXPECT_EQ(runs, 25U);
  EXPECT_TRUE(upstream.errors().empty());
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
}

TEST_F(ObjectPool, HandleDestroysOnScopeExit) {
  object_pool<counted> pool;
  {
    object_pool<counted>::handle h = pool.make(5);
    EXPECT_EQ(h->value, 5);
    EXPECT_EQ(h.get_deleter().pool(), &pool);
    EXPECT_EQ(pool.live(), 1U);
    object_pool<counted>::handle moved = std::move(h);
    EXPECT_FALSE(h);
    EXPECT_EQ(pool.live(), 1U);
  }
  EXPECT_EQ(pool.live(), 0U);
  EXPECT_EQ(counted::destroyed, 1);
  // Early reset, and ownership taken back from a handle.
  object_pool<counted>::handle h = pool.make(6);
  h.reset();
  EXPECT_EQ(counted::destroyed, 2);
  counted* raw = pool.make(7).release();
  EXPECT_EQ(pool.live(), 1U);
  pool.destroy(raw);
  EXPECT_EQ(pool.live(), 0U);
  object_pool<counted>::handle empty;  // a default deleter is never called on null
  EXPECT_EQ(empty.get_deleter().pool(), nullptr);
}

TEST_F(ObjectPool, BlocksAreReusedAfterDestroy) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  object_pool<std::string> pool({.initial_blocks = 8}, &upstream);
  std::vector<std::string*> strings;
  for (int i = 0; i < 8; ++i)
    strings.push_back(pool.acquire(3, static_cast<char>('a' + i)));
  const std::set<std::string*> first_round(strings.begin(), strings.end());
  for (std::string* s : strings)
    pool.destroy(s);
  strings.clear();
  for (int i = 0; i < 8; ++i)
    strings.push_back(pool.acquire("again"));
  EXPECT_EQ(std::set<std::string*>(strings.begin(), strings.end()), first_round);
  EXPECT_EQ(pool.stats().chunk_count, 1U);
  EXPECT_EQ(upstream.stats().total_blocks, 1U);
  for (std::string* s : strings)
    pool.destroy(s);
}

TEST_F(ObjectPool, ChunksFollowTheOptions) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  object_pool<double> pool(
      {.initial_blocks = 2, .max_blocks_per_chunk = 8, .growth_factor = 2, .name = "doubles"},
      &upstream);
  EXPECT_EQ(pool.name(), "doubles");
  EXPECT_EQ(pool.upstream_resource(), &upstream);
  EXPECT_EQ(pool.resource().options().block_size, sizeof(double));
  EXPECT_EQ(pool.resource().options().block_alignment, alignof(double));
  EXPECT_EQ(upstream.stats().total_blocks, 0U);  // nothing taken before the first acquire
  std::vector<double*> values;
  for (int i = 0; i < 2 + 4 + 8 + 8; ++i)
    values.push_back(pool.acquire(i * 0.5));
  EXPECT_EQ(pool.stats().chunk_count, 4U);
  EXPECT_EQ(pool.stats().capacity_blocks, 22U);
  for (std::size_t i = 0; i < values.size(); ++i)
    EXPECT_EQ(*values[i], static_cast<double>(i) * 0.5);
  for (double* v : values)
    pool.destroy(v);
}

TEST_F(ObjectPool, InvalidOptionsNameTheField) {
  const auto message_of = [](pmrkit::object_pool_options options) {
    try {
      object_pool<int> pool(options);
    } catch (const std::invalid_argument& error) {
      return std::string(error.what());
    }
    return std::string("no exception");
  };
  EXPECT_NE(message_of({.initial_blocks = 0}).find("initial_blocks"), std::string::npos);
  EXPECT_NE(
      message_of({.initial_blocks = 8, .max_blocks_per_chunk = 4}).find("max_blocks_per_chunk"),
      std::string::npos);
  EXPECT_NE(message_of({.growth_factor = 17}).find("growth_factor"), std::string::npos);
  EXPECT_THROW(object_pool<int>({}, nullptr), std::invalid_argument);
}

// Built the ways every resource is (docs/contract.md), `{}` meaning object_pool_options.
TEST_F(ObjectPool, ConstructsTheWaysEveryResourceDoes) {
  using pool_type = object_pool<int>;
  static_assert(std::is_default_constructible_v<pool_type>);
  static_assert(std::is_constructible_v<pool_type, test_resource*>);
  static_assert(std::is_constructible_v<pool_type, pmrkit::object_pool_options>);
  static_assert(std::is_constructible_v<pool_type, pmrkit::object_pool_options, test_resource*>);
  static_assert(requires { pool_type({}); });
  static_assert(requires(std::pmr::memory_resource * upstream) { pool_type({}, upstream); });
  static_assert(!std::is_copy_constructible_v<pool_type>);
  static_assert(!std::is_move_constructible_v<pool_type>);
  static_assert(!std::is_convertible_v<std::pmr::memory_resource*, pool_type>);
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  std::pmr::memory_resource* base = &upstream;
  pool_type a;
  pool_type b(base);
  pool_type c(pmrkit::object_pool_options{.name = "c"});
  pool_type d(pmrkit::object_pool_options{.initial_blocks = 4}, &upstream);
  pool_type e({});
  pool_type f({}, &upstream);
  pool_type g({.initial_blocks = 2, .name = "g"}, base);
  EXPECT_EQ(a.upstream_resource(), std::pmr::get_default_resource());
  EXPECT_EQ(b.upstream_resource(), &upstream);
  EXPECT_EQ(c.name(), "c");
  EXPECT_EQ(d.upstream_resource(), &upstream);
  EXPECT_EQ(e.name(), "object_pool");
  EXPECT_EQ(f.upstream_resource(), &upstream);
  g.destroy(g.acquire(7));
  EXPECT_EQ(g.stats().capacity_blocks, 2U);
}

TEST_F(ObjectPool, UpstreamFailureThrowsAndLeavesThePoolUsable) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  object_pool<counted> pool({.initial_blocks = 1, .growth_factor = 1}, &upstream);
  counted* first = pool.acquire(1);
  upstream.set_allocation_limit(0);
  EXPECT_THROW((void)pool.acquire(2), pmrkit::allocation_error);
  EXPECT_EQ(counted::constructed, 1);  // no block, no construction
  EXPECT_EQ(pool.live(), 1U);
  upstream.set_allocation_limit(-1);
  counted* second = pool.acquire(3);
  EXPECT_EQ(second->value, 3);
  pool.destroy(second);
  pool.destroy(first);
}

TEST_F(ObjectPool, ShrinkGivesBackChunksWithNoLiveObjects) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  object_pool<std::uint64_t> pool({.initial_blocks = 4, .max_blocks_per_chunk = 4}, &upstream);
  std::vector<std::uint64_t*> values;
  for (std::uint64_t i = 0; i < 8; ++i)
    values.push_back(pool.acquire(i));
  ASSERT_EQ(pool.stats().chunk_count, 2U);
  for (std::size_t i = 0; i < 4; ++i)
    pool.destroy(values[i]);
  EXPECT_EQ(chunks_shrunk(pool), 1U);
  EXPECT_EQ(upstream.blocks_in_use(), 1U);
  for (std::size_t i = 4; i < 8; ++i) {
    EXPECT_EQ(*values[i], i);
    pool.destroy(values[i]);
  }
  EXPECT_EQ(chunks_shrunk(pool), 1U);
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
}

struct alignas(64) cache_line {
  explicit cache_line(unsigned char fill) { bytes.fill(fill); }
  std::array<unsigned char, 40> bytes;
};

TEST_F(ObjectPool, OverAlignedObjectsAreAligned) {
  object_pool<cache_line> pool({.initial_blocks = 3});
  std::vector<cache_line*> lines;
  for (int i = 0; i < 20; ++i) {
    lines.push_back(pool.acquire(static_cast<unsigned char>(i)));
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(lines.back()) % 64, 0U);
  }
  EXPECT_EQ(pool.stats().block_size, 64U);
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(lines[i]->bytes[39], static_cast<unsigned char>(i));
  for (cache_line* line : lines)
    pool.destroy(line);
}

TEST_F(ObjectPool, ObjectsSmallerThanAPointerGetABlockEach) {
  object_pool<char> pool({.initial_blocks = 16});
  std::vector<char*> chars;
  std::set<char*> distinct;
  for (int i = 0; i < 40; ++i) {
    chars.push_back(pool.acquire(static_cast<char>('A' + i)));
    distinct.insert(chars.back());
  }
  EXPECT_EQ(distinct.size(), 40U);
  EXPECT_GE(pool.stats().block_size, sizeof(void*));  // room for the free-list link
  for (int i = 0; i < 40; ++i)
    EXPECT_EQ(*chars[i], static_cast<char>('A' + i));
  // Freed blocks hold the link; the objects still live keep their value.
  for (int i = 0; i < 40; i += 2)
    pool.destroy(chars[i]);
  for (int i = 1; i < 40; i += 2)
    EXPECT_EQ(*chars[i], static_cast<char>('A' + i));
  for (int i = 1; i < 40; i += 2)
    pool.destroy(chars[i]);
  EXPECT_EQ(pool.live(), 0U);
}

// No default constructor; takes a move-only argument and an lvalue reference.
struct session {
  session(std::unique_ptr<int> token, int& counter, std::string&& label)
      : token(std::move(token)), counter(counter), label(std::move(label)) {
    ++counter;
  }
  std::unique_ptr<int> token;
  int& counter;
  std::string label;
};
static_assert(!std::is_default_constructible_v<session>);

TEST_F(ObjectPool, ArgumentsAreForwardedPerfectly) {
  object_pool<session> pool;
  int counter = 0;
  auto token = std::make_unique<int>(42);
  const int* raw_token = token.get();
  std::string label = "a label long enough to own a heap buffer";
  const char* label_buffer = label.data();
  session* s = pool.acquire(std::move(token), counter, std::move(label));
  EXPECT_FALSE(token);
  EXPECT_EQ(s->token.get(), raw_token);  // moved, not copied
  EXPECT_EQ(s->label.data(), label_buffer);
  EXPECT_EQ(&s->counter, &counter);  // bound to the lvalue itself
  EXPECT_EQ(counter, 1);
  object_pool<session>::handle h = pool.make(std::make_unique<int>(7), counter, "temporary");
  EXPECT_EQ(*h->token, 7);
  EXPECT_EQ(counter, 2);
  pool.destroy(s);
}

struct point {
  int x;
  int y;
};

TEST_F(ObjectPool, AggregatesAreInitialisedFromTheirMembers) {
  object_pool<point> pool;
  point* p = pool.acquire(3, 4);
  point* zero = pool.acquire();  // value-initialised
  EXPECT_EQ(p->x, 3);
  EXPECT_EQ(p->y, 4);
  EXPECT_EQ(zero->x, 0);
  EXPECT_EQ(zero->y, 0);
  pool.destroy(zero);
  pool.destroy(p);
}

TEST_F(ObjectPool, SharesItsResourceWithContainersOfTSizedNodes) {
  struct alignas(alignof(std::max_align_t)) slot {
    std::byte bytes[64];
  };
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  {
    object_pool<slot> pool({}, &upstream);
    slot* object = pool.acquire();
    std::pmr::list<int> list({1, 2, 3}, &pool.resource());  // list nodes fit in a slot
    EXPECT_EQ(pool.live(), 1U);
    EXPECT_EQ(pool.stats().blocks_in_use, 4U);
    EXPECT_EQ(pool.stats().large_blocks_in_use, 0U);
    pool.destroy(object);
  }
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
  EXPECT_TRUE(upstream.errors().empty());
}

TEST_F(ObjectPool, LiveObjectsAtDestructionAreReportedAsALeak) {
  if (!PMRKIT_CHECKED) GTEST_SKIP() << "violations are reported in checked builds";
  pmrkit::violation_recorder recorder;
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  {
    object_pool<counted> pool({.name = "orders"}, &upstream);
    (void)pool.acquire(1);
    (void)pool.acquire(2);
    pool.destroy(pool.acquire(3));
  }
  ASSERT_EQ(recorder.count(pmrkit::violation_kind::leak), 1U);
  ASSERT_EQ(recorder.size(), 1U);
  const pmrkit::violation_recorder::entry leak = recorder.violations()[0];
  EXPECT_EQ(leak.resource_name, "orders");
  EXPECT_EQ(leak.size / sizeof(counted), 2U);  // the count of live objects, in bytes
  EXPECT_EQ(leak.size, 2 * sizeof(counted));
  EXPECT_EQ(counted::destroyed, 1);         // the live ones are not destroyed...
  EXPECT_EQ(upstream.blocks_in_use(), 0U);  // ...but their memory goes back
}

TEST_F(ObjectPool, NoLeakIsReportedWhenEveryObjectWasDestroyed) {
  if (!PMRKIT_CHECKED) GTEST_SKIP() << "violations are reported in checked builds";
  pmrkit::violation_recorder recorder;
  {
    object_pool<counted> pool;
    pool.destroy(pool.acquire(1));
    (void)pool.make(2);
  }
  EXPECT_TRUE(recorder.empty());
}

TEST_F(ObjectPool, DestroyingAForeignPointerIsAViolationAndDestroysNothing) {
  if (!PMRKIT_CHECKED) GTEST_SKIP() << "violations are reported in checked builds";
  pmrkit::violation_recorder recorder;
  object_pool<counted> pool({.name = "orders"});
  counted* mine = pool.acquire(1);
  counted elsewhere(2);
  pool.destroy(&elsewhere);
  ASSERT_EQ(recorder.count(pmrkit::violation_kind::foreign_pointer), 1U);
  EXPECT_EQ(recorder.violations()[0].resource_name, "orders");
  EXPECT_EQ(recorder.violations()[0].pointer, &elsewhere);
  EXPECT_EQ(counted::destroyed, 0);
  EXPECT_EQ(pool.live(), 1U);
  pool.destroy(mine);
  EXPECT_EQ(pool.live(), 0U);
}

TEST_F(ObjectPool, DestroyingTwiceIsReportedByThePool) {
  if (!PMRKIT_CHECKED) GTEST_SKIP() << "violations are reported in checked builds";
  pmrkit::violation_recorder recorder;
  object_pool<int> pool;  // trivially destructible: destroying twice does nothing
  int* a = pool.acquire(1);
  int* b = pool.acquire(2);
  pool.destroy(a);
  pool.destroy(a);
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::double_free), 1U);
  EXPECT_EQ(pool.live(), 1U);  // the second destroy changed nothing
  pool.destroy(b);
  EXPECT_EQ(pool.live(), 0U);
}

}  // namespace
