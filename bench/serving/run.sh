#!/usr/bin/env bash
# W4 (shared/BENCHMARKS.md): serving a logistic model over 64 features. Compares, with identical
# requests from the same load generator on 127.0.0.1:
#   escala serve          the bundle (pipeline + model) behind the Open Inference Protocol
#   bare C++ gRPC server  the same RPC returning a constant: the cost of gRPC itself
#   Python grpcio server  the same RPC around scikit-learn's LogisticRegression
# Closed loop, 16 connections x 8 streams and 1 x 1, 1-row and 32-row requests, plus dynamic
# batching. Each figure is the median of REPS runs of SECONDS. Prints a table, ratios last.
#
#   bench/serving/run.sh [SECONDS] [REPS]
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
seconds=${1:-5}
reps=${2:-3}
scripts/install-deps.sh --bench >/dev/null
source bench/build.sh
bench_build escala_cli bench_serving_load_gen bench_serving_bare_server
load="$b/bench/serving/bench_serving_load_gen"
echo "preparing: data, an escala bundle and a scikit-learn model on the same rows" >&2
source bench/serving/common.sh
/usr/bin/python3 - "$work" <<'PY'
import pickle, sys
import pandas as pd
from sklearn.linear_model import LogisticRegression
d = pd.read_csv(f"{sys.argv[1]}/train.csv")
m = LogisticRegression().fit(d.drop(columns=["label"]).to_numpy("float32"), d["label"])
pickle.dump(m, open(f"{sys.argv[1]}/sk.pkl", "wb"))
PY
start escala "$escala" serve --model "m=$work/m.bundle" --address 127.0.0.1 --grpc-port 0 --no-http
escala_port=$PORT
start batching "$escala" serve --model "m=$work/m.bundle" --address 127.0.0.1 --grpc-port 0 --no-http \
  --max-batch 64 --max-queue-delay-us 200
batch_port=$PORT
start bare "$b/bench/serving/bench_serving_bare_server" 127.0.0.1:0
bare_port=$PORT
start python /usr/bin/python3 "$root/bench/serving/sklearn_server.py" "$work/stubs" "$work/sk.pkl" 0 16
python_port=$PORT

run() {  # run LABEL PORT ROWS CONNECTIONS STREAMS
  for _ in $(seq "$reps"); do
    echo "$1 $("$load" --target "127.0.0.1:$2" --rows "$3" --connections "$4" --streams "$5" \
      --seconds "$seconds" --warmup 1)"
  done
}
{
  for cfg in "1 16 8" "1 1 1" "32 16 8"; do
    set -- $cfg
    run "escala rows=$1 ${2}x$3" "$escala_port" "$@"
    run "bare rows=$1 ${2}x$3" "$bare_port" "$@"
    run "python rows=$1 ${2}x$3" "$python_port" "$@"
  done
  run "escala+batching rows=1 16x8" "$batch_port" 1 16 8
  run "escala+batching rows=32 16x8" "$batch_port" 32 16 8
} >"$work/results.txt"

/usr/bin/python3 - "$work/results.txt" "$seconds" "$reps" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    *label, rps, rowsps, p50, p99, errors = line.split()
    rows[" ".join(label)].append((float(rps), float(rowsps), int(p50), int(p99), int(errors)))
med = {k: tuple(statistics.median(x[i] for x in v) for i in range(5)) for k, v in rows.items()}
print(f"W4 serving, logistic over 64 features, medians of {sys.argv[3]} x {sys.argv[2]} s runs")
print(f"{'server, request, load':34} {'req/s':>10} {'rows/s':>11} {'p50 us':>8} {'p99 us':>8} {'errors':>6}")
for k, (rps, rws, p50, p99, err) in med.items():
    print(f"{k:34} {rps:10.0f} {rws:11.0f} {p50:8.0f} {p99:8.0f} {err:6.0f}")
def ratio(a, b, i):
    return med[a][i] / med[b][i]
print()
print("ratios")
print(f"  escala / bare, 1 row 16x8, req/s:         {ratio('escala rows=1 16x8', 'bare rows=1 16x8', 0):.2f}  (target >= 0.8)")
print(f"  escala / python+sklearn, 1 row 16x8:      {ratio('escala rows=1 16x8', 'python rows=1 16x8', 0):.1f}  (target >= 15)")
print(f"  escala / bare, 1 row 1x1, p50 latency:    {ratio('escala rows=1 1x1', 'bare rows=1 1x1', 2):.2f}  (target <= 1.3)")
print(f"  escala / bare, 1 row 1x1, p99 latency:    {ratio('escala rows=1 1x1', 'bare rows=1 1x1', 3):.2f}  (target <= 1.3)")
print(f"  escala / bare, 32 rows 16x8, req/s:       {ratio('escala rows=32 16x8', 'bare rows=32 16x8', 0):.2f}")
PY
