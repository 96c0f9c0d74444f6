// pmrkit-replay: replays an allocation trace against every strategy and says
// which fits the workload.
//
// Reads a pmrkit trace (written by trace_resource or pmrkit-trace) or an RMM
// logging_resource_adaptor CSV, prints its profile (sizes, alignments, how
// LIFO or FIFO its lifetimes are, threads, the live peak), replays it
// against a fresh instance of each strategy (the recorded order, one
// thread, --repeat times, the median time) and prints a table: time per
// event, the most bytes the strategy held from its upstream against the
// live peak (the fragmentation ratio) and the waste, or why the strategy
// cannot serve the trace; then the smallest capacity the recommended
// strategy fits in (a bisection with a budget) and a recommendation that
// says why. --json writes it all, --chart draws it (python3 + matplotlib).
//
// Exit status: 0; 1 when the trace cannot be read (the message names the
// byte offset or record); 2 for bad usage.
#include "profile.hpp"
#include "replay.hpp"
#include "strategies.hpp"

#include <pmr/trace/trace_file.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#ifdef _WIN32
#include <io.h>
#define PMRKIT_ISATTY _isatty
#define PMRKIT_FILENO _fileno
#else
#include <unistd.h>
#define PMRKIT_ISATTY isatty
#define PMRKIT_FILENO fileno
#endif

namespace {

using namespace pmrkit::replay;
using pmrkit::trace;

constexpr const char* usage_text = R"(usage: pmrkit-replay [options] TRACE

Replays an allocation trace against each strategy and recommends one.
TRACE is a pmrkit trace (pmrkit-trace, trace_resource) or an RMM
logging_resource_adaptor CSV.

options:
  -s, --strategies A,B,...  replay only these (default: every one; --list names them)
      --set S.FIELD=VALUE   an option of strategy S, e.g. --set buddy.region_size=4M
                            (repeatable; sizes take K, M, G)
  -r, --repeat N            replays per strategy, the median time reported (default 3)
      --max-overhead F      recommend among strategies holding at most F times the
                            live peak (default 1.5)
      --threads             one thread per recorded thread, each replaying its own
                            records (a free waits for its allocation on another
                            thread); strategies that are not thread-safe run behind
                            a synchronized_resource, shown as "+lock"
      --touch               write every block whole as it is allocated, so the
                            time includes the page faults and cache misses of each
                            strategy's layout (default: blocks are never touched)
      --fit                 the smallest capacity of every strategy that serves the
                            trace (default: of the recommended one only)
      --json FILE           write the profile and results as JSON (- for stdout)
      --chart FILE.png      draw time and memory per strategy (python3, matplotlib)
      --rmm                 read TRACE as an RMM log whatever its name
      --rmm-alignment N     the alignment of an RMM log's blocks (default 256)
      --no-progress         no progress bar (it shows only on a terminal)
      --list                list the strategies and their fields
  -h, --help
exit status: 0; 1 the trace cannot be read; 2 bad usage
)";

struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct command_line {
  std::string trace_path;
  std::vector<const strategy*> chosen;
  std::map<std::string, settings, std::less<>> options;  // strategy -> its settings
  int repeat = 3;
  double max_overhead = 1.5;
  bool fit_all = false;
  bool threads = false;
  bool touch = false;
  std::string json_path;
  std::string chart_path;
  bool rmm = false;
  std::size_t rmm_alignment = pmrkit::rmm_default_alignment;
  bool progress = true;
};

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  while (true) {
    const std::size_t at = text.find(separator);
    parts.push_back(text.substr(0, at));
    if (at == std::string_view::npos) return parts;
    text.remove_prefix(at + 1);
  }
}

void list_strategies() {
  for (const strategy& s : strategies()) {
    std::printf("%-16s %s\n", std::string(s.name).c_str(), std::string(s.summary).c_str());
    if (!s.fields.empty()) {
      std::string fields;
      for (const std::string_view f : s.fields)
        fields += (fields.empty() ? "" : ", ") + std::string(f);
      std::printf("%-16s fields: %s\n", "", fields.c_str());
    }
  }
}

