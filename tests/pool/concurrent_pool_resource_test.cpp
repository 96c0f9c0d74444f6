#include <pmr/pool/concurrent_pool_resource.hpp>

#include <pmr/core/poison.hpp>
#include <pmr/testing/test_resource.hpp>
#include <pmr/testing/violation_recorder.hpp>

#include "conformance/conformance.hpp"
#include "pool/chunks_shrunk.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <memory_resource>
#include <mutex>
#include <new>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace {

using pmrkit::concurrent_pool_options;
using pmrkit::concurrent_pool_resource;
using pmrkit::test_resource;
namespace classes = pmrkit::detail::size_classes;

struct concurrent_pool_traits {
  using resource_type = concurrent_pool_resource;
  static constexpr std::string_view name = "pmrkit::concurrent_pool_resource (defaults)";
  static constexpr pmrkit::conformance::capabilities caps{};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(concurrent_pool_options{}, upstream);
  }
  static void release(resource_type& r) { r.release(); }
};

// Small classes, chunks and caches: more large blocks, more depot traffic.
struct small_concurrent_pool_traits {
  using resource_type = concurrent_pool_resource;
  static constexpr std::string_view name =
      "pmrkit::concurrent_pool_resource (1 KiB, 8 blocks per chunk, small caches)";
  static constexpr pmrkit::conformance::capabilities caps{};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(
        concurrent_pool_options{.max_blocks_per_chunk = 8,
                                .largest_required_pool_block = 1024,
                                .cache_bytes_per_class = 256},
        upstream);
  }
  static void release(resource_type& r) { r.release(); }
};

using concurrent_pool_types =
    ::testing::Types<concurrent_pool_traits, small_concurrent_pool_traits>;
INSTANTIATE_TYPED_TEST_SUITE_P(concurrent_pool, resource_conformance, concurrent_pool_types,
                               pmrkit::conformance::traits_names);

constexpr pmrkit::test_options upstream_options{.name = "upstream"};

// A one-shot signal between threads.
class gate {
 public:
  void open() {
    const std::lock_guard lock(mutex_);
    open_ = true;
    opened_.notify_all();
  }
  void wait() {
    std::unique_lock lock(mutex_);
    opened_.wait(lock, [this] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable opened_;
  bool open_ = false;
};

// The size class of a plain request of `bytes`.
std::size_t class_of(std::size_t bytes) {
  return classes::index_of(bytes);
}

TEST(ConcurrentPoolResource, AFreedBlockIsTheNextOneHandedOut) {
  concurrent_pool_resource pool;
  void* a = pool.allocate(24, 8);
  void* b = pool.allocate(24, 8);
  EXPECT_NE(a, b);
  pool.deallocate(a, 24, 8);
  EXPECT_EQ(pool.allocate(20, 4), a);  // the same class
  pool.deallocate(b, 24, 8);
  pool.deallocate(a, 20, 4);
}

TEST(ConcurrentPoolResource, RequestsAreServedByTheBlocksOfTheirClass) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  concurrent_pool_resource pool({}, &upstream);
  void* p = pool.allocate(100, 8);
  void* aligned = pool.allocate(40, 64);  // moves up to the first class aligned to 64
  EXPECT_TRUE(pool.owns(p));
  EXPECT_TRUE(pool.owns(aligned));
  EXPECT_TRUE(pmrkit::is_aligned(aligned, 64));
  EXPECT_EQ(pool.class_stats(class_of(100)).block_size, 112U);
  EXPECT_EQ(pool.class_stats(class_of(100)).blocks_in_use, 1U);
  EXPECT_EQ(pool.class_stats(class_of(64)).blocks_in_use, 1U);
  const pmrkit::concurrent_pool_stats stats = pool.stats();
  EXPECT_EQ(stats.blocks_in_use, 2U);
  EXPECT_EQ(stats.bytes_in_use, 112U + 64U);
  EXPECT_EQ(stats.chunk_count, 2U);
  EXPECT_EQ(stats.thread_caches, 1U);
  EXPECT_EQ(stats.large_blocks_in_use, 0U);
  EXPECT_EQ(stats.bytes_from_upstream, upstream.bytes_in_use());
  pool.deallocate(p, 100, 8);
  pool.deallocate(aligned, 40, 64);
  EXPECT_EQ(pool.stats().blocks_in_use, 0U);
}

TEST(ConcurrentPoolResource, LargeAndOverAlignedRequestsGoUpstreamAndAreReleased) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  concurrent_pool_resource pool({.largest_required_pool_block = 1024}, &upstream);
  void* large = pool.allocate(5000, 8);
  void* over_aligned = pool.allocate(64, 8192);
  EXPECT_FALSE(pool.owns(large));
  EXPECT_TRUE(pmrkit::is_aligned(over_aligned, 8192));
  EXPECT_EQ(pool.stats().large_blocks_in_use, 2U);
  EXPECT_EQ(pool.stats().large_bytes_in_use, 5064U);
  EXPECT_EQ(pool.stats().chunk_count, 0U);
  pool.deallocate(large, 5000, 8);
  EXPECT_EQ(pool.stats().large_blocks_in_use, 1U);
  pool.release();  // the remaining large block goes back too
  EXPECT_EQ(upstream.stats().blocks_in_use, 0U);
  EXPECT_TRUE(upstream.errors().empty());
}

