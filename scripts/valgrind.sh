#!/usr/bin/env bash
# The test suite under Valgrind's memcheck, with zero errors required.
#
#   bash scripts/valgrind.sh [BUILD_DIR]    (or PMRKIT_VALGRIND_BUILD=BUILD_DIR)
#
# Runs the test programs of an existing checked Debug build (default build/debug, the one
# scripts/test.sh and CI's test step have just built; nothing is built here) under
#   valgrind --tool=memcheck --error-exitcode=1 --leak-check=full
#            --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect
#            --track-origins=no --num-callers=30 --fair-sched=yes
# with tests/valgrind.supp (--fair-sched: the threaded tests' threads take turns fairly on
# memcheck's one lock; --track-origins=no: twice as fast, rerun a failing program with it). Any memcheck error (invalid read or write, a use of undefined
# bytes, a definite or indirect leak) or any failed test fails the script. In a checked build
# made where <valgrind/memcheck.h> is (Debian's valgrind package, installed by scripts/deps.sh)
# the resources mark freed pooled and arena memory inaccessible and recycled blocks undefined
# (include/pmr/core/poison.hpp), so memcheck sees misuse of memory the upstream never got back;
# the ctest tests valgrind.* (tests/valgrind) prove it. A build configured before valgrind was
# installed has no client requests compiled in: rebuild it from scratch.
#
# Each test program runs once under memcheck (one valgrind start per program, not per test),
# VALGRIND_JOBS at a time (default 2). Every test program of the build is either run (with the
# gtest filter below) or excluded with a reason; a program the build has that this script does
# not name fails it, so a new test is run under memcheck or excluded on purpose. Then ctest runs
# the valgrind.* tests.
#
# What runs. Memcheck slows these tests down 30-150 times (a Debug build), too much for the
# whole suite in CI, so by default (VALGRIND_SUITE=subset) a subset runs: 835 gtest tests in 40
# programs, about 3 minutes of CPU (1m44s of wall time measured on 2 cores, 4.5 minutes when
# other builds shared them):
#   - every program's own tests (every suite that is not an instance of the conformance suite),
#     every resource family's included, and doc_examples and readme_snippets (plain programs);
#   - the conformance suite (tests/conformance) over one configuration of each resource that
#     carves memory itself, the ones that poison it: pool, multipool, concurrent_pool,
#     chunked_arena, local_arena, concurrent_arena, stack, vmem_arena (a 64 KiB reservation),
#     buddy, shm, region (a pool region) and page_resource (conformance_subset below). The decorators, test_resource, the
#     standard resources, the Boost bridge, guarded_resource, locked_page_resource and the
#     memory system run their own tests only: they hold no free memory of their own to poison,
#     and ASan runs their conformance instances;
#   - less the buddy's random model tests (over 3 minutes alone; ASan and the fuzzer run them).
# VALGRIND_SUITE=full runs every instance and test (but the exclusions below): 1435 gtest tests,
# 14 minutes of CPU, 8m24s of wall time measured on 2 cores, 0 errors.
#
# Left out in both, and why:
#   - death tests (*DeathTest*): they fork or re-execute the program to watch it die on purpose
#     (the violation handler's abort, ASan's reports); what they check is not memory use, and a
#     child that aborts leaves memcheck's leak report meaningless;
#   - the tests that read freed memory on purpose to check the fill pattern
#     (*FilledWithThePattern*, *ArePoisonedInCheckedBuilds*, *FreedPartsAreFilledInCheckedBuilds,
#     BuddyCache.CachedBlocksArePoisonedLikeFreeMemory): memcheck rightly reports those reads;
#     the ctest tests valgrind.* check the other side;
#   - vmem_arena_resource's default 64 GiB reservation (its default conformance instance, two
#     construction tests, and errors_test's make_arena check, which gets a chunked arena):
#     valgrind maps no more than about 32 GiB for a program;
#   - errors_test's impossible sizes through operator new with an alignment (Allocate.SizeAnd-
#     BookkeepingOverflow, Allocate.SizeNoMemoryHolds, Interop.FromBoostBadRequests): valgrind's
#     aligned operator new aborts the program where the real one throws std::bad_alloc;
#   - the 64 MiB buddy region's conformance instance: it asks operator new for 64 MiB
#     alignment, and valgrind's operator new aborts above 16 MiB;
#   - PageResource.ImpossibleRequestsAreAllocationErrors: it expects the kernel's ENOMEM for an
#     impossible mmap, which valgrind's mmap answers otherwise;
#   - pool_poisoning_test: ASan-only (each test skips without it);
#   - the processes label (shm_segment_test, shm_process_test, shm_allocator_test, shm_pmr_test,
#     shm_crash_test): they spawn child processes (which memcheck would not follow), kill them
#     (shm_crash_test 300 times) and wait on them with deadlines; not tried under memcheck;
#     shm_resource_test runs the allocator, its threads and two mappings in one process;
#   - consumer.*: they build projects (CMake, the compiler), nothing of pmrkit's runs in them.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=${1:-${PMRKIT_VALGRIND_BUILD:-build/debug}}
jobs=${VALGRIND_JOBS:-2}

