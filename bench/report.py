#!/usr/bin/env python3
"""Run pmrkit_bench and render the benchmark report: docs/benchmarks.md and one chart per scenario.

Usage:
  python3 bench/report.py                       the whole suite, 3 repetitions, interleaved
  python3 bench/report.py --filter 'single_32|churn_32' --repetitions 1     a quick subset
  python3 bench/report.py --from-json docs/benchmarks/results.json          render only, no run
  python3 bench/report.py -- --benchmark_min_time=0.2    everything after "--" goes to the binary

It runs the binary (default build/bench/bench/pmrkit_bench, built by `cmake --preset bench &&
cmake --build --preset bench`) with --benchmark_out=<json> --benchmark_out_format=json
--benchmark_repetitions=N --benchmark_enable_random_interleaving=true, saves the JSON (default
docs/benchmarks/results.json: every repetition and the run's context, plus the machine and build
this script recorded; Google Benchmark's own aggregates are dropped, the report computes its
own), then writes the markdown (default docs/benchmarks.md) and a PNG bar chart per scenario
(default docs/benchmarks/<scenario>.png).

The report's header gives the date, the git commit (and whether the tree had uncommitted
changes), the CPU model, the core count, the compiler, its version and the build flags (from the
CMakeCache.txt of the binary's build folder), the load average at the start and the exact command.
Per scenario: a table of rows (ns/op, the median over the repetitions; the spread of the
repetitions; peak KiB and MB/s where the benchmark reports them; the ratio to every peer row,
peer time / row time, > 1 = the row is faster) and a horizontal bar chart of ns/op, pmrkit rows
and peers in two colours. Parsing, the ratio columns and the number formats are bench/compare.py's
(imported, not copied), so the tables read like compare.py's console tables, except that
compare.py reports the best repetition and this report the median.

Needs Python 3 and matplotlib (scripts/deps.sh installs it from PyPI); nothing else.
Exit status: 0, or 1 when some benchmark failed (the report is still written and lists them),
2 on a usage error or a missing matplotlib.
"""

import argparse
import datetime
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, BENCH_DIR)
import compare  # noqa: E402  (bench/compare.py: parsing, ratio columns, number formats)

REPO_ROOT = os.path.dirname(BENCH_DIR)
DEFAULT_BINARY = "build/bench/bench/pmrkit_bench"
DEFAULT_JSON = "docs/benchmarks/results.json"
DEFAULT_OUT = "docs/benchmarks.md"
DEFAULT_CHARTS = "docs/benchmarks/"
PMRKIT_COLOUR = "#1f77b4"
PEER_COLOUR = "#ff7f0e"
LOG_SCALE_RANGE = 100  # a chart whose slowest row is this many times its fastest gets a log axis
MATPLOTLIB_MISSING = (
    "report.py: matplotlib is missing from {python}; install it with\n"
    "  bash scripts/deps.sh          (as root: installs every dependency, matplotlib from PyPI)\n"
    "or\n"
    "  {python} -m pip install matplotlib")


def load_pyplot():
    """matplotlib's pyplot with the Agg backend (no display needed), or exit 2 saying how to get it."""
    try:
        import matplotlib
    except ImportError:
        print(MATPLOTLIB_MISSING.format(python=sys.executable), file=sys.stderr)
        sys.exit(2)
    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot
    return pyplot


# --- the machine and the build --------------------------------------------------------------


def command_output(command, cwd=None):
    """A command's stdout, stripped, or None when it cannot run or fails."""
    try:
        completed = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return completed.stdout.strip()


