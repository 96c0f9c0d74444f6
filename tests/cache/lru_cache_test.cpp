#include <pmr/cache/lru_cache.hpp>

#include <pmr/decorator/pressure_resource.hpp>
#include <pmr/testing/test_resource.hpp>

#include "decorator/capped_resource.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <functional>
#include <memory_resource>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

using pmrkit::testing_support::capped_resource;

using pmrkit::lru_cache;
using pmrkit::pressure_level;
using pmrkit::pressure_resource;
using pmrkit::test_resource;

constexpr pmrkit::test_options upstream_options{.name = "upstream"};

/// Text long enough that a std::pmr::string holding it allocates.
std::string long_text(int i) {
  return "value " + std::to_string(i) + ", long enough to need a buffer of its own";
}

/// The keys from the most to the least recently used.
template <class Cache>
std::vector<int> keys_of(const Cache& cache) {
  std::vector<int> keys;
  cache.for_each([&](int key, const auto&) { keys.push_back(key); });
  return keys;
}

/// The cache's list and index agree: every key listed is found, and the size
/// and the charges add up.
template <class Cache>
::testing::AssertionResult consistent(const Cache& cache, std::size_t charge_each) {
  std::size_t listed = 0;
  bool all_found = true;
  cache.for_each([&](int key, const auto&) {
    ++listed;
    all_found = all_found && cache.contains(key);
  });
  if (listed != cache.size() || !all_found || cache.bytes() != listed * charge_each) {
    return ::testing::AssertionFailure()
           << "listed " << listed << ", size " << cache.size() << ", all found " << all_found
           << ", bytes " << cache.bytes();
  }
  return ::testing::AssertionSuccess();
}

/// While alive, the default resource throws on use: nothing may come from it.
struct no_default_resource {
  std::pmr::memory_resource* previous =
      std::pmr::set_default_resource(std::pmr::null_memory_resource());
  ~no_default_resource() { std::pmr::set_default_resource(previous); }
};

/// Runs `hook` from inside its `trigger_at`-th allocation (0 first) after
/// arm(), before passing the request on: a stand-in for a pressure callback
/// arriving in the middle of a container operation.
class trigger_resource final : public std::pmr::memory_resource {
 public:
  explicit trigger_resource(std::pmr::memory_resource* upstream) : upstream_(upstream) {}
  void arm(std::size_t trigger_at, std::function<void()> hook) {
    countdown_ = static_cast<long long>(trigger_at);
    hook_ = std::move(hook);
  }
  [[nodiscard]] bool fired() const { return countdown_ < 0 && !hook_; }

 private:
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    if (hook_ && countdown_-- == 0) {
      const std::function<void()> hook = std::move(hook_);
      hook_ = nullptr;
      hook();
    }
    return upstream_->allocate(bytes, alignment);
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    upstream_->deallocate(p, bytes, alignment);
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  std::pmr::memory_resource* upstream_;
  long long countdown_ = -1;
  std::function<void()> hook_;
};

// --- LRU behaviour ---------------------------------------------------------------------------

TEST(LruCache, EvictsTheLeastRecentlyUsedBeyondMaxEntries) {
  lru_cache<int, int> cache({.max_entries = 3});
  cache.put(1, 10);
  cache.put(2, 20);
  cache.put(3, 30);
  EXPECT_EQ(keys_of(cache), (std::vector<int>{3, 2, 1}));
  ASSERT_NE(cache.get(1), nullptr);  // 1 becomes the most recent
  EXPECT_EQ(*cache.get(1), 10);
  EXPECT_EQ(*cache.peek(2), 20);  // peek leaves the order alone
  EXPECT_EQ(keys_of(cache), (std::vector<int>{1, 3, 2}));
  int* four = cache.put(4, 40);
  ASSERT_NE(four, nullptr);
  EXPECT_EQ(*four, 40);
  EXPECT_EQ(keys_of(cache), (std::vector<int>{4, 1, 3}));
  EXPECT_FALSE(cache.contains(2));
  EXPECT_EQ(cache.get(2), nullptr);
  EXPECT_EQ(cache.stats().evictions, 1U);
  EXPECT_EQ(cache.stats().hits, 2U);
  EXPECT_EQ(cache.stats().misses, 1U);
  EXPECT_EQ(cache.stats().insertions, 4U);
}