TEST(ConcurrentPoolResource, AFullCacheGivesItsOlderHalfToTheDepot) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  // 32-byte blocks: a cache keeps 16 of them, and moves 8 at a time.
  concurrent_pool_resource pool({.cache_bytes_per_class = 512}, &upstream);
  std::vector<void*> blocks;
  for (int i = 0; i < 40; ++i)
    blocks.push_back(pool.allocate(32, 8));
  const std::size_t upstream_blocks = upstream.stats().total_blocks;
  for (void* p : blocks)
    pool.deallocate(p, 32, 8);
  pmrkit::concurrent_pool_class_stats stats = pool.class_stats(class_of(32));
  EXPECT_EQ(stats.blocks_in_use, 0U);
  EXPECT_LE(stats.blocks_cached, 16U);
  EXPECT_GT(stats.blocks_in_depot, 0U);
  EXPECT_EQ(stats.blocks_in_depot % 8, 0U);
  EXPECT_EQ(stats.blocks_cached + stats.blocks_in_depot, stats.blocks_out);
  // Allocating them again takes the batches back: no new chunk.
  for (void*& p : blocks)
    p = pool.allocate(32, 8);
  EXPECT_EQ(upstream.stats().total_blocks, upstream_blocks);
  stats = pool.class_stats(class_of(32));
  EXPECT_EQ(stats.blocks_in_use, 40U);
  for (void* p : blocks)
    pool.deallocate(p, 32, 8);
}

TEST(ConcurrentPoolResource, AFullCacheKeepsItsNewestBlocksAndHandsThemOutNewestFirst) {
  // 32-byte blocks: a cache keeps 16 of them, and gives the oldest 8 to the depot when full.
  concurrent_pool_resource pool({.cache_bytes_per_class = 512});
  std::vector<void*> blocks;
  for (int i = 0; i < 24; ++i)  // three batches of 8 carved: the cache is empty again
    blocks.push_back(pool.allocate(32, 8));
  ASSERT_EQ(pool.class_stats(class_of(32)).blocks_cached, 0U);
  for (std::size_t i = 0; i < 17; ++i)
    pool.deallocate(blocks[i], 32, 8);
  const pmrkit::concurrent_pool_class_stats stats = pool.class_stats(class_of(32));
  EXPECT_EQ(stats.blocks_cached, 9U);  // 8 kept, then the 17th
  EXPECT_EQ(stats.blocks_in_depot, 8U);
  for (int i = 16; i >= 8; --i)
    EXPECT_EQ(pool.allocate(32, 8), blocks[static_cast<std::size_t>(i)]) << i;
  // Then the oldest eight, back from the depot as one batch.
  std::vector<void*> refilled;
  for (int i = 0; i < 8; ++i)
    refilled.push_back(pool.allocate(32, 8));
  std::ranges::sort(refilled);
  std::vector<void*> oldest(blocks.begin(), blocks.begin() + 8);
  std::ranges::sort(oldest);
  EXPECT_EQ(refilled, oldest);
  EXPECT_EQ(pool.class_stats(class_of(32)).blocks_in_depot, 0U);
  for (void* p : blocks)
    pool.deallocate(p, 32, 8);
}

