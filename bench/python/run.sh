#!/usr/bin/env bash
# The Python package's benchmarks (bench/python/bench.py) on W0, generated once into WORKDIR.
#
#   bench/python/run.sh [REPS] [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
reps=${1:-3}
work=${2:-$(mktemp -d)}
scripts/install-deps.sh --bench >/dev/null
source bench/build.sh
bench_build escala_cli escala_python
w0_generate "$work" csv npy
# Debian's numpy/scipy use OpenBLAS's pthreads build: 2 threads here, as escala's.
PYTHONPATH="$b/python" /usr/bin/python3 bench/python/bench.py "$work" "$reps"