TEST(LruCache, PutReplacesAndMakesTheEntryTheMostRecent) {
  lru_cache<int, std::pmr::string> cache;
  cache.put(1, "one");
  cache.put(2, "two");
  cache.put(1, "uno");
  EXPECT_EQ(cache.size(), 2U);
  EXPECT_EQ(*cache.peek(1), "uno");
  EXPECT_EQ(keys_of(cache), (std::vector<int>{1, 2}));
}

TEST(LruCache, MaxBytesCountsChargesFromPutOrSizeOf) {
  lru_cache<int, std::pmr::string> cache(
      {.max_bytes = 10,
       .size_of = [](const int&, const std::pmr::string& value) { return value.size(); }});
  cache.put(1, "abcd");  // 4
  cache.put(2, "efgh");  // 8
  EXPECT_EQ(cache.bytes(), 8U);
  cache.put(3, "ijk");  // 11: 1 goes
  EXPECT_EQ(keys_of(cache), (std::vector<int>{3, 2}));
  EXPECT_EQ(cache.bytes(), 7U);
  cache.put(4, "x", 3);  // an explicit charge wins over size_of
  EXPECT_EQ(cache.bytes(), 10U);
  EXPECT_EQ(cache.put(5, "too big", 11), nullptr) << "larger than max_bytes alone";
  EXPECT_TRUE(cache.empty());
  EXPECT_EQ(cache.bytes(), 0U);

  lru_cache<int, int> default_charge({.max_bytes = 2 * (sizeof(int) + sizeof(int))});
  default_charge.put(1, 1);
  default_charge.put(2, 2);
  default_charge.put(3, 3);
  EXPECT_EQ(keys_of(default_charge), (std::vector<int>{3, 2}));
}

TEST(LruCache, EraseEvictAndClear) {
  lru_cache<int, int> cache;
  for (int i = 0; i < 10; ++i)
    cache.put(i, i);
  EXPECT_TRUE(cache.erase(4));
  EXPECT_FALSE(cache.erase(4));
  EXPECT_EQ(cache.size(), 9U);
  EXPECT_EQ(cache.evict(3), 3U);  // 0, 1, 2
  EXPECT_EQ(keys_of(cache), (std::vector<int>{9, 8, 7, 6, 5, 3}));
  EXPECT_EQ(cache.evict(100), 6U);
  EXPECT_TRUE(cache.empty());
  cache.put(1, 1);
  cache.clear();
  EXPECT_TRUE(cache.empty());
  EXPECT_EQ(cache.bytes(), 0U);
  EXPECT_THROW((lru_cache<int, int>({}, nullptr)), std::invalid_argument);
}

TEST(LruCache, EveryByteComesFromTheGivenResourceAndGoesBack) {
  test_resource upstream(upstream_options);
  {
    const no_default_resource guard;
    lru_cache<std::pmr::string, std::pmr::string> cache({.max_entries = 50}, &upstream);
    for (int i = 0; i < 100; ++i)
      cache.put(long_text(i).c_str(), long_text(-i).c_str());
    ASSERT_NE(cache.get(std::pmr::string(long_text(99), &upstream)), nullptr);
    EXPECT_EQ(cache.get(std::pmr::string(long_text(99), &upstream))->get_allocator().resource(),
              &upstream);
    // Per entry: a list node, an index node, a key and a value buffer.
    EXPECT_GE(upstream.blocks_in_use(), 4U * 50);
    EXPECT_EQ(cache.resource(), &upstream);
  }
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
  EXPECT_TRUE(upstream.errors().empty());
}

// --- Pressure --------------------------------------------------------------------------------

