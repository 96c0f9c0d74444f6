#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/) with clang, the library instrumented
# the same way (fuzzer-no-link, address, undefined; checked build), and runs
# each for a bounded time from its seed corpus (fuzz/corpus/<name>/) after
# replaying its regressions (fuzz/regressions/<name>/). A crash prints the
# reproducer's path and fails the script.
#
# Usage: scripts/fuzz.sh [harness...]   (default: all)
# Environment: FUZZ_TIME (seconds per harness, default 20), FUZZ_BUILD_DIR
# (default build/fuzz), FUZZ_JOBS (build parallelism, default nproc),
# FUZZ_PARALLEL (harnesses run side by side, default nproc).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh

time_per=${FUZZ_TIME:-20}
build=${FUZZ_BUILD_DIR:-build/fuzz}
jobs=${FUZZ_JOBS:-$(nproc)}
flags="-O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined"

cmake -S . -B "$build" -G Ninja \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_CXX_FLAGS="$flags" \
  -DPMRKIT_BUILD_FUZZ=ON -DPMRKIT_CHECKED=ON -DPMRKIT_WITH_BOOST=OFF \
  -DPMRKIT_BUILD_TESTS=OFF -DPMRKIT_BUILD_BENCH=OFF -DPMRKIT_BUILD_EXAMPLES=OFF \
  -DPMRKIT_INSTALL=OFF >/dev/null
if [ $# -gt 0 ]; then
  names=("$@")
else
  mapfile -t names < <(sed -nE 's/^    ([a-z_]+)\)?$/\1/p' fuzz/CMakeLists.txt)
fi
targets=()
for name in "${names[@]}"; do targets+=("fuzz_$name"); done
cmake --build "$build" -j "$jobs" --target "${targets[@]}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# One harness: its regressions, then `time_per` seconds from its corpus. Prints
# its report in one piece (the harnesses run side by side) and fails on a find.
fuzz_one() {
  local name=$1
  local binary="$build/fuzz/fuzz_$name"
  local artifacts="$build/artifacts/$name"
  local work="$build/corpus/$name"
  mkdir -p "$artifacts" "$work"
  if [ -d "fuzz/regressions/$name" ] && [ -n "$(ls -A "fuzz/regressions/$name")" ]; then
    if ! "$binary" fuzz/regressions/"$name"/* >"$artifacts/regressions.log" 2>&1; then
      { tail -n 60 "$artifacts/regressions.log"
        echo "fuzz: $name fails a regression in fuzz/regressions/$name"; } >&2
      return 1
    fi
  fi
  local corpus=()
  [ -d "fuzz/corpus/$name" ] && corpus=("fuzz/corpus/$name")
  if ! "$binary" -max_total_time="$time_per" -timeout=20 -rss_limit_mb=4096 \
      -artifact_prefix="$artifacts/" -print_final_stats=1 "$work" "${corpus[@]}" \
      >"$artifacts/log" 2>&1; then
    { tail -n 60 "$artifacts/log"
      echo "fuzz: $name crashed; reproducer(s):"
      ls -1 "$artifacts"/crash-* "$artifacts"/timeout-* "$artifacts"/oom-* 2>/dev/null || true
      echo "fuzz: replay with: $binary <reproducer>"; } >&2
    return 1
  fi
  echo "=== fuzz $name: ${time_per}s, $(sed -nE 's/^stat::number_of_executed_units: *//p' \
    "$artifacts/log") runs, corpus $(ls "$work" | wc -l) inputs"
}
export -f fuzz_one
export build time_per

# Side by side, FUZZ_PARALLEL at a time (default: one per core).
parallel=${FUZZ_PARALLEL:-$(nproc)}
if printf '%s\n' "${names[@]}" | xargs -P "$parallel" -I{} bash -c 'fuzz_one "$@"' _ {}; then
  echo "fuzz: ${#names[@]} harnesses, ${time_per}s each, nothing found"
else
  echo "fuzz: a harness found something (above)" >&2
  exit 1
fi
