// shm_allocator: Boost.Container's vector, deque, string, map, flat_map and a
// nested map<string, vector<int>> (scoped_allocator_adaptor) inside a segment;
// the same segment mapped twice in one process, built through one mapping and
// changed through the other; the memory coming back when the containers go;
// the errors; and exec'd children (shm_child boost_containers, each mapping the
// segment at its own address) that find the containers by name, check them and
// add to them.
//
// Segments with a name are "/pmrkit-test-<pid>-<counter>-<what>", removed by a
// guard (shm.no_leftovers checks /dev/shm afterwards).
#include <pmr/shm/shm_allocator.hpp>
#include <pmr/shm/shm_resource.hpp>
#include <pmr/shm/shm_segment.hpp>
#include <pmr/testing/violation_recorder.hpp>

#include "shm_allocator_common.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>
#include "segment_name.hpp"

#ifndef SHM_CHILD_PATH
#error "SHM_CHILD_PATH (the shm_child program's absolute path) must be defined"
#endif

namespace {

using namespace shm_allocator_test;

using shm_test::segment_name;

// What the caller holds, all caches returned first.
pmrkit::shm_stats settled(pmrkit::shm_resource& r) {
  r.flush_thread_cache();
  return r.stats();
}

// --- the allocator's types --------------------------------------------------------------------

using traits = std::allocator_traits<alloc<int>>;
static_assert(std::is_same_v<traits::pointer, pmrkit::offset_ptr<int>>);
static_assert(std::is_same_v<traits::const_pointer, pmrkit::offset_ptr<const int>>);
static_assert(std::is_same_v<traits::void_pointer, pmrkit::offset_ptr<void>>);
static_assert(std::is_same_v<traits::const_void_pointer, pmrkit::offset_ptr<const void>>);
static_assert(std::is_same_v<traits::rebind_alloc<long>, alloc<long>>);
static_assert(!traits::propagate_on_container_copy_assignment::value);
static_assert(!traits::propagate_on_container_move_assignment::value);
static_assert(!traits::propagate_on_container_swap::value);
static_assert(!traits::is_always_equal::value);
static_assert(std::is_convertible_v<const pmrkit::shm_resource&, alloc<int>>);
static_assert(std::is_convertible_v<alloc<int>, alloc<char>>);
static_assert(!std::is_default_constructible_v<alloc<int>>);
static_assert(sizeof(alloc<int>) == sizeof(pmrkit::offset_ptr<std::byte>));
static_assert(std::is_same_v<int_vector::pointer, pmrkit::offset_ptr<int>>);
static_assert(std::is_same_v<int_map::pointer, pmrkit::offset_ptr<std::pair<const int, int>>>);

TEST(ShmAllocator, AllocatesInTheSegmentAndComparesBySegment) {
  pmrkit::shm_resource shm({.segment_size = 1 << 20});
  pmrkit::shm_resource other({.segment_size = 1 << 20});
  alloc<int> ints(shm);
  const alloc<char> chars(ints);
  EXPECT_EQ(ints, chars);
  EXPECT_EQ(ints, alloc<double>(shm));
  EXPECT_NE(ints, alloc<int>(other));
  EXPECT_EQ(ints.segment_base(), shm.base());
  EXPECT_EQ(&ints.resource(), &shm);
  EXPECT_EQ(&alloc<int>(other).resource(), &other);
  EXPECT_EQ(&ints.resource(), &shm);  // back to the first segment (a thread remembers one)

  alloc<int> copy = chars;
  EXPECT_EQ(copy, ints);
  pmrkit::offset_ptr<int> p = copy.allocate(100);
  ASSERT_TRUE(p);
  EXPECT_TRUE(shm.segment().contains(p.get()));
  EXPECT_TRUE(shm.segment().contains(p.get() + 99));
  for (int i = 0; i < 100; ++i)
    p[i] = i;
  EXPECT_GE(shm.stats().bytes_in_use, 100 * sizeof(int));
  ints.deallocate(p, 100);  // an equal allocator frees it
  EXPECT_EQ(settled(shm).bytes_in_use, 0U);
  EXPECT_EQ(shm.verify(), "");
}

TEST(ShmAllocator, AlignsForTheValueType) {
  struct alignas(256) wide {
    unsigned char bytes[256];
  };
  pmrkit::shm_resource shm({.segment_size = 1 << 20});
  alloc<wide> wides(shm);
  pmrkit::offset_ptr<wide> p = wides.allocate(3);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p.get()) % 256, 0U);
  wides.deallocate(p, 3);
  EXPECT_EQ(settled(shm).bytes_in_use, 0U);
}