if ! command -v valgrind >/dev/null; then
  echo "valgrind.sh: valgrind is missing (Debian: apt-get install valgrind; scripts/deps.sh)" >&2
  exit 1
fi
cache=$build/CMakeCache.txt
if [ ! -f "$cache" ]; then
  echo "valgrind.sh: no build at $build (build it first: cmake --workflow --preset debug)" >&2
  exit 1
fi
if ! grep -q '^PMRKIT_CHECKED:BOOL=ON$' "$cache"; then
  echo "valgrind.sh: $build is not a checked build (PMRKIT_CHECKED=ON)" >&2
  exit 1
fi
if grep -q '^CMAKE_CXX_FLAGS:STRING=.*-fsanitize' "$cache"; then
  echo "valgrind.sh: $build is built with a sanitizer, which valgrind cannot run" >&2
  exit 1
fi

# Left out of every program (the reasons are in the header above).
common_exclusions=(
  '*DeathTest*'
  # Read freed memory on purpose to check the fill pattern.
  '*FilledWithThePattern*' '*ArePoisonedInCheckedBuilds*' '*FreedPartsAreFilledInCheckedBuilds'
  'BuddyCache.CachedBlocksArePoisonedLikeFreeMemory'
  # vmem_arena_resource's default 64 GiB reservation: more than valgrind maps for a program.
  'vmem_arena/resource_conformance/pmrkit_vmem_arena_resource.*' 'Construction.VmemArenaTheSixWays'
  'VmemArenaConstruction.TheSixWays' 'BadOptions.MakeArenaChecksTheChosenStrategy'
  # An impossible aligned operator new: valgrind's aborts the program instead of throwing.
  'Allocate.SizeAndBookkeepingOverflow' 'Allocate.SizeNoMemoryHolds' 'Interop.FromBoostBadRequests'
  # A 64 MiB buddy region aligned to its size: valgrind's operator new stops at 16 MiB.
  'region/resource_conformance/pmrkit_region_resource_system_buddy_64_MiB_.*'
  # Checks the kernel's errno (ENOMEM) for an impossible mmap; valgrind's mmap says EINVAL.
  'PageResource.ImpossibleRequestsAreAllocationErrors'
)

# Gtest programs run under memcheck, by their path under the build's tests/; the slowest
# first, so that the parallel jobs end together.
run=(
  budget_test buddy_test conformance_std_test pressure_test statistics_test concurrent_pool_test
  region/locked_page_resource_test region/page_resource_test vmem_arena_test multipool_test
  region/memory_system_test shm/shm_resource_test synchronized_test guarded_test pool_test
  size_router_test fallback_test boost_bridge_test chunked_arena_test region/region_resource_test
  errors_test local_arena_test concurrent_arena_test stack_test size_classes_test test_resource_test
  relaxed_counter_test thread_shards_test lean_mutex_test bit_tree_test
  construction_test buddy_tree_test shm/shm_pointer_test make_arena_test object_pool_test
  core_test block_pool_test strings_test bump_chain_test large_blocks_test marker_history_test
  lru_cache_test trace_file_test trace_test
)
# Gtest programs left out (the reasons are in the header above).
excluded=(
  pool_poisoning_test
  shm/shm_segment_test shm/shm_process_test shm/shm_allocator_test shm/shm_pmr_test
  shm/shm_crash_test
  # Built where the CUDA toolkit is (PMRKIT_WITH_CUDA=AUTO): the CUDA runtime and driver are
  # not memcheck-clean, and without a GPU every test that reaches a device skips; ASan and TSan
  # run them.
  region/cuda_pinned_test region/cuda_registered_test
)
# Plain programs run under memcheck (they exit non-zero on failure).
plain=(doc_examples_test readme_snippets_test)

