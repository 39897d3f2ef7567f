#!/usr/bin/env bash
# Streamed against in-memory minibatch epochs (docs/training.md, "Data larger than memory"): W2's
# MLP (64-256-256-1, ReLU, Adam lr 1e-3, batch 256) trained by `escala train` on the W0 training
# data as NPY, read whole, and streamed under `--memory-budget` (a reading thread parses each
# epoch's chunks, shuffles them through a buffer and queues batches ahead of the training loop).
# Alternating runs; medians of the training throughput escala reports (samples/s of the epochs
# alone) and of the command's peak RSS. Target: streamed >= 0.8x in memory.
#
#   bench/train/streamed_epochs.sh [RUNS] [WORKDIR] [THREADS] [BUDGET] [EPOCHS]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}
work=${2:-/tmp/escala-bench-w0}
threads=${3:-2}
budget=${4:-64MiB}
epochs=${5:-2}
source bench/build.sh
bench_build escala_cli
escala="$b/src/cli/escala"
w0_generate "$work" npy
results="$work/streamed_epochs.txt"
: >"$results"
args=(--data "$work/w0_train.npy" --label label --model mlp --hidden 256,256 --activation relu
  --optimizer adam --lr 0.001 --batch-size 256 --epochs "$epochs" --threads "$threads")
for r in $(seq "$runs"); do
  for mode in memory streamed; do
    extra=()
    [[ $mode == streamed ]] && extra=(--memory-budget "$budget")
    "$escala" train "${args[@]}" "${extra[@]}" >"$work/streamed.out" 2>&1
    rate=$(sed -n 's/.*train mlp done: .*(\([0-9.]*\) \([kM]\) samples\/s).*/\1 \2/p' "$work/streamed.out")
    peak=$(sed -n 's/.*peak memory \([0-9]*\) MiB.*/\1/p' "$work/streamed.out")
    grep -q "training streamed" "$work/streamed.out" && seen=streamed || seen=memory
    [[ $seen == "$mode" ]] || { echo "expected a $mode run:" >&2; cat "$work/streamed.out" >&2; exit 1; }
    echo "$mode $rate $peak" >>"$results"
  done
  echo "run $r done" >&2
done
/usr/bin/python3 - "$results" "$budget" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    mode, rate, unit, peak = line.split()
    rows.setdefault(mode, []).append((float(rate) * (1e6 if unit == "M" else 1e3), int(peak)))
med = statistics.median
print(f"W2 MLP epochs on W0 NPY, {len(rows['memory'])} alternating runs (medians)")
for mode, rs in rows.items():
    label = "in memory" if mode == "memory" else f"streamed, --memory-budget {sys.argv[2]}"
    print(f"  {label:<34} {med([r[0] for r in rs]) / 1e3:8.1f} k samples/s  runs "
          + " ".join(f"{r[0] / 1e3:.1f}" for r in rs)
          + f"  peak RSS {med([r[1] for r in rs]):5d} MiB")
ratio = med([r[0] for r in rows["streamed"]]) / med([r[0] for r in rows["memory"]])
print(f"  streamed / in memory: {ratio:.2f}x (target >= 0.8)")
PY