TEST(ShmAllocator, CountOverflowIsAnAllocationError) {
  pmrkit::shm_resource shm({.segment_size = 1 << 20});
  alloc<int> ints(shm);
  EXPECT_EQ(ints.max_size(), SIZE_MAX / sizeof(int));
  try {
    (void)ints.allocate(SIZE_MAX / sizeof(int) + 1);
    FAIL() << "no exception";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::size_overflow);
  }
  // Too large for the segment: the resource's own error.
  try {
    (void)ints.allocate(std::size_t{1} << 30);
    FAIL() << "no exception";
  } catch (const pmrkit::allocation_error& e) {
    EXPECT_EQ(e.reason(), pmrkit::failure_reason::out_of_capacity);
  }
}

TEST(ShmAllocator, WithoutAResourceOverTheMappingAllocateThrowsAndDeallocateReports) {
  pmrkit::shm_segment segment = pmrkit::shm_segment::anonymous(1 << 20);
  std::optional<pmrkit::shm_resource> shm(std::in_place, segment);
  alloc<int> ints(*shm);
  pmrkit::offset_ptr<int> p = ints.allocate(4);
  shm.reset();  // the segment stays mapped, but no resource of this process is over it
  try {
    (void)ints.allocate(1);
    FAIL() << "no exception";
  } catch (const pmrkit::shm_error& e) {
    EXPECT_EQ(e.code(), pmrkit::shm_errc::not_found);
    EXPECT_NE(std::string(e.what()).find("no shm_resource of this process"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW((void)ints.resource(), pmrkit::shm_error);
  {
    pmrkit::violation_recorder recorder;
    ints.deallocate(p, 4);
    EXPECT_EQ(recorder.count(pmrkit::violation_kind::foreign_pointer), 1U);
  }
  shm.emplace(segment);  // a resource again: the allocator finds it
  EXPECT_EQ(&ints.resource(), &*shm);
  ints.deallocate(p, 4);
  EXPECT_EQ(settled(*shm).bytes_in_use, 0U);
}

// --- Boost.Container's containers in one segment ---------------------------------------------

TEST(ShmAllocator, BoostContainersInASegment) {
  pmrkit::shm_resource shm({.segment_size = 4 << 20});
  build(shm);
  EXPECT_EQ(check(shm, 0), "");
  add_generation(shm, 0);
  add_generation(shm, 1);
  EXPECT_EQ(check(shm, 2), "");
  EXPECT_EQ(shm.verify(), "");
  EXPECT_GT(shm.stats().bytes_in_use, 10000U);
  destroy_all(shm);
  const pmrkit::shm_stats after = settled(shm);
  EXPECT_EQ(after.bytes_in_use, 0U);
  EXPECT_EQ(after.blocks_in_use, 0U);
  EXPECT_EQ(after.named_objects, 0U);
  EXPECT_EQ(shm.verify(), "");
}

// Boost's deque and basic_string write `pointer p = 0;`: with offset_ptr's two constructors from
// std::nullptr_t and from T*, a literal 0 is ambiguous, and the deque, the string and the nested
// map<string, vector<int>> are left out of the tests above and below (shm_allocator_common.hpp).
TEST(ShmAllocator, DequeAndStringAreTested) {
  if (!with_deque_and_string) {
    GTEST_SKIP() << "offset_ptr<T> is not constructible from a literal 0 (it has both an "
                    "offset_ptr(std::nullptr_t) and an offset_ptr(T*) constructor): Boost's deque "
                    "and basic_string do not compile with it, so they are not tested";
  }
}

TEST(ShmAllocator, ContainersOnTheStackWithTheirMemoryInTheSegment) {
  pmrkit::shm_resource shm({.segment_size = 1 << 20});
  {
    int_vector v(shm);
    v.assign({5, 6, 7});
    int_map m(shm);
    m.emplace(1, 2);
    EXPECT_TRUE(shm.segment().contains(v.data()));
    EXPECT_TRUE(shm.segment().contains(&*m.begin()));
    int_vector copy(v);  // copy construction: the same segment
    EXPECT_EQ(copy, v);
    EXPECT_EQ(copy.get_allocator(), v.get_allocator());
  }
  EXPECT_EQ(settled(shm).bytes_in_use, 0U);
}

// The propagate traits are false: a container's memory stays in its own segment.
TEST(ShmAllocator, AssignmentAcrossSegmentsKeepsEachContainersSegment) {
  pmrkit::shm_resource a({.segment_size = 1 << 20});
  pmrkit::shm_resource b({.segment_size = 1 << 20});
  {
    int_vector in_a(a);
    in_a.assign({1, 2, 3});
    int_vector in_b(b);
    in_b = in_a;  // copy: b's allocator stays
    EXPECT_EQ(in_b.get_allocator(), alloc<int>(b));
    EXPECT_TRUE(b.segment().contains(in_b.data()));
    in_b.clear();
    in_b = std::move(in_a);  // unequal allocators: the elements move, the buffer does not
    EXPECT_EQ(in_b.get_allocator(), alloc<int>(b));
    EXPECT_TRUE(b.segment().contains(in_b.data()));
    EXPECT_EQ(in_b, int_vector({1, 2, 3}, b));

    int_vector also_in_b(b);
    const int* buffer = in_b.data();
    also_in_b = std::move(in_b);  // equal allocators: the buffer moves
    EXPECT_EQ(also_in_b.data(), buffer);
  }
  EXPECT_EQ(settled(a).bytes_in_use, 0U);
  EXPECT_EQ(settled(b).bytes_in_use, 0U);
}

// --- one segment, two mappings in one process ------------------------------------------------

TEST(ShmAllocator, BuiltThroughOneMappingChangedThroughAnother) {
  const segment_name name("alloc-two-mappings");
  pmrkit::shm_segment first = pmrkit::shm_segment::create(name.str(), 4 << 20);
  pmrkit::shm_segment second = pmrkit::shm_segment::open(name.str());
  ASSERT_NE(first.base(), second.base());
  pmrkit::shm_resource a(first);
  pmrkit::shm_resource b(second);

  build(a);
  EXPECT_EQ(check(a, 0), "");
  EXPECT_EQ(check(b, 0), "");  // the same containers, at b's addresses
  auto* through_a = a.find<int_vector>(vector_name);
  auto* through_b = b.find<int_vector>(vector_name);
  EXPECT_EQ(reinterpret_cast<std::byte*>(through_b) - second.base(),
            reinterpret_cast<std::byte*>(through_a) - first.base());
  EXPECT_EQ(through_a->get_allocator().segment_base(), first.base());
  EXPECT_EQ(through_b->get_allocator().segment_base(), second.base());
  EXPECT_NE(through_a->get_allocator(), through_b->get_allocator());  // different mappings
  EXPECT_EQ(&through_b->get_allocator().resource(), &b);

  add_generation(b, 0);  // allocates and frees through b's resource
  EXPECT_EQ(check(a, 1), "");
  EXPECT_EQ(check(b, 1), "");
  add_generation(a, 1);
  EXPECT_EQ(check(b, 2), "");
  EXPECT_EQ(check(a, 2), "");
  EXPECT_EQ(a.verify(), "");

  destroy_all(b);
  a.flush_thread_cache();
  b.flush_thread_cache();
  for (const pmrkit::shm_resource* r : {&a, &b}) {
    const pmrkit::shm_stats after = r->stats();
    EXPECT_EQ(after.bytes_in_use, 0U);
    EXPECT_EQ(after.named_objects, 0U);
    EXPECT_EQ(r->verify(), "");
  }
}

// --- exec'd children, each with its own mapping address ----------------------------------------

// Runs `shm_child boost_containers NAME GENERATION` and waits for it (at most a minute).
std::string run_child(const std::string& name, int generation) {
  std::vector<std::string> args{SHM_CHILD_PATH, "boost_containers", name,
                                std::to_string(generation)};
  std::vector<char*> argv;
  for (std::string& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return "fork failed";
  if (pid == 0) {
    ::execv(SHM_CHILD_PATH, argv.data());
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return "timed out (killed)";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

TEST(ShmAllocator, ChildrenAtOtherAddressesFindTheContainersAndAddToThem) {
  const segment_name name("alloc-children");
  pmrkit::shm_segment segment = pmrkit::shm_segment::create(name.str(), 4 << 20);
  pmrkit::shm_resource r(segment);
  build(r);
  ASSERT_EQ(check(r, 0), "");
  constexpr int children = 2;
  for (int g = 0; g < children; ++g) {
    ASSERT_EQ(run_child(name.str(), g), "") << "child of generation " << g;
    ASSERT_EQ(check(r, g + 1), "") << "after the child of generation " << g;
    const std::span<std::uint64_t> bases = r.find_array<std::uint64_t>(bases_name);
    ASSERT_EQ(bases.size(), max_generations);
    EXPECT_NE(bases[static_cast<std::size_t>(g)], 0U);
    EXPECT_NE(bases[static_cast<std::size_t>(g)], reinterpret_cast<std::uintptr_t>(segment.base()))
        << "the child mapped the segment where the parent did";
  }
  // The parent changes what the children built, then frees it all.
  add_generation(r, children);
  EXPECT_EQ(check(r, children + 1), "");
  EXPECT_EQ(r.verify(), "");
  destroy_all(r);
  const pmrkit::shm_stats after = settled(r);
  EXPECT_EQ(after.bytes_in_use, 0U);
  EXPECT_EQ(after.blocks_in_use, 0U);
  EXPECT_EQ(after.cache_slots_in_use, 0U);  // the children gave theirs back
  EXPECT_EQ(after.named_objects, 0U);
  EXPECT_EQ(r.verify(), "");
}

}  // namespace
