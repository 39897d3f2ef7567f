#!/usr/bin/env bash
# Data-parallel scaling of W2 (../shared/BENCHMARKS.md: MLP 64-256-256-1, ReLU, Adam 1e-3,
# batch 256, 3 epochs on W0's 1,000,000 x 64 rows): one worker against two workers started by
# `escala launch` on this machine, each worker one thread, plus one worker with two threads as
# the in-process reference. Times come from the training history (`--history`): the sum of the
# epochs' wall seconds (data loading excluded) and of comm_seconds, the time the epochs waited
# on the gradient all-reduce that the backward pass did not hide. Medians of ROUNDS rounds; each
# round runs every configuration once, so that the machine's noise falls on all of them.
#
#   [BATCH=256] bench/distributed/run_scaling.sh [ROUNDS] [WORKDIR]   (BATCH: the global batch size)
#
# ESCALA_BUILD_DIR=DIR uses an existing build (bench/build.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
rounds=${1:-3}
work=${2:-$(mktemp -d)}
source bench/build.sh
bench_build escala_cli
escala="$b/src/cli/escala"
mkdir -p "$work"
[[ -f "$work/w0_train.csv" ]] || "$escala" datagen --task classification --rows 1000000 \
  --features 64 --informative 16 --classes 2 --noise 0.02 --seed 42 --out "$work/w0_train.csv" \
  2>/dev/null

train=(train --data "$work/w0_train.csv" --label label --pipeline none --model mlp --hidden 256,256
       --activation relu --optimizer adam --lr 0.001 --batch-size "${BATCH:-256}" --epochs 3 --seed 42)
results="$work/scaling.txt"
: >"$results"
summarize() {  # summarize NAME HISTORY.csv: "NAME seconds comm_seconds last_loss"
  /usr/bin/python3 - "$1" "$2" >>"$results" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[2])))
secs = sum(float(r["seconds"]) for r in rows)
comm = sum(float(r["comm_seconds"]) for r in rows)
print(sys.argv[1], secs, comm, rows[-1]["train_loss"])
PY
}
for ((round = 1; round <= rounds; ++round)); do
  echo "round $round/$rounds" >&2
  "$escala" --threads 1 "${train[@]}" --history "$work/h1.csv" --out "$work/m1.bundle" \
    >/dev/null 2>&1
  summarize w1t1 "$work/h1.csv"
  "$escala" launch --nproc 2 -- "$escala" --threads 1 "${train[@]}" --history "$work/h2.csv" \
    --out "$work/m2.bundle" >/dev/null 2>&1
  summarize w2t1 "$work/h2.csv"
  "$escala" --threads 2 "${train[@]}" --history "$work/h3.csv" --out "$work/m3.bundle" \
    >/dev/null 2>&1
  summarize w1t2 "$work/h3.csv"
done

/usr/bin/python3 - "$results" <<'PY'
import collections, os, statistics, sys
r = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, secs, comm, loss = line.split()
    r[name].append((float(secs), float(comm), float(loss)))
def med(name, i):
    return statistics.median(v[i] for v in r[name])
labels = {"w1t1": "1 worker  x 1 thread ", "w2t1": "2 workers x 1 thread ",
          "w1t2": "1 worker  x 2 threads"}
print(f"W2 MLP 64-256-256-1, 3 epochs of 1,000,000 rows, global batch {os.environ.get('BATCH', '256')} (median of {len(r['w1t1'])} rounds)")
print(f"  {'configuration':22} {'train s':>8} {'samples/s':>10} {'comm s':>7} {'comm %':>7} {'final loss':>10}")
for k in ("w1t1", "w2t1", "w1t2"):
    s, c = med(k, 0), med(k, 1)
    print(f"  {labels[k]:22} {s:8.2f} {3e6 / s:10.0f} {c:7.2f} {100 * c / s:6.1f}% {med(k, 2):10.5f}")
print()
print(f"  speedup, 2 workers vs 1 (one thread each): {med('w1t1', 0) / med('w2t1', 0):.2f}x")
print(f"  speedup, 2 threads in one worker:          {med('w1t1', 0) / med('w1t2', 0):.2f}x")
PY
