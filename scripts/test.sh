#!/usr/bin/env bash
# Command 2 of the README: installs what is missing, builds escala (Release, warnings as errors)
# and runs the whole test suite through ctest, printing ctest's summary.
#
#   scripts/test.sh          build + all tests
#   scripts/test.sh --ci     also: clang-format check, the function-length limit, an ASan+UBSan
#                            build running the unit tests and the fuzz targets (a bounded run
#                            each), and a consumer project built against the installed package
#                            (what .ci/run does; CI=true implies it)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

ci=0
for arg in "$@"; do
  case "$arg" in
    --ci) ci=1 ;;
    *) echo "test.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done
[[ "${CI:-}" == "true" ]] && ci=1

stage() { printf '\n==== %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }
t0=$(date +%s)

stage "dependencies"
scripts/install-deps.sh --test

if (( ci )); then
  stage "clang-format"
  scripts/check-format.sh
  stage "function lengths (at most 150 lines)"
  scripts/function-lengths.sh 3 --max 150
fi

stage "configure + build (release)"
cmake --preset release >/dev/null
cmake --build --preset release

stage "tests (release)"
ctest --preset release

if (( ci )); then
  stage "consumer project against the installed package"
  prefix="$root/build/release/_install"
  rm -rf "$prefix" "$root/build/consumer"
  cmake --install build/release --prefix "$prefix" >/dev/null
  cmake -S tests/consumer -B build/consumer -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
  cmake --build build/consumer
  ./build/consumer/escala_consumer

  stage "configure + build (asan+ubsan)"
  cmake --preset asan >/dev/null
  cmake --build --preset asan
  stage "unit and fuzz tests (asan+ubsan)"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --preset asan
fi

stage "all done in $(( $(date +%s) - t0 )) s"