command_line parse(int argc, char** argv) {
  command_line c;
  const auto value = [&](int& i) -> std::string {
    if (i + 1 >= argc) throw usage_error(std::string(argv[i]) + " needs a value");
    return argv[++i];
  };
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::fputs(usage_text, stdout);
      std::exit(0);
    } else if (arg == "--list") {
      list_strategies();
      std::exit(0);
    } else if (arg == "-s" || arg == "--strategies") {
      const std::string list = value(i);
      for (const std::string_view name : split(list, ',')) {
        const strategy* s = find_strategy(name);
        if (s == nullptr)
          throw usage_error("unknown strategy \"" + std::string(name) + "\" (--list names them)");
        c.chosen.push_back(s);
      }
    } else if (arg == "--set") {
      const std::string setting = value(i);
      const std::size_t dot = setting.find('.');
      const std::size_t equals = setting.find('=');
      if (dot == std::string::npos || equals == std::string::npos || equals < dot) {
        throw usage_error("--set " + setting + ": expected STRATEGY.FIELD=VALUE");
      }
      const std::string name = setting.substr(0, dot);
      const std::string field = setting.substr(dot + 1, equals - dot - 1);
      const strategy* s = find_strategy(name);
      if (s == nullptr)
        throw usage_error("--set " + setting + ": unknown strategy \"" + name + "\"");
      if (std::find(s->fields.begin(), s->fields.end(), field) == s->fields.end()) {
        std::string known;
        for (const std::string_view f : s->fields)
          known += (known.empty() ? "" : ", ") + std::string(f);
        throw usage_error("--set " + setting + ": " + name + " has no field \"" + field + "\" (" +
                          (known.empty() ? std::string("it has none") : "it has " + known) + ")");
      }
      (void)parse_size(setting.substr(equals + 1), setting);
      c.options[name][field] = setting.substr(equals + 1);
    } else if (arg == "-r" || arg == "--repeat") {
      const std::string n = value(i);
      c.repeat = std::atoi(n.c_str());
      if (c.repeat < 1 || c.repeat > 1000)
        throw usage_error("--repeat " + n + ": expected 1 to 1000");
    } else if (arg == "--max-overhead") {
      const std::string f = value(i);
      c.max_overhead = std::strtod(f.c_str(), nullptr);
      if (!(c.max_overhead >= 1.0))
        throw usage_error("--max-overhead " + f + ": expected a number >= 1");
    } else if (arg == "--touch") {
      c.touch = true;
    } else if (arg == "--threads") {
      c.threads = true;
    } else if (arg == "--fit") {
      c.fit_all = true;
    } else if (arg == "--json") {
      c.json_path = value(i);
    } else if (arg == "--chart") {
      c.chart_path = value(i);
    } else if (arg == "--rmm") {
      c.rmm = true;
    } else if (arg == "--rmm-alignment") {
      const std::string n = value(i);
      c.rmm_alignment = parse_size(n, "--rmm-alignment");
      if (c.rmm_alignment == 0 || (c.rmm_alignment & (c.rmm_alignment - 1)) != 0) {
        throw usage_error("--rmm-alignment " + n + ": expected a power of two");
      }
    } else if (arg == "--no-progress") {
      c.progress = false;
    } else if (arg.starts_with("-") && arg.size() > 1) {
      throw usage_error("unknown option " + std::string(arg));
    } else if (c.trace_path.empty()) {
      c.trace_path = arg;
    } else {
      throw usage_error("one trace only (found " + c.trace_path + " and " + std::string(arg) + ")");
    }
  }
  if (c.trace_path.empty()) throw usage_error("no trace given");
  if (c.chosen.empty()) {
    for (const strategy& s : strategies())
      c.chosen.push_back(&s);
  }
  return c;
}

// --- Progress: a bar on stderr when it is a terminal ----------------------------------------

struct progress_bar {
  bool on = false;
  std::uint64_t total = 0;
  std::uint64_t done_before = 0;  // finished replays' events
  std::string label;
  int last_percent = -1;