TEST(ConcurrentPoolResource, AnExitingThreadReturnsItsCacheForOthersToReuse) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  concurrent_pool_resource pool({}, &upstream);
  const auto churn = [&pool] {
    std::vector<void*> blocks;
    for (int i = 0; i < 1000; ++i)
      blocks.push_back(pool.allocate(48, 16));
    for (void* p : blocks)
      pool.deallocate(p, 48, 16);
  };
  std::thread(churn).join();
  pmrkit::concurrent_pool_stats stats = pool.stats();
  EXPECT_EQ(stats.thread_caches, 0U);
  EXPECT_EQ(stats.blocks_cached, 0U);
  EXPECT_EQ(stats.blocks_in_use, 0U);
  const std::size_t chunks = stats.chunk_count;
  const std::size_t upstream_blocks = upstream.stats().total_blocks;
  EXPECT_GT(chunks, 0U);
  // A second thread is served by the same chunks.
  std::thread(churn).join();
  stats = pool.stats();
  EXPECT_EQ(stats.chunk_count, chunks);
  EXPECT_EQ(upstream.stats().total_blocks, upstream_blocks);
  EXPECT_EQ(stats.thread_caches, 0U);
  EXPECT_EQ(stats.blocks_cached, 0U);
  // Every block is back in the chunks, so shrink returns them all.
  EXPECT_EQ(chunks_shrunk(pool), chunks);
  EXPECT_EQ(upstream.stats().blocks_in_use, 0U);
}

TEST(ConcurrentPoolResource, ShrinkReturnsTheDepotsBatchesToTheirChunks) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  concurrent_pool_resource pool({.cache_bytes_per_class = 256}, &upstream);
  std::vector<void*> blocks;
  for (int i = 0; i < 500; ++i)
    blocks.push_back(pool.allocate(64, 8));
  for (void* p : blocks)
    pool.deallocate(p, 64, 8);
  ASSERT_GT(pool.stats().blocks_in_depot, 0U);
  // The blocks this thread still caches keep their chunk; all others go back.
  EXPECT_GT(chunks_shrunk(pool), 0U);
  const pmrkit::concurrent_pool_class_stats stats = pool.class_stats(class_of(64));
  EXPECT_EQ(stats.blocks_in_depot, 0U);
  EXPECT_EQ(stats.blocks_out, stats.blocks_cached);
  EXPECT_LE(stats.chunk_count, 1U);
  blocks.clear();
  for (int i = 0; i < 100; ++i)
    blocks.push_back(pool.allocate(64, 8));
  for (void* p : blocks)
    pool.deallocate(p, 64, 8);
}

TEST(ConcurrentPoolResource, BlocksHandedBetweenThreadsComeBackIntact) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  concurrent_pool_resource pool({}, &upstream);
  constexpr int count = 2000;
  std::vector<unsigned char*> blocks;
  std::thread producer([&] {
    for (int i = 0; i < count; ++i) {
      auto* p = static_cast<unsigned char*>(pool.allocate(80, 8));
      std::memset(p, i & 0xFF, 80);
      blocks.push_back(p);
    }
  });
  producer.join();
  std::thread consumer([&] {
    for (int i = 0; i < count; ++i) {
      EXPECT_EQ(blocks[i][79], static_cast<unsigned char>(i & 0xFF));
      pool.deallocate(blocks[i], 80, 8);
    }
  });
  consumer.join();
  EXPECT_EQ(pool.stats().blocks_in_use, 0U);
  EXPECT_EQ(pool.stats().thread_caches, 0U);
  // This thread reuses what the consumer freed.
  const std::size_t upstream_blocks = upstream.stats().total_blocks;
  for (int i = 0; i < count; ++i)
    blocks[i] = static_cast<unsigned char*>(pool.allocate(80, 8));
  EXPECT_EQ(upstream.stats().total_blocks, upstream_blocks);
  for (unsigned char* p : blocks)
    pool.deallocate(p, 80, 8);
}

// Each block carries its owner's stamp in its first and last bytes, so two
// threads holding the same block, or a block overwritten, is noticed.
struct stamped_block {
  unsigned char* pointer;
  std::size_t size;
  std::size_t alignment;
  unsigned char stamp;
};

void stamp(const stamped_block& b) {
  b.pointer[0] = b.stamp;
  b.pointer[b.size - 1] = b.stamp;
}

bool stamp_intact(const stamped_block& b) {
  return b.pointer[0] == b.stamp && b.pointer[b.size - 1] == b.stamp;
}