def cpu_model():
    """The first "model name" of /proc/cpuinfo (Linux), else what the platform module says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as stream:
            for line in stream:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    return value.strip()
    except OSError:
        pass
    import platform
    return platform.processor() or "unknown"


def git_state():
    """{"commit": short hash of HEAD, "dirty": number of tracked files with uncommitted changes}."""
    commit = command_output(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT)
    status = command_output(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT)
    dirty = len(status.splitlines()) if status else 0
    return {"commit": commit or "unknown", "dirty": dirty}


def find_cmake_cache(binary):
    """The CMakeCache.txt of the build folder holding the binary (its folder or one above)."""
    folder = os.path.dirname(os.path.abspath(binary))
    while True:
        candidate = os.path.join(folder, "CMakeCache.txt")
        if os.path.exists(candidate):
            return candidate
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def read_cmake_cache(path):
    """{NAME: value} of a CMakeCache.txt (NAME:TYPE=value lines)."""
    values = {}
    with open(path, encoding="utf-8") as stream:
        for line in stream:
            if line.startswith(("#", "//")) or "=" not in line:
                continue
            key, _, value = line.rstrip("\n").partition("=")
            values[key.partition(":")[0]] = value
    return values


def build_info(binary):
    """The compiler, its version and the flags the binary was built with, from CMakeCache.txt."""
    cache_path = find_cmake_cache(binary)
    if cache_path is None:
        return {"cmake_cache": None}
    cache = read_cmake_cache(cache_path)
    compiler = cache.get("CMAKE_CXX_COMPILER", "")
    version = command_output([compiler, "--version"]) if compiler else None
    build_type = cache.get("CMAKE_BUILD_TYPE", "")
    return {
        "cmake_cache": os.path.relpath(cache_path, REPO_ROOT),
        "compiler": compiler,
        "compiler_version": version.splitlines()[0] if version else "unknown",
        "build_type": build_type,
        "cxx_flags": cache.get("CMAKE_CXX_FLAGS", ""),
        "build_type_flags_name": f"CMAKE_CXX_FLAGS_{build_type.upper()}" if build_type else "",
        "build_type_flags": cache.get(f"CMAKE_CXX_FLAGS_{build_type.upper()}", ""),
        "pmrkit_options": {key: value for key, value in sorted(cache.items())
                           if key in ("PMRKIT_CHECKED", "BUILD_SHARED_LIBS")},
    }


def machine_info(binary, command):
    """What the report's header says about the run, taken before it starts."""
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "git": git_state(),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "load_average": [round(load, 2) for load in os.getloadavg()],
        "command": command,
        "binary": os.path.relpath(os.path.abspath(binary), REPO_ROOT),
        "bench_threads": os.environ.get("PMRKIT_BENCH_THREADS", "2 (the default)"),
        "build": build_info(binary),
    }


# --- running and saving ---------------------------------------------------------------------


def binary_args(options):
    """The flags report.py gives the binary (besides compare.run_binary's --benchmark_out)."""
    args = [f"--benchmark_repetitions={options.repetitions}",
            "--benchmark_enable_random_interleaving=true"]
    if options.filter:
        args.append(f"--benchmark_filter={options.filter}")
    return args + options.extra


def run_suite(options):
    """Runs the binary through compare.run_binary; returns (JSON text, stderr lines, seconds)."""
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as errors:
        start = time.monotonic()
        text = compare.run_binary(options.binary, binary_args(options), stderr=errors)
        seconds = time.monotonic() - start
        errors.seek(0)
        stderr_lines = errors.read().splitlines()
    for line in stderr_lines:
        print(line, file=sys.stderr)
    return text, stderr_lines, seconds


def save_results(text, info, path):
    """Writes the run's JSON without Google Benchmark's aggregates, the header's facts added to
    its context under "pmrkit_report"; returns the document."""
    document = json.loads(text)
    document["benchmarks"] = [entry for entry in document.get("benchmarks", [])
                              if entry.get("run_type", "iteration") == "iteration"]
    document.setdefault("context", {})["pmrkit_report"] = info
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as stream:
        json.dump(document, stream, indent=1)
        stream.write("\n")
    return document


