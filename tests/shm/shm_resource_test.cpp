// shm_resource in one process: the conformance suite, the contract's errors and
// violations, stats, the typed and named-object API, several mappings and threads.
#include <pmr/core/error.hpp>
#include <pmr/shm/shm_resource.hpp>
#include <pmr/testing/violation_recorder.hpp>

#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "conformance/conformance.hpp"
#include "segment_name.hpp"

namespace {

using pmrkit::shm_errc;
using pmrkit::shm_error;
using pmrkit::shm_resource;
using pmrkit::shm_segment;

struct shm_traits {
  using resource_type = shm_resource;
  static constexpr std::string_view name = "pmrkit::shm_resource";
  // No upstream: the segment is its memory. Another mapping's resource is equal (documented).
  static constexpr pmrkit::conformance::capabilities caps{.survives_upstream_failures = false,
                                                          .equality_is_identity = true};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource*) {
    return std::make_unique<resource_type>(pmrkit::shm_resource_options{});
  }
};

struct uncached_shm_traits {
  using resource_type = shm_resource;
  static constexpr std::string_view name = "pmrkit::shm_resource (no thread caches)";
  static constexpr pmrkit::conformance::capabilities caps{.survives_upstream_failures = false};
  static std::unique_ptr<resource_type> make(std::pmr::memory_resource*) {
    return std::make_unique<resource_type>(pmrkit::shm_resource_options{.cache_limit = 0});
  }
};

using shm_types = ::testing::Types<shm_traits, uncached_shm_traits>;
INSTANTIATE_TYPED_TEST_SUITE_P(shm, resource_conformance, shm_types,
                               pmrkit::conformance::traits_names);

using shm_test::segment_name;

constexpr std::size_t mib = std::size_t{1} << 20;

TEST(ShmResource, ConstructedTheWaysEveryResourceIs) {
  shm_resource a;
  shm_resource b({});
  shm_resource c({.segment_size = 2 * mib});
  auto segment = shm_segment::anonymous(2 * mib);
  shm_resource d(segment);
  shm_resource e(segment, {.cache_limit = 8});
  shm_resource f(shm_segment::anonymous(2 * mib), {});
  EXPECT_EQ(a.segment().size(), 64 * mib);
  EXPECT_EQ(c.segment().size(), 2 * mib);
  EXPECT_EQ(a.name(), "(anonymous)");
  EXPECT_TRUE(d == e) << "two resources over one mapping free each other's blocks";
  EXPECT_FALSE(a == b);
  for (shm_resource* r : {&a, &b, &c, &d, &e, &f}) {
    void* p = r->allocate(100);
    r->deallocate(p, 100);
    EXPECT_TRUE(r->verify().empty()) << r->verify();
  }
}

TEST(ShmResource, BadOptionsNameTheField) {
  try {
    shm_resource r({.cache_limit = 5000});
    FAIL() << "no exception";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("cache_limit"), std::string::npos) << e.what();
  }
  EXPECT_THROW(shm_resource({.segment_size = 1000}), std::invalid_argument);
}

TEST(ShmResource, StatsCountBlocksAtTheirSizeAndAddUp) {
  shm_resource r({.segment_size = 8 * mib});
  const pmrkit::shm_stats empty = r.stats();
  EXPECT_EQ(empty.bytes_in_use, 0U);
  EXPECT_EQ(empty.bytes_free, empty.capacity);
  EXPECT_EQ(empty.largest_free_block, std::bit_floor(empty.capacity));
  void* small = r.allocate(100);        // the 112-byte class
  void* large = r.allocate(20000);      // 32 KiB from the buddy
  void* page = r.allocate(8192, 4096);  // the 8 KiB class
  const pmrkit::shm_stats s = r.stats();
  EXPECT_EQ(s.bytes_in_use, 112U + 32768U + 8192U);
  EXPECT_EQ(s.blocks_in_use, 3U);
  EXPECT_EQ(s.large_blocks_in_use, 1U);
  EXPECT_EQ(s.large_bytes_in_use, 32768U);
  EXPECT_EQ(s.small_run_bytes, 2 * 65536U);
  EXPECT_GE(s.peak_bytes_in_use, s.bytes_in_use);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(page) % 4096, 0U);
  EXPECT_EQ(s.cache_slots_in_use, 1U);
  r.deallocate(small, 100);
  r.deallocate(large, 20000);
  r.deallocate(page, 8192, 4096);
  const pmrkit::shm_stats after = r.stats();
  EXPECT_EQ(after.bytes_in_use, 0U);
  EXPECT_EQ(after.blocks_in_use, 0U);
  EXPECT_GT(after.bytes_cached, 0U) << "the freed small blocks sit in this thread's cache";
  // Free (the buddy, the class lists, uncarved run ends) + cached + the runs' unusable tails
  // is the capacity; verify() checks the exact identity.
  EXPECT_LE(after.bytes_free + after.bytes_cached, after.capacity);
  EXPECT_TRUE(r.verify().empty()) << r.verify();
  r.flush_thread_cache();
  EXPECT_EQ(r.stats().bytes_cached, 0U);
  EXPECT_EQ(r.stats().cache_slots_in_use, 0U);
  EXPECT_TRUE(r.verify().empty()) << r.verify();
}

