#!/usr/bin/env bash
# Command 1 of the README: installs what is missing, builds escala (Release) and runs the main
# job on the bundled default data. It grows with the project; today it shows what exists.
set -euo pipefail
cd "$(dirname "$0")/.."

stage() { printf '\n==== %s\n' "$1"; }

stage "dependencies"
scripts/install-deps.sh

stage "build (release)"
cmake --preset release >/dev/null
cmake --build --preset release
bin=build/release/src/cli/escala

stage "escala info"
"$bin" info

stage "bundled data: examples/data/penguins.csv"
head -n 5 examples/data/penguins.csv
echo "... $(($(wc -l < examples/data/penguins.csv) - 1)) rows"

stage "data-parallel averaging across 4 in-process workers"
build/release/examples/example_thread_allreduce

echo
echo "demo finished"