class LruCachePressure : public ::testing::Test {
 protected:
  static constexpr std::size_t charge = sizeof(int) + sizeof(int);

  // The level comes from blocks the test takes; the cache's memory is elsewhere.
  test_resource upstream{upstream_options};
  pressure_resource pressure{{.capacity = 1000}, &upstream};
  lru_cache<int, int> cache{{}, &upstream, pressure};

  void fill(int count) {
    for (int i = 0; i < count; ++i)
      cache.put(i, i);
  }
};

TEST_F(LruCachePressure, EachRiseEvictsItsShare) {
  fill(16);
  void* a = pressure.allocate(500);  // low: a quarter
  EXPECT_EQ(cache.size(), 12U);
  EXPECT_EQ(keys_of(cache).back(), 4) << "the least recently used go first";
  void* b = pressure.allocate(200);  // medium: a quarter
  EXPECT_EQ(cache.size(), 9U);
  void* c = pressure.allocate(150);  // high: half, rounded up
  EXPECT_EQ(cache.size(), 4U);
  void* d = pressure.allocate(100);  // critical: all
  EXPECT_EQ(cache.size(), 0U);
  EXPECT_EQ(cache.stats().pressure_events, 4U);
  EXPECT_EQ(cache.stats().pressure_evictions, 16U);
  EXPECT_EQ(cache.stats().evictions, 0U);

  fill(8);
  pressure.deallocate(d, 100);  // falling levels evict nothing
  pressure.deallocate(c, 150);
  pressure.deallocate(b, 200);
  pressure.deallocate(a, 500);
  EXPECT_EQ(cache.size(), 8U);
  EXPECT_TRUE(consistent(cache, charge));
}

TEST_F(LruCachePressure, AJumpEvictsForTheLevelReached) {
  fill(10);
  void* p = pressure.allocate(900);  // none to high at once: half
  EXPECT_EQ(cache.size(), 5U);
  EXPECT_EQ(keys_of(cache), (std::vector<int>{9, 8, 7, 6, 5}));
  pressure.deallocate(p, 900);
}

TEST_F(LruCachePressure, PressureInsideAPutIsHandledAtEveryAllocation) {
  // The pressure arrives from inside each allocation a put makes in turn:
  // while the entry is built (the cache evicts at once) or while it is indexed
  // (the eviction waits until the put ends). Either way the put completes and
  // the cache stays consistent.
  trigger_resource trigger(&upstream);
  bool deferred_seen = false;
  bool immediate_seen = false;
  for (std::size_t at = 0;; ++at) {
    lru_cache<int, std::pmr::string> strings({}, &trigger, pressure);
    for (int i = 0; i < 8; ++i)
      strings.put(i, long_text(i).c_str());
    void* raised = nullptr;
    std::size_t size_after_callback = 0;
    trigger.arm(at, [&] {
      raised = pressure.allocate(900);  // high: half the entries
      size_after_callback = strings.size();
    });
    std::pmr::string* stored = strings.put(100, long_text(100).c_str());
    if (!trigger.fired()) break;  // `at` is past the put's last allocation
    ASSERT_NE(stored, nullptr) << "allocation " << at;
    EXPECT_EQ(std::string_view(*stored), long_text(100));
    EXPECT_EQ(keys_of(strings).front(), 100);
    EXPECT_EQ(strings.stats().pressure_events, 1U);
    EXPECT_EQ(strings.size(), size_after_callback == 8 ? 4U : 5U) << "allocation " << at;
    (size_after_callback == 8 ? deferred_seen : immediate_seen) = true;
    std::size_t listed = 0;
    strings.for_each([&](int key, const std::pmr::string& value) {
      ++listed;
      EXPECT_EQ(std::string_view(value), long_text(key));
      EXPECT_NE(strings.peek(key), nullptr);
    });
    EXPECT_EQ(listed, strings.size());
    pressure.deallocate(raised, 900);
  }
  EXPECT_TRUE(deferred_seen) << "no allocation happened while the cache was being modified";
  EXPECT_TRUE(immediate_seen) << "no allocation happened before the cache was modified";
  EXPECT_EQ(pressure.bytes_in_use(), 0U);
}