# The subset (the default; VALGRIND_SUITE=full runs every instance): every program's own tests,
# and of the conformance suite's instances (resource_conformance, one per resource and
# configuration) one per resource that carves memory itself.
conformance_subset=(
  pool/resource_conformance/pmrkit_pool_resource_64_B_forwarding_
  multipool/resource_conformance/pmrkit_multipool_resource
  concurrent_pool/resource_conformance/pmrkit_concurrent_pool_resource_defaults_
  chunked_arena/resource_conformance/pmrkit_chunked_arena_resource
  local_arena/resource_conformance/pmrkit_local_arena_1024_
  concurrent_arena/resource_conformance/pmrkit_concurrent_arena_resource
  stack/resource_conformance/pmrkit_stack_resource
  vmem_arena/resource_conformance/pmrkit_vmem_arena_resource_64_KiB_overflowing_
  buddy/resource_conformance/pmrkit_buddy_resource
  shm/resource_conformance/pmrkit_shm_resource
  region/resource_conformance/pmrkit_region_resource_network_pool_of_2_KiB_
  pages/resource_conformance/pmrkit_page_resource
)
# Left out of the subset only: the slowest under memcheck, covered by ASan and the fuzzer.
subset_exclusions=(
  # The buddy's random model over four cache sizes, verify() after every step: over 3 minutes
  # under memcheck.
  '*/BuddyModel.*'
)
suite_mode=${VALGRIND_SUITE:-subset}
case $suite_mode in
  subset | full) ;;
  *) echo "valgrind.sh: VALGRIND_SUITE must be subset or full, not $suite_mode" >&2; exit 1 ;;
esac

tests=$build/tests
# Every gtest program the build has must be named above.
unknown=()
while IFS= read -r program; do
  name=${program#"$tests"/}
  case " ${run[*]} ${excluded[*]} " in
    *" $name "*) ;;
    *) unknown+=("$name") ;;
  esac
done < <(find "$tests" -type f -perm -u+x -name '*_test' ! -path '*/CMakeFiles/*' \
  ! -name doc_examples_test ! -name readme_snippets_test | sort)
