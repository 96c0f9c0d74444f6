// shm_segment and shm_resource used by real processes: children started with
// fork + exec of shm_child (each with its own address layout) churning
// allocations in one segment and freeing each other's blocks through a queue
// in it; open_or_create raced by several processes; and a child forked
// without exec that goes on using the resource it inherited (the thread
// caches' fork generation).
//
// Every segment is named "/pmrkit-test-<pid>-<counter>-<what>" and removed by
// a guard, also when a test fails; shm.no_leftovers (tests/shm/CMakeLists.txt)
// checks /dev/shm afterwards.
#include <pmr/shm/shm_resource.hpp>
#include <pmr/shm/shm_segment.hpp>

#include "shm_process_common.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>
#include "segment_name.hpp"

#ifndef SHM_CHILD_PATH
#error "SHM_CHILD_PATH (the shm_child program's absolute path) must be defined"
#endif

// Sanitized builds run the children several times slower: fewer iterations.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SHM_PROCESS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SHM_PROCESS_SANITIZED 1
#endif
#endif
#ifndef SHM_PROCESS_SANITIZED
#define SHM_PROCESS_SANITIZED 0
#endif

namespace {

using namespace shm_process;

constexpr std::uint64_t churn_iterations = SHM_PROCESS_SANITIZED ? 10000 : 20000;

using shm_test::segment_name;

// The start barrier: children write a byte to `ready` when set, then block on
// `go` until the parent closes its end.
class barrier {
 public:
  barrier() {
    if (::pipe(ready_) != 0 || ::pipe(go_) != 0) throw std::runtime_error("pipe failed");
  }
  barrier(const barrier&) = delete;
  barrier& operator=(const barrier&) = delete;
  ~barrier() {
    close_fd(ready_[0]);
    close_fd(ready_[1]);
    close_fd(go_[0]);
    close_fd(go_[1]);
  }
  [[nodiscard]] std::string ready_fd() const { return std::to_string(ready_[1]); }
  [[nodiscard]] std::string go_fd() const { return std::to_string(go_[0]); }
  // In the child before exec: the ends that belong to the parent.
  void close_parent_ends() const noexcept {
    ::close(ready_[0]);
    ::close(go_[1]);
  }
  // Waits until `children` said ready (or died), then lets them all go; the count that said ready.
  std::size_t release(std::size_t children) {
    close_fd(ready_[1]);
    close_fd(go_[0]);
    std::size_t ready = 0;
    char byte = 0;
    while (ready < children && ::read(ready_[0], &byte, 1) == 1)
      ++ready;
    close_fd(go_[1]);
    return ready;
  }

 private:
  static void close_fd(int& fd) noexcept {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  int ready_[2] = {-1, -1};
  int go_[2] = {-1, -1};
};

// Forks and execs shm_child with `args`; the child closes the parent's ends of `gate`.
pid_t spawn(const std::vector<std::string>& args, const barrier& gate) {
  std::vector<std::string> all{SHM_CHILD_PATH};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : all)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    gate.close_parent_ends();
    ::execv(SHM_CHILD_PATH, argv.data());
    ::_exit(127);
  }
  return pid;
}

