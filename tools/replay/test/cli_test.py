#!/usr/bin/env python3
"""pmrkit-replay's command line: a known trace replayed (counts and the live
peak exactly, a pool refusing mixed sizes, JSON), an RMM log, the malformed
cases (exit 1, the byte offset or record named), bad usage (exit 2) and the
chart when matplotlib is there. usage: cli_test.py PMRKIT_REPLAY"""
import json
import os
import struct
import subprocess
import sys
import tempfile

REPLAY = sys.argv[1]
failures = []


def check(condition, what):
    if not condition:
        failures.append(what)
        print("FAILED:", what)


def header(version=1, record_size=32, origin=0):
    return b"PMRKTRCE" + struct.pack("<HHIQII", version, record_size, origin, 0, 77, 0)


def record(action, id_, size, alignment=16, thread=1, ns=0):
    return struct.pack("<BBHIQQQ", action, alignment.bit_length() - 1, 0, thread, id_, size, ns)


def run(*args):
    p = subprocess.run([REPLAY, "--no-progress", *args], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def write(folder, name, data):
    path = os.path.join(folder, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


with tempfile.TemporaryDirectory() as folder:
    # A known workload: 64-byte and 1000-byte blocks, two threads; live peak 3 x 64 + 1000.
    body = (record(1, 1, 64) + record(1, 2, 64) + record(1, 3, 1000, 64, thread=2) +
            record(1, 4, 64) + record(2, 2, 64) + record(3, 5, 1 << 40) +
            record(2, 1, 0, 1, thread=2) + record(2, 3, 1000, 64) + record(2, 4, 64))
    good = write(folder, "good.trace", header() + body)
    out_json = os.path.join(folder, "r.json")
    code, out, err = run(good, "--json", out_json, "-r", "2")
    check(code == 0, f"good trace: exit {code}, stderr {err!r}")
    with open(out_json) as f:
        data = json.load(f)
    p = data["profile"]
    check(p["allocations"] == 4 and p["deallocations"] == 4 and p["failed_allocations"] == 1,
          f"counts {p}")
    check(p["peak_live_bytes"] == 3 * 64 + 1000 and p["peak_live_blocks"] == 4, f"peak {p}")
    check(p["threads"] == 2 and p["cross_thread_frees"] == 2, f"threads {p}")
    check(p["distinct_sizes"] == 2 and p["max_alignment"] == 64, f"sizes {p}")
    results = {r["strategy"]: r for r in data["results"]}
    check(not results["pool"]["served"] and "2 distinct sizes" in results["pool"]["reason"],
          f"pool {results['pool']}")
    check(results["multipool"]["served"] and results["multipool"]["peak_upstream_bytes"] >= 1192,
          f"multipool {results['multipool']}")
    check(len(results["multipool"]["times"]) == 2, "two repetitions")
    check(data["recommended"] in results and data["why"], "a recommendation with a reason")
    check("recommended: " in out and "live peak   1.2 KiB in 4 blocks" in out, f"table: {out}")

    # One thread per recorded thread: the cross-thread frees wait for their allocations.
    code, out, err = run(good, "--threads", "-s", "malloc,concurrent_pool,multipool", "-r", "1")
    check(code == 0 and "replayed with 2 threads" in out and "multipool+lock" in out,
          f"--threads: {code} {out} {err}")

    # Touching every block: the same results, flagged in the JSON.
    code, out, err = run(good, "--touch", "-s", "multipool", "-r", "1", "--json", "-")
    check(code == 0 and '"touch": true' in out and '"served": true' in out, f"--touch: {out} {err}")

    # Strategies and settings.
    code, out, err = run(good, "-s", "pool", "--set", "pool.block_size=1K", "--json", "-")
    check(code == 0 and '"strategy": "pool", "served": true' in out, f"pool with block_size: {out} {err}")

    # An RMM log.
    rmm = write(folder, "log.csv", b"Thread,Time,Action,Pointer,Size,Stream\n"
                b"1,10:00:00.000001,allocate,0x1000,256,0x0\n1,10:00:00.000002,free,0x1000,256,0x0\n")
    code, out, err = run(rmm, "-s", "multipool")
    check(code == 0 and "RMM log" in out, f"rmm: {code} {out} {err}")

    # Malformed traces: exit 1 and the place named.
    cases = [
        ("truncated.trace", header() + body[:-5], "byte 288: truncated record 8: expected 32 bytes, found 27"),
        ("magic.trace", b"NOTATRACE" + bytes(40), "not a pmrkit trace"),
        ("version.trace", header(version=9) + body, "byte 8: unknown format version 9"),
        ("unknown-id.trace", header() + record(1, 1, 8) + record(2, 9, 8),
         "record 1 (byte 64): deallocate of id 9, which is not live"),
        ("twice.trace", header() + record(1, 1, 8) + record(1, 1, 8),
         "record 1 (byte 64): id 1 allocated again while live (allocated by record 0)"),
        ("action.trace", header() + struct.pack("<BBHIQQQ", 9, 4, 0, 1, 1, 8, 0),
         "byte 32: record 0: unknown action 9"),
        ("empty.trace", b"", "byte 0: truncated header"),
    ]
    for name, data_bytes, expected in cases:
        code, out, err = run(write(folder, name, data_bytes))
        check(code == 1 and expected in err, f"{name}: exit {code}, stderr {err!r}, wanted {expected!r}")
        check("Traceback" not in err and "terminate" not in err, f"{name}: crashed: {err!r}")
    code, out, err = run(os.path.join(folder, "missing.trace"))
    check(code == 1 and "cannot open" in err, f"missing file: {code} {err!r}")

    # Bad usage: exit 2.
    for args, expected in [((), "no trace given"), ((good, "-s", "nope"), "unknown strategy"),
                           ((good, "--set", "buddy.colour=3"), "buddy has no field \"colour\""),
                           ((good, "--set", "buddy.region_size=12Q"), "is not a byte count"),
                           ((good, "--repeat", "0"), "--repeat 0"), ((good, "--frobnicate"), "unknown option")]:
        code, out, err = run(*args)
        check(code == 2 and expected in err, f"usage {args}: exit {code}, stderr {err!r}")

    # The chart, when matplotlib is installed.
    try:
        import matplotlib  # noqa: F401
        have_matplotlib = True
    except ImportError:
        have_matplotlib = False
    if have_matplotlib:
        png = os.path.join(folder, "chart.png")
        code, out, err = run(good, "--chart", png)
        check(code == 0 and os.path.getsize(png) > 1000, f"chart: {code} {err!r}")
        with open(png, "rb") as f:
            check(f.read(8) == b"\x89PNG\r\n\x1a\n", "chart is a PNG")
    else:
        print("replay_cli: matplotlib missing, the chart is not checked")

print("replay_cli:", "FAILED" if failures else "passed")
sys.exit(1 if failures else 0)