  void show(std::uint64_t done) {
    if (!on || total == 0) return;
    const int percent =
        static_cast<int>(100.0 * static_cast<double>(done) / static_cast<double>(total));
    if (percent == last_percent) return;
    last_percent = percent;
    const int width = 30;
    const int filled = percent * width / 100;
    std::fprintf(stderr, "\r[%.*s%*s] %3d%% %s\033[K", filled, "##############################",
                 width - filled, "", percent, label.c_str());
    std::fflush(stderr);
  }
  void clear() {
    if (on) std::fputs("\r\033[K", stderr);
  }
  static void tick(void* self, std::uint64_t events) {
    auto* bar = static_cast<progress_bar*>(self);
    bar->show(bar->done_before + events);
  }
};

void read_progress(void* self, std::uint64_t done, std::uint64_t total) {
  auto* bar = static_cast<progress_bar*>(self);
  bar->total = total;
  bar->show(done);
}

// --- Results ---------------------------------------------------------------------------------

struct row {
  const strategy* s = nullptr;
  std::string refusal;   // cannot serve at all (from the profile)
  replay_result result;  // the median run's
  std::vector<double> times;
  std::optional<std::uint64_t> fit;
  int fit_replays = 0;

  [[nodiscard]] bool served() const { return refusal.empty() && result.served; }
  [[nodiscard]] double ns_per_event() const {
    return result.events == 0 ? 0.0 : result.seconds * 1e9 / static_cast<double>(result.events);
  }
  [[nodiscard]] bool peak_known() const { return served() && !s->is_system_heap; }
  [[nodiscard]] double held_over_live(const trace_profile& p) const {
    return p.peak_live_bytes == 0
               ? 1.0
               : static_cast<double>(result.peak_upstream) / static_cast<double>(p.peak_live_bytes);
  }
};

std::string fixed(double v, int digits) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, v);
  return buffer;
}

std::string percent(std::uint64_t part, std::uint64_t whole) {
  return whole == 0
             ? "0%"
             : fixed(100.0 * static_cast<double>(part) / static_cast<double>(whole), 1) + "%";
}

std::string origin_name(pmrkit::trace_origin o) {
  switch (o) {
    case pmrkit::trace_origin::resource:
      return "trace_resource";
    case pmrkit::trace_origin::preload:
      return "pmrkit-trace";
    case pmrkit::trace_origin::rmm_log:
      return "RMM log";
  }
  return "?";
}

std::string bucket_label(std::size_t bucket) {
  if (bucket == 0) return "<= 1 B";
  return "<= " + format_bytes(std::uint64_t{1} << bucket);
}

void print_profile(const command_line& c, const trace& t, const trace_profile& p) {
  std::printf("trace: %s (%s", c.trace_path.c_str(), origin_name(t.header.origin).c_str());
  if (t.header.pid != 0) std::printf(", pid %u", t.header.pid);
  std::printf("), %llu records over %s s\n\n", static_cast<unsigned long long>(p.records),
              fixed(static_cast<double>(p.duration_nanoseconds) / 1e9, 3).c_str());
  std::printf("profile\n");
  std::printf("  allocations %llu, frees %llu, failed %llu, never freed %llu\n",
              static_cast<unsigned long long>(p.allocations),
              static_cast<unsigned long long>(p.deallocations),
              static_cast<unsigned long long>(p.failed_allocations),
              static_cast<unsigned long long>(p.never_freed));
  std::printf("  threads     %llu (frees on another thread than the allocation: %llu)\n",
              static_cast<unsigned long long>(p.threads),
              static_cast<unsigned long long>(p.cross_thread_frees));
  std::printf("  live peak   %s in %llu blocks (%s allocated in all)\n",
              format_bytes(p.peak_live_bytes).c_str(),
              static_cast<unsigned long long>(p.peak_live_blocks),
              format_bytes(p.bytes_allocated).c_str());
  std::printf("  sizes       %s to %s, %llu distinct; alignment up to %llu\n",
              format_bytes(p.smallest).c_str(), format_bytes(p.largest).c_str(),
              static_cast<unsigned long long>(p.distinct_sizes),
              static_cast<unsigned long long>(p.max_alignment));
  std::printf(
      "  lifetimes   %s of frees are of the newest live block (LIFO), %s of the oldest "
      "(FIFO); median lifetime %llu allocations\n",
      percent(p.lifo_frees, p.deallocations).c_str(),
      percent(p.fifo_frees, p.deallocations).c_str(),
      static_cast<unsigned long long>(p.median_lifetime));
  std::printf("  sizes (allocations per bucket)\n");
  std::uint64_t most = 1;
  for (const std::uint64_t n : p.size_buckets)
    most = std::max(most, n);
  for (std::size_t b = 0; b < p.size_buckets.size(); ++b) {
    if (p.size_buckets[b] == 0) continue;
    const int bar = static_cast<int>(
        std::lround(40.0 * static_cast<double>(p.size_buckets[b]) / static_cast<double>(most)));
    std::printf("    %12s %6s %.*s\n", bucket_label(b).c_str(),
                percent(p.size_buckets[b], p.allocations).c_str(), std::max(bar, 1),
                "########################################");
  }
  std::printf("  alignments ");
  for (std::size_t b = 0; b < p.alignment_buckets.size(); ++b) {
    if (p.alignment_buckets[b] == 0) continue;
    std::printf(" %llu: %s", 1ULL << b, percent(p.alignment_buckets[b], p.allocations).c_str());
  }
  std::printf("\n\n");
}