def load_results(path, options):
    """A saved JSON document; one without report.py's facts (plain pmrkit_bench output) gets
    this machine's, marked as taken at render time."""
    with open(path, encoding="utf-8") as stream:
        document = json.load(stream)
    context = document.setdefault("context", {})
    if "pmrkit_report" not in context:
        info = machine_info(context.get("executable", options.binary),
                            "unknown (rendered from " + path + ")")
        info["note"] = ("commit, machine and build read when rendering, not when running: "
                        "the JSON came from pmrkit_bench directly")
        info["date"] = context.get("date", info["date"])
        info["load_average"] = [round(v, 2) for v in context.get("load_avg", [])] or "unknown"
        context["pmrkit_report"] = info
    return document


# --- tables and charts ----------------------------------------------------------------------


def successful_runs(document):
    """(scenario, row, entry) for each repetition that ran without error, as compare.py names
    them (Google Benchmark's /real_time/threads:N suffix dropped)."""
    for entry in document.get("benchmarks", []):
        if entry.get("run_type", "iteration") != "iteration" or entry.get("error_occurred"):
            continue
        name = compare.GB_SUFFIX.sub("", entry.get("run_name", entry["name"]))
        scenario, _, row = name.partition("/")
        yield scenario, row, entry


def threads_by_scenario(document):
    """{scenario: sorted thread counts} for the scenarios Google Benchmark ran on several threads
    (names ending in /threads:N)."""
    threads = {}
    for scenario, _, entry in successful_runs(document):
        if entry.get("threads", 1) > 1:
            threads.setdefault(scenario, set()).add(entry["threads"])
    return {scenario: sorted(counts) for scenario, counts in threads.items()}


def repetition_counts(document):
    """{(scenario, row): number of successful repetitions}."""
    counts = {}
    for scenario, row, _ in successful_runs(document):
        counts[scenario, row] = counts.get((scenario, row), 0) + 1
    return counts


# What a benchmark entry holds besides user counters; every other number is a counter.
ENTRY_FIELDS = {
    "name", "family_index", "per_family_instance_index", "run_name", "run_type", "repetitions",
    "repetition_index", "threads", "iterations", "real_time", "cpu_time", "time_unit",
    "items_per_second", "bytes_per_second", "upstream_peak", "aggregate_name", "aggregate_unit",
    "error_occurred", "error_message", "label"}


def other_counters(document):
    """{scenario: {counter: {row: median}}} of the user counters compare.py has no column for
    (page_faults and touch_faults of the first_touch scenarios)."""
    samples = {}
    for scenario, row, entry in successful_runs(document):
        for key, value in entry.items():
            if key not in ENTRY_FIELDS and isinstance(value, (int, float)):
                by_row = samples.setdefault(scenario, {}).setdefault(key, {})
                by_row.setdefault(row, []).append(value)
    return {scenario: {counter: {row: statistics.median(values) for row, values in rows.items()}
                       for counter, rows in counters.items()}
            for scenario, counters in samples.items()}


def fmt_count(value):
    return f"{value:.0f}" if abs(value) >= 10 else f"{value:.2g}"


def spread_cell(best, worst, median, count):
    """(slowest − fastest) / median repetition, in percent; blank with a single repetition."""
    if count < 2 or not median:
        return ""
    return f"{100 * (worst - best) / median:.0f}%"


def scenario_table(scenario, results):
    """The markdown table of one scenario: rows in compare.py's order, ratios as it prints them."""
    rows = results["median"][scenario]
    peaks = results["peaks"].get(scenario, {})
    rates = results["rates"].get(scenario, {})
    counters = results["counters"].get(scenario, {})
    keys, names, references, labels = compare.ratio_columns(rows)
    header = ["row", "ns/op", "spread"]
    header += ["MB/s"] if rates else []
    header += ["peak KiB"] if peaks else []
    header += list(counters)
    header += labels
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for key, name in zip(keys, names):
        ns = rows[key]
        cells = [f"`{name}`" if key == name else name.replace(key, f"`{key}`"),
                 compare.fmt_ns(ns),
                 spread_cell(results["best"][scenario][key], results["worst"][scenario][key], ns,
                             results["counts"].get((scenario, key), 0))]
        if rates:
            cells.append(f"{rates[key]:.0f}" if key in rates else "")
        if peaks:
            cells.append(compare.fmt_kib(peaks[key]) if key in peaks else "")
        cells += [fmt_count(by_row[key]) if key in by_row else "" for by_row in counters.values()]
        cells += [compare.fmt_ratio(rows[reference] / ns) for reference in references]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def chart_unit(smallest_ns):
    """(unit name, divisor): the largest unit in which the fastest row still reads 1 or more."""
    for unit, divisor in (("ms", 1e6), ("µs", 1e3)):
        if smallest_ns >= divisor:
            return unit, divisor
    return "ns", 1.0


