#!/usr/bin/env python3
"""Draws pmrkit-replay's results (its --json output) as a PNG: time per event
and the peak held from the upstream against the live peak, one bar per
strategy that served the trace. Called by `pmrkit-replay --chart FILE.png`;
usage: replay_chart.py RESULTS.json OUT.png (needs matplotlib: pip install
matplotlib)."""
import json
import sys


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("replay_chart.py: matplotlib is missing: python3 -m pip install matplotlib",
              file=sys.stderr)
        return 1
    with open(sys.argv[1]) as f:
        data = json.load(f)
    served = [r for r in data["results"] if r["served"]]
    if not served:
        print("replay_chart.py: no strategy served the trace: nothing to draw", file=sys.stderr)
        return 1
    names = [r["strategy"] for r in served]
    times = [r["ns_per_event"] for r in served]
    held = [r.get("held_over_live", 0.0) for r in served]
    chosen = data.get("recommended")
    colours = ["#d62728" if n == chosen else ("#7f7f7f" if n == "malloc" else "#1f77b4")
               for n in names]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 0.45 * len(names) + 1.6), sharey=True)
    left.barh(names, times, color=colours)
    left.set_xlabel("ns per allocate or free (lower is better)")
    left.invert_yaxis()
    right.barh(names, held, color=colours)
    right.axvline(1.0, color="black", linewidth=0.8)
    right.axvline(data.get("max_overhead", 1.5), color="black", linewidth=0.8, linestyle="--")
    right.set_xlabel("peak held from upstream / live peak (malloc: not visible)")
    for axis, values, fmt in ((left, times, "{:.1f}"), (right, held, "{:.2f}x")):
        for y, v in enumerate(values):
            if v:
                axis.text(v, y, " " + fmt.format(v), va="center", fontsize=8)
    profile = data["profile"]
    fig.suptitle("{}: {} allocations, live peak {:,} bytes; recommended: {}".format(
        data["trace"], profile["allocations"], profile["peak_live_bytes"], chosen or "none"),
        fontsize=10)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main())
