// pmrkit-trace: records a program's allocations with the preload library
// (libpmrkit_trace.so, tools/trace/preload.cpp) and summarises the trace; or
// converts an RMM logging_resource_adaptor CSV into a trace.
//
//   pmrkit-trace -o OUT [--] PROGRAM [ARGS...]
//   pmrkit-trace --rmm LOG.csv -o OUT [--alignment N]
//
// Running a program: OUT and any OUT.<pid> files left by an earlier run are
// removed, PROGRAM runs (fork + execvp) with LD_PRELOAD starting with the
// library (found next to this executable, then in the install's library folder,
// ../lib and ../lib64; PMRKIT_TRACE_LIBRARY overrides) and PMRKIT_TRACE_FILE
// set to OUT's absolute path. Once it exits, each trace it wrote (OUT: PROGRAM,
// or what it exec'd; OUT.<pid> for the other processes it started: forked
// children, the programs they ran) is read back and summarised on stderr in one
// line, and pmrkit-trace exits with PROGRAM's status (128 + the signal when a
// signal killed it; 127 or 126 when it could not be run).
//
// Exit status 2: bad usage; 1: a trace or log that cannot be read or is
// malformed (the reader's message, naming the byte offset or the line), no
// trace written, a library not found, OUT's folder missing.
//
// Thread safety: a single-threaded program.
#include <pmr/trace/trace_file.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

extern char** environ;

namespace {

namespace fs = std::filesystem;

constexpr const char* usage_text =
    "usage: pmrkit-trace -o OUT [--] PROGRAM [ARGS...]\n"
    "       pmrkit-trace --rmm LOG.csv -o OUT [--alignment N]\n"
    "\n"
    "Runs PROGRAM with libpmrkit_trace.so preloaded: its malloc, calloc, realloc,\n"
    "aligned_alloc, posix_memalign, memalign, free and operator new/delete calls\n"
    "are recorded into the pmrkit trace OUT (other processes it starts into\n"
    "OUT.<pid>), then summarised. Exits with PROGRAM's status.\n"
    "\n"
    "  -o, --output OUT   the trace to write (replaced when it exists)\n"
    "  --rmm LOG.csv      convert an RMM logging_resource_adaptor log instead\n"
    "  --alignment N      the alignment of every converted block (a power of\n"
    "                     two; 256 by default, RMM's device alignment); also\n"
    "                     --rmm-alignment, as pmrkit-replay spells it\n"
    "  -h, --help         this text\n"
    "\n"
    "PMRKIT_TRACE_LIBRARY names the preload library when it is not installed\n"
    "next to pmrkit-trace or in its lib folder.\n";

constexpr int exit_usage = 2;
constexpr int exit_failure = 1;
/// Per-process traces summarised one by one; the rest are counted (and read).
constexpr std::size_t max_summaries = 8;

/// Bad usage: the message, a hint, exit status 2.
struct usage_error {
  std::string message;
};

struct options {
  std::string output;
  std::string rmm_log;
  std::optional<std::size_t> alignment;
  std::vector<char*> program;  // PROGRAM and its arguments
  bool help = false;
};

options parse(int argc, char** argv) {
  options o;
  int i = 1;
  auto value = [&](std::string_view option) -> std::string {
    if (i + 1 >= argc) throw usage_error{std::string(option) + " needs a value"};
    return argv[++i];
  };
  for (; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--") {
      ++i;
      break;
    }
    if (arg.empty() || arg[0] != '-') break;
    if (arg == "-h" || arg == "--help") {
      o.help = true;
    } else if (arg == "-o" || arg == "--output") {
      o.output = value(arg);
    } else if (arg == "--rmm") {
      o.rmm_log = value(arg);
    } else if (arg == "--alignment" || arg == "--rmm-alignment") {  // pmrkit-replay's name
      const std::string text = value(arg);
      std::size_t n = 0;
      const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), n);
      if (error != std::errc{} || end != text.data() + text.size() || !std::has_single_bit(n))
        throw usage_error{std::string(arg) + " '" + text + "' is not a power of two"};
      o.alignment = n;
    } else {
      throw usage_error{"unknown option '" + std::string(arg) + "'"};
    }
  }
  for (; i < argc; ++i)
    o.program.push_back(argv[i]);
  if (o.help) return o;
  if (o.output.empty()) throw usage_error{"-o OUT is required"};
  if (!o.rmm_log.empty() && !o.program.empty())
    throw usage_error{"--rmm converts a log; it runs no program"};
  if (o.rmm_log.empty() && o.program.empty()) throw usage_error{"no PROGRAM to run"};
  if (o.alignment && o.rmm_log.empty()) throw usage_error{"--alignment goes with --rmm"};
  return o;
}

