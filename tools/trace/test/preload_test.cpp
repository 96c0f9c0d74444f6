// pmrkit-trace and libpmrkit_trace.so, end to end: the test programs
// (workload.c, workload.cpp) run under pmrkit-trace, and their traces are read
// back and checked exactly for the blocks they tagged with unusual sizes (the C
// and C++ runtimes add blocks of their own, which are only checked to pair);
// then the command line: exit statuses, usage errors, RMM conversion, a
// malformed log or trace.
//
// Thread safety: each test runs its processes one at a time, in a folder of its own.
#include <gtest/gtest.h>
#include <pmr/trace/trace_file.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace {

namespace fs = std::filesystem;
using pmrkit::trace;
using pmrkit::trace_action;
using pmrkit::trace_record;

struct outcome {
  int status = -1;  // the exit status, 128 + signal when killed
  std::string errors;
};

class Preload : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("pmrkit_trace_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }

  /// Runs `args` (args[0] a path), stdout to /dev/null, stderr to a file; returns its status
  /// and stderr.
  outcome run(const std::vector<std::string>& args) const {
    const fs::path errors = dir_ / "stderr.txt";
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 2, errors.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    std::vector<char*> argv;
    for (const std::string& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = 0;
    outcome result;
    if (posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ) == 0) {
      int status = 0;
      waitpid(pid, &status, 0);
      result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    posix_spawn_file_actions_destroy(&actions);
    std::ifstream in(errors);
    std::stringstream text;
    text << in.rdbuf();
    result.errors = text.str();
    return result;
  }
  outcome trace_program(const std::vector<std::string>& program) const {
    std::vector<std::string> args{PMRKIT_TRACE_CLI, "-o", out().string(), "--"};
    args.insert(args.end(), program.begin(), program.end());
    return run(args);
  }
  fs::path out() const { return dir_ / "out.trace"; }
  /// The out.trace.<pid> files.
  std::vector<fs::path> per_process() const {
    std::vector<fs::path> found;
    for (const auto& entry : fs::directory_iterator(dir_))
      if (entry.path().filename().string().starts_with("out.trace.")) found.push_back(entry.path());
    return found;
  }

  fs::path dir_;
};

/// The allocations of `bytes` (exactly one expected).
std::vector<std::size_t> allocations_of(const trace& t, std::uint64_t bytes,
                                        trace_action action = trace_action::allocate) {
  std::vector<std::size_t> found;
  for (std::size_t i = 0; i < t.records.size(); ++i)
    if (t.records[i].action == action && t.records[i].bytes == bytes) found.push_back(i);
  return found;
}

/// The one allocation of `bytes` at `alignment`, checked to be freed later with
/// `free_bytes` and `free_alignment`, on the same thread. Its index.
std::size_t expect_block(const trace& t, std::uint64_t bytes, std::uint64_t alignment,
                         std::uint64_t free_bytes = 0, std::uint64_t free_alignment = 1) {
  const std::vector<std::size_t> found = allocations_of(t, bytes);
  EXPECT_EQ(found.size(), 1u) << "allocations of " << bytes << " bytes";
  if (found.size() != 1) return 0;
  const trace_record& a = t.records[found[0]];
  EXPECT_EQ(a.alignment, alignment) << bytes;
  EXPECT_NE(a.partner, trace_record::no_partner) << bytes << " is never freed";
  if (a.partner == trace_record::no_partner) return found[0];
  const trace_record& f = t.records[a.partner];
  EXPECT_GT(a.partner, found[0]);
  EXPECT_EQ(f.action, trace_action::deallocate);
  EXPECT_EQ(f.id, a.id);
  EXPECT_EQ(f.bytes, free_bytes) << bytes;
  EXPECT_EQ(f.alignment, free_alignment) << bytes;
  EXPECT_EQ(f.thread, a.thread) << bytes;
  return found[0];
}

void expect_ordered_and_paired(const trace& t) {
  for (std::size_t i = 0; i < t.records.size(); ++i) {
    if (i > 0) {
      EXPECT_GE(t.records[i].nanoseconds, t.records[i - 1].nanoseconds) << i;
    }
    if (t.records[i].action == trace_action::deallocate) {
      EXPECT_LT(t.records[i].partner, i);  // read_trace checked it; the reader's invariant
    }
  }
}

TEST_F(Preload, RecordsTheCWorkloadExactly) {
  const outcome r = trace_program({PMRKIT_TRACE_WORKLOAD_C});
  ASSERT_EQ(r.status, 0) << r.errors;
  const trace t = pmrkit::read_trace(out());
  EXPECT_EQ(t.header.origin, pmrkit::trace_origin::preload);
  EXPECT_NE(t.header.pid, 0u);
  expect_ordered_and_paired(t);

  const std::size_t first = expect_block(t, 12345, 16);
  expect_block(t, 2331, 16);  // calloc(777, 3)
  const std::size_t grown = expect_block(t, 4321, 16);
  const std::size_t regrown = expect_block(t, 43210, 16);
  // realloc: the free of the old id, then the new block, one after the other.
  EXPECT_EQ(t.records[grown].partner + 1, regrown);
  expect_block(t, 6464, 64);   // posix_memalign
  expect_block(t, 2560, 256);  // aligned_alloc
  expect_block(t, 1280, 128);  // memalign
  expect_block(t, 1111, 16);   // reallocarray(NULL, 101, 11)
  expect_block(t, 3333, static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE)));  // valloc
  const std::size_t to_zero = expect_block(t, 5555, 16);  // realloc(p, 0) only frees
  ASSERT_LT(t.records[to_zero].partner + 1, t.records.size());
  EXPECT_NE(t.records[t.records[to_zero].partner + 1].bytes, 0u);
  const std::size_t parents = expect_block(t, 2468, 16);
  const std::size_t thread_block = expect_block(t, 9999, 16);
  EXPECT_NE(t.records[thread_block].thread, t.records[first].thread);
  EXPECT_EQ(t.records[parents].thread, t.records[first].thread);

  bool zero_bytes = false;
  for (const std::size_t i : allocations_of(t, 0))
    zero_bytes = zero_bytes || t.records[i].partner != trace_record::no_partner;
  EXPECT_TRUE(zero_bytes) << "malloc(0), freed";

  // The one failed malloc; the rejected requests (EINVAL, overflow) are not recorded.
  const std::vector<std::size_t> failed =
      allocations_of(t, SIZE_MAX - 99999, trace_action::failed_allocation);
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(t.records[failed[0]].alignment, 16u);
  for (const trace_record& record : t.records) {
    EXPECT_NE(record.bytes, 24242u);
    EXPECT_NE(record.bytes, 48484u);
    EXPECT_NE(record.bytes, 31337u) << "the child's block is in the parent's trace";
  }

  // The child's trace: its own block, nothing of its parent's (whose free passed unrecorded).
  const std::vector<fs::path> children = per_process();
  ASSERT_EQ(children.size(), 1u);
  const trace child = pmrkit::read_trace(children[0]);
  EXPECT_EQ(children[0].extension().string().substr(1), std::to_string(child.header.pid));
  EXPECT_NE(child.header.pid, t.header.pid);
  EXPECT_EQ(child.header.origin, pmrkit::trace_origin::preload);
  expect_block(child, 31337, 16);
  EXPECT_TRUE(allocations_of(child, 2468).empty());
  EXPECT_TRUE(allocations_of(child, 2468, trace_action::deallocate).empty());

  // The summary names both files.
  EXPECT_NE(r.errors.find("out.trace: " + std::to_string(t.records.size()) + " records"),
            std::string::npos)
      << r.errors;
  EXPECT_NE(r.errors.find(children[0].filename().string() + ": "), std::string::npos) << r.errors;
}