void print_table(const std::vector<row>& rows, const trace_profile& p, bool threads) {
  const row* malloc_row = nullptr;
  for (const row& r : rows) {
    if (r.s->is_system_heap && r.served()) malloc_row = &r;
  }
  if (threads) {
    std::printf("replayed with %llu threads, one per recorded thread\n",
                static_cast<unsigned long long>(p.threads));
  }
  std::printf("%-20s %10s %10s %12s %10s %12s\n", "strategy", "ns/event", "vs malloc", "peak held",
              "held/live", "waste");
  for (const row& r : rows) {
    const std::string name = std::string(r.s->name) + (threads && !r.s->thread_safe ? "+lock" : "");
    std::printf("%-20s ", name.c_str());
    if (!r.refusal.empty()) {
      std::printf("%s\n", r.refusal.c_str());
      continue;
    }
    if (!r.result.served) {
      std::printf("failed at %s\n", r.result.failure.c_str());
      continue;
    }
    const std::string vs = malloc_row == nullptr || r.ns_per_event() == 0
                               ? "-"
                               : fixed(malloc_row->ns_per_event() / r.ns_per_event(), 2) + "x";
    if (r.peak_known()) {
      std::printf(
          "%10s %10s %12s %9sx %12s%s\n", fixed(r.ns_per_event(), 1).c_str(), vs.c_str(),
          format_bytes(r.result.peak_upstream).c_str(), fixed(r.held_over_live(p), 2).c_str(),
          format_bytes(r.result.peak_upstream > p.peak_live_bytes
                           ? r.result.peak_upstream - p.peak_live_bytes
                           : 0)
              .c_str(),
          r.s->frees_note.empty() ? "" : ("  (" + std::string(r.s->frees_note) + ")").c_str());
    } else {
      std::printf("%10s %10s %12s %10s %12s\n", fixed(r.ns_per_event(), 1).c_str(), vs.c_str(),
                  "not visible", "-", "-");
    }
  }
  std::printf("\n");
}