TEST(ShmResource, AFullSegmentIsAnAllocationErrorNamingItAndStaysUsable) {
  const segment_name name;
  auto segment = shm_segment::create(name.str(), 2 * mib);
  shm_resource r(segment);
  std::vector<void*> large;
  std::vector<void*> small;
  try {
    for (;;)
      large.push_back(r.allocate(200000));
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::out_of_capacity);
    EXPECT_NE(std::string(e.what()).find(name.str()), std::string::npos) << e.what();
  }
  EXPECT_FALSE(large.empty());
  try {  // small blocks too, until no run is left
    for (;;)
      small.push_back(r.allocate(4000));
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::out_of_capacity);
  }
  EXPECT_TRUE(r.verify().empty()) << r.verify();
  for (void* p : large)
    r.deallocate(p, 200000);
  for (void* p : small)
    r.deallocate(p, 4000);
  void* again = r.allocate(200000);  // usable again
  r.deallocate(again, 200000);
  r.flush_thread_cache();
  EXPECT_EQ(r.stats().bytes_in_use, 0U);
  EXPECT_TRUE(r.verify().empty()) << r.verify();
}

TEST(ShmResource, AlignmentsAboveThePageAreBadAlignment) {
  shm_resource r({.segment_size = 4 * mib});
  try {
    (void)r.allocate(64, 8192);
    FAIL() << "no exception";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::bad_alignment);
  }
  for (std::size_t alignment = 1; alignment <= 4096; alignment *= 2) {
    for (const std::size_t bytes : {1UL, 24UL, 100UL, 5000UL, 9000UL, 70000UL}) {
      void* p = r.allocate(bytes, alignment);
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % alignment, 0U) << bytes << " " << alignment;
      std::memset(p, 0xAB, bytes);
      r.deallocate(p, bytes, alignment);
    }
  }
  EXPECT_TRUE(r.verify().empty()) << r.verify();
}

#if PMRKIT_CHECKED
TEST(ShmResource, MisuseOnDeallocationIsReportedAndIgnored) {
  shm_resource r({.segment_size = 4 * mib});
  pmrkit::violation_recorder recorder;
  using kind = pmrkit::violation_kind;
  void* small = r.allocate(32);
  r.deallocate(small, 32);
  r.deallocate(small, 32);  // cached already: still a double free
  EXPECT_EQ(recorder.count(kind::double_free), 1U);
  void* large = r.allocate(100000);
  r.deallocate(large, 100000);
  r.deallocate(large, 100000);
  EXPECT_EQ(recorder.count(kind::double_free), 2U);
  void* a = r.allocate(48);
  r.deallocate(a, 200);  // another class
  EXPECT_EQ(recorder.count(kind::size_mismatch), 1U);
  void* big = r.allocate(100000);  // 128 KiB
  r.deallocate(big, 20000);        // 32 KiB
  EXPECT_EQ(recorder.count(kind::size_mismatch), 2U);
  int outside = 0;
  r.deallocate(&outside, 4);
  r.deallocate(static_cast<char*>(a) + 16, 48);  // inside a block
  EXPECT_EQ(recorder.count(kind::foreign_pointer), 2U);
  EXPECT_TRUE(r.verify().empty()) << "every misuse was ignored: " << r.verify();
  r.deallocate(a, 48);
  r.deallocate(big, 100000);
  EXPECT_EQ(r.stats().bytes_in_use, 0U);
  EXPECT_EQ(recorder.count(kind::double_free), 2U);
}
#endif