TEST(LruCacheEmergency, AFailedPutAllocationEvictsThenSucceeds) {
  // The cache's memory comes from the pressure resource over a capped
  // upstream that is full: the put's allocation fails wherever the cap falls,
  // the cache evicts everything, and the put goes through.
  test_resource base(upstream_options);
  for (std::size_t extra = 0; extra <= 512; extra += 8) {
    capped_resource capped(std::size_t{1} << 30, &base);
    pressure_resource pressure({.capacity = std::size_t{1} << 30}, &capped);
    lru_cache<int, std::pmr::string> cache({}, pressure);
    for (int i = 0; i < 8; ++i)
      cache.put(i, long_text(i).c_str());
    capped.set_limit(capped.bytes_in_use() + extra);
    std::pmr::string* stored = cache.put(100, long_text(100).c_str());
    ASSERT_NE(stored, nullptr) << "extra " << extra;
    EXPECT_EQ(std::string_view(*stored), long_text(100));
    EXPECT_EQ(keys_of(cache).front(), 100);
    std::size_t listed = 0;
    cache.for_each([&](int key, const std::pmr::string& value) {
      ++listed;
      EXPECT_EQ(std::string_view(value), long_text(key));
    });
    EXPECT_EQ(listed, cache.size());
    if (extra == 0) {
      EXPECT_EQ(cache.size(), 1U) << "all the old entries had to go";
      EXPECT_GE(pressure.stats().upstream_failures, 1U);
    }
  }
  EXPECT_EQ(base.blocks_in_use(), 0U);
}

TEST(LruCacheEmergency, WithoutPressureAFailedPutThrowsAndChangesNothing) {
  test_resource base(upstream_options);
  bool failed = false;
  bool succeeded = false;
  for (std::size_t extra = 0; extra <= 256; extra += 8) {
    capped_resource capped(std::size_t{1} << 30, &base);
    lru_cache<int, std::pmr::string> cache({}, &capped);
    for (int i = 0; i < 8; ++i)
      cache.put(i, long_text(i).c_str());
    capped.set_limit(capped.bytes_in_use() + extra);
    // A new key, then a replacement.
    try {
      cache.put(100, long_text(100).c_str());
      EXPECT_EQ(cache.size(), 9U);
      cache.erase(100);
      succeeded = true;
    } catch (const std::bad_alloc&) {
      EXPECT_FALSE(cache.contains(100));
      EXPECT_EQ(cache.size(), 8U);
      failed = true;
    }
    try {
      cache.put(3, long_text(33).c_str());
      EXPECT_EQ(std::string_view(*cache.peek(3)), long_text(33));
      EXPECT_EQ(keys_of(cache).front(), 3);
    } catch (const std::bad_alloc&) {
      EXPECT_EQ(std::string_view(*cache.peek(3)), long_text(3)) << "a failed put changes nothing";
    }
    EXPECT_EQ(cache.size(), 8U);
    std::size_t listed = 0;
    cache.for_each([&](int key, const std::pmr::string& value) {
      ++listed;
      if (key != 3) {
        EXPECT_EQ(std::string_view(value), long_text(key));
      }
    });
    EXPECT_EQ(listed, cache.size());
  }
  EXPECT_TRUE(failed && succeeded) << "the cap never fell inside a put";
  EXPECT_EQ(base.blocks_in_use(), 0U);
}

TEST(LruCacheLifetime, ACacheDestroyedBeforeItsPressureResourceUnsubscribes) {
  test_resource upstream(upstream_options);
  pressure_resource pressure({.capacity = 1000}, &upstream);
  {
    lru_cache<int, int> cache({}, pressure);
    cache.put(1, 1);
  }
  void* p = pressure.allocate(990);  // would call the destroyed cache
  EXPECT_EQ(pressure.level(), pressure_level::critical);
  pressure.deallocate(p, 990);
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
}

}  // namespace
