#!/usr/bin/env bash
# Installs the Debian packages pmrkit needs to build, test, fuzz (clang, libFuzzer's runtime
# in libclang-rt-14-dev), run the suite under memcheck (valgrind, whose <valgrind/memcheck.h>
# turns on the client requests of checked builds: include/pmr/core/poison.hpp) and benchmark, and
# from PyPI Conan 2 (scripts/conan.sh packages pmrkit with it) and matplotlib (bench/report.py's
# charts). As root it runs apt-get and pip; otherwise it prints the exact commands and stops.
# Sourced or run by scripts/demo.sh, scripts/test.sh, scripts/fuzz.sh and .ci/run.
set -euo pipefail

packages=(
  g++ cmake ninja-build python3 python3-pip clang-format pkg-config
  libboost1.81-dev libboost-container1.81-dev libboost-json1.81-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libfoonathan-memory-dev libmimalloc-dev
  g++-mingw-w64-x86-64-posix wine64
  clang libclang-rt-14-dev
  valgrind
)

missing=()
for package in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$package")
done

if [ ${#missing[@]} -gt 0 ]; then
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
fi

# Python packages from PyPI, installed with pip into the python3 on PATH: Conan, a 2.x release
# (scripts/conan.sh runs it as `python3 -m conans.conan`), and matplotlib (bench/report.py draws
# the benchmark report's charts with it). need_pip REQUIREMENT CHECK queues REQUIREMENT unless the
# Python code CHECK exits 0; pip_install installs the queued ones with one pip command.
pip_missing=()
need_pip() {
  python3 -c "$2" 2>/dev/null || pip_missing+=("$1")
}

pip_install() {
  [ $# -gt 0 ] || return 0
  local pip_args=(install --quiet --disable-pip-version-check --root-user-action=ignore "$@")
  # Debian's own python3 is "externally managed" (PEP 668): pip refuses to touch
  # it unless told to. A python3 from pyenv or a virtual environment is not.
  if python3 -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then
    pip_args+=(--break-system-packages)
  fi
  local purelib
  purelib=$(python3 -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
  if [ "$(id -u)" -ne 0 ] && [ ! -w "$purelib" ]; then
    echo "pmrkit: missing from $(command -v python3): $*" >&2
    echo "pmrkit: install them as root, then run this again:" >&2
    echo "  sudo python3 -m pip$(printf ' %q' "${pip_args[@]}")" >&2
    exit 1
  fi
  echo "pmrkit: installing $* with pip"
  python3 -m pip "${pip_args[@]}"
}

# Conan 2 is there when python3 has it installed at a 2.x version.
need_pip 'conan>=2.0,<3' 'import sys
from importlib.metadata import version
sys.exit(version("conan").split(".")[0] != "2")'
need_pip 'matplotlib>=3.5' 'import matplotlib'
pip_install "${pip_missing[@]}"