TEST(ConcurrentPoolResource, StressWithCrossThreadFreesReturnsEverythingUpstream) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  constexpr int threads = 4;
  constexpr int operations = 20000;
  {
    concurrent_pool_resource pool(
        {.largest_required_pool_block = 8192, .cache_bytes_per_class = 4096}, &upstream);
    std::mutex queue_mutex;
    std::deque<stamped_block> queue;  // blocks handed from one thread to another
    std::vector<std::thread> workers;
    std::vector<int> failures(threads, 0);
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&, t] {
        std::uint32_t random = 0x9E3779B9U * static_cast<std::uint32_t>(t + 1);
        const auto next = [&random] {
          random ^= random << 13;
          random ^= random >> 17;
          random ^= random << 5;
          return random;
        };
        std::vector<stamped_block> own;
        for (int i = 0; i < operations; ++i) {
          const std::uint32_t pick = next() % 100;
          if (pick < 50 || own.empty()) {
            const std::uint32_t kind = next() % 100;
            std::size_t size = 1 + next() % 256;
            std::size_t alignment = std::size_t{1} << (next() % 5);
            if (kind >= 90) size = 257 + next() % 8000;    // large classes
            if (kind >= 97) size = 8193 + next() % 20000;  // large blocks
            if (kind == 50) alignment = 8192;              // over-aligned
            stamped_block b{static_cast<unsigned char*>(pool.allocate(size, alignment)), size,
                            alignment, static_cast<unsigned char>(next())};
            stamp(b);
            own.push_back(b);
          } else if (pick < 75) {
            // Free one of its own, or hand it to another thread.
            const std::size_t index = next() % own.size();
            const stamped_block b = own[index];
            own[index] = own.back();
            own.pop_back();
            if (next() % 2 == 0) {
              const std::lock_guard lock(queue_mutex);
              queue.push_back(b);
            } else {
              failures[t] += stamp_intact(b) ? 0 : 1;
              pool.deallocate(b.pointer, b.size, b.alignment);
            }
          } else {
            // Free a block another thread handed over.
            stamped_block b{};
            {
              const std::lock_guard lock(queue_mutex);
              if (queue.empty()) continue;
              b = queue.front();
              queue.pop_front();
            }
            failures[t] += stamp_intact(b) ? 0 : 1;
            pool.deallocate(b.pointer, b.size, b.alignment);
          }
          if (i % 1000 == 0) (void)pool.stats();  // read while others write
        }
        for (const stamped_block& b : own) {
          failures[t] += stamp_intact(b) ? 0 : 1;
          pool.deallocate(b.pointer, b.size, b.alignment);
        }
      });
    }
    for (std::thread& worker : workers)
      worker.join();
    const std::size_t this_threads_caches = queue.empty() ? 0 : 1;
    for (const stamped_block& b : queue) {
      EXPECT_TRUE(stamp_intact(b));
      pool.deallocate(b.pointer, b.size, b.alignment);
    }
    for (int t = 0; t < threads; ++t)
      EXPECT_EQ(failures[t], 0) << "thread " << t << " found blocks overwritten";
    const pmrkit::concurrent_pool_stats stats = pool.stats();
    EXPECT_EQ(stats.blocks_in_use, 0U);
    EXPECT_EQ(stats.large_blocks_in_use, 0U);
    EXPECT_EQ(stats.thread_caches, this_threads_caches);  // from draining the queue
    pool.release();
    EXPECT_EQ(upstream.stats().blocks_in_use, 0U);
    // Usable again, from several threads.
    std::vector<std::thread> again;
    for (int t = 0; t < threads; ++t) {
      again.emplace_back([&pool] {
        std::pmr::map<int, std::pmr::string> map(&pool);
        for (int i = 0; i < 500; ++i)
          map.emplace(i, std::pmr::string(static_cast<std::size_t>(i % 100), 'x'));
      });
    }
    for (std::thread& worker : again)
      worker.join();
    EXPECT_EQ(pool.stats().blocks_in_use, 0U);
  }
  EXPECT_EQ(upstream.stats().blocks_in_use, 0U);
  EXPECT_TRUE(upstream.errors().empty());
}

