#include <pmr/arena/concurrent_arena_resource.hpp>

#include <pmr/core/error.hpp>
#include <pmr/testing/test_resource.hpp>
#include <pmr/testing/violation_recorder.hpp>

#include "conformance/conformance.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <cstdint>
#include <cstring>
#include <latch>
#include <memory>
#include <memory_resource>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using pmrkit::concurrent_arena_options;
using pmrkit::concurrent_arena_resource;
using pmrkit::test_resource;

struct concurrent_arena_traits {
  using resource_type = concurrent_arena_resource;
  static constexpr std::string_view name = "pmrkit::concurrent_arena_resource";
  // An arena frees only the thread's most recent block; the rest waits for reset.
  static constexpr pmrkit::conformance::capabilities caps{.reuses_memory = false};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(concurrent_arena_options{}, upstream);
  }
  static void release(resource_type& r) { r.release(); }
};

struct constant_growth_traits {
  using resource_type = concurrent_arena_resource;
  static constexpr std::string_view name = "pmrkit::concurrent_arena_resource (constant, 1-byte)";
  static constexpr pmrkit::conformance::capabilities caps{.reuses_memory = false};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource* upstream) {
    return std::make_unique<resource_type>(
        concurrent_arena_options{.initial_chunk_size = 1024, .growth_factor = 1, .alignment = 1},
        upstream);
  }
  static void release(resource_type& r) { r.release(); }
};

using arena_types = ::testing::Types<concurrent_arena_traits, constant_growth_traits>;
INSTANTIATE_TYPED_TEST_SUITE_P(concurrent_arena, resource_conformance, arena_types,
                               pmrkit::conformance::traits_names);

// An upstream that is not thread-safe and says so: entering it while another
// call is inside is recorded (the arena must serialise its upstream calls).
class single_threaded_upstream final : public std::pmr::memory_resource {
 public:
  [[nodiscard]] int overlaps() const noexcept { return overlaps_.load(); }
  [[nodiscard]] std::size_t in_use() const noexcept { return in_use_; }
  [[nodiscard]] std::size_t calls() const noexcept { return calls_; }

 private:
  struct enter {
    explicit enter(single_threaded_upstream& u) : self(u) {
      if (self.inside_.exchange(true)) ++self.overlaps_;
      // Widen the window in which an unserialised second call would be seen.
      for (int i = 0; i < 50; ++i)
        std::this_thread::yield();
    }
    ~enter() { self.inside_.store(false); }
    single_threaded_upstream& self;
  };
  void* do_allocate(std::size_t bytes, std::size_t alignment) override {
    const enter guard(*this);
    ++calls_;  // plain: a race here is what TSan would report
    in_use_ += bytes;
    return std::pmr::new_delete_resource()->allocate(bytes, alignment);
  }
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override {
    const enter guard(*this);
    ++calls_;
    in_use_ -= bytes;
    std::pmr::new_delete_resource()->deallocate(p, bytes, alignment);
  }
  [[nodiscard]] bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override {
    return this == &other;
  }

  std::atomic<bool> inside_{false};
  std::atomic<int> overlaps_{0};
  std::size_t in_use_ = 0;
  std::size_t calls_ = 0;
};

constexpr pmrkit::test_options upstream_options{.name = "upstream"};

// Each thread fills every block with its own pattern, then checks them all
// once every thread is done allocating: a block shared by two threads, or
// overlapping another, shows up as a wrong byte.
struct filled_block {
  unsigned char* p;
  std::size_t size;
  unsigned char value;
};

bool intact(const filled_block& b) {
  for (std::size_t i = 0; i < b.size; ++i) {
    if (b.p[i] != b.value) return false;
  }
  return true;
}

