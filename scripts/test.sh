#!/usr/bin/env bash
# The test command: installs what is missing, then configures, builds and runs
# the whole test suite (Debug, checked) with the `debug` workflow preset.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake --workflow --preset debug
