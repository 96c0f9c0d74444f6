#!/usr/bin/env python3
"""Compare pmrkit_bench rows: ns per operation and speed ratios, one table per scenario.

Usage:
  compare.py build/bench/bench/pmrkit_bench            run the binary, then print the tables
  compare.py results.json                              read Google Benchmark JSON output
  compare.py BINARY --smoke --filter 'churn'           quick run of a subset
  compare.py BINARY -- --benchmark_enable_random_interleaving=true   extra flags for the binary

Everything after the first "--" goes to the binary unchanged.

Benchmarks are named <scenario>/<row>; what Google Benchmark appends (/real_time/threads:N on the
churn_t scenarios) is dropped. Rows named pmrkit_* lead each table and get a speed ratio
against every peer of the scenario; without pmrkit rows each peer is compared with the baseline
(new_delete, or std_map_default for the container workloads). Speed ratio = peer time / row time,
so > 1 means the row is faster. With repetitions the best (fastest) repetition of each row is
used: allocator timings are skewed only upwards by noise. Where rows of a scenario report the
upstream_peak counter (peak bytes taken from counted_upstream()), the table gets a "peak KiB"
column, blank for the rows without it; where they report bytes processed (json_parse), an "MB/s"
column.
"""

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile

SMOKE_MIN_TIME = "0.001"  # Google Benchmark 1.7.1 takes plain seconds
BASELINES = ("std_map_default", "new_delete")  # first present wins
# Components Google Benchmark appends to a registered name: /real_time, /threads:N, ...
GB_SUFFIX = re.compile(
    r"(?:/(?:real_time|manual_time|threads:\d+|repeats:\d+|iterations:\d+|min_time:[\d.e+-]+s?))+$")


def run_binary(binary, args, stderr=None):
    """Runs the benchmark binary with JSON going to a file; its console table shows progress (on
    stderr). stderr: where the binary's own stderr goes (a file object; default: inherited)."""
    fd, path = tempfile.mkstemp(prefix="pmrkit_bench_", suffix=".json")
    os.close(fd)
    try:
        command = [binary, f"--benchmark_out={path}", "--benchmark_out_format=json"] + args
        print("running:", " ".join(command), file=sys.stderr, flush=True)
        completed = subprocess.run(command, stdout=sys.stderr, stderr=stderr)
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
        # Status 1 with output means some benchmarks failed: still worth a table.
        if completed.returncode != 0 and not text:
            sys.exit(f"compare.py: {binary} exited with status {completed.returncode}")
        return text
    finally:
        os.unlink(path)


def ns_per_op(entry):
    """ns per item when the benchmark reports items, otherwise ns per iteration."""
    items_per_second = entry.get("items_per_second")
    if items_per_second:
        return 1e9 / items_per_second
    scale = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}[entry.get("time_unit", "ns")]
    return entry["cpu_time"] * scale


def parse(text, statistic="best"):
    """Returns ({scenario: {row: ns_per_op}} in first-seen order,
    {scenario: {row: upstream peak bytes}}, {scenario: {row: MB/s}}, [errors]).

    With repetitions, statistic "best" keeps each row's fastest repetition (the least ns/op, the
    most MB/s), "worst" its slowest, "median" the median of each; the peak is the largest of them
    whatever the statistic."""
    pick_time, pick_rate = {"best": (min, max), "worst": (max, min),
                            "median": (statistics.median, statistics.median)}[statistic]
    data = json.loads(text)
    times, peaks, rates, errors = {}, {}, {}, []
    # Registration order (scenarios grouped, pmrkit rows first), also after
    # --benchmark_enable_random_interleaving shuffled the runs; the sort is stable.
    entries = sorted(data.get("benchmarks", []), key=lambda entry: (
        entry.get("family_index", 0), entry.get("per_family_instance_index", 0)))
    for entry in entries:
        if entry.get("run_type", "iteration") != "iteration":
            continue  # aggregates: each row's repetitions are reduced below instead
        name = entry.get("run_name", entry["name"])
        if entry.get("error_occurred"):
            errors.append(f"{name}: {entry.get('error_message', 'error')}")
            continue
        scenario, _, row = GB_SUFFIX.sub("", name).partition("/")
        times.setdefault(scenario, {}).setdefault(row, []).append(ns_per_op(entry))
        peak = entry.get("upstream_peak")
        if peak is not None:
            by_row = peaks.setdefault(scenario, {})
            by_row[row] = max(peak, by_row.get(row, 0))  # the largest over repetitions
        bytes_per_second = entry.get("bytes_per_second")
        if bytes_per_second:
            rates.setdefault(scenario, {}).setdefault(row, []).append(bytes_per_second / 1e6)
    scenarios = {scenario: {row: pick_time(samples) for row, samples in rows.items()}
                 for scenario, rows in times.items()}
    rates = {scenario: {row: pick_rate(samples) for row, samples in rows.items()}
             for scenario, rows in rates.items()}
    return scenarios, peaks, rates, errors


def fmt_ns(ns):
    return f"{ns:.2f}" if ns < 1000 else f"{ns:.0f}"


def fmt_kib(nbytes):
    kib = nbytes / 1024
    return f"{kib:.1f}" if kib < 10 else f"{kib:.0f}"


def fmt_ratio(ratio):
    return f"{ratio:.2f}" if 0.01 <= ratio < 100 else f"{ratio:.3g}"


def baseline_of(rows):
    for name in BASELINES:
        if name in rows:
            return name
    return next(iter(rows))