/// The number after `"key": ` in pmrkit-replay's JSON, or -1.
long long json_number(const std::string& json, const std::string& key) {
  const std::size_t at = json.find("\"" + key + "\": ");
  return at == std::string::npos ? -1 : std::stoll(json.substr(at + key.size() + 4));
}

// The same trace through pmrkit-replay: its profile counts the trace's records and finds its
// live peak exactly, and the strategies serve it.
TEST_F(Preload, TheCWorkloadsTraceReplays) {
  ASSERT_EQ(trace_program({PMRKIT_TRACE_WORKLOAD_C}).status, 0);
  const trace t = pmrkit::read_trace(out());
  std::uint64_t allocations = 0;
  std::uint64_t frees = 0;
  std::uint64_t live = 0;
  std::uint64_t peak = 0;
  for (const trace_record& r : t.records) {
    if (r.action == trace_action::allocate) {
      ++allocations;
      peak = std::max(peak, live += r.bytes);
    } else if (r.action == trace_action::deallocate) {
      ++frees;
      live -= t.records[r.partner].bytes;
    }
  }
  const fs::path json = dir_ / "replay.json";
  const outcome r = run({PMRKIT_REPLAY_CLI, "--no-progress", "-r", "1", "-s",
                         "malloc,multipool,buddy", "--json", json.string(), out().string()});
  ASSERT_EQ(r.status, 0) << r.errors;
  std::ifstream in(json);
  std::stringstream text;
  text << in.rdbuf();
  const std::string report = text.str();
  EXPECT_EQ(json_number(report, "allocations"), static_cast<long long>(allocations));
  EXPECT_EQ(json_number(report, "deallocations"), static_cast<long long>(frees));
  EXPECT_EQ(json_number(report, "peak_live_bytes"), static_cast<long long>(peak));
  EXPECT_EQ(report.find("\"served\": false"), std::string::npos) << report;
}

