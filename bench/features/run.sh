#!/usr/bin/env bash
# Features benchmarks on W0's training file (1,000,000 x 64, from escala datagen):
#   stats: escala Summarize() vs pandas describe() + corr(), both on data already in memory
#   transform: impute + standardize + one-hot (3 categorical columns) over 1,000,000 rows
# Medians of REPS repetitions; ratios last.
#
#   bench/features/run.sh [REPS] [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
reps=${1:-5}
work=${2:-$(mktemp -d)}
scripts/install-deps.sh --bench >/dev/null
source bench/build.sh
bench_build escala_cli bench_features
mkdir -p "$work"
[[ -f "$work/w0_train.csv" ]] || "$b/src/cli/escala" datagen --task classification --rows 1000000 \
  --features 64 --informative 16 --classes 2 --noise 0.02 --seed 42 --out "$work/w0_train.csv" 2>/dev/null
"$b/bench/features/bench_features" "$work/w0_train.csv" "$reps" >"$work/escala.txt"
/usr/bin/python3 - "$work/w0_train.csv" "$reps" >"$work/pandas.txt" <<'PY'
import sys, time
import pandas as pd
df = pd.read_csv(sys.argv[1])
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    df.describe()
    df.corr()
    print(f"pandas {time.perf_counter() - t:.4f}")
PY
/usr/bin/python3 - "$work/escala.txt" "$work/pandas.txt" <<'PY'
import collections, statistics, sys
r = collections.defaultdict(list)
for f in sys.argv[1:]:
    for line in open(f):
        k, v = line.split()
        r[k].append(float(v))
m = {k: statistics.median(v) for k, v in r.items()}
print("features on W0 train (1,000,000 x 65), medians")
print(f"  escala stats (describe + correlations, from memory):  {m['stats']:.3f} s")
print(f"  pandas describe() + corr():                          {m['pandas']:.3f} s")
print(f"  pipeline transform (impute+standardize+onehot, 1M rows, 16 numeric + 3 categorical): "
      f"{1e6 / m['transform']:,.0f} rows/s")
print()
print(f"ratio pandas / escala stats: {m['pandas'] / m['stats']:.1f}x  (target >= 5x)")
PY