TEST(ConcurrentPoolResource, AResourceMayBeDestroyedBeforeAThreadThatUsedItExits) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  auto pool = std::make_unique<concurrent_pool_resource>(concurrent_pool_options{}, &upstream);
  gate used;
  gate destroyed;
  std::thread worker([&] {
    std::vector<void*> blocks;
    for (int i = 0; i < 100; ++i)
      blocks.push_back(pool->allocate(16 * (1 + i % 8), 8));
    for (int i = 0; i < 100; ++i)
      pool->deallocate(blocks[i], 16 * (1 + i % 8), 8);
    used.open();
    destroyed.wait();
    // Another resource: its cache is made while the registry forgets the dead one.
    concurrent_pool_resource other({}, &upstream);
    other.deallocate(other.allocate(32), 32);
  });  // exits: its cache of the destroyed resource is not touched
  used.wait();
  EXPECT_EQ(pool->stats().thread_caches, 1U);
  EXPECT_GT(pool->stats().blocks_cached, 0U);
  pool.reset();
  EXPECT_EQ(upstream.stats().blocks_in_use, 0U);
  destroyed.open();
  worker.join();
  EXPECT_EQ(upstream.stats().blocks_in_use, 0U);
  EXPECT_TRUE(upstream.errors().empty());
}

TEST(ConcurrentPoolResource, AThreadMayUseTwoResourcesInTurn) {
  test_resource upstream_a(upstream_options, std::pmr::new_delete_resource());
  test_resource upstream_b(upstream_options, std::pmr::new_delete_resource());
  concurrent_pool_resource a({.name = "a"}, &upstream_a);
  concurrent_pool_resource b({.name = "b"}, &upstream_b);
  std::thread worker([&] {
    std::vector<void*> from_a;
    std::vector<void*> from_b;
    for (int i = 0; i < 300; ++i) {
      from_a.push_back(a.allocate(32));
      from_b.push_back(b.allocate(32));
    }
    for (int i = 0; i < 300; ++i) {
      EXPECT_TRUE(a.owns(from_a[i]));
      EXPECT_TRUE(b.owns(from_b[i]));
      EXPECT_FALSE(a.owns(from_b[i]));
      b.deallocate(from_b[i], 32);
      a.deallocate(from_a[i], 32);
    }
    // A block of a freed to a stays with a.
    void* p = a.allocate(32);
    void* q = b.allocate(32);
    EXPECT_TRUE(a.owns(p));
    EXPECT_TRUE(b.owns(q));
    a.deallocate(p, 32);
    b.deallocate(q, 32);
    EXPECT_EQ(a.stats().thread_caches, 1U);
    EXPECT_EQ(b.stats().thread_caches, 1U);
  });
  worker.join();
  EXPECT_EQ(a.stats().blocks_in_use, 0U);
  EXPECT_EQ(b.stats().blocks_in_use, 0U);
  EXPECT_EQ(a.stats().thread_caches, 0U);
  EXPECT_EQ(b.stats().blocks_cached, 0U);
  EXPECT_TRUE(upstream_a.errors().empty());
  EXPECT_TRUE(upstream_b.errors().empty());
}

TEST(ConcurrentPoolResource, ANewResourceAtTheSameAddressSeesNoneOfTheOldCache) {
  test_resource first_upstream(upstream_options, std::pmr::new_delete_resource());
  test_resource second_upstream(upstream_options, std::pmr::new_delete_resource());
  alignas(concurrent_pool_resource) std::byte storage[sizeof(concurrent_pool_resource)];
  gate used_first;
  gate second_built;
  auto* first = new (storage) concurrent_pool_resource({}, &first_upstream);
  // This thread and a worker each leave a block in their cache of the first resource.
  first->deallocate(first->allocate(32), 32);
  std::thread worker([&] {
    first->deallocate(first->allocate(32), 32);
    used_first.open();
    second_built.wait();
    auto* second = std::launder(reinterpret_cast<concurrent_pool_resource*>(storage));
    void* fresh = second->allocate(32);
    EXPECT_TRUE(second->owns(fresh));
    second->deallocate(fresh, 32);
  });
  used_first.wait();
  const std::size_t first_upstream_blocks = first_upstream.stats().total_blocks;
  first->~concurrent_pool_resource();
  EXPECT_EQ(first_upstream.stats().blocks_in_use, 0U);

  auto* second = new (storage) concurrent_pool_resource({}, &second_upstream);
  ASSERT_EQ(static_cast<void*>(second), static_cast<void*>(first));
  void* fresh = second->allocate(32);
  EXPECT_TRUE(second->owns(fresh));
  EXPECT_EQ(second->stats().blocks_in_use, 1U);
  EXPECT_EQ(second_upstream.stats().blocks_in_use, 1U);  // its own chunk
  second_built.open();
  worker.join();
  EXPECT_EQ(first_upstream.stats().total_blocks, first_upstream_blocks);  // none taken since
  second->deallocate(fresh, 32);
  EXPECT_EQ(second->stats().blocks_in_use, 0U);
  second->~concurrent_pool_resource();
  EXPECT_EQ(second_upstream.stats().blocks_in_use, 0U);
  EXPECT_TRUE(first_upstream.errors().empty());
  EXPECT_TRUE(second_upstream.errors().empty());
}

