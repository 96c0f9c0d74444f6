// std::pmr containers shared between processes: a segment mapped with
// fixed_address, each process's resource at the agreed address below it.
#include <pmr/shm/shm_resource.hpp>
#include <pmr/shm/shm_segment.hpp>

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vector>

#include "segment_name.hpp"
#include "shm_pmr_common.hpp"

#ifndef SHM_CHILD_PATH
#error "SHM_CHILD_PATH (the shm_child program's absolute path) must be defined"
#endif

namespace {

using pmrkit::shm_errc;
using pmrkit::shm_resource;
using pmrkit::shm_segment;

constexpr std::size_t mib = std::size_t{1} << 20;

using shm_test::segment_name;

// Runs shm_child with `args` (fork + exec: a fresh address layout); its exit status.
int run_child(std::vector<std::string> args) {
  args.insert(args.begin(), SHM_CHILD_PATH);
  std::vector<char*> argv;
  for (std::string& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execv(SHM_CHILD_PATH, argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(ShmPmr, AFixedSegmentIsAtItsCreatorsAddressWithTheResourceBelow) {
  const segment_name name;
  auto segment = shm_segment::create(name.str(), 8 * mib, {.fixed_address = true});
  EXPECT_TRUE(segment.fixed_address());
  EXPECT_EQ(segment.preferred_base(), reinterpret_cast<std::uintptr_t>(segment.base()));
  shm_resource& r = shm_resource::at_fixed_address(segment);
  EXPECT_EQ(static_cast<void*>(&r), segment.resource_page());
  EXPECT_EQ(&shm_resource::at_fixed_address(segment), &r) << "built once";
  // This process has the address already: a second fixed mapping cannot have it.
  try {
    (void)shm_segment::open(name.str(), {.fixed_address = true});
    FAIL() << "no exception";
  } catch (const pmrkit::shm_error& e) {
    EXPECT_EQ(e.code(), shm_errc::address_in_use);
  }
  // A mapping elsewhere is still possible (for offset-based containers).
  auto elsewhere = shm_segment::open(name.str());
  EXPECT_NE(elsewhere.base(), segment.base());
  EXPECT_THROW((void)shm_resource::at_fixed_address(elsewhere), std::invalid_argument);
  EXPECT_THROW((void)shm_segment::anonymous(mib, {.fixed_address = true}), std::invalid_argument);
  // Moving the segment keeps its resource pointing at it.
  shm_segment moved = std::move(segment);
  void* p = r.allocate(64);
  r.deallocate(p, 64);
  EXPECT_EQ(&r.segment(), &moved);
}

TEST(ShmPmr, ContainersBuiltByOneProcessAreReadAndExtendedByAnother) {
  const segment_name name;
  auto segment = shm_segment::create(name.str(), 32 * mib, {.fixed_address = true});
  shm_resource& r = shm_resource::at_fixed_address(segment);
  auto& map = r.construct<shm_pmr::map_type>(shm_pmr::map_name, &r);
  auto& strings = r.construct<shm_pmr::strings_type>(shm_pmr::strings_name, &r);
  auto& counts = r.construct<shm_pmr::counts_type>(shm_pmr::counts_name, &r);
  for (int i = 0; i < 100; ++i) {
    map.emplace(i, shm_pmr::text(i));
    strings.emplace_back(shm_pmr::text(i));
    counts[i] = i;
  }
  const int status = run_child({"pmr_containers", name.str()});
  if (status == 3) GTEST_SKIP() << "the child's layout had the address taken (ASLR)";
  ASSERT_EQ(status, 0);
  // The additions of the other process, seen here.
  EXPECT_EQ(map.size(), 199U);
  EXPECT_EQ(map.count(0), 0U) << "erased by the child";
  EXPECT_EQ(std::string_view(map.at(150)), shm_pmr::text(150));
  ASSERT_EQ(strings.size(), 200U);
  EXPECT_EQ(std::string_view(strings[199]), shm_pmr::text(199));
  EXPECT_EQ(counts.size(), 200U);
  EXPECT_EQ(counts.at(177), 177);
  // And this process frees what the other allocated.
  EXPECT_TRUE(r.destroy<shm_pmr::map_type>(shm_pmr::map_name));
  EXPECT_TRUE(r.destroy<shm_pmr::strings_type>(shm_pmr::strings_name));
  EXPECT_TRUE(r.destroy<shm_pmr::counts_type>(shm_pmr::counts_name));
  (void)r.reclaim_dead_caches();  // the child ended without _exit: its cache came back anyway
  r.flush_thread_cache();
  EXPECT_EQ(r.stats().bytes_in_use, 0U);
  EXPECT_EQ(r.stats().bytes_cached, 0U);
  EXPECT_EQ(r.verify(), "");
}

TEST(ShmPmr, ATakenAddressIsAnErrorNeverAMappingElsewhere) {
  const segment_name name;
  auto segment = shm_segment::create(name.str(), 4 * mib, {.fixed_address = true});
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // A process whose layout has that address: the parent's mapping, inherited, is there.
    try {
      (void)shm_segment::open(name.str(), {.fixed_address = true});
    } catch (const pmrkit::shm_error& e) {
      ::_exit(e.code() == shm_errc::address_in_use ? 0 : 1);
    }
    ::_exit(2);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
}

}  // namespace
