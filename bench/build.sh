# Sourced by the bench scripts. bench_build TARGET... builds the targets and sets $b to the
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