TEST(ConcurrentPoolResource, ReleaseEmptiesTheCachesOfThreadsStillRunning) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  concurrent_pool_resource pool({}, &upstream);
  gate used;
  gate released;
  gate used_again;
  std::thread worker([&] {
    for (int i = 0; i < 50; ++i)
      pool.deallocate(pool.allocate(200), 200);
    used.open();
    released.wait();
    std::vector<void*> blocks;
    for (int i = 0; i < 50; ++i)
      blocks.push_back(pool.allocate(200));
    for (void* p : blocks)
      pool.deallocate(p, 200);
    used_again.open();
  });
  used.wait();
  EXPECT_GT(pool.stats().blocks_cached, 0U);
  pool.release();
  EXPECT_EQ(upstream.stats().blocks_in_use, 0U);
  EXPECT_EQ(pool.stats().blocks_cached, 0U);
  EXPECT_EQ(pool.stats().thread_caches, 1U);  // empty, still the worker's
  released.open();
  used_again.wait();
  EXPECT_EQ(pool.stats().blocks_in_use, 0U);
  worker.join();
  EXPECT_EQ(pool.stats().thread_caches, 0U);
  pool.release();
  EXPECT_EQ(upstream.stats().blocks_in_use, 0U);
  EXPECT_TRUE(upstream.errors().empty());
}

// A thread_local made before the thread's cache registry frees its block
// after the registry is gone: the depot takes it.
struct late_block {
  concurrent_pool_resource* pool = nullptr;
  void* block = nullptr;
  ~late_block() {
    if (block != nullptr) pool->deallocate(block, 64);
  }
};

TEST(ConcurrentPoolResource, BlocksFreedAfterTheThreadsCacheIsGoneGoToTheDepot) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  concurrent_pool_resource pool({}, &upstream);
  std::thread worker([&] {
    thread_local late_block late;  // constructed first, destroyed last
    late.pool = &pool;
    late.block = pool.allocate(64);
    pool.deallocate(pool.allocate(64), 64);
  });
  worker.join();
  const pmrkit::concurrent_pool_stats stats = pool.stats();
  EXPECT_EQ(stats.blocks_in_use, 0U);
  EXPECT_EQ(stats.blocks_cached, 0U);
  EXPECT_EQ(stats.thread_caches, 0U);
  EXPECT_EQ(chunks_shrunk(pool), stats.chunk_count);
  EXPECT_EQ(upstream.stats().blocks_in_use, 0U);
}

TEST(ConcurrentPoolResource, ServesContainersFromSeveralThreads) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  {
    concurrent_pool_resource pool({}, &upstream);
    std::vector<std::thread> workers;
    for (int t = 0; t < 4; ++t) {
      workers.emplace_back([&pool, t] {
        std::pmr::map<int, std::pmr::string> map(&pool);
        std::pmr::vector<int> vector(&pool);
        for (int i = 0; i < 2000; ++i) {
          map.emplace(i, std::pmr::string(static_cast<std::size_t>(i % 70), 'a'));
          vector.push_back(i * t);
        }
        EXPECT_EQ(map.size(), 2000U);
        EXPECT_EQ(map.at(1999).size(), 1999U % 70);
        EXPECT_EQ(vector.back(), 1999 * t);
      });
    }
    for (std::thread& worker : workers)
      worker.join();
    EXPECT_EQ(pool.stats().blocks_in_use, 0U);
  }
  EXPECT_EQ(upstream.stats().blocks_in_use, 0U);
  EXPECT_TRUE(upstream.errors().empty());
}