TEST_F(Preload, RecordsEveryFormOfNewAndDelete) {
  const outcome r = trace_program({PMRKIT_TRACE_WORKLOAD_CPP});
  ASSERT_EQ(r.status, 0) << r.errors;
  const trace t = pmrkit::read_trace(out());
  expect_ordered_and_paired(t);
  expect_block(t, 2345, 16, 2345, 1);     // new, sized delete
  expect_block(t, 3456, 16, 0, 1);        // new[], delete[]
  expect_block(t, 6789, 64, 6789, 64);    // aligned new, sized aligned delete
  expect_block(t, 7890, 128, 0, 128);     // aligned new[], aligned delete[]
  expect_block(t, 4567, 16, 0, 1);        // nothrow new, nothrow delete
  expect_block(t, 5678, 256, 0, 256);     // aligned nothrow new, aligned nothrow delete
  expect_block(t, 2222, 16, 2222, 1);     // nothrow new[], sized delete[]
  expect_block(t, 3333, 32, 3333, 32);    // aligned nothrow new[], sized aligned delete[]
  expect_block(t, 1536, 512, 1536, 512);  // new big, delete
  bool zero_bytes = false;
  for (const std::size_t i : allocations_of(t, 0))
    zero_bytes = zero_bytes || t.records[i].partner != trace_record::no_partner;
  EXPECT_TRUE(zero_bytes) << "new(0), deleted";
  EXPECT_EQ(allocations_of(t, SIZE_MAX / 2 - 13, trace_action::failed_allocation).size(), 1u);
  EXPECT_EQ(allocations_of(t, SIZE_MAX / 2 - 9, trace_action::failed_allocation).size(), 1u);
  EXPECT_TRUE(per_process().empty());
}

