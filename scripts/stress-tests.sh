#!/usr/bin/env bash
# The test suite under a saturated machine: two busy processes spin beside `ctest -j2` repeated
# until a failure (3 times by default), so that timing-dependent tests show up here rather than
# in CI on a loaded machine. Run it before stopping work on tests that use clocks or processes.
#
#   scripts/stress-tests.sh [REPEATS] [ctest args...]   e.g. scripts/stress-tests.sh 3 -L unit
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=${1:-3}
shift || true
cmake --preset release >/dev/null
cmake --build --preset release >/dev/null
busy=()
cleanup() { for p in "${busy[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
for _ in 1 2; do
  ( end=$((SECONDS + 3600)); while (( SECONDS < end )); do :; done ) &
  busy+=($!)
done
echo "stress-tests: 2 busy processes, ctest -j2 --repeat until-fail:$repeats $*"
ctest --preset release -j2 --repeat "until-fail:$repeats" "$@"