if [ ${#unknown[@]} -gt 0 ]; then
  echo "valgrind.sh: test programs neither run nor excluded here: ${unknown[*]}" >&2
  echo "valgrind.sh: add each to run=() or excluded=() in scripts/valgrind.sh" >&2
  exit 1
fi

# Programs named above that this build has not (shm off, guarded_test off UNIX) are skipped.
present=()
for name in "${run[@]}"; do
  if [ -x "$tests/$name" ]; then
    present+=("$name")
  else
    echo "valgrind.sh: $name is not in this build, skipped"
  fi
done
run=("${present[@]}")

# Every instance of conformance_subset must still exist (a renamed one would drop silently).
if [ "$suite_mode" = subset ]; then
  suites=$(for name in "${run[@]}"; do "$tests/$name" --gtest_list_tests; done |
    grep -E '^[^ ].*\.( +#.*)?$' | sed -E 's/\.( .*)?$//')
  for instance in "${conformance_subset[@]}"; do
    if ! grep -qxF "$instance" <<<"$suites"; then
      echo "valgrind.sh: no conformance instance $instance in the test programs" >&2
      echo "valgrind.sh: update conformance_subset in scripts/valgrind.sh" >&2
      exit 1
    fi
  done
fi

logs=$build/valgrind
rm -rf "$logs"
mkdir -p "$logs"
valgrind_args=(
  --tool=memcheck --error-exitcode=1 --leak-check=full --show-leak-kinds=definite,indirect
  --errors-for-leak-kinds=definite,indirect --track-origins=no --num-callers=30
  --suppressions="$root/tests/valgrind.supp" --fair-sched=yes
)

# The gtest filter for program $1: in the subset, its suites that are not conformance instances
# and the instances of conformance_subset (listed natively, which is quick); then the exclusions.
filter_for() {
  local positive='*'
  if [ "$suite_mode" = subset ]; then
    positive=$("$tests/$1" --gtest_list_tests | grep -E '^[^ ].*\.( +#.*)?$' | sed -E 's/\.( .*)?$//' |
      while IFS= read -r suite; do
        case $suite in
          */resource_conformance/*)
            case " ${conformance_subset[*]} " in *" $suite "*) echo "$suite.*" ;; esac ;;
          *) echo "$suite.*" ;;
        esac
      done | paste -sd: - || true)
    [ -n "$positive" ] || positive='-'  # no test of it in the subset
  fi
  local exclusions=("${common_exclusions[@]}")
  [ "$suite_mode" = subset ] && exclusions+=("${subset_exclusions[@]}")
  local IFS=:
  echo "$positive-${exclusions[*]}"
}

# One job: "gtest <name> <filter>" or "plain <name>"; its output in $logs/<name>.log, its
# status in .rc, its wall time in seconds in .time.
run_one() {
  local kind=$1 name=$2 log=$logs/${2//\//_}
  local command=("$tests/$name")
  [ "$kind" = gtest ] && command+=("--gtest_filter=$3" --gtest_brief=1)
  local status=0 began
  began=$(date +%s)
  valgrind "${valgrind_args[@]}" "${command[@]}" >"$log.log" 2>&1 || status=$?
  echo "$status" >"$log.rc"
  echo $(($(date +%s) - began)) >"$log.time"
  printf '%-36s %4ss %s\n' "$name" "$(cat "$log.time")" \
    "$([ "$status" -eq 0 ] && echo ok || echo "FAILED ($status)")"
}
export -f run_one
export logs tests
export valgrind_args_string="${valgrind_args[*]}"

started=$(date +%s)
echo "valgrind.sh: the $suite_mode suite: ${#run[@]} gtest programs and ${#plain[@]} plain ones from $build under memcheck, $jobs at a time"
{
  for name in "${run[@]}"; do printf 'gtest %s %s\n' "$name" "$(filter_for "$name")"; done
  for name in "${plain[@]}"; do echo "plain $name"; done
} | xargs -P "$jobs" -L 1 bash -c 'valgrind_args=($valgrind_args_string); run_one "$@"' _

# The misuse cases: memcheck must report each (tests/valgrind, ctest -L valgrind).
ctest_status=0
ctest --test-dir "$build" -L '^valgrind$' -j "$jobs" --output-on-failure >"$logs/ctest.log" 2>&1 ||
  ctest_status=$?
grep -E 'tests passed|Skipped|Failed' "$logs/ctest.log" || true

failed=0
errors=0
tests_run=0
for rc in "$logs"/*.rc; do
  log=${rc%.rc}.log
  count=$(grep -E '== ERROR SUMMARY: [0-9]+ errors' "$log" |
    sed -E 's/.*SUMMARY: ([0-9]+) errors.*/\1/' | head -n 1 || true)
  errors=$((errors + ${count:-0}))
  ran=$(grep -E '^\[==========\] [0-9]+ tests? from .* ran' "$log" |
    sed -E 's/^\[==========\] ([0-9]+) .*/\1/' | tail -n 1 || true)
  tests_run=$((tests_run + ${ran:-0}))
  if [ "$(cat "$rc")" != 0 ]; then
    failed=$((failed + 1))
    echo
    echo "=== $(basename "$log" .log): failed; the end of $log:"
    tail -n 60 "$log"
  fi
done
elapsed=$(($(date +%s) - started))
echo
echo "valgrind.sh: ${tests_run} gtest tests in ${#run[@]} programs and ${#plain[@]} plain programs under memcheck in ${elapsed}s: ${failed} failed, ${errors} memcheck errors (logs in $logs)"
if [ "$ctest_status" -ne 0 ]; then
  cat "$logs/ctest.log"
  echo "valgrind.sh: the valgrind.* ctest tests failed" >&2
  exit 1
fi
[ "$failed" -eq 0 ] && [ "$errors" -eq 0 ]