TEST(ShmResource, OffsetsAndFullPointersRoundTrip) {
  shm_resource r({.segment_size = 4 * mib});
  pmrkit::full_ptr<void> p = r.allocate_full(64);
  EXPECT_TRUE(p);
  EXPECT_EQ(r.offset_of(p.get()), p.offset());
  EXPECT_EQ(r.at(p.offset()).get(), p.get());
  EXPECT_EQ(r.to_full(static_cast<char*>(p.get())).offset(), p.offset());
  EXPECT_FALSE(r.offset_of(nullptr));
  EXPECT_EQ(r.at<int>(pmrkit::shm_offset{}).get(), nullptr);
  std::memcpy(p.get(), "contents", 9);
  pmrkit::full_ptr<void> q = r.reallocate_full(p, 64, 20000);  // to the buddy
  EXPECT_STREQ(static_cast<const char*>(q.get()), "contents");
  pmrkit::full_ptr<void> same = r.reallocate_full(q, 20000, 30000);  // still one 32 KiB block
  EXPECT_EQ(same.get(), q.get());
  pmrkit::full_ptr<void> back = r.reallocate_full(same, 30000, 16);
  EXPECT_STREQ(static_cast<const char*>(back.get()), "contents") << "the first 16 bytes kept";
  r.deallocate_full(back, 16);
  r.flush_thread_cache();
  EXPECT_EQ(r.stats().bytes_in_use, 0U);
}

TEST(ShmResource, TypedObjectsAndArrays) {
  shm_resource r({.segment_size = 4 * mib});
  struct point {
    int x, y;
  };
  pmrkit::full_ptr<point> one = r.new_object<point>(point{1, 2});
  EXPECT_EQ(one->y, 2);
  r.delete_object(one);
  pmrkit::full_ptr<std::string> strings = r.new_objects<std::string>(3, "long enough to allocate");
  EXPECT_EQ(strings.get()[2], "long enough to allocate");
  strings = r.reallocate_objects(strings, 3, 500);
  EXPECT_EQ(strings.get()[1], "long enough to allocate");
  EXPECT_EQ(strings.get()[499], "");
  strings = r.reallocate_objects(strings, 500, 2);
  EXPECT_EQ(strings.get()[0], "long enough to allocate");
  r.delete_objects(strings, 2);
  struct throws_on_third {
    explicit throws_on_third(int& built) {
      if (++built == 3) throw std::runtime_error("third");
    }
  };
  int built = 0;
  EXPECT_THROW((void)r.new_objects<throws_on_third>(5, std::ref(built)), std::runtime_error);
  r.flush_thread_cache();
  EXPECT_EQ(r.stats().bytes_in_use, 0U) << "the failed array's block went back";
  EXPECT_TRUE(r.verify().empty()) << r.verify();
}