TEST(ConcurrentArena, ThreadsAllocatingAtOnceGetDisjointBlocks) {
  test_resource upstream(upstream_options);
  concurrent_arena_resource arena({.initial_chunk_size = 1024, .max_chunk_size = 8192}, &upstream);
  constexpr int threads = 8;
  constexpr int blocks_per_thread = 2000;
  std::vector<std::vector<filled_block>> blocks(threads);
  std::barrier start(threads);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      start.arrive_and_wait();
      for (int i = 0; i < blocks_per_thread; ++i) {
        const std::size_t size = 1 + static_cast<std::size_t>((i * 37 + t) % 300);
        auto* p = static_cast<unsigned char*>(arena.allocate(size, 8));
        const auto value = static_cast<unsigned char>(t * 31 + i);
        std::memset(p, value, size);
        blocks[static_cast<std::size_t>(t)].push_back({p, size, value});
      }
    });
  }
  for (std::thread& w : workers)
    w.join();
  std::vector<std::pair<std::uintptr_t, std::uintptr_t>> ranges;
  for (const auto& mine : blocks) {
    for (const filled_block& b : mine) {
      ASSERT_TRUE(intact(b)) << "block at " << static_cast<void*>(b.p) << " overwritten";
      EXPECT_TRUE(arena.owns(b.p));
      ranges.emplace_back(reinterpret_cast<std::uintptr_t>(b.p),
                          reinterpret_cast<std::uintptr_t>(b.p) + b.size);
    }
  }
  std::sort(ranges.begin(), ranges.end());
  for (std::size_t i = 1; i < ranges.size(); ++i)
    ASSERT_LE(ranges[i - 1].second, ranges[i].first) << "blocks overlap";
  const pmrkit::arena_stats s = arena.stats();
  EXPECT_EQ(s.bytes_from_upstream, upstream.bytes_in_use());
  EXPECT_GE(s.bytes_in_use, static_cast<std::size_t>(threads) * blocks_per_thread);
  EXPECT_GE(arena.thread_slots(), 1U);
  EXPECT_LE(arena.thread_slots(), static_cast<std::size_t>(threads));
}

TEST(ConcurrentArena, EachThreadBumpsInChunksOfItsOwn) {
  test_resource upstream(upstream_options);
  concurrent_arena_resource arena({.initial_chunk_size = 4096}, &upstream);
  std::barrier both(2);
  void* first[2] = {};
  void* second[2] = {};
  auto work = [&](int t) {
    first[t] = arena.allocate(16);
    both.arrive_and_wait();  // both threads hold a slot now
    second[t] = arena.allocate(16);
    both.arrive_and_wait();
  };
  std::thread a(work, 0);
  std::thread b(work, 1);
  a.join();
  b.join();
  EXPECT_EQ(arena.thread_slots(), 2U);  // both held a slot at once
  // Each thread's second block follows its first in its own chunk.
  for (int t = 0; t < 2; ++t)
    EXPECT_EQ(static_cast<std::byte*>(second[t]), static_cast<std::byte*>(first[t]) + 16);
  EXPECT_EQ(arena.stats().chunk_count, 2U);
}

TEST(ConcurrentArena, RollsBackEachThreadsNewestBlock) {
  test_resource upstream(upstream_options);
  concurrent_arena_resource arena({}, &upstream);
  std::barrier both(2);
  auto work = [&] {
    void* older = arena.allocate(64);
    void* newest = arena.allocate(64);
    both.arrive_and_wait();  // the other thread has allocated too: its blocks do not interfere
    arena.deallocate(newest, 64);
    void* again = arena.allocate(64);
    EXPECT_EQ(again, newest);     // rolled back, served again
    arena.deallocate(older, 64);  // not the newest: a no-op
    void* later = arena.allocate(64);
    EXPECT_NE(later, older);
    EXPECT_EQ(static_cast<std::byte*>(later), static_cast<std::byte*>(again) + 64);
  };
  std::thread a(work);
  std::thread b(work);
  a.join();
  b.join();
  EXPECT_EQ(arena.stats().bytes_in_use, 2U * 3 * 64);
}

