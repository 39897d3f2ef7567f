#!/usr/bin/env bash
# Runs escala's fuzz targets under libFuzzer for longer than CI does (docs/reliability.md,
# "Fuzzing"): configures a clang build with libFuzzer, ASan and UBSan in build/fuzz, builds the
# targets and runs each for SECONDS on a copy of its corpus (new interesting inputs are kept in
# build/fuzz/corpus/<target>; findings go to build/fuzz/findings/<target>/).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     default: 600 s, every target
#   scripts/install-deps.sh --fuzz            installs clang and libFuzzer (Debian packages)
#
# A finding is replayed with `build/fuzz/fuzz/fuzz_<target> FILE`; minimize it with
# `-minimize_crash=1 -runs=10000 FILE`, fix the library, and add the input to
# fuzz/corpus/<target>/ and a unit test.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

seconds=600
if [[ $# -gt 0 && "$1" =~ ^[0-9]+$ ]]; then
  seconds=$1
  shift
fi
targets=("$@")
if (( ${#targets[@]} == 0 )); then
  targets=()
  for d in fuzz/corpus/*/; do targets+=("$(basename "$d")"); done
fi

scripts/install-deps.sh --fuzz
build=build/fuzz
cmake -S . -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DESCALA_SANITIZE="address;undefined" -DESCALA_WITH_CUDA=OFF \
  -DESCALA_LIBFUZZER=ON -DESCALA_BUILD_TESTS=OFF -DESCALA_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$build" -j2 --target "${targets[@]/#/fuzz_}"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
failed=()
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  findings="$build/findings/$t"
  mkdir -p "$corpus" "$findings"
  cp -n "fuzz/corpus/$t"/* "$corpus"/ 2>/dev/null || true
  printf '\n==== fuzz_%s for %s s\n' "$t" "$seconds"
  if ! "$build/fuzz/fuzz_$t" "$corpus" "fuzz/corpus/$t" -max_total_time="$seconds" \
      -timeout=20 -rss_limit_mb=4096 -max_len=4096 -print_final_stats=1 \
      -artifact_prefix="$root/$findings/"; then
    failed+=("$t")
  fi
done

if (( ${#failed[@]} > 0 )); then
  echo "fuzz.sh: findings in: ${failed[*]} (see $build/findings/)" >&2
  exit 1
fi
echo "fuzz.sh: no findings"