/// "path: N records (A allocations, F frees, X failed), T threads, peak live B bytes"
void summarise(const std::string& path, const pmrkit::trace& t) {
  std::uint64_t allocations = 0, frees = 0, failed = 0, live = 0, peak = 0;
  std::uint32_t threads = 0;
  for (const pmrkit::trace_record& r : t.records) {
    threads = std::max(threads, r.thread + 1);
    switch (r.action) {
      case pmrkit::trace_action::allocate:
        ++allocations;
        live += r.bytes;
        peak = std::max(peak, live);
        break;
      case pmrkit::trace_action::deallocate:
        ++frees;
        live -= t.records[r.partner].bytes;  // a free's own bytes may be 0: "not said"
        break;
      case pmrkit::trace_action::failed_allocation:
        ++failed;
        break;
    }
  }
  std::fprintf(stderr,
               "pmrkit-trace: %s: %zu records (%llu allocations, %llu frees, %llu failed), %u "
               "threads, peak live %llu bytes\n",
               path.c_str(), t.records.size(), static_cast<unsigned long long>(allocations),
               static_cast<unsigned long long>(frees), static_cast<unsigned long long>(failed),
               threads, static_cast<unsigned long long>(peak));
}

/// Reads one trace and summarises it (when `print`); false (the message
/// printed) when it cannot be read.
bool read_and_summarise(const fs::path& path, bool print = true) {
  try {
    const pmrkit::trace t = pmrkit::read_trace(path);
    if (print) summarise(path.string(), t);
    return true;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pmrkit-trace: %s\n", e.what());
    return false;
  }
}

int convert_rmm_log(const options& o) {
  try {
    const pmrkit::trace t =
        pmrkit::read_rmm_log(o.rmm_log, o.alignment.value_or(pmrkit::rmm_default_alignment));
    pmrkit::write_trace(o.output, t);
    summarise(o.output, t);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pmrkit-trace: %s\n", e.what());
    return exit_failure;
  }
}

/// The per-process traces OUT.<pid> next to `out`, by pid.
std::vector<fs::path> per_process_traces(const fs::path& out) {
  std::vector<std::pair<unsigned long long, fs::path>> found;
  const std::string prefix = out.filename().string() + ".";
  std::error_code error;
  for (const fs::directory_entry& entry : fs::directory_iterator(out.parent_path(), error)) {
    const std::string name = entry.path().filename().string();
    if (!name.starts_with(prefix) || name.size() == prefix.size()) continue;
    const std::string_view digits = std::string_view(name).substr(prefix.size());
    unsigned long long pid = 0;
    const auto [end, bad] = std::from_chars(digits.data(), digits.data() + digits.size(), pid);
    if (bad == std::errc{} && end == digits.data() + digits.size())
      found.emplace_back(pid, entry.path());
  }
  std::sort(found.begin(), found.end());
  std::vector<fs::path> paths;
  for (auto& [pid, path] : found)
    paths.push_back(std::move(path));
  return paths;
}

/// libpmrkit_trace.so: PMRKIT_TRACE_LIBRARY, else next to this executable, in
/// the install's library folder, ../lib or ../lib64. Empty when not found.
fs::path find_library() {
  std::error_code error;
  if (const char* named = std::getenv("PMRKIT_TRACE_LIBRARY"); named != nullptr && *named != '\0')
    return fs::is_regular_file(named, error) ? fs::absolute(named) : fs::path();
  const fs::path here = fs::read_symlink("/proc/self/exe", error).parent_path();
  if (error) return {};
  for (const char* folder : {".", PMRKIT_TRACE_LIBDIR_FROM_BINDIR, "../lib", "../lib64"}) {
    const fs::path candidate = (here / folder / "libpmrkit_trace.so").lexically_normal();
    if (fs::is_regular_file(candidate, error)) return candidate;
  }
  return {};
}

