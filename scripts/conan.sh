#!/usr/bin/env bash
# Packages pmrkit with Conan 2, offline: `conan create` on the recipe in conan/
# (which builds the library in Release and runs conan/test_package against the
# package), then the README's consumer flow (tests/consumer/conan: conan install,
# CMake with the generated toolchain, run a consumer of the core, which must link no
# Boost library, and one of the Boost bridge). Boost comes from Debian through
# conan/profiles/debian ([platform_requires]); no remote is ever asked.
#
# CONAN_HOME defaults to build/conan-home, so the user's own Conan cache and
# profiles are neither used nor touched. scripts/deps.sh installs Conan.
set -euo pipefail
cd "$(dirname "$0")/.."

export CONAN_HOME=${CONAN_HOME:-$PWD/build/conan-home}
jobs=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
profile=conan/profiles/debian
# The Conan that scripts/deps.sh installed into this python3, whatever is on PATH.
conan() { python3 -m conans.conan "$@"; }

conan --version
echo "CONAN_HOME=$CONAN_HOME"
conan profile detect --exist-ok
# Nothing may come from a remote: disable the default one in this CONAN_HOME
# (each command below also says --no-remote).
if conan remote list --format=json | python3 -c \
  'import json, sys; sys.exit(not any(r["name"] == "conancenter" for r in json.load(sys.stdin)))'; then
  conan remote disable conancenter
fi
conan profile show --profile:all="$profile"

# Everything this script builds stays under build/: test_package's build
# folder, and no CMakeUserPresets.json in the source tree.
confs=(-c tools.build:jobs="$jobs" -c tools.cmake.cmaketoolchain:user_presets=)

# The package, built and tested by its test_package.
conan create conan --profile:all="$profile" --build=missing --no-remote "${confs[@]}" \
  -c tools.cmake.cmake_layout:test_folder="$PWD/build/conan-test-package"

# A consumer project as the README shows it.
consumer=build/conan-consumer
rm -rf "$consumer"
conan install tests/consumer/conan --output-folder="$consumer" --profile:all="$profile" \
  --build=missing --no-remote "${confs[@]}"
cmake -S tests/consumer/conan -B "$consumer" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_TOOLCHAIN_FILE="$PWD/$consumer/conan_toolchain.cmake"
cmake --build "$consumer" -j "$jobs"
# It must have got the package just created: the version of the recipe.
version=$(conan inspect conan --format=json | python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])')
output=$("$consumer/consumer")
echo "$output"
case "$output" in
  "pmrkit $version consumer:"*) ;;
  *) echo "conan: the consumer did not run pmrkit $version" >&2; exit 1 ;;
esac
# The core component alone links no Boost library.
if readelf -d "$consumer/consumer" | grep -i 'NEEDED.*boost'; then
  echo "conan: the consumer of pmrkit::pmrkit links Boost" >&2
  exit 1
fi
output=$("$consumer/consumer_boost")
echo "$output"
case "$output" in
  "pmrkit $version consumer (boost bridge): ok") ;;
  *) echo "conan: the consumer of pmrkit::boost did not run pmrkit $version" >&2; exit 1 ;;
esac
echo "conan: pmrkit/$version created, tested and consumed (core alone, without Boost, and the bridge)"
