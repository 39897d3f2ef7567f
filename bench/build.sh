# Sourced by the bench scripts (bench_build, w0_generate). bench_build TARGET... builds the targets and sets $b to the
# absolute build directory: the bench preset (build/bench) by default, or, with
# ESCALA_BUILD_DIR=DIR, an existing build (e.g. build/release) with ESCALA_BUILD_BENCH turned on,
# which saves a second full build when one is already there.
bench_build() {
  if [[ -n "${ESCALA_BUILD_DIR:-}" ]]; then
    b=$(cd "$ESCALA_BUILD_DIR" && pwd)
    cmake -S . -B "$b" -DESCALA_BUILD_BENCH=ON >/dev/null
    cmake --build "$b" --target "$@" >/dev/null
  else
    cmake --preset bench >/dev/null
    cmake --build --preset bench --target "$@" >/dev/null
    b="$(pwd)/build/bench"
  fi
}

# w0_generate DIR FORMAT...: the W0 data of shared/BENCHMARKS.md (1,000,000 training and 200,000
# test rows, 64 features, from `escala datagen` with the benchmarks' seed) as DIR/w0_train.FORMAT
# and DIR/w0_test.FORMAT for each FORMAT (csv, npy), generated once. Needs $b (bench_build).
w0_generate() {
  local dir=$1 fmt
  shift
  mkdir -p "$dir"
  echo "W0: generating data in $dir (once)" >&2
  for fmt in "$@"; do
    w0_part "$dir/w0_train.$fmt" 0 1000000
    w0_part "$dir/w0_test.$fmt" 1000000 200000
  done
}
w0_part() {  # w0_part OUT START ROWS
  [[ -f "$1" ]] || "$b/src/cli/escala" datagen --task classification --rows "$3" --start-row "$2" \
    --features 64 --informative 16 --classes 2 --noise 0.02 --seed 42 --out "$1" 2>/dev/null
}