/// This environment with the library first in LD_PRELOAD and PMRKIT_TRACE_FILE set.
std::vector<std::string> traced_environment(const fs::path& library, const fs::path& out) {
  std::vector<std::string> env;
  std::string preload = library.string();
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry = *e;
    if (entry.starts_with("LD_PRELOAD=")) {
      if (entry.size() > 11) preload.append(":").append(entry.substr(11));
    } else if (!entry.starts_with("PMRKIT_TRACE_FILE=")) {
      env.emplace_back(entry);
    }
  }
  env.push_back("LD_PRELOAD=" + preload);
  env.push_back("PMRKIT_TRACE_FILE=" + out.string());
  return env;
}

int run_program(const options& o) {
  const fs::path library = find_library();
  if (library.empty()) {
    std::fprintf(stderr,
                 "pmrkit-trace: libpmrkit_trace.so is not where PMRKIT_TRACE_LIBRARY says, or "
                 "(unset) neither next to pmrkit-trace nor in its lib folder\n");
    return exit_failure;
  }
  const fs::path out = fs::absolute(o.output);
  std::error_code error;
  if (!fs::is_directory(out.parent_path(), error)) {
    std::fprintf(stderr, "pmrkit-trace: cannot write %s: no folder %s\n", out.c_str(),
                 out.parent_path().c_str());
    return exit_failure;
  }
  fs::remove(out, error);
  if (error) {
    std::fprintf(stderr, "pmrkit-trace: cannot replace %s: %s\n", out.c_str(),
                 error.message().c_str());
    return exit_failure;
  }
  for (const fs::path& stale : per_process_traces(out))
    fs::remove(stale, error);

  std::vector<std::string> env = traced_environment(library, out);
  std::vector<char*> envp;
  for (std::string& e : env)
    envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<char*> argv = o.program;
  argv.push_back(nullptr);

  // The child reports a failed exec through this pipe (closed on a good exec).
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) {
    std::perror("pmrkit-trace: pipe");
    return exit_failure;
  }
  const pid_t child = ::fork();
  if (child < 0) {
    std::perror("pmrkit-trace: fork");
    return exit_failure;
  }
  if (child == 0) {
    ::execvpe(argv[0], argv.data(), envp.data());
    const int exec_error = errno;
    (void)!::write(report[1], &exec_error, sizeof exec_error);
    ::_exit(127);
  }
  ::close(report[1]);
  // Like a shell waiting for its job: ^C and ^\ go to the program, not to us.
  ::signal(SIGINT, SIG_IGN);
  ::signal(SIGQUIT, SIG_IGN);
  int exec_error = 0;
  ssize_t got = 0;
  do {
    got = ::read(report[0], &exec_error, sizeof exec_error);
  } while (got < 0 && errno == EINTR);
  ::close(report[0]);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (got == static_cast<ssize_t>(sizeof exec_error)) {
    std::fprintf(stderr, "pmrkit-trace: cannot run %s: %s\n", argv[0], std::strerror(exec_error));
    return exec_error == ENOENT ? 127 : 126;
  }
  const int program_status = WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                             : WIFEXITED(status) ? WEXITSTATUS(status)
                                                 : 1;

  if (!fs::exists(out, error)) {
    std::fprintf(stderr,
                 "pmrkit-trace: %s wrote no trace to %s (a statically linked or setuid program "
                 "ignores LD_PRELOAD)\n",
                 argv[0], out.c_str());
    return exit_failure;
  }
  bool readable = read_and_summarise(out);
  const std::vector<fs::path> others = per_process_traces(out);
  for (std::size_t i = 0; i < others.size(); ++i) {
    if (i == max_summaries) {
      std::fprintf(stderr, "pmrkit-trace: and %zu more %s.<pid> traces\n", others.size() - i,
                   out.filename().c_str());
    }
    readable = read_and_summarise(others[i], i < max_summaries) && readable;
  }
  return readable ? program_status : exit_failure;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  try {
    o = parse(argc, argv);
  } catch (const usage_error& e) {
    std::fprintf(stderr, "pmrkit-trace: %s\n(pmrkit-trace --help for usage)\n", e.message.c_str());
    return exit_usage;
  }
  if (o.help) {
    std::fputs(usage_text, stdout);
    return 0;
  }
  try {
    return o.rmm_log.empty() ? run_program(o) : convert_rmm_log(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pmrkit-trace: %s\n", e.what());
    return exit_failure;
  }
}