TEST(ShmResource, NamedObjectsAreFoundByNameAndType) {
  shm_resource r({.segment_size = 4 * mib});
  struct config {
    int version;
    double ratio;
  };
  config& c = r.construct<config>("config", config{3, 0.5});
  EXPECT_EQ(r.find<config>("config"), &c);
  EXPECT_EQ(r.find<config>("missing"), nullptr);
  EXPECT_EQ(&r.find_or_construct<config>("config", config{9, 9}), &c);
  EXPECT_EQ(c.version, 3) << "found, not constructed again";
  EXPECT_EQ(pmrkit::shm_errc::object_exists, [&] {
    try {
      (void)r.construct<config>("config", config{});
    } catch (const shm_error& e) {
      return e.code();
    }
    return pmrkit::shm_errc::system_error;
  }());
  // Another type of the same size and alignment: the tag tells them apart.
  struct other {
    int a;
    double b;
  };
  try {
    (void)r.find<other>("config");
    FAIL() << "no exception";
  } catch (const shm_error& e) {
    EXPECT_EQ(e.code(), shm_errc::type_mismatch);
    EXPECT_NE(std::string(e.what()).find("'config'"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)r.find<long>("config"), shm_error);
  EXPECT_THROW((void)r.destroy<long>("config"), shm_error);
  std::span<long> counters = r.construct_array<long>("counters", 16, 5L);
  EXPECT_EQ(counters.size(), 16U);
  EXPECT_EQ(r.find_array<long>("counters")[15], 5);
  const std::vector<pmrkit::shm_object_info> listed = r.named_objects();
  EXPECT_EQ(listed.size(), 2U);
  for (const auto& info : listed) {
    if (info.name == "counters") {
      EXPECT_EQ(info.count, 16U);
      EXPECT_EQ(info.size, sizeof(long));
      EXPECT_EQ(r.at<long>(info.offset).get(), counters.data());
    } else {
      EXPECT_EQ(info.name, "config");
      EXPECT_EQ(info.type_tag, pmrkit::shm_type_tag<config>::value);
    }
  }
  EXPECT_EQ(r.stats().named_objects, 2U);
  EXPECT_TRUE(r.destroy<config>("config"));
  EXPECT_FALSE(r.destroy<config>("config"));
  EXPECT_TRUE(r.destroy<long>("counters"));
  EXPECT_THROW((void)r.find<int>(""), std::invalid_argument);
  struct throws {
    throws() { throw std::runtime_error("no"); }
  };
  EXPECT_THROW((void)r.construct<throws>("bad"), std::runtime_error);
  EXPECT_EQ(r.find<throws>("bad"), nullptr) << "a failed construction leaves no entry";
  r.flush_thread_cache();
  EXPECT_EQ(r.stats().bytes_in_use, 0U);
  EXPECT_EQ(r.stats().named_objects, 0U);
  EXPECT_TRUE(r.verify().empty()) << r.verify();
}

TEST(ShmResource, AConstructorMayAllocateFromTheSameResource) {
  shm_resource r({.segment_size = 4 * mib});
  using shared_vector = std::pmr::vector<int>;
  shared_vector& v = r.construct<shared_vector>("numbers", std::initializer_list<int>{1, 2, 3}, &r);
  v.resize(1000, 7);
  EXPECT_EQ(r.find<shared_vector>("numbers")->at(999), 7);
  EXPECT_TRUE(r.destroy<shared_vector>("numbers"));
  r.flush_thread_cache();
  EXPECT_EQ(r.stats().bytes_in_use, 0U);
}

TEST(ShmResource, TwoMappingsOfOneSegmentAllocateAndFreeEachOthersBlocks) {
  const segment_name name;
  auto first = shm_segment::create(name.str(), 32 * mib);
  auto second = shm_segment::open(name.str());
  shm_resource a(first);
  shm_resource b(second);
  // Each frees what the other allocated, by offset; a pointer is only valid in its own mapping.
  EXPECT_FALSE(a.is_equal(b));
  std::vector<pmrkit::shm_offset> handed;
  for (int i = 0; i < 1000; ++i) {
    const std::size_t bytes = 16 + static_cast<std::size_t>(i) * 37 % 20000;
    auto* p = static_cast<unsigned char*>(a.allocate(bytes));
    std::memset(p, i & 0xFF, bytes);
    handed.push_back(a.offset_of(p));
  }
  for (int i = 0; i < 1000; ++i) {
    const std::size_t bytes = 16 + static_cast<std::size_t>(i) * 37 % 20000;
    auto* p = static_cast<unsigned char*>(b.at(handed[static_cast<std::size_t>(i)]).get());
    ASSERT_EQ(p[bytes - 1], i & 0xFF);
    b.deallocate(p, bytes);
  }
  a.flush_thread_cache();
  b.flush_thread_cache();
  EXPECT_EQ(a.stats().bytes_in_use, 0U);
  EXPECT_EQ(b.stats().bytes_cached, 0U);
  EXPECT_TRUE(b.verify().empty()) << b.verify();
}

TEST(ShmResource, ThreadsShareTheSegmentAndTheirCachesGoBackWhenTheyExit) {
  shm_resource r({.segment_size = 32 * mib});
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 random(static_cast<unsigned>(t));
      std::vector<std::pair<unsigned char*, std::size_t>> live;
      for (int i = 0; i < 20000; ++i) {
        if (live.size() < 200 && (random() % 3 != 0 || live.empty())) {
          const std::size_t bytes = 1 + random() % (random() % 16 == 0 ? 40000 : 512);
          auto* p = static_cast<unsigned char*>(r.allocate(bytes));
          std::memset(p, t, bytes);
          live.emplace_back(p, bytes);
        } else {
          const std::size_t at = random() % live.size();
          auto [p, bytes] = live[at];
          if (p[0] != t || p[bytes - 1] != t) ++failures;
          r.deallocate(p, bytes);
          live[at] = live.back();
          live.pop_back();
        }
      }
      for (auto [p, bytes] : live)
        r.deallocate(p, bytes);
    });
  }
  for (std::thread& t : threads)
    t.join();
  EXPECT_EQ(failures.load(), 0);
  const pmrkit::shm_stats s = r.stats();
  EXPECT_EQ(s.bytes_in_use, 0U);
  EXPECT_EQ(s.bytes_cached, 0U) << "every thread's cache went back when it exited";
  EXPECT_EQ(s.cache_slots_in_use, 0U);
  EXPECT_TRUE(r.verify().empty()) << r.verify();
}

