#!/usr/bin/env bash
# W4's model behind one `escala serve`, over its two transports: 1-row requests (64 features, the
# same values) over gRPC (load_gen: raw FP32 contents) and over REST (rest_load_gen: a JSON body,
# HTTP/1.1 keep-alive), closed loop, 1 x 1 and 16 connections (one request outstanding on each),
# plus h2load --h1 as a public cross-check of the REST rate when it is installed. Each figure is
# the median of REPS runs of SECONDS.
#
#   bench/serving/rest.sh [SECONDS] [REPS]
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
seconds=${1:-5}
reps=${2:-3}
source bench/build.sh
bench_build escala_cli bench_serving_load_gen bench_serving_rest_load_gen
source bench/serving/common.sh
/usr/bin/python3 - "$work/body.json" <<'PY'
import json, sys
values = [((i * 37) % 17) / 8.0 - 1.0 for i in range(64)]  # load_gen's values
json.dump({"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 64],
                       "data": values}]}, open(sys.argv[1], "w"))
PY
start escala "$escala" serve --model "m=$work/m.bundle" --address 127.0.0.1 --grpc-port 0 \
  --http-port 0
grpc_port=$PORT
http_port=$(sed -n 's/.*http port \([0-9][0-9]*\).*/\1/p' "$work/escala.out" | head -1)
curl -sf -X POST --data-binary @"$work/body.json" "http://127.0.0.1:$http_port/v2/models/m/infer" \
  | grep -q '"name":"probabilities"'

{
  for c in 1 16; do
    for _ in $(seq "$reps"); do
      echo "grpc ${c}x1 $("$b/bench/serving/bench_serving_load_gen" --target "127.0.0.1:$grpc_port" \
        --rows 1 --connections "$c" --streams 1 --seconds "$seconds" --warmup 1)"
      echo "rest ${c}x1 $("$b/bench/serving/bench_serving_rest_load_gen" --port "$http_port" \
        --body "$work/body.json" --connections "$c" --seconds "$seconds" --warmup 1)"
    done
  done
} >"$work/results.txt"
if command -v h2load >/dev/null; then
  for _ in $(seq "$reps"); do
    h2load --h1 -D "$seconds" -c 16 -t 1 -d "$work/body.json" -H 'content-type: application/json' \
      "http://127.0.0.1:$http_port/v2/models/m/infer" >"$work/h2.txt"
    grep -q " 0 failed, 0 errored" "$work/h2.txt" || { cat "$work/h2.txt" >&2; exit 1; }
    echo "h2load-h1 16x1 $(sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' "$work/h2.txt") 0 0 0 0"
  done >>"$work/results.txt"
fi

/usr/bin/python3 - "$work/results.txt" "$seconds" "$reps" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    *label, rps, rowsps, p50, p99, errors = line.split()
    rows[" ".join(label)].append((float(rps), int(p50), int(p99), int(errors)))
med = {k: tuple(statistics.median(x[i] for x in v) for i in range(4)) for k, v in rows.items()}
print(f"W4 model, 1-row requests to one escala serve, medians of {sys.argv[3]} x {sys.argv[2]} s runs")
print(f"{'transport, load':22} {'req/s':>9} {'p50 us':>8} {'p99 us':>8} {'errors':>6}")
for k, (rps, p50, p99, err) in med.items():
    print(f"{k:22} {rps:9.0f} {p50:8.0f} {p99:8.0f} {err:6.0f}")
PY