TEST(ConcurrentArena, ResetKeepsChunksAndReleaseReturnsEveryByte) {
  test_resource upstream(upstream_options);
  concurrent_arena_resource arena({.initial_chunk_size = 1024}, &upstream);
  // Four threads that hold a slot each at once (the latch), so every pass spreads the same
  // work over four slots whichever thread gets which: an exited thread's slot could otherwise
  // serve a later thread of the same pass and grow its chain beyond the others'.
  auto pass = [&] {
    std::latch all_have_a_slot(4);
    std::vector<std::thread> workers;
    for (int t = 0; t < 4; ++t) {
      workers.emplace_back([&] {
        (void)arena.allocate(100);
        all_have_a_slot.arrive_and_wait();
        for (int i = 1; i < 100; ++i)
          (void)arena.allocate(100);
      });
    }
    for (std::thread& w : workers)
      w.join();
  };
  pass();
  const std::size_t held = upstream.bytes_in_use();
  const std::size_t chunks = upstream.blocks_in_use();
  EXPECT_GT(held, 0U);
  EXPECT_EQ(arena.stats().bytes_from_upstream, held);
  arena.reset();
  EXPECT_EQ(arena.stats().bytes_in_use, 0U);
  EXPECT_EQ(upstream.bytes_in_use(), held);  // every chunk kept
  const std::size_t slots = arena.thread_slots();
  pass();  // the exited threads' slots serve the new threads: nothing more from upstream
  EXPECT_EQ(arena.thread_slots(), slots);
  EXPECT_EQ(upstream.blocks_in_use(), chunks);
  EXPECT_GE(arena.stats().peak_bytes_in_use, 4U * 100 * 100);
  arena.release();
  EXPECT_EQ(upstream.bytes_in_use(), 0U);
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
  EXPECT_EQ(arena.stats().bytes_from_upstream, 0U);
  EXPECT_EQ(arena.stats().chunk_count, 0U);
  EXPECT_GE(arena.stats().peak_bytes_from_upstream, held);
  // Usable after release, and the destructor returns what it took since.
  (void)arena.allocate(10);
  EXPECT_GT(upstream.bytes_in_use(), 0U);
}

TEST(ConcurrentArena, ShrinkReturnsKeptChunksBeyondEachPosition) {
  test_resource upstream(upstream_options);
  concurrent_arena_resource arena({.initial_chunk_size = 1024, .growth_factor = 1}, &upstream);
  for (int i = 0; i < 40; ++i)
    (void)arena.allocate(100);  // several chunks
  const std::size_t chunks = upstream.blocks_in_use();
  ASSERT_GT(chunks, 1U);
  arena.reset();
  (void)arena.allocate(100);  // in the first chunk
  const std::size_t given = arena.shrink();
  EXPECT_EQ(given, (chunks - 1) * 1024);
  EXPECT_EQ(upstream.blocks_in_use(), 1U);
  EXPECT_EQ(arena.stats().bytes_from_upstream, 1024U);
}

TEST(ConcurrentArena, SerialisesANonThreadSafeUpstream) {
  single_threaded_upstream upstream;
  {
    concurrent_arena_resource arena({.initial_chunk_size = 256, .growth_factor = 1}, &upstream);
    constexpr int threads = 8;
    std::barrier start(threads);
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&] {
        start.arrive_and_wait();
        for (int i = 0; i < 200; ++i)
          (void)arena.allocate(96);  // a new chunk every other request
      });
    }
    for (std::thread& w : workers)
      w.join();
    EXPECT_GT(upstream.calls(), static_cast<std::size_t>(threads) * 50);
    arena.release();
    EXPECT_EQ(upstream.in_use(), 0U);
  }
  EXPECT_EQ(upstream.overlaps(), 0);
}

TEST(ConcurrentArena, ThreadExitThenReset) {
  test_resource upstream(upstream_options);
  concurrent_arena_resource arena({.initial_chunk_size = 1024}, &upstream);
  void* kept = nullptr;
  std::thread([&] {
    kept = arena.allocate(200);
    std::memset(kept, 0x5A, 200);
  }).join();
  // The exited thread's chunk stays, and its block with it.
  EXPECT_TRUE(arena.owns(kept));
  EXPECT_EQ(static_cast<unsigned char*>(kept)[199], 0x5A);
  EXPECT_EQ(arena.stats().bytes_in_use, 208U);
  EXPECT_EQ(upstream.blocks_in_use(), 1U);
  // A new thread takes the exited one's slot, after its block.
  void* next = nullptr;
  std::thread([&] { next = arena.allocate(16); }).join();
  EXPECT_EQ(arena.thread_slots(), 1U);
  EXPECT_EQ(static_cast<std::byte*>(next), static_cast<std::byte*>(kept) + 208);
  arena.reset();
  EXPECT_EQ(arena.stats().bytes_in_use, 0U);
  EXPECT_EQ(upstream.blocks_in_use(), 1U);
  arena.release();
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
}

TEST(ConcurrentArena, ArenaDestroyedWhileItsThreadsRun) {
  test_resource upstream(upstream_options);
  std::barrier step(2);
  std::thread worker;
  {
    concurrent_arena_resource arena({}, &upstream);
    worker = std::thread([&] {
      (void)arena.allocate(32);
      step.arrive_and_wait();  // the arena is destroyed after this
      step.arrive_and_wait();
      // A new arena, perhaps at the same address: the thread's entry for the
      // old one never matches it (ids are never reused).
      concurrent_arena_resource other({}, &upstream);
      void* p = other.allocate(32);
      EXPECT_TRUE(other.owns(p));
      EXPECT_EQ(other.thread_slots(), 1U);
    });
    step.arrive_and_wait();
  }
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
  step.arrive_and_wait();
  worker.join();  // exits with a registry naming a destroyed arena
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
}

