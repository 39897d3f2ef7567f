#!/usr/bin/env bash
# W1 and W2 as whole commands (shared/BENCHMARKS.md's workloads on W0, end to end): `escala train`
# with its default pipeline (impute(median) | impute(most_frequent) | standardize | onehot),
# reading the training and test CSVs, fitting the pipeline and the model and evaluating on the
# test rows, against the Python equivalent (pandas.read_csv + SimpleImputer(median) +
# StandardScaler + LogisticRegression or MLPClassifier, bench/train/whole_command.py). Whole
# processes, timed by /usr/bin/time (wall seconds, peak RSS), alternating escala and Python run by
# run; medians. Also: peak RSS against the float32 feature matrices escala must hold (train +
# test), and the fit alone as escala reports it.
#
#   bench/train/whole_command.sh [RUNS] [WORKDIR] [THREADS] [WORKLOADS]   (WORKLOADS: "w1 w2")
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
runs=${1:-3}
work=${2:-/tmp/escala-bench-w0}
threads=${3:-2}
workloads=${4:-w1 w2}
scripts/install-deps.sh --bench >/dev/null
source bench/build.sh
bench_build escala_cli
escala="$b/src/cli/escala"
w0_generate "$work" csv

timed() {  # timed OUT CMD... -> OUT.time holds "wall_seconds max_rss_kb"
  local out=$1
  shift
  /usr/bin/time -f "%e %M" -o "$out.time" "$@" >"$out" 2>"$out.err"
}
results="$work/whole_command.txt"
: >"$results"
mlp=(--model mlp --hidden 256,256 --activation relu --optimizer adam --lr 0.001 --batch-size 256
  --epochs 3)
for w in $workloads; do
  if [[ $w == w1 ]]; then args=(--model logistic) peer=lr; else args=("${mlp[@]}") peer=mlp; fi
  for r in $(seq "$runs"); do
    timed "$work/escala.out" "$escala" --threads "$threads" train --data "$work/w0_train.csv" \
      --valid "$work/w0_test.csv" --label label "${args[@]}" --out "$work/whole.bundle"
    fit=$(sed -n 's/.* in \([0-9.]*\) s (.*/\1/p' "$work/escala.out")
    ll=$(sed -n 's/.*logloss \([0-9.]*\).*/\1/p' "$work/escala.out")
    echo "$w escala $(cat "$work/escala.out.time") $ll $fit" >>"$results"
    OPENBLAS_NUM_THREADS=$threads timed "$work/python.out" /usr/bin/python3 \
      "$root/bench/train/whole_command.py" "$peer" "$work/w0_train.csv" "$work/w0_test.csv" label
    echo "$w python $(cat "$work/python.out.time") $(cut -d' ' -f1 "$work/python.out") -" \
      >>"$results"
    echo "$w run $r done" >&2
  done
done

/usr/bin/python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    w, who, wall, rss, ll, fit = line.split()
    rows.setdefault(w, {}).setdefault(who, []).append((float(wall), int(rss), float(ll), fit))
med = statistics.median
matrix_mb = (1_000_000 + 200_000) * 64 * 4 / 2**20
for w, by in rows.items():
    e, p = by["escala"], by["python"]
    print(f"{w.upper()} whole command, {len(e)} alternating runs (medians)")
    for name, rs in (("escala train", e), ("python (pandas+sklearn)", p)):
        print(f"  {name:<24} wall {med([r[0] for r in rs]):6.2f} s  runs "
              + " ".join(f"{r[0]:.2f}" for r in rs)
              + f"  peak RSS {med([r[1] for r in rs]) / 1024:6.0f} MB"
              + f"  test logloss {med([r[2] for r in rs]):.6f}")
    print(f"  escala's fit alone (its own report): {med([float(r[3]) for r in e]):.2f} s")
    ratio = med([r[0] for r in e]) / med([r[0] for r in p])
    rss = med([r[1] for r in e]) / 1024 / matrix_mb
    print(f"  ratio escala/python wall: {ratio:.2f}x (target <= 0.10)")
    print(f"  escala peak RSS / float32 matrices ({matrix_mb:.0f} MB): {rss:.2f}x (target <= 1.5)")
    print(f"  test log-loss, escala - python: {med([r[2] for r in e]) - med([r[2] for r in p]):+.6f}")
PY