TEST_F(Preload, ExecAndSpawnedProgramsGetTheirOwnTraces) {
  // exec: the program exec'd takes over the trace (same pid), from its start.
  ASSERT_EQ(
      trace_program({"/bin/sh", "-c", std::string("exec ") + PMRKIT_TRACE_WORKLOAD_CPP}).status, 0);
  const trace exec = pmrkit::read_trace(out());
  expect_block(exec, 6789, 64, 6789, 64);
  EXPECT_TRUE(per_process().empty());

  // A program the shell runs in a child: out.trace.<its pid>; out.trace is the shell's.
  ASSERT_EQ(
      trace_program({"/bin/sh", "-c", std::string(PMRKIT_TRACE_WORKLOAD_CPP) + "; exit 0"}).status,
      0);
  EXPECT_TRUE(allocations_of(pmrkit::read_trace(out()), 6789).empty());
  const std::vector<fs::path> children = per_process();
  ASSERT_EQ(children.size(), 1u);
  const trace child = pmrkit::read_trace(children[0]);
  expect_block(child, 6789, 64, 6789, 64);
  EXPECT_EQ(children[0].extension().string().substr(1), std::to_string(child.header.pid));
}

TEST_F(Preload, ThreadsRecordEveryCallOnce) {
  const outcome r = trace_program({PMRKIT_TRACE_WORKLOAD_C, "threads"});
  ASSERT_EQ(r.status, 0) << r.errors;
  const trace t = pmrkit::read_trace(out());  // pairs every free with its live allocation
  expect_ordered_and_paired(t);
  std::map<std::uint32_t, int> threads;
  for (std::uint64_t thread = 0; thread < 4; ++thread) {
    const std::vector<std::size_t> small = allocations_of(t, 1000 + thread);
    const std::vector<std::size_t> large = allocations_of(t, 2000 + thread);
    ASSERT_EQ(small.size(), 20000u);
    ASSERT_EQ(large.size(), 20000u);
    for (std::size_t k = 0; k < small.size(); ++k) {
      const trace_record& a = t.records[small[k]];
      ASSERT_NE(a.partner, trace_record::no_partner);
      ASSERT_EQ(a.partner + 1, large[k]);  // realloc: its free, then its new block
      ASSERT_NE(t.records[large[k]].partner, trace_record::no_partner);
      ASSERT_EQ(t.records[large[k]].thread, a.thread);
      ++threads[a.thread];
    }
  }
  EXPECT_EQ(threads.size(), 4u);  // each worker on a thread number of its own
}

TEST_F(Preload, ExitsWithTheProgramsStatus) {
  EXPECT_EQ(trace_program({"/bin/sh", "-c", "exit 3"}).status, 3);
  EXPECT_TRUE(fs::exists(out()));
  EXPECT_EQ(trace_program({"/bin/sh", "-c", "kill -TERM $$"}).status, 128 + SIGTERM);
  const outcome missing = trace_program({"no-such-program-pmrkit"});
  EXPECT_EQ(missing.status, 127);
  EXPECT_NE(missing.errors.find("cannot run no-such-program-pmrkit"), std::string::npos)
      << missing.errors;
}

TEST_F(Preload, NoTraceExitsOne) {
  const outcome no_folder =
      run({PMRKIT_TRACE_CLI, "-o", (dir_ / "none" / "x.trace").string(), "--", "/bin/true"});
  EXPECT_EQ(no_folder.status, 1);
  EXPECT_NE(no_folder.errors.find("no folder"), std::string::npos) << no_folder.errors;

  ::setenv("PMRKIT_TRACE_LIBRARY", (dir_ / "libnone.so").c_str(), 1);
  const outcome no_library = trace_program({"/bin/true"});
  ::unsetenv("PMRKIT_TRACE_LIBRARY");
  EXPECT_EQ(no_library.status, 1);
  EXPECT_NE(no_library.errors.find("PMRKIT_TRACE_LIBRARY"), std::string::npos) << no_library.errors;

  // A statically linked program ignores LD_PRELOAD (Debian's ldconfig is one).
  if (!fs::exists("/sbin/ldconfig")) GTEST_SKIP() << "no /sbin/ldconfig";
  const outcome static_program = trace_program({"/sbin/ldconfig", "--version"});
  if (static_program.status == 0) GTEST_SKIP() << "/sbin/ldconfig is not statically linked";
  EXPECT_EQ(static_program.status, 1);
  EXPECT_NE(static_program.errors.find("wrote no trace"), std::string::npos)
      << static_program.errors;
}