def draw_chart(pyplot, scenario, rows, threads, repetitions, path):
    """A horizontal bar chart of the time per operation, rows top to bottom in table order."""
    keys, _, _, _ = compare.ratio_columns(rows)
    unit, divisor = chart_unit(min(rows.values()))
    values = [rows[key] / divisor for key in keys]
    colours = [PMRKIT_COLOUR if key.startswith("pmrkit_") else PEER_COLOUR for key in keys]
    figure, axes = pyplot.subplots(figsize=(9, 1.3 + 0.3 * len(keys)))
    axes.barh(range(len(keys)), values, color=colours)
    axes.set_yticks(range(len(keys)), keys, fontsize=8)
    axes.invert_yaxis()
    log_scale = max(values) > LOG_SCALE_RANGE * min(values)
    if log_scale:
        axes.set_xscale("log")
    axes.set_xlim(right=max(values) * (3 if log_scale else 1.15))
    for index, value in enumerate(values):
        axes.text(value, index, " " + compare.fmt_ns(value), va="center", fontsize=7)
    scale = ", log scale" if log_scale else ""
    axes.set_xlabel(f"{unit}/op{scale} (median of {repetitions}; shorter is faster)")
    title = scenario + (f" ({', '.join(map(str, threads))} threads)" if threads else "")
    axes.set_title(title, fontsize=10, loc="left")
    kinds = [(PMRKIT_COLOUR, "pmrkit"), (PEER_COLOUR, "peer")]
    handles = [pyplot.Rectangle((0, 0), 1, 1, color=c) for c, _ in kinds if c in colours]
    labels = [label for c, label in kinds if c in colours]
    axes.legend(handles, labels, fontsize=8, ncol=2, loc="lower right",
                bbox_to_anchor=(1, 1), frameon=False)
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def parse_results(document):
    """compare.parse's medians, best and worst repetitions, peaks, rates and errors."""
    text = json.dumps(document)
    median, peaks, rates, errors = compare.parse(text, statistic="median")
    best = compare.parse(text, statistic="best")[0]
    worst = compare.parse(text, statistic="worst")[0]
    return {"median": median, "best": best, "worst": worst, "peaks": peaks, "rates": rates,
            "errors": errors, "counts": repetition_counts(document),
            "counters": other_counters(document),
            "threads": threads_by_scenario(document)}


# --- the markdown ---------------------------------------------------------------------------


HOW_TO_READ = """\
## How to read this

- **ns/op** is nanoseconds per allocation (allocation scenarios), per element (container
  workloads) or per document (`json_parse`), the **median** of the repetitions; **spread** is
  (slowest − fastest repetition) / median. `bench/compare.py` prints the *fastest* repetition
  instead, so its figures are a little lower than these.
- **Ratios** are *peer time / row time*: above 1 the row is faster than that peer, below 1
  slower. With pmrkit rows in a scenario every row gets a ratio against every peer (the peers
  are numbered, `#1`…, and the columns carry the numbers); without them every row is compared
  with the baseline (`new_delete`, or `std_map_default` for the container workloads).
- **peak KiB** is the most memory the row's resource held from its upstream at once (blank for
  rows that do not take their memory from the counted upstream); **MB/s** is bytes processed
  per second (JSON parsed in `json_parse`, memory touched in `first_touch_*`), the median;
  `page_faults` (`first_touch_*`) is minor page faults per iteration, `touch_faults` those the
  writes themselves took (0 where the pages were prefaulted).
- In the `_t<N>` scenarios one resource is shared by N threads and ns/op is wall time per
  operation with the N threads counted together: with perfect scaling it is the single-threaded
  time divided by N. Each thread count is a scenario (and a table) of its own.
- **Noise.** This is one run, on the machine above; the development machine is a 2-core
  virtual machine shared with other work (the load average above says how busy it was). Other
  processes, the order of the runs and the state of the heap that earlier benchmarks left all
  move the figures: the repetitions are interleaved at random to spread that out, and
  differences within the spread column, or of a few percent, are not findings.
- What each scenario does and what each row is: [`bench/README.md`]({bench_readme})."""