TEST(ConcurrentPoolResource, TakesStdPoolOptionsWithTheStandardsMeaning) {
  const auto effective = [](std::pmr::pool_options requested) {
    return concurrent_pool_resource(requested).options();
  };
  EXPECT_EQ(effective({}).largest_required_pool_block, 65536U);
  EXPECT_EQ(effective({}).max_blocks_per_chunk, 1024U);
  EXPECT_EQ(effective({.largest_required_pool_block = 1000}).largest_required_pool_block, 1024U);
  EXPECT_EQ(
      effective({.largest_required_pool_block = std::size_t{1} << 30}).largest_required_pool_block,
      classes::max_size);
  EXPECT_EQ(effective({.max_blocks_per_chunk = 5}).max_blocks_per_chunk, 5U);
  EXPECT_EQ(effective({.max_blocks_per_chunk = std::size_t{1} << 40}).max_blocks_per_chunk, 1024U);
  // The constructors of std::pmr::synchronized_pool_resource.
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  concurrent_pool_resource from_upstream(&upstream);
  concurrent_pool_resource from_pool_options(std::pmr::pool_options{}, &upstream);
  concurrent_pool_resource from_braces({}, &upstream);  // concurrent_pool_options
  EXPECT_EQ(from_upstream.upstream_resource(), &upstream);
  EXPECT_EQ(from_pool_options.upstream_resource(), &upstream);
  EXPECT_EQ(from_braces.name(), "concurrent_pool");
  EXPECT_EQ(concurrent_pool_resource().upstream_resource(), std::pmr::get_default_resource());
}

// Built the ways every resource is (docs/contract.md), `{}` meaning concurrent_pool_options,
// and the standard's (pool_options, upstream) form not explicit, as the standard's is not.
TEST(ConcurrentPoolResource, ConstructsTheWaysEveryResourceDoes) {
  using pmrkit::concurrent_pool_options;
  using pmrkit::concurrent_pool_resource;
  static_assert(std::is_default_constructible_v<concurrent_pool_resource>);
  static_assert(std::is_constructible_v<concurrent_pool_resource, test_resource*>);
  static_assert(std::is_constructible_v<concurrent_pool_resource, concurrent_pool_options>);
  static_assert(
      std::is_constructible_v<concurrent_pool_resource, concurrent_pool_options, test_resource*>);
  static_assert(std::is_constructible_v<concurrent_pool_resource, std::pmr::pool_options>);
  static_assert(requires { concurrent_pool_resource({}); });
  static_assert(
      requires(std::pmr::memory_resource * upstream) { concurrent_pool_resource({}, upstream); });
  static_assert(!std::is_copy_constructible_v<concurrent_pool_resource>);
  static_assert(!std::is_move_constructible_v<concurrent_pool_resource>);
  static_assert(!std::is_convertible_v<std::pmr::memory_resource*, concurrent_pool_resource>);
  static_assert(!std::is_convertible_v<std::pmr::pool_options, concurrent_pool_resource>);
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  std::pmr::memory_resource* base = &upstream;
  concurrent_pool_resource a;
  concurrent_pool_resource b(base);
  concurrent_pool_resource c(concurrent_pool_options{.largest_required_pool_block = 256});
  concurrent_pool_resource d(concurrent_pool_options{.name = "d"}, &upstream);
  concurrent_pool_resource e({});
  concurrent_pool_resource f({}, &upstream);
  concurrent_pool_resource g({.largest_required_pool_block = 512, .name = "g"}, base);
  const std::pmr::pool_options standard{.max_blocks_per_chunk = 8,
                                        .largest_required_pool_block = 1024};
  concurrent_pool_resource h(standard);
  concurrent_pool_resource i(standard, &upstream);
  concurrent_pool_resource j = {standard, &upstream};
  std::pmr::synchronized_pool_resource k = {standard, &upstream};  // the same spelling
  EXPECT_EQ(a.upstream_resource(), std::pmr::get_default_resource());
  EXPECT_EQ(b.upstream_resource(), &upstream);
  EXPECT_EQ(c.options().largest_required_pool_block, 256U);
  EXPECT_EQ(d.name(), "d");
  EXPECT_EQ(e.upstream_resource(), std::pmr::get_default_resource());
  EXPECT_EQ(f.upstream_resource(), &upstream);
  EXPECT_EQ(g.options().largest_required_pool_block, 512U);
  EXPECT_EQ(h.options().max_blocks_per_chunk, 8U);
  EXPECT_EQ(i.upstream_resource(), &upstream);
  EXPECT_EQ(j.options().largest_required_pool_block, k.options().largest_required_pool_block);
  j.deallocate(j.allocate(100), 100);
  j.release();
}