/// The recommendation and its reason, or the strategy recommended (nullptr for malloc/none).
std::pair<const row*, std::string> recommend(const std::vector<row>& rows, const trace_profile& p,
                                             double max_overhead) {
  const row* malloc_row = nullptr;
  const row* best = nullptr;
  const row* fastest = nullptr;  // of every pmrkit strategy that served, whatever it held
  for (const row& r : rows) {
    if (!r.served()) continue;
    if (r.s->is_system_heap) {
      malloc_row = &r;
      continue;
    }
    if (fastest == nullptr || r.ns_per_event() < fastest->ns_per_event()) fastest = &r;
    if (r.held_over_live(p) <= max_overhead &&
        (best == nullptr || r.ns_per_event() < best->ns_per_event())) {
      best = &r;
    }
  }
  const std::string bound = fixed(max_overhead, 2) + "x the live peak";
  if (best == nullptr) {
    std::string why = "no strategy served the trace holding at most " + bound;
    if (fastest != nullptr) {
      why += " (the fastest that served, " + std::string(fastest->s->name) + ", held " +
             fixed(fastest->held_over_live(p), 2) + "x";
      if (!fastest->s->frees_note.empty()) why += ": " + std::string(fastest->s->frees_note);
      why += "; --max-overhead raises the bound)";
    }
    if (malloc_row != nullptr) return {malloc_row, "malloc: " + why};
    return {nullptr, "none: " + why};
  }
  if (malloc_row != nullptr && malloc_row->ns_per_event() < best->ns_per_event()) {
    return {malloc_row, "malloc: it is faster (" + fixed(malloc_row->ns_per_event(), 1) +
                            " ns per event) than every strategy holding at most " + bound +
                            " (the fastest of them, " + std::string(best->s->name) + ", takes " +
                            fixed(best->ns_per_event(), 1) + " ns)"};
  }
  std::string why = std::string(best->s->name) + ": the fastest (" +
                    fixed(best->ns_per_event(), 1) + " ns per event";
  if (malloc_row != nullptr) {
    why += ", " + fixed(malloc_row->ns_per_event() / best->ns_per_event(), 2) + "x malloc";
  }
  why += ") of the strategies holding at most " + bound + "; it holds " +
         fixed(best->held_over_live(p), 2) + "x";
  if (fastest != nullptr && fastest != best) {
    why += ". " + std::string(fastest->s->name) + " is faster (" +
           fixed(fastest->ns_per_event(), 1) + " ns) but holds " +
           fixed(fastest->held_over_live(p), 2) + "x the live peak" +
           (fastest->s->frees_note.empty() ? "" : " (" + std::string(fastest->s->frees_note) + ")");
  }
  return {best, why};
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (const char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      char buffer[8];
      std::snprintf(buffer, sizeof buffer, "\\u%04x", ch);
      out += buffer;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::string to_json(const command_line& c, const trace& t, const trace_profile& p,
                    const std::vector<row>& rows, const row* chosen, const std::string& why) {
  std::ostringstream j;
  j << "{\n  \"trace\": " << json_string(c.trace_path)
    << ",\n  \"origin\": " << json_string(origin_name(t.header.origin)) << ",\n  \"profile\": {";
  j << "\"records\": " << p.records << ", \"allocations\": " << p.allocations
    << ", \"deallocations\": " << p.deallocations
    << ", \"failed_allocations\": " << p.failed_allocations
    << ", \"never_freed\": " << p.never_freed << ", \"threads\": " << p.threads
    << ", \"cross_thread_frees\": " << p.cross_thread_frees
    << ", \"bytes_allocated\": " << p.bytes_allocated
    << ", \"peak_live_bytes\": " << p.peak_live_bytes
    << ", \"peak_live_blocks\": " << p.peak_live_blocks << ", \"smallest\": " << p.smallest
    << ", \"largest\": " << p.largest << ", \"distinct_sizes\": " << p.distinct_sizes
    << ", \"max_alignment\": " << p.max_alignment << ", \"lifo_frees\": " << p.lifo_frees
    << ", \"fifo_frees\": " << p.fifo_frees << ", \"median_lifetime\": " << p.median_lifetime
    << ", \"duration_ns\": " << p.duration_nanoseconds << ", \"size_buckets\": {";
  bool first = true;
  for (std::size_t b = 0; b < p.size_buckets.size(); ++b) {
    if (p.size_buckets[b] == 0) continue;
    j << (first ? "" : ", ") << "\"" << (b == 0 ? 1 : (std::uint64_t{1} << b))
      << "\": " << p.size_buckets[b];
    first = false;
  }
  j << "}, \"alignment_buckets\": {";
  first = true;
  for (std::size_t b = 0; b < p.alignment_buckets.size(); ++b) {
    if (p.alignment_buckets[b] == 0) continue;
    j << (first ? "" : ", ") << "\"" << (std::uint64_t{1} << b) << "\": " << p.alignment_buckets[b];
    first = false;
  }
  j << "}},\n  \"repeat\": " << c.repeat << ",\n  \"threads\": " << (c.threads ? "true" : "false")
    << ",\n  \"touch\": " << (c.touch ? "true" : "false") << ",\n  \"results\": [\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const row& r = rows[i];
    j << "    {\"strategy\": " << json_string(r.s->name)
      << ", \"served\": " << (r.served() ? "true" : "false");
    if (!r.refusal.empty()) j << ", \"reason\": " << json_string(r.refusal);
    if (r.refusal.empty() && !r.result.served)
      j << ", \"reason\": " << json_string("failed at " + r.result.failure);
    if (r.served()) {
      j << ", \"seconds\": " << fixed(r.result.seconds, 9)
        << ", \"ns_per_event\": " << fixed(r.ns_per_event(), 3) << ", \"times\": [";
      for (std::size_t k = 0; k < r.times.size(); ++k)
        j << (k ? ", " : "") << fixed(r.times[k], 9);
      j << "]";
      if (r.peak_known()) {
        j << ", \"peak_upstream_bytes\": " << r.result.peak_upstream
          << ", \"held_over_live\": " << fixed(r.held_over_live(p), 4);
      }
      if (r.fit) j << ", \"smallest_capacity\": " << *r.fit;
      if (!r.s->frees_note.empty()) j << ", \"frees_note\": " << json_string(r.s->frees_note);
    }
    j << "}" << (i + 1 < rows.size() ? "," : "") << "\n";
  }
  j << "  ],\n  \"max_overhead\": " << fixed(c.max_overhead, 3) << ",\n  \"recommended\": "
    << (chosen == nullptr ? std::string("null") : json_string(chosen->s->name))
    << ",\n  \"why\": " << json_string(why) << "\n}\n";
  return j.str();
}

std::filesystem::path chart_script(const char* argv0) {
  if (const char* env = std::getenv("PMRKIT_REPLAY_CHART")) return env;
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::canonical(argv0, ec);
  if (!ec) {
    const std::filesystem::path installed =
        exe.parent_path().parent_path() / "share" / "pmrkit" / "replay_chart.py";
    if (std::filesystem::exists(installed)) return installed;
  }
  return PMRKIT_REPLAY_SOURCE_DIR "/replay_chart.py";
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (const char ch : s)
    out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

int run(int argc, char** argv) {
  const command_line c = parse(argc, argv);
  progress_bar bar;
  bar.on = c.progress && PMRKIT_ISATTY(PMRKIT_FILENO(stderr)) != 0;

  // Read: a pmrkit trace by its magic, else an RMM log.
  trace t;
  {
    std::ifstream probe(c.trace_path, std::ios::binary);
    if (!probe)
      throw std::system_error(errno, std::generic_category(), "cannot open " + c.trace_path);
    char magic[8] = {};
    probe.read(magic, sizeof magic);
    const bool is_trace = probe.gcount() == 8 && std::memcmp(magic, "PMRKTRCE", 8) == 0;
    bar.label = "reading";
    if (c.rmm || (!is_trace &&
                  (c.trace_path.ends_with(".csv") || std::string_view(magic, 7) == "Thread,"))) {
      t = pmrkit::read_rmm_log(c.trace_path, c.rmm_alignment);
    } else {
      t = pmrkit::read_trace(c.trace_path, bar.on ? read_progress : nullptr, &bar);
    }
    bar.clear();
  }
  const trace_profile p = profile_of(t);
  print_profile(c, t, p);

  std::vector<row> rows;
  bar.total = 0;
  for (const strategy* s : c.chosen) {
    row r;
    r.s = s;
    const auto it = c.options.find(s->name);
    const settings& options = it == c.options.end() ? settings{} : it->second;
    r.refusal = s->refuses(p, options);
    if (r.refusal.empty()) bar.total += static_cast<std::uint64_t>(c.repeat) * p.records;
    rows.push_back(std::move(r));
  }
  bar.last_percent = -1;
  bar.done_before = 0;
  for (row& r : rows) {
    if (!r.refusal.empty()) continue;
    const auto it = c.options.find(r.s->name);
    const settings options = it == c.options.end() ? settings{} : it->second;
    std::vector<replay_result> runs;
    for (int k = 0; k < c.repeat; ++k) {
      bar.label = "replaying " + std::string(r.s->name);
      runs.push_back(c.threads ? replay_threads(t, p, *r.s, options, c.touch)
                               : replay_once(t, p, *r.s, options, no_limit,
                                             {progress_bar::tick, &bar}, c.touch));
      bar.done_before += p.records;
      if (!runs.back().served) break;
    }
    std::sort(runs.begin(), runs.end(),
              [](const replay_result& a, const replay_result& b) { return a.seconds < b.seconds; });
    for (const replay_result& run : runs)
      r.times.push_back(run.seconds);
    const bool all_served =
        std::all_of(runs.begin(), runs.end(), [](const replay_result& x) { return x.served; });
    r.result = all_served ? runs[runs.size() / 2]
                          : *std::find_if(runs.begin(), runs.end(),
                                          [](const replay_result& x) { return !x.served; });
  }
  bar.clear();
  print_table(rows, p, c.threads);

  auto [chosen, why] = recommend(rows, p, c.max_overhead);
  for (row& r : rows) {
    if (!r.served() || r.s->is_system_heap || (!c.fit_all && &r != chosen)) continue;
    const auto it = c.options.find(r.s->name);
    const settings options = it == c.options.end() ? settings{} : it->second;
    const std::uint64_t granularity = std::max<std::uint64_t>(4096, r.result.peak_upstream / 256);
    r.fit =
        smallest_capacity(t, p, *r.s, options, r.result.peak_upstream, granularity, r.fit_replays);
    std::printf(
        "smallest capacity: %s serves this trace from %s (%sx the live peak; %d replays "
        "under a budget, to %s)\n",
        std::string(r.s->name).c_str(), format_bytes(*r.fit).c_str(),
        fixed(p.peak_live_bytes == 0
                  ? 1.0
                  : static_cast<double>(*r.fit) / static_cast<double>(p.peak_live_bytes),
              2)
            .c_str(),
        r.fit_replays, format_bytes(granularity).c_str());
  }
  std::printf("recommended: %s\n", why.c_str());

  if (!c.json_path.empty() || !c.chart_path.empty()) {
    const std::string json = to_json(c, t, p, rows, chosen, why);
    std::string json_path = c.json_path;
    if (json_path == "-") {
      std::fputs(json.c_str(), stdout);
      json_path.clear();
    }
    if (json_path.empty() && !c.chart_path.empty()) json_path = c.chart_path + ".json";
    if (!json_path.empty()) {
      std::ofstream out(json_path);
      out << json;
      if (out.is_open()) out.close();  // a full disk shows at the close
      if (!out)
        throw std::system_error(errno, std::generic_category(), "cannot write " + json_path);
    }
    if (!c.chart_path.empty()) {
      const std::string command = "python3 " + shell_quote(chart_script(argv[0]).string()) + " " +
                                  shell_quote(json_path) + " " + shell_quote(c.chart_path);
      if (std::system(command.c_str()) != 0) {
        std::fprintf(stderr, "pmrkit-replay: drawing the chart failed (%s)\n", command.c_str());
        return 1;
      }
      if (c.json_path.empty()) std::filesystem::remove(json_path);
      std::printf("chart: %s\n", c.chart_path.c_str());
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const usage_error& e) {
    std::fprintf(stderr, "pmrkit-replay: %s\n(pmrkit-replay --help says how)\n", e.what());
    return 2;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "pmrkit-replay: %s\n", e.what());
    return 2;
  } catch (const pmrkit::trace_error& e) {
    std::fprintf(stderr, "pmrkit-replay: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pmrkit-replay: %s\n", e.what());
    return 1;
  }
}