def code(text):
    return f"`{text}`" if text else "(empty)"


def joined(values):
    return ", ".join(map(str, values)) if isinstance(values, list) else str(values)


def cache_text(caches):
    """Google Benchmark's cache list as "L1d 32 KiB, L1i 32 KiB, L2 1024 KiB, ...";
    "shared by N" where N cores share one."""
    kinds = {"Data": "d", "Instruction": "i"}
    parts = []
    for cache in caches:
        name = f"L{cache.get('level', '?')}{kinds.get(cache.get('type'), '')}"
        shared = cache.get("num_sharing", 1)
        parts.append(f"{name} {cache.get('size', 0) // 1024} KiB"
                     + (f" (shared by {shared})" if shared > 1 else ""))
    return ", ".join(parts) or "unknown"


def build_facts(build):
    """The header's rows on the compiler and flags."""
    if not build.get("cmake_cache"):
        return [("compiler", "unknown (no CMakeCache.txt in the binary's build folder)")]
    options = ", ".join(f"{k}={v}" for k, v in build.get("pmrkit_options", {}).items())
    flags = " ".join(filter(None, [build.get("cxx_flags"), build.get("build_type_flags")]))
    return [
        ("compiler", f"{code(build['compiler'])}: {build['compiler_version']}"),
        ("build type", f"{build['build_type']} ({build['cmake_cache']}"
         + (f"; {options}" if options else "") + ")"),
        ("flags", f"`CMAKE_CXX_FLAGS`={code(build['cxx_flags'])}, "
         f"{code(build['build_type_flags_name'])}={code(build['build_type_flags'])}"
         + (f" (together: {code(flags)})" if flags else "")),
    ]


def header_facts(info, document, repetitions, seconds):
    """(name, value) pairs: what ran, where, when, how."""
    git = info.get("git", {})
    dirty = git.get("dirty", 0)
    tree = f"with uncommitted changes in {dirty} tracked file(s)" if dirty else "clean tree"
    benchmarks = {entry.get("run_name", entry["name"]) for entry in document.get("benchmarks", [])}
    context = document.get("context", {})
    mhz = context.get("mhz_per_cpu")
    facts = [
        ("date", info.get("date", "unknown")),
        ("commit", f"{code(git.get('commit', 'unknown'))} ({tree})"),
        ("CPU", info.get("cpu_model", "unknown") + (f", {mhz} MHz" if mhz else "")),
        ("caches", cache_text(context.get("caches", []))),
        ("cores", info.get("cores", "unknown")),
        ("load average at the start (1, 5, 15 min)", joined(info.get("load_average", "unknown"))),
    ]
    facts += build_facts(info.get("build", {}))
    library = context.get("library_build_type")
    if library:
        facts.append(("Google Benchmark library", f"{library} build, as the system package ships "
                      "it (the timed loop is inlined in pmrkit_bench)"))
    if "filter" not in info:
        scope = "unknown (not recorded)"
    else:
        scope = code(info["filter"]) if info["filter"] else "the whole suite (no filter)"
    facts += [
        ("what ran", f"{scope}: {len(benchmarks)} benchmarks"),
        ("repetitions", f"{repetitions}, interleaved at random" if "repetitions" in info
         else f"{repetitions} (interleaving not recorded)"),
        ("`PMRKIT_BENCH_THREADS`", info.get("bench_threads", "unknown")),
    ]
    if seconds is not None:
        facts.append(("run time", f"{seconds / 60:.1f} min"))
    if info.get("load_average_end"):
        facts.append(("load average at the end", joined(info["load_average_end"])))
    facts.append(("command", code(info.get("command", "unknown"))))
    if info.get("binary_command"):
        facts.append(("the binary ran as", code(info["binary_command"]) +
                      " and `--benchmark_out=FILE --benchmark_out_format=json`"))
    facts += [("note", note) for note in (info.get("note"), info.get("user_note")) if note]
    return facts


