#!/usr/bin/env bash
# The demo command: installs what is missing, builds the examples and runs
# each one, showing its output.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake --preset examples
cmake --build --preset examples
status=0
for source in examples/*.cpp; do
  name=$(basename "$source" .cpp)
  echo "== $name"
  "build/examples/examples/$name" || { echo "pmrkit: example $name failed" >&2; status=1; }
done
exit $status
