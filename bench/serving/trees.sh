#!/usr/bin/env bash
# W6 serving (the trees issue): a 100-tree gbdt bundle (depth 6, trained on W4's 20,000 generated
# rows of 64 features) behind `escala serve`, against the bare C++ gRPC server returning a
# constant (the floor: the cost of gRPC itself), with identical 1-row requests from the same load
# generator on 127.0.0.1, closed loop, 16 connections x 8 streams and 1 x 1. Each figure is the
# median of REPS runs of SECONDS. Target: >= 0.8x the floor's requests/s.
#
#   bench/serving/trees.sh [SECONDS] [REPS]
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
seconds=${1:-5}
reps=${2:-3}
scripts/install-deps.sh --bench >/dev/null
source bench/build.sh
bench_build escala_cli bench_serving_load_gen bench_serving_bare_server
load="$b/bench/serving/bench_serving_load_gen"
source bench/serving/common.sh
"$escala" train --data "$work/train.csv" --label label --model gbdt --rounds 100 --max-depth 6 \
  --out "$work/trees.bundle" >"$work/trees_train.log" 2>&1
start escala "$escala" serve --model "m=$work/trees.bundle" --address 127.0.0.1 --grpc-port 0 \
  --no-http
escala_port=$PORT
start bare "$b/bench/serving/bench_serving_bare_server" 127.0.0.1:0
bare_port=$PORT
{
  for cfg in "16 8" "1 1"; do
    set -- $cfg
    for _ in $(seq "$reps"); do
      echo "escala ${1}x$2 $("$load" --target "127.0.0.1:$escala_port" --rows 1 --connections "$1" \
        --streams "$2" --seconds "$seconds" --warmup 1)"
      echo "bare ${1}x$2 $("$load" --target "127.0.0.1:$bare_port" --rows 1 --connections "$1" \
        --streams "$2" --seconds "$seconds" --warmup 1)"
    done
  done
} >"$work/results.txt"
/usr/bin/python3 - "$work/results.txt" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    who, cfg, rps = line.split()[:3]
    rows[(who, cfg)].append(float(rps))
print("W6 serving: a 100-tree gbdt bundle, 1-row requests (medians, requests/s)")
for cfg in ("16x8", "1x1"):
    e, b = statistics.median(rows[("escala", cfg)]), statistics.median(rows[("bare", cfg)])
    print(f"  {cfg:>5}: escala {e:9.0f}  bare gRPC floor {b:9.0f}  ratio {e / b:.2f}x "
          f"(target >= 0.8)")
PY