def header_lines(info, document, repetitions, seconds):
    """The report's title and its table of facts (a "|" in a value is escaped for the table)."""
    lines = ["# pmrkit benchmark report", "",
             "Generated by `bench/report.py` from one run of `pmrkit_bench`; do not edit by hand, "
             "run the command below again.", "", "| | |", "|---|---|"]
    for name, value in header_facts(info, document, repetitions, seconds):
        lines.append(f"| {name} | {str(value).replace('|', chr(92) + '|')} |")
    return lines


def scenario_heading(scenario, results):
    """The heading's text: the scenario, and its thread count where it has one."""
    threads = results["threads"].get(scenario)
    return scenario + (f" ({', '.join(map(str, threads))} threads)" if threads else "")


def anchor(heading):
    """The fragment GitHub gives a heading: lower case, spaces to hyphens, other punctuation
    but hyphens and underscores dropped."""
    kept = "".join(c for c in heading.lower() if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def scenario_section(scenario, results, chart_link):
    """One scenario's heading, table and chart."""
    return [f"### {scenario_heading(scenario, results)}", "", scenario_table(scenario, results),
            "", f"![{scenario}: ns/op per row]({chart_link})", ""]


def summary_section(results):
    """Per pmrkit row, the geometric mean of its ratio against each peer over the scenarios both
    ran (compare.summary_ratios), as a list: such means hide a lot, the tables say more."""
    ratios = compare.summary_ratios(results["median"])
    if not ratios:
        return []
    lines = ["## Summary", "",
             "Per pmrkit row, the geometric mean of its ratio against each peer over the scenarios "
             "both ran (how many in brackets). A mean over unlike scenarios hides a lot: read the "
             "tables.", ""]
    for row, by_peer in ratios.items():
        cells = ", ".join(f"{peer} {compare.fmt_ratio(mean)} ({count})"
                          for peer, (mean, count) in by_peer.items())
        lines.append(f"- `{row}`: {cells}")
    return lines + [""]


def notes_section(results, stderr_lines):
    """Benchmarks that failed and rows the binary left out (its stderr)."""
    left_out = sorted(set(line for line in stderr_lines if "left out" in line))
    if not results["errors"] and not left_out:
        return []
    lines = ["## Failed and left out", ""]
    lines += [f"- failed: `{error}`" for error in results["errors"]]
    lines += [f"- {line}" for line in left_out]
    return lines + [""]


def render(document, results, options, seconds, stderr_lines, pyplot):
    """Writes the charts and returns the markdown."""
    info = document["context"]["pmrkit_report"]
    repetitions = info.get("repetitions") or max(
        (entry.get("repetitions", 1) for entry in document.get("benchmarks", [])), default=1)
    out_dir = os.path.dirname(os.path.abspath(options.out))
    os.makedirs(options.charts, exist_ok=True)
    bench_readme = os.path.relpath(os.path.join(BENCH_DIR, "README.md"), out_dir)
    lines = header_lines(info, document, repetitions, seconds)
    lines += ["", HOW_TO_READ.format(bench_readme=bench_readme), ""]
    lines += ["## Scenarios", "",
              " · ".join(f"[{s}](#{anchor(scenario_heading(s, results))})"
                         for s in results["median"]), ""]
    sections = []
    for scenario, rows in results["median"].items():
        chart = os.path.join(options.charts, f"{scenario}.png")
        draw_chart(pyplot, scenario, rows, results["threads"].get(scenario), repetitions, chart)
        link = os.path.relpath(os.path.abspath(chart), out_dir)
        sections += scenario_section(scenario, results, link)
    lines += sections + summary_section(results)
    lines += notes_section(results, stderr_lines or info.get("stderr_notes", []))
    return "\n".join(lines).rstrip() + "\n"


# --- the command ----------------------------------------------------------------------------


def parse_options(argv):
    parser = argparse.ArgumentParser(
        usage="%(prog)s [options] [-- FLAGS...]", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=DEFAULT_BINARY,
                        help=f"the pmrkit_bench to run (default {DEFAULT_BINARY})")
    parser.add_argument("--filter", help="regex passed as --benchmark_filter")
    parser.add_argument("--repetitions", type=int, default=3,
                        help="runs per benchmark, interleaved; the report takes the median "
                             "(default 3)")
    parser.add_argument("--json", default=DEFAULT_JSON,
                        help=f"where the run's JSON is saved (default {DEFAULT_JSON})")
    parser.add_argument("--from-json", metavar="FILE",
                        help="render this saved JSON, run nothing")
    parser.add_argument("--out", default=DEFAULT_OUT,
                        help=f"the markdown report (default {DEFAULT_OUT})")
    parser.add_argument("--charts", default=DEFAULT_CHARTS,
                        help=f"folder of the PNG charts (default {DEFAULT_CHARTS})")
    parser.add_argument("--note", help="a line for the report's header (why this filter, ...)")
    extra = []
    if "--" in argv:  # argparse would take the binary's flags for its own: split them off first
        split = argv.index("--")
        argv, extra = argv[:split], argv[split + 1:]
    options = parser.parse_args(argv)
    options.extra = extra
    if options.repetitions < 1:
        parser.error("--repetitions must be at least 1")
    if options.from_json and (options.filter or extra):
        parser.error("--filter and -- FLAGS need a run; --from-json renders without one")
    if not options.from_json and not os.access(options.binary, os.X_OK):
        parser.error(f"{options.binary} is not an executable; build it with "
                     "`cmake --preset bench && cmake --build --preset bench` or pass --binary")
    return options


def main(argv):
    options = parse_options(argv)
    pyplot = load_pyplot()  # before a run of many minutes, not after
    seconds, stderr_lines = None, []
    if options.from_json:
        document = load_results(options.from_json, options)
        if options.note:
            document["context"]["pmrkit_report"]["user_note"] = options.note
        seconds = document["context"]["pmrkit_report"].get("seconds")
    else:
        script = os.path.relpath(os.path.abspath(__file__), os.getcwd())
        info = machine_info(options.binary, shlex.join(["python3", script] + argv))
        info["repetitions"] = options.repetitions
        info["filter"] = options.filter
        info["user_note"] = options.note
        info["binary_command"] = shlex.join([options.binary] + binary_args(options))
        text, stderr_lines, seconds = run_suite(options)
        info["seconds"] = round(seconds)
        info["load_average_end"] = [round(load, 2) for load in os.getloadavg()]
        info["stderr_notes"] = sorted(set(line for line in stderr_lines if "left out" in line))
        document = save_results(text, info, options.json)
        print(f"report.py: saved {options.json}", file=sys.stderr)
    results = parse_results(document)
    if not results["median"]:
        sys.exit("report.py: no successful benchmarks in the input")
    markdown = render(document, results, options, seconds, stderr_lines, pyplot)
    os.makedirs(os.path.dirname(os.path.abspath(options.out)), exist_ok=True)
    with open(options.out, "w", encoding="utf-8") as stream:
        stream.write(markdown)
    print(f"report.py: wrote {options.out} and {len(results['median'])} chart(s) in "
          f"{options.charts}", file=sys.stderr)
    for error in results["errors"]:
        print("error:", error, file=sys.stderr)
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
