#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/) with clang, the library instrumented
# the same way (fuzzer-no-link, address, undefined; checked build), and runs
# each for a bounded time from its seed corpus (fuzz/corpus/<name>/) after
# replaying its regressions (fuzz/regressions/<name>/). A crash prints the
# reproducer's path and fails the script.
#
# Usage: scripts/fuzz.sh [harness...]   (default: all)
# Environment: FUZZ_TIME (seconds per harness, default 20), FUZZ_BUILD_DIR
# (default build/fuzz), FUZZ_JOBS (build parallelism, default nproc).
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
status=0
for name in "${names[@]}"; do
  binary="$build/fuzz/fuzz_$name"
  artifacts="$build/artifacts/$name"
  work="$build/corpus/$name"
  mkdir -p "$artifacts" "$work"
  if [ -d "fuzz/regressions/$name" ] && [ -n "$(ls -A "fuzz/regressions/$name")" ]; then
    echo "=== fuzz $name: regressions"
    if ! "$binary" fuzz/regressions/"$name"/*; then
      echo "fuzz: $name fails a regression in fuzz/regressions/$name" >&2
      status=1
      continue
    fi
  fi
  echo "=== fuzz $name: ${time_per}s"
  if ! "$binary" -max_total_time="$time_per" -timeout=20 -rss_limit_mb=4096 \
      -artifact_prefix="$artifacts/" -print_final_stats=1 "$work" "fuzz/corpus/$name" \
      >"$artifacts/log" 2>&1; then
    tail -n 60 "$artifacts/log" >&2
    echo "fuzz: $name crashed; reproducer(s):" >&2
    ls -1 "$artifacts"/crash-* "$artifacts"/timeout-* "$artifacts"/oom-* 2>/dev/null >&2 || true
    echo "fuzz: replay with: $binary <reproducer>" >&2
    status=1
  else
    grep -E '^stat::number_of_executed_units|^Done' "$artifacts/log" || true
  fi
done
exit $status