def ratio_columns(rows):
    """How a scenario's table is laid out: (keys, names, references, labels). keys are the rows in
    table order and names their labels; each ratio column divides references[i]'s time by the
    row's and is headed labels[i]. With pmrkit rows and peers, the pmrkit rows lead and every row
    is compared with every peer (numbered "#1"... to keep the columns narrow); otherwise every row
    is compared with the baseline."""
    pmrkit = [r for r in rows if r.startswith("pmrkit_")]
    peers = [r for r in rows if not r.startswith("pmrkit_")]
    if pmrkit and peers:
        references = peers
        labels = [f"#{i + 1}" for i in range(len(peers))]
        names = pmrkit + [f"{label} {peer}" for label, peer in zip(labels, peers)]
        return pmrkit + peers, names, references, labels
    references = [baseline_of(rows)]
    return list(rows), list(rows), references, [f"vs {references[0]}"]


def print_table(scenario, rows, peaks, out, rates=None):
    """One scenario's table; peaks ({row: bytes}, possibly empty) adds the peak KiB column, rates
    ({row: MB/s}, possibly empty) the MB/s column."""
    rates = rates or {}
    keys, names, references, labels = ratio_columns(rows)
    width = max(len(scenario), *(len(n) + 2 for n in names))
    columns = [max(len(label), 6) for label in labels]
    peak_label = "peak KiB"
    peak_header = f"  {peak_label}" if peaks else ""
    rate_label = "MB/s"
    rate_header = f"  {rate_label:>7}" if rates else ""
    header = f"{scenario:<{width}}  {'ns/op':>9}{rate_header}{peak_header}" + "".join(
        f"  {label:>{w}}" for label, w in zip(labels, columns))
    print(header, file=out)
    print("-" * len(header), file=out)
    for key, name in zip(keys, names):
        ns = rows[key]
        cells = "".join(
            f"  {fmt_ratio(rows[ref] / ns):>{w}}" for ref, w in zip(references, columns))
        peak = ""
        if peaks:
            peak = f"  {fmt_kib(peaks[key]) if key in peaks else '':>{len(peak_label)}}"
        rate = ""
        if rates:
            rate = f"  {f'{rates[key]:.0f}' if key in rates else '':>7}"
        print(f"  {name:<{width - 2}}  {fmt_ns(ns):>9}{rate}{peak}{cells}", file=out)
    print(file=out)


def summary_ratios(scenarios):
    """{pmrkit row: {peer: (geometric mean speed ratio, number of scenarios)}} over the scenarios
    both rows ran, in first-seen order."""
    ratios = {}
    for rows in scenarios.values():
        for row, ns in rows.items():
            if not row.startswith("pmrkit_"):
                continue
            for peer, peer_ns in rows.items():
                if not peer.startswith("pmrkit_"):
                    ratios.setdefault(row, {}).setdefault(peer, []).append(peer_ns / ns)
    return {row: {peer: (math.exp(sum(map(math.log, r)) / len(r)), len(r))
                  for peer, r in by_peer.items()}
            for row, by_peer in ratios.items()}


def print_summary(scenarios, out):
    """Geometric mean over scenarios of each pmrkit row's speed ratio against each peer."""
    ratios = summary_ratios(scenarios)
    if not ratios:
        return
    print("summary: geometric mean speed ratio over the scenarios both rows ran", file=out)
    for row, by_peer in ratios.items():
        cells = ", ".join(
            f"{peer} {fmt_ratio(mean)} ({count})" for peer, (mean, count) in by_peer.items())
        print(f"  {row}: {cells}", file=out)


def main():
    parser = argparse.ArgumentParser(
        usage="%(prog)s [options] source [-- FLAGS...]", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="pmrkit_bench binary to run, or a JSON file it wrote")
    parser.add_argument("--filter", help="regex passed as --benchmark_filter")
    parser.add_argument("--smoke", action="store_true",
                        help=f"a few iterations each (--benchmark_min_time={SMOKE_MIN_TIME})")
    parser.add_argument("--min-time", help="seconds per benchmark (--benchmark_min_time)")
    parser.add_argument("--repetitions", type=int,
                        help="runs per benchmark; the fastest is reported")
    parser.add_argument("--json-out", metavar="FILE", help="also save the raw JSON here")
    # argparse would take the flags after "--" for its own (and reject them): split them off first.
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        split = argv.index("--")
        argv, extra = argv[:split], argv[split + 1:]
    options = parser.parse_args(argv)
    options.extra = extra

    is_json = options.source.endswith(".json") or not os.access(options.source, os.X_OK)
    if is_json:
        if options.filter or options.smoke or options.min_time or options.repetitions or extra:
            parser.error("--filter, --smoke, --min-time, --repetitions and -- FLAGS need a binary "
                         "to run")
        with open(options.source, encoding="utf-8") as stream:
            text = stream.read()
    else:
        args = []
        if options.filter:
            args.append(f"--benchmark_filter={options.filter}")
        min_time = SMOKE_MIN_TIME if options.smoke else options.min_time
        if min_time:
            args.append(f"--benchmark_min_time={min_time}")
        if options.repetitions:
            args.append(f"--benchmark_repetitions={options.repetitions}")
        text = run_binary(options.source, args + options.extra)
    if options.json_out:
        with open(options.json_out, "w", encoding="utf-8") as stream:
            stream.write(text)

    scenarios, peaks, rates, errors = parse(text)
    if not scenarios:
        sys.exit("compare.py: no successful benchmarks in the input")
    print("ns/op: nanoseconds per allocation, element or document; ratios: peer time / row time, "
          "> 1 = row faster\n")
    for scenario, rows in scenarios.items():
        print_table(scenario, rows, peaks.get(scenario, {}), sys.stdout,
                    rates.get(scenario, {}))
    print_summary(scenarios, sys.stdout)
    for error in errors:
        print("error:", error, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
