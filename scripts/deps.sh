#!/usr/bin/env bash
# Installs the Debian packages pmrkit needs to build, test and benchmark.
# As root it runs apt-get; otherwise it prints the exact command and stops.
# Sourced or run by scripts/demo.sh, scripts/test.sh and .ci/run.
set -euo pipefail

packages=(
  g++ cmake ninja-build python3 clang-format
  libboost1.81-dev libboost-container1.81-dev libboost-json1.81-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libfoonathan-memory-dev libmimalloc-dev
)

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$package")
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

command="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "pmrkit: missing Debian packages: ${missing[*]}" >&2
  echo "pmrkit: install them as root, then run this again:" >&2
  echo "  sudo sh -c '$command'" >&2
  exit 1
fi

echo "pmrkit: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