TEST_F(Preload, UsageErrorsExitTwo) {
  const outcome no_output = run({PMRKIT_TRACE_CLI, "--", "/bin/true"});
  EXPECT_EQ(no_output.status, 2);
  EXPECT_NE(no_output.errors.find("-o OUT is required"), std::string::npos) << no_output.errors;
  EXPECT_EQ(run({PMRKIT_TRACE_CLI, "-o", out().string()}).status, 2);  // no program
  EXPECT_EQ(run({PMRKIT_TRACE_CLI, "-o"}).status, 2);
  EXPECT_EQ(run({PMRKIT_TRACE_CLI, "--bogus", "-o", out().string(), "/bin/true"}).status, 2);
  EXPECT_EQ(run({PMRKIT_TRACE_CLI, "--rmm", "x.csv", "-o", "y", "--alignment", "48"}).status, 2);
  EXPECT_EQ(run({PMRKIT_TRACE_CLI, "--rmm", "x.csv", "-o", "y", "/bin/true"}).status, 2);
  EXPECT_EQ(run({PMRKIT_TRACE_CLI, "--help"}).status, 0);
}

TEST_F(Preload, ConvertsAnRmmLog) {
  const fs::path log = dir_ / "log.csv";
  std::ofstream(log) << "Thread,Time,Action,Pointer,Size,Stream\n"
                        "1,10:00:00.000100,allocate,0x7f0000000000,1024,0x0\n"
                        "2,10:00:00.000200,allocate,0x7f0000000400,2048,0x0\n"
                        "1,10:00:00.001000,free,0x7f0000000000,1024,0x0\n";
  const outcome r =
      run({PMRKIT_TRACE_CLI, "--rmm", log.string(), "-o", out().string(), "--alignment", "64"});
  ASSERT_EQ(r.status, 0) << r.errors;
  EXPECT_NE(r.errors.find("3 records (2 allocations, 1 frees, 0 failed), 2 threads, peak live "
                          "3072 bytes"),
            std::string::npos)
      << r.errors;
  const trace t = pmrkit::read_trace(out());
  EXPECT_EQ(t.header.origin, pmrkit::trace_origin::rmm_log);
  ASSERT_EQ(t.records.size(), 3u);
  EXPECT_EQ(t.records[0].alignment, 64u);
  EXPECT_EQ(t.records[1].bytes, 2048u);
  EXPECT_EQ(t.records[2].partner, 0u);
}

TEST_F(Preload, AMalformedLogOrTraceExitsOne) {
  const fs::path log = dir_ / "bad.csv";
  std::ofstream(log) << "Thread,Time,Action,Pointer,Size,Stream\n"
                        "1,10:00:00.0,allocate,0x10,8,0\n"
                        "1,10:00:00.1,grab,0x10,8,0\n";
  const outcome bad_log = run({PMRKIT_TRACE_CLI, "--rmm", log.string(), "-o", out().string()});
  EXPECT_EQ(bad_log.status, 1);
  EXPECT_NE(bad_log.errors.find("bad.csv: line 3 (byte 70): unknown action \"grab\""),
            std::string::npos)
      << bad_log.errors;
  const outcome no_log = run({PMRKIT_TRACE_CLI, "--rmm", (dir_ / "none.csv").string(), "-o", "y"});
  EXPECT_EQ(no_log.status, 1);
  EXPECT_NE(no_log.errors.find("none.csv"), std::string::npos) << no_log.errors;

  // A traced program that leaves a truncated out.trace.<n> (8 bytes of a header).
  const outcome bad_trace =
      trace_program({"/bin/sh", "-c", "printf PMRKTRCE > \"$PMRKIT_TRACE_FILE.1\""});
  EXPECT_EQ(bad_trace.status, 1);
  EXPECT_NE(bad_trace.errors.find("out.trace.1: byte 8: truncated header"), std::string::npos)
      << bad_trace.errors;
}

}  // namespace