TEST(ConcurrentArena, AThreadUsesManyArenas) {
  test_resource upstream(upstream_options);
  // Arenas made and destroyed one after another on one thread: each gets a
  // slot, and the destroyed ones' entries are pruned.
  for (int i = 0; i < 100; ++i) {
    concurrent_arena_resource arena({}, &upstream);
    void* p = arena.allocate(8);
    arena.deallocate(p, 8);
    EXPECT_EQ(arena.allocate(8), p);
  }
  // Two alive at once, used in turns: each keeps its own slot and rollbacks.
  concurrent_arena_resource a({}, &upstream);
  concurrent_arena_resource b({}, &upstream);
  void* pa = a.allocate(16);
  void* pb = b.allocate(16);
  a.deallocate(pa, 16);  // a's newest, though b was used last
  EXPECT_EQ(a.allocate(16), pa);
  EXPECT_EQ(b.stats().bytes_in_use, 16U);
  EXPECT_TRUE(b.owns(pb) && !a.owns(pb));
}

TEST(ConcurrentArena, ChecksOptions) {
  EXPECT_EQ(pmrkit::conformance::invalid_argument_of(
                [] { concurrent_arena_resource a({.initial_chunk_size = 10}); }),
            "pmrkit::concurrent_arena_resource: initial_chunk_size must be at least 256");
  EXPECT_NE(pmrkit::conformance::invalid_argument_of([] {
              concurrent_arena_resource a({.growth_factor = 0});
            }).find("growth_factor"),
            std::string::npos);
  EXPECT_NE(pmrkit::conformance::invalid_argument_of([] {
              concurrent_arena_resource a({.alignment = 3});
            }).find("alignment"),
            std::string::npos);
  EXPECT_NE(pmrkit::conformance::invalid_argument_of([] {
              concurrent_arena_resource a({}, static_cast<std::pmr::memory_resource*>(nullptr));
            }).find("upstream must not be null"),
            std::string::npos);
}

TEST(ConcurrentArena, RefusesWhatItCannotServe) {
  test_resource upstream(upstream_options);
  concurrent_arena_resource arena({.size_limit = 1000, .name = "limited"}, &upstream);
  try {
    (void)arena.allocate(1001);
    FAIL() << "nothing thrown";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::out_of_capacity);
    EXPECT_EQ(e.resource_name(), "limited");
  }
  volatile std::size_t odd_alignment = 3;  // not a constant: clang warns of one
  EXPECT_THROW((void)arena.allocate(8, odd_alignment), pmrkit::allocation_error);
  EXPECT_EQ(upstream.blocks_in_use(), 0U);
  // A request above the next chunk gets a chunk of its size in the thread's chain.
  void* big = arena.allocate(900, 256);
  EXPECT_TRUE(arena.owns(big));
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(big) % 256, 0U);
}

#if PMRKIT_CHECKED
TEST(ConcurrentArena, ReportsMisuseInCheckedBuilds) {
  test_resource upstream(upstream_options);
  concurrent_arena_resource arena({}, &upstream);
  pmrkit::violation_recorder recorder;
  int local = 0;
  arena.deallocate(&local, sizeof local);
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::foreign_pointer), 1U);

  void* older = arena.allocate(32);
  void* newest = arena.allocate(32);
  arena.deallocate(newest, 48);  // another size
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::size_mismatch), 1U);
  arena.deallocate(newest, 32);
  arena.deallocate(newest, 32);  // rolled back already
  EXPECT_EQ(recorder.count(pmrkit::violation_kind::double_free), 1U);
  arena.deallocate(older, 32);  // the newest now: rolled back, no report
  // Another thread's block: no report (its slot is not this thread's), no change.
  void* theirs = nullptr;
  std::thread([&] { theirs = arena.allocate(32); }).join();
  arena.deallocate(theirs, 32);
  EXPECT_EQ(recorder.size(), 3U);
  EXPECT_EQ(arena.stats().bytes_in_use, 32U);
}
#endif

}  // namespace