TEST(ShmResource, ThreadsBeyondTheSlotsGoThroughTheLock) {
  shm_resource r({.segment_size = 16 * mib});
  constexpr int count = 70;  // the segment has 64 slots
  std::atomic<int> arrived{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < count; ++t) {
    threads.emplace_back([&] {
      void* p = r.allocate(64);
      ++arrived;
      while (arrived.load() < count)
        std::this_thread::yield();  // all alive at once
      r.deallocate(p, 64);
    });
  }
  for (std::thread& t : threads)
    t.join();
  EXPECT_EQ(r.stats().bytes_in_use, 0U);
  EXPECT_EQ(r.stats().cache_slots_in_use, 0U);
  EXPECT_TRUE(r.verify().empty()) << r.verify();
}

TEST(ShmResource, DestroyingTheResourceReturnsItsThreadsSlots) {
  auto segment = shm_segment::anonymous(8 * mib);
  {
    shm_resource r(segment);
    void* p = r.allocate(32);
    r.deallocate(p, 32);
    EXPECT_EQ(r.stats().cache_slots_in_use, 1U);
  }
  shm_resource again(segment);
  EXPECT_EQ(again.stats().cache_slots_in_use, 0U);
  EXPECT_EQ(again.stats().bytes_cached, 0U);
  EXPECT_TRUE(again.verify().empty()) << again.verify();
}

TEST(ShmResource, VerifyFindsADamagedFreeList) {
  shm_resource r({.segment_size = 4 * mib, .cache_limit = 0});
  void* a = r.allocate(32);
  void* b = r.allocate(32);
  r.deallocate(a, 32);
  r.deallocate(b, 32);
  EXPECT_TRUE(r.verify().empty()) << r.verify();
  // The newest free block links to the one before; point it at itself.
  const std::uint64_t self = r.offset_of(b).value;
  std::memcpy(b, &self, sizeof self);
  EXPECT_FALSE(r.verify().empty());
  std::uint64_t fix = r.offset_of(a).value;
  std::memcpy(b, &fix, sizeof fix);
  EXPECT_TRUE(r.verify().empty()) << r.verify();
}

}  // namespace

namespace {

TEST(ShmResource, FromBaseFindsThisProcesssResourceOverAMapping) {
  auto segment = pmrkit::shm_segment::anonymous(4 * mib);
  EXPECT_EQ(shm_resource::from_base(segment.base()), nullptr);
  {
    shm_resource r(segment);
    EXPECT_EQ(shm_resource::from_base(segment.base()), &r);
    EXPECT_EQ(shm_resource::from_base(segment.base()), &r) << "the remembered answer";
    {
      shm_resource newer(segment);
      EXPECT_EQ(shm_resource::from_base(segment.base()), &newer);
    }
    EXPECT_EQ(shm_resource::from_base(segment.base()), &r) << "the older one takes over";
  }
  EXPECT_EQ(shm_resource::from_base(segment.base()), nullptr);
}

}  // namespace
