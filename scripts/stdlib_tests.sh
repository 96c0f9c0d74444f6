#!/usr/bin/env bash
# libstdc++'s std::pmr tests for unsynchronized_pool_resource, synchronized_pool_resource and
# monotonic_buffer_resource, and libc++'s pool resource tests, run against pmrkit's drop-ins
# (multipool_resource, concurrent_pool_resource, chunked_arena_resource). tests/stdlib/README.md
# says what is changed and why. Nothing third-party is committed; what is downloaded comes from
# Debian's archive through apt-get:
#   1. gcc-12-source is installed with apt-get when missing (as root; else the command is shown),
#      and llvm-toolchain-16's source package is fetched with apt-get source (no install);
#   2. the tests and the helper headers they include are extracted into build/stdlib/src;
#   3. tests/stdlib/rename.sed renames the resources, tests/stdlib/patches/<family>/<test>.patch
#      adapts the rest (a dropped check is #if 0'd, a changed one commented, each with a reason);
#   4. tests/stdlib (CMake) builds one program per test over pmrkit; ctest runs them.
# Run by .ci/run; by hand: bash scripts/stdlib_tests.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=build/stdlib
jobs=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}

# Tests pmrkit fails because of a pmrkit bug, kept and expected to fail: "<family>.<test>".
expected_failures=()

if [ "$(dpkg-query -W -f='${db:Status-Status}' gcc-12-source 2>/dev/null || true)" != installed ]; then
  command="apt-get update && apt-get install -y --no-install-recommends gcc-12-source"
  if [ "$(id -u)" -ne 0 ]; then
    echo "stdlib_tests: gcc-12-source is missing; install it as root, then run this again:" >&2
    echo "  sudo sh -c '$command'" >&2
    exit 1
  fi
  echo "stdlib_tests: installing gcc-12-source"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends gcc-12-source
fi
tarball=$(ls /usr/src/gcc-12/gcc-*.tar.xz | grep -v /gm2- | head -n 1)
top=$(basename "$tarball" .tar.xz)  # gcc-12.2.0-dfsg.tar.xz holds gcc-12.2.0/
top=${top%-dfsg}

families=(unsynchronized_pool_resource synchronized_pool_resource monotonic_buffer_resource)
rm -rf "$out/src" "$out/extract"
mkdir -p "$out/src/util" "$out/extract"
echo "stdlib_tests: extracting the tests from $tarball"
tar -xJf "$tarball" -C "$out/extract" --wildcards \
  "${families[@]/#/$top/libstdc++-v3/testsuite/20_util/}" \
  "$top/libstdc++-v3/testsuite/util/testsuite_*.h"
testsuite="$out/extract/$top/libstdc++-v3/testsuite"
cp "$testsuite"/util/testsuite_*.h "$out/src/util/"
for family in "${families[@]}"; do
  cp -r "$testsuite/20_util/$family" "$out/src/"
  sed -i -f tests/stdlib/rename.sed "$out/src/$family"/*.cc
done
rm -rf "$out/extract"

# libc++'s tests (libcxx/test/std/utilities/utility/mem.res/mem.res.{pool,monotonic.buffer}) come from Debian
# 12's llvm-toolchain-16 source package (libc++ 14, Debian's default, has no pool resources),
# fetched by apt-get source through a deb-src list of this script's own in build/stdlib/apt
# (the system's apt sources are left alone) and kept in build/stdlib/llvm for the next run.
apt_dir="$root/$out/apt"
apt_options=(-q -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/nonexistent
  -o "Dir::State::Lists=$apt_dir/lists")
if ! ls "$out"/llvm/llvm-toolchain-16_*.orig.tar.xz >/dev/null 2>&1; then
  mkdir -p "$apt_dir/lists/partial" "$out/llvm"
  echo "deb-src http://deb.debian.org/debian bookworm main" >"$apt_dir/sources.list"
  echo "stdlib_tests: downloading Debian's llvm-toolchain-16 source package (about 136 MB)"
  apt-get "${apt_options[@]}" update
  (cd "$out/llvm" && apt-get "${apt_options[@]}" source --download-only llvm-toolchain-16)
fi
llvm_tarball=$(ls "$out"/llvm/llvm-toolchain-16_*.orig.tar.xz | head -n 1)
mkdir -p "$out/extract" "$out/src/libcxx/support"
echo "stdlib_tests: extracting libc++'s tests from $llvm_tarball"
tar -xJf "$llvm_tarball" -C "$out/extract" --wildcards \
  "*/libcxx/test/std/utilities/utility/mem.res/mem.res.pool/*" \
  "*/libcxx/test/std/utilities/utility/mem.res/mem.res.monotonic.buffer/*" \
  "*/libcxx/test/support/count_new.h" "*/libcxx/test/support/test_macros.h"
libcxx=$(echo "$out"/extract/*/libcxx/test)
cp "$libcxx"/support/count_new.h "$libcxx"/support/test_macros.h "$out/src/libcxx/support/"
for dir in "$libcxx"/std/utilities/utility/mem.res/mem.res.{pool,monotonic.buffer}/*/; do
  cp -r "$dir" "$out/src/libcxx/"
  sed -i -f tests/stdlib/rename.sed "$out/src/libcxx/$(basename "$dir")"/*.cpp
done
rm -rf "$out/extract"

for patch in tests/stdlib/patches/*/*.patch; do
  [ -e "$patch" ] || continue
  echo "stdlib_tests: applying $patch"
  patch --quiet --no-backup-if-mismatch -d "$out/src" -p1 <"$root/$patch"
done

cmake -S tests/stdlib -B "$out/build" -G Ninja -DSTDLIB_TESTS_DIR="$root/$out/src" \
  -DSTDLIB_EXPECTED_FAILURES="$(IFS=";"; echo "${expected_failures[*]}")"
cmake --build "$out/build" -j "$jobs"
ctest --test-dir "$out/build" -j "$jobs" --output-on-failure --timeout 120