TEST(ConcurrentPoolResource, InvalidOptionsNameTheField) {
  try {
    concurrent_pool_resource pool({.cache_bytes_per_class = 0});
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("cache_bytes_per_class"), std::string::npos);
  }
  try {
    concurrent_pool_resource pool({}, nullptr);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& error) {
    EXPECT_NE(std::string(error.what()).find("upstream"), std::string::npos);
  }
  EXPECT_THROW(concurrent_pool_resource(std::pmr::pool_options{}, nullptr), std::invalid_argument);
}

TEST(ConcurrentPoolResource, UpstreamFailureLeavesItUsable) {
  test_resource upstream(upstream_options, std::pmr::new_delete_resource());
  concurrent_pool_resource pool({}, &upstream);
  upstream.set_allocation_limit(0);
  try {
    (void)pool.allocate(32);
    FAIL() << "expected allocation_error";
  } catch (const pmrkit::allocation_error& error) {
    EXPECT_EQ(error.reason(), pmrkit::failure_reason::injected_failure);
  }
  EXPECT_EQ(pool.stats().chunk_count, 0U);
  void* p = pool.allocate(32);
  pool.deallocate(p, 32);
}

TEST(ConcurrentPoolResource, ForeignPointersAndSizeMismatchesAreViolations) {
  if (!PMRKIT_CHECKED) GTEST_SKIP() << "violations are reported in checked builds";
  pmrkit::violation_recorder recorder;
  concurrent_pool_resource pool({.name = "shared"});
  void* p = pool.allocate(32, 8);
  alignas(16) std::byte elsewhere[32];
  pool.deallocate(elsewhere, 32, 8);
  pool.deallocate(static_cast<std::byte*>(p) + 16, 16, 8);  // inside a block, not its start
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::foreign_pointer), 2U);
  pool.deallocate(p, 100, 8);     // another class
  pool.deallocate(p, 100000, 8);  // a large block
  ASSERT_EQ(recorder.count(pmrkit::violation_kind::size_mismatch), 2U);
  EXPECT_EQ(recorder.violations()[2].resource_name, "shared");
  EXPECT_EQ(recorder.violations()[2].expected_size, 32U);
  EXPECT_EQ(pool.stats().blocks_in_use, 1U);
  pool.deallocate(p, 32, 8);
  EXPECT_EQ(recorder.violations().size(), 4U);
}

TEST(ConcurrentPoolResource, DoubleFreesSeenByTheFreeingThreadAreViolations) {
  if (!PMRKIT_CHECKED) GTEST_SKIP() << "violations are reported in checked builds";
  pmrkit::violation_recorder recorder;
  concurrent_pool_resource pool;
  void* p = pool.allocate(48);
  void* q = pool.allocate(48);
  pool.deallocate(p, 48);
  pool.deallocate(p, 48);  // still in this thread's cache
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::double_free), 1U);
  // Back in the chunks once the freeing thread exits.
  std::thread([&] { pool.deallocate(q, 48); }).join();
  pool.deallocate(q, 48);
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::double_free), 2U);
  // The cache is intact: p comes back once.
  EXPECT_EQ(pool.allocate(48), p);
  EXPECT_NE(pool.allocate(48), p);
}

TEST(ConcurrentPoolResource, FreeBlocksArePoisonedInCheckedBuilds) {
  if (!PMRKIT_CHECKED || PMRKIT_HAS_ASAN) GTEST_SKIP() << "checked builds without ASan";
  concurrent_pool_resource pool;
  auto* p = static_cast<unsigned char*>(pool.allocate(64, 8));
  std::memset(p, 0, 64);
  pool.deallocate(p, 64, 8);
  EXPECT_EQ(p[16], pmrkit::detail::retired_fill);
  EXPECT_EQ(p[63], pmrkit::detail::retired_fill);
}

TEST(ConcurrentPoolResourceDeathTest, UseAfterFreeIsCaughtByAddressSanitizer) {
  if (!PMRKIT_CHECKED || !PMRKIT_HAS_ASAN) {
    GTEST_SKIP() << "needs a checked build under AddressSanitizer (the asan preset)";
  }
  concurrent_pool_resource pool;
  auto* p = static_cast<volatile unsigned char*>(pool.allocate(64, 8));
  pool.deallocate(const_cast<unsigned char*>(p), 64, 8);
  EXPECT_DEATH(p[32] = 1, "use-after-poison");
}

}  // namespace