// Waits for every child, at most `limit`; kills those still running then. The wait statuses.
std::vector<int> wait_all(const std::vector<pid_t>& pids,
                          std::chrono::seconds limit = std::chrono::seconds(60)) {
  std::vector<int> statuses(pids.size(), -1);
  std::vector<bool> done(pids.size(), false);
  std::size_t left = pids.size();
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (left > 0) {
    for (std::size_t i = 0; i < pids.size(); ++i) {
      if (done[i]) continue;
      int status = 0;
      const pid_t got = ::waitpid(pids[i], &status, WNOHANG);
      if (got == pids[i] || got < 0) {
        statuses[i] = got < 0 ? -1 : status;
        done[i] = true;
        --left;
      }
    }
    if (left == 0) break;
    if (std::chrono::steady_clock::now() > deadline) {
      for (std::size_t i = 0; i < pids.size(); ++i) {
        if (done[i]) continue;
        ::kill(pids[i], SIGKILL);
        ::waitpid(pids[i], &statuses[i], 0);
        statuses[i] = -2;  // timed out
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return statuses;
}

std::string describe(int status) {
  if (status == -2) return "timed out (killed)";
  if (status == -1) return "not waited for";
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

// --- churn: several exec'd children allocate, free and exchange blocks --------------------------

// Each child (shm_child churn) allocates, checks and frees its own blocks and
// hands some to the others through the named queue; the parent drains the
// queue and checks that the segment is back to its named objects, then empty.
// `verify_in_children`: each child also calls verify() when its loop ends.
void churn(bool verify_in_children) {
  constexpr std::size_t children = 4;
  const segment_name name("churn");
  auto segment = pmrkit::shm_segment::create(name.str(), std::size_t{32} << 20);
  pmrkit::shm_resource r(segment);
  r.construct<offset_queue>(queue_name);
  r.construct_array<child_report>(reports_name, children);
  const pmrkit::shm_stats baseline = r.stats();  // what the parent holds: the named objects
  ASSERT_GE(baseline.bytes_in_use, r.block_size(sizeof(offset_queue), alignof(offset_queue)));
  ASSERT_EQ(baseline.named_objects, 2U);

  const auto start = std::chrono::steady_clock::now();
  barrier gate;
  std::vector<pid_t> pids;
  for (std::size_t i = 0; i < children; ++i) {
    pids.push_back(spawn({"churn", name.str(), std::to_string(i), std::to_string(churn_iterations),
                          std::to_string(0x5EED0000 + i), gate.ready_fd(), gate.go_fd(),
                          verify_in_children ? "verify" : "-"},
                         gate));
    ASSERT_GT(pids.back(), 0) << "fork failed";
  }
  EXPECT_EQ(gate.release(children), children) << "a child died before the start";
  const std::vector<int> statuses = wait_all(pids);
  const auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start);
  for (std::size_t i = 0; i < children; ++i) {
    EXPECT_TRUE(WIFEXITED(statuses[i]) && WEXITSTATUS(statuses[i]) == 0)
        << "child " << i << " (pid " << pids[i] << "): " << describe(statuses[i]);
  }

  const std::span<child_report> reports = r.find_array<child_report>(reports_name);
  ASSERT_EQ(reports.size(), children);
  std::set<std::uint64_t> bases;
  child_report total;
  for (const child_report& c : reports) {
    EXPECT_EQ(c.done, 1U);
    bases.insert(c.base);
    total.allocations += c.allocations;
    total.large_allocations += c.large_allocations;
    total.frees += c.frees;
    total.pushed += c.pushed;
    total.popped += c.popped;
    total.foreign += c.foreign;
    total.out_of_capacity += c.out_of_capacity;
  }
  EXPECT_GE(bases.size(), 2U) << "every child mapped the segment at the same address";
  EXPECT_GT(total.large_allocations, 0U);
  EXPECT_GT(total.foreign, 0U) << "no child freed a block another one allocated";
  EXPECT_EQ(total.out_of_capacity, 0U);

  // Drain what the children left in the queue: blocks of exited processes.
  auto* queue = r.find<offset_queue>(queue_name);
  ASSERT_NE(queue, nullptr);
  std::uint64_t drained = 0;
  for (pmrkit::shm_offset offset = queue->pop(); offset; offset = queue->pop()) {
    void* p = r.at<void>(offset).get();
    const block_info info = check_pattern(p);
    ASSERT_EQ(info.error, "") << "a queued block at offset " << offset.value;
    r.deallocate(p, info.size, info.alignment);
    ++drained;
  }
  EXPECT_EQ(total.allocations, total.frees + drained);
  EXPECT_EQ(total.pushed, total.popped + drained);

  EXPECT_EQ(r.verify(), "");
  r.flush_thread_cache();  // the parent's own slot, taken while draining
  const pmrkit::shm_stats after = r.stats();
  EXPECT_EQ(after.bytes_in_use, baseline.bytes_in_use);
  EXPECT_EQ(after.blocks_in_use, baseline.blocks_in_use);
  // The children's cache slots went back when their resources were destroyed.
  EXPECT_EQ(after.cache_slots_in_use, 0U);

  EXPECT_TRUE(r.destroy<offset_queue>(queue_name));
  EXPECT_TRUE(r.destroy<child_report>(reports_name));
  r.flush_thread_cache();  // the parent's own cache (the named objects' entries went there)
  const pmrkit::shm_stats empty = r.stats();
  EXPECT_EQ(empty.bytes_in_use, 0U);
  EXPECT_EQ(empty.blocks_in_use, 0U);
  EXPECT_EQ(empty.bytes_cached, 0U);
  EXPECT_EQ(empty.cache_slots_in_use, 0U);
  EXPECT_EQ(empty.named_objects, 0U);
  EXPECT_EQ(r.verify(), "");
  std::printf(
      "churn: %zu children x %llu iterations in %.2f s: %llu allocations (%llu above 8 KiB), "
      "%llu handed over, %llu freed by another process, %llu drained by the parent; peak %zu KiB "
      "in use\n",
      children, static_cast<unsigned long long>(churn_iterations), elapsed.count(),
      static_cast<unsigned long long>(total.allocations),
      static_cast<unsigned long long>(total.large_allocations),
      static_cast<unsigned long long>(total.pushed), static_cast<unsigned long long>(total.foreign),
      static_cast<unsigned long long>(drained), after.peak_bytes_in_use >> 10);
}

TEST(ShmProcess, ChildrenChurnAndFreeEachOthersBlocks) {
  churn(false);
}

// verify() in each child while the others churn: other threads' caches change
// without the lock, so verify() counts them and walks only its own (it once
// walked them all and reported false disagreements about one run in four).
TEST(ShmProcess, VerifyInChildrenWhileOthersChurn) {
  churn(true);
}

// --- open_or_create raced by several processes -----------------------------------------------

TEST(ShmProcess, OpenOrCreateRaceHasExactlyOneCreator) {
  constexpr std::size_t children = 6;
  const segment_name name("race");
  barrier gate;
  std::vector<pid_t> pids;
  for (std::size_t i = 0; i < children; ++i) {
    pids.push_back(spawn(
        {"race", name.str(), std::to_string(std::size_t{1} << 20), gate.ready_fd(), gate.go_fd()},
        gate));
    ASSERT_GT(pids.back(), 0) << "fork failed";
  }
  EXPECT_EQ(gate.release(children), children) << "a child died before the start";
  const std::vector<int> statuses = wait_all(pids);
  std::size_t created = 0;
  std::size_t opened = 0;
  for (std::size_t i = 0; i < children; ++i) {
    const int status = statuses[i];
    if (WIFEXITED(status) && WEXITSTATUS(status) == 10) {
      ++created;
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 11) {
      ++opened;
    } else {
      ADD_FAILURE() << "child " << i << " (pid " << pids[i] << "): " << describe(status);
    }
  }
  EXPECT_EQ(created, 1U);
  EXPECT_EQ(opened, children - 1);

  auto segment = pmrkit::shm_segment::open(name.str());
  EXPECT_FALSE(segment.created());
  pmrkit::shm_resource r(segment);
  auto* joined = r.find<std::atomic<std::uint64_t>>(joined_name);
  ASSERT_NE(joined, nullptr);
  EXPECT_EQ(joined->load(), children);
  EXPECT_EQ(r.verify(), "");
  EXPECT_EQ(r.stats().cache_slots_in_use, 0U);
  EXPECT_TRUE(r.destroy<std::atomic<std::uint64_t>>(joined_name));
  r.flush_thread_cache();
  EXPECT_EQ(r.stats().bytes_in_use, 0U);
  EXPECT_EQ(r.stats().bytes_cached, 0U);
}

// --- a child forked without exec, using the resource it inherited -----------------------------
//
// The parent's thread holds a cache slot when it forks. The child inherits the
// resource object and the thread's binding to that slot; the binding carries
// the fork generation, which the child's fork handler has moved on, so the
// child claims a slot of its own (two processes popping one slot's lists
// would hand out the same blocks). Observed: a child that calls _exit keeps
// its slot (owner: its pid) and the blocks in it, counted in bytes_cached and
// cache_slots_in_use, for good (the segment's life: not reusable by others,
// but verify() accounts for them); a child that calls flush_thread_cache()
// first returns its slot and its blocks to the free lists, and the parent sees
// bytes_cached and cache_slots_in_use as they were before the fork. The blocks
// the child still held when it died stay in use in both cases.

struct fork_report {
  std::uint64_t slots_in_use = 0;  // the child's view, after its work
  std::uint64_t bytes_cached = 0;
  std::uint64_t slots_after_flush = 0;
  std::uint64_t cached_after_flush = 0;
  std::uint64_t ok = 0;
};

constexpr std::size_t fork_held = 8;      // blocks of 48 B the child keeps when it dies
constexpr std::size_t fork_churned = 40;  // blocks of 96 B it allocates and frees

void forked_child(pmrkit::shm_resource& r, bool flush) noexcept {
  try {
    auto* report = r.find<fork_report>("fork-report");
    if (report == nullptr) ::_exit(3);
    for (std::size_t i = 0; i < fork_held; ++i) {
      auto* p = static_cast<unsigned char*>(r.allocate(48));
      p[0] = 0x5A;
    }
    std::vector<void*> churned;
    for (std::size_t i = 0; i < fork_churned; ++i)
      churned.push_back(r.allocate(96));
    for (void* p : churned)
      r.deallocate(p, 96);
    const pmrkit::shm_stats s = r.stats();
    report->slots_in_use = s.cache_slots_in_use;
    report->bytes_cached = s.bytes_cached;
    if (flush) {
      r.flush_thread_cache();
      const pmrkit::shm_stats t = r.stats();
      report->slots_after_flush = t.cache_slots_in_use;
      report->cached_after_flush = t.bytes_cached;
    }
    report->ok = r.verify().empty() ? 1 : 0;
    ::_exit(report->ok == 1 ? 0 : 4);
  } catch (...) {
    ::_exit(5);
  }
}

void fork_without_exec(bool flush) {
  pmrkit::shm_resource r({.segment_size = std::size_t{8} << 20});
  auto& report = r.construct<fork_report>("fork-report");
  void* mine = r.allocate(64);  // the parent's thread now holds a cache slot
  const pmrkit::shm_stats before = r.stats();
  ASSERT_EQ(before.cache_slots_in_use, 1U);
  ASSERT_GT(before.bytes_cached, 0U);

  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0) << "fork failed";
  if (pid == 0) forked_child(r, flush);  // does not return
  const std::vector<int> statuses = wait_all({pid});
  ASSERT_TRUE(WIFEXITED(statuses[0]) && WEXITSTATUS(statuses[0]) == 0) << describe(statuses[0]);
  EXPECT_EQ(report.ok, 1U);

  // The child's own slot: its view counted two.
  EXPECT_EQ(report.slots_in_use, 2U);
  EXPECT_GT(report.bytes_cached, before.bytes_cached);
  const pmrkit::shm_stats after = r.stats();
  EXPECT_EQ(after.bytes_in_use, before.bytes_in_use + fork_held * 48);
  EXPECT_EQ(after.blocks_in_use, before.blocks_in_use + fork_held);
  if (flush) {
    EXPECT_EQ(report.slots_after_flush, 1U);
    EXPECT_EQ(report.cached_after_flush, before.bytes_cached);
    EXPECT_EQ(after.cache_slots_in_use, 1U);
    EXPECT_EQ(after.bytes_cached, before.bytes_cached);
  } else {
    EXPECT_EQ(after.cache_slots_in_use, 2U);  // the dead child's slot stays claimed
    EXPECT_EQ(after.bytes_cached, report.bytes_cached);
    EXPECT_GT(after.bytes_cached, before.bytes_cached);
  }
  EXPECT_EQ(r.verify(), "");

  // The parent's slot is intact: it goes on allocating and freeing from it.
  r.deallocate(mine, 64);
  std::vector<void*> more;
  for (int i = 0; i < 100; ++i)
    more.push_back(r.allocate(64));
  std::set<void*> distinct(more.begin(), more.end());
  EXPECT_EQ(distinct.size(), more.size());
  for (void* p : more)
    r.deallocate(p, 64);
  EXPECT_EQ(r.verify(), "");
  EXPECT_TRUE(r.destroy<fork_report>("fork-report"));
  r.flush_thread_cache();
  EXPECT_EQ(r.stats().bytes_in_use, fork_held * 48);  // what the child died holding
  EXPECT_EQ(r.stats().cache_slots_in_use, flush ? 0U : 1U);
}

TEST(ShmProcess, ForkedChildWithoutExecKeepsItsCacheAfterExit) {
  fork_without_exec(false);
}

TEST(ShmProcess, ForkedChildWithoutExecFlushesItsCache) {
  fork_without_exec(true);
}

}  // namespace
