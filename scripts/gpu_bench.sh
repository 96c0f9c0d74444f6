#!/usr/bin/env bash
# The GPU checks of the CUDA page sources, as one short script for a machine with a CUDA device
# (bench/README.md, "GPU figures"): the CUDA tests (cuda_pinned_test, cuda_registered_test: the
# conformance suite, host and device copies, a 512 MiB registration), then pmrkit_cuda_bench
# (pinned_alloc, h2d_copy_64MiB, register_1GiB) as JSON. Well under 10 minutes on 16 cores.
#
#   scripts/gpu_bench.sh [OUT]              configure + build (Release, build-gpu/) and run both
#                                           here: needs what the project's build needs (Boost,
#                                           GoogleTest, Google Benchmark, the CUDA toolkit)
#   scripts/gpu_bench.sh bundle [DIR]       build here, then copy the three programs and the
#                                           shared libraries they need that a bare CUDA machine
#                                           may lack into DIR (default build-gpu/bundle)
#   scripts/gpu_bench.sh run-bundle [DIR] [OUT]
#                                           run a bundle (on the device machine, whose image has
#                                           the CUDA driver but no Boost, GoogleTest or Benchmark)
#
# OUT (default $OUT, else build-gpu/out) receives cuda_bench.json, cuda_tests.log and
# cuda_bench.log. Without a device the tests skip (saying why) and the bench says why and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."

build=build-gpu
targets=(pmrkit_cuda_bench cuda_pinned_test cuda_registered_test)

build_here() {
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPMRKIT_WITH_CUDA=ON \
    -DPMRKIT_BUILD_TESTS=ON -DPMRKIT_BUILD_BENCH=ON -DPMRKIT_BUILD_EXAMPLES=OFF
  cmake --build "$build" -j "${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}" --target "${targets[@]}"
}

gpu_info() {
  mkdir -p "$1"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 |
    tee "$1/gpu.txt" || true
}

# run_tests DIR OUT: the CUDA test programs in DIR, by their paths (no ctest files with this
# machine's paths needed).
run_tests() {
  local status=0
  echo "=== CUDA tests ($(date +%T))"
  for test in cuda_pinned_test cuda_registered_test; do
    timeout 300 "$1/$test" 2>&1 | tee -a "$2/cuda_tests.log" || status=1
  done
  return $status
}

# run_bench BINARY OUT: the rows as JSON in OUT/cuda_bench.json, the console table in the log.
run_bench() {
  echo "=== pmrkit_cuda_bench ($(date +%T))"
  timeout 300 "$1" --benchmark_out="$2/cuda_bench.json" --benchmark_out_format=json 2>&1 |
    tee "$2/cuda_bench.log"
}

mode=${1:-}
case "$mode" in
  bundle)
    dir=${2:-$build/bundle}
    build_here
    rm -rf "$dir" && mkdir -p "$dir/lib"
    cp "$build/bench/pmrkit_cuda_bench" "$build/tests/region/cuda_pinned_test" \
      "$build/tests/region/cuda_registered_test" "$dir/"
    # Every shared library but the C library, the loader, libstdc++ and libgcc_s (a CUDA
    # machine's own are as new or newer): libcudart, libbenchmark, Boost.Container, ...
    for program in "$dir"/pmrkit_cuda_bench "$dir"/cuda_*_test; do
      ldd "$program" | awk '/=> \// { print $3 }'
    done | sort -u | grep -v -E '/(libc|libm|libpthread|libdl|librt|ld-linux[^/]*|libstdc\+\+|libgcc_s)\.so' |
      while read -r library; do cp -L "$library" "$dir/lib/"; done
    du -sh "$dir"
    echo "bundle: $dir; on the device machine: scripts/gpu_bench.sh run-bundle $dir"
    ;;
  run-bundle)
    dir=${2:-$build/bundle}
    out=${3:-${OUT:-$build/out}}
    export LD_LIBRARY_PATH="$PWD/$dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    gpu_info "$out"
    status=0
    run_tests "$dir" "$out" || status=1
    run_bench "$dir/pmrkit_cuda_bench" "$out" || status=1
    echo "=== done ($(date +%T)): $([ $status = 0 ] && echo 'tests and bench passed' || echo FAILED)"
    exit $status
    ;;
  *)
    out=${1:-${OUT:-$build/out}}
    build_here
    gpu_info "$out"
    status=0
    echo "=== ctest -R cuda ($(date +%T))"
    ctest --test-dir "$build" -R cuda --output-on-failure -j "$(nproc)" 2>&1 |
      tee "$out/cuda_tests.log" || status=1
    run_bench "$build/bench/pmrkit_cuda_bench" "$out" || status=1
    echo "=== done ($(date +%T)): $([ $status = 0 ] && echo 'tests and bench passed' || echo FAILED)"
    exit $status
    ;;
esac
