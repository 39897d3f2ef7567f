#!/usr/bin/env bash
# ONNX models in escala (issue: models from elsewhere), side by side with their peers:
#  1. 1-row gRPC requests to one `escala serve` holding an MLP 64-256-256-1 twice: exported by
#     torch.onnx.export (model.onnx) and trained by escala as a bundle of the same shape (pipeline
#     none); closed loop, one connection, alternating, REPS runs of SECONDS each: req/s and the
#     ONNX/bundle ratio (target >= 0.8).
#  2. Batch scoring of W0's 200,000 test rows (W0_DIR/w0_test.npy, 64 float32 features) with the
#     same exported graph: `escala score --model mlp.onnx` against PyTorch CPU eager inference
#     (load, forward in 65536-row batches, save), whole commands, REPS runs each: median seconds
#     and the PyTorch/escala ratio (target >= 2). Outputs are checked equal (1e-4).
#
#   bench/onnx/run.sh [SECONDS] [REPS] [W0_DIR]     (W0 is generated there once when absent)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
seconds=${1:-5}
reps=${2:-3}
w0=${3:-/tmp/escala-bench-w0}
source bench/build.sh
bench_build escala_cli bench_serving_load_gen
source bench/serving/common.sh
[[ -f "$w0/w0_test.npy" ]] || w0_generate "$w0" npy

/usr/bin/python3 bench/onnx/torch_mlp.py export "$work" 2>/dev/null
"$escala" train --data "$work/train.csv" --label label --model mlp --hidden 256,256 \
  --pipeline none --epochs 1 --out "$work/bundle.bundle" >/dev/null 2>&1
start escala "$escala" serve --model "onnx=$work/mlp.onnx" --model "bundle=$work/bundle.bundle" \
  --address 127.0.0.1 --grpc-port 0 --no-http
grpc_port=$PORT
{
  for _ in $(seq "$reps"); do
    for m in onnx bundle; do
      echo "$m $("$b/bench/serving/bench_serving_load_gen" --target "127.0.0.1:$grpc_port" \
        --model "$m" --rows 1 --connections 1 --streams 1 --seconds "$seconds" --warmup 1)"
    done
  done
} >"$work/serve.txt"

for _ in $(seq "$reps"); do
  /usr/bin/time -f "%e" -o "$work/t" "$escala" score --model "$work/mlp.onnx" \
    --data "$w0/w0_test.npy" --out "$work/escala.npy" >/dev/null 2>&1
  echo "escala $(cat "$work/t")"
  echo "pytorch $(/usr/bin/python3 bench/onnx/torch_mlp.py score "$work" "$w0/w0_test.npy" \
    "$work/torch.npy" 2>/dev/null)"
done >"$work/score.txt"

/usr/bin/python3 - "$work" "$seconds" "$reps" <<'PY'
import collections, statistics, sys
import numpy as np
work, seconds, reps = sys.argv[1], sys.argv[2], sys.argv[3]
a, b = np.load(f"{work}/escala.npy").ravel(), np.load(f"{work}/torch.npy").ravel()
assert a.shape == b.shape and np.abs(a - b).max() <= 1e-4, np.abs(a - b).max()
serve = collections.defaultdict(list)
for line in open(f"{work}/serve.txt"):
    name, rps, *_ = line.split()
    serve[name].append(float(rps))
s = {k: statistics.median(v) for k, v in serve.items()}
score = collections.defaultdict(list)
for line in open(f"{work}/score.txt"):
    name, t = line.split()
    score[name].append(float(t))
t = {k: statistics.median(v) for k, v in score.items()}
print(f"MLP 64-256-256-1, medians of {reps} runs")
print(f"1-row gRPC, 1 connection ({seconds} s runs): torch.onnx.export graph {s['onnx']:.0f} req/s, "
      f"escala bundle {s['bundle']:.0f} req/s, ratio {s['onnx'] / s['bundle']:.2f} (target >= 0.8)")
print(f"W0 test (200,000 rows) batch scoring: escala score on the ONNX graph {t['escala']:.2f} s, "
      f"PyTorch eager {t['pytorch']:.2f} s, PyTorch/escala {t['pytorch'] / t['escala']:.2f} "
      f"(target >= 2); max |diff| {np.abs(a - b).max():.1e}")
PY
