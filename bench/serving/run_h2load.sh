#!/usr/bin/env bash
# W4 with a public load generator: h2load (nghttp2) sends the same gRPC ModelInfer request (one
# row of 64 features, raw FP32 contents) over 16 connections x 8 streams to
#   escala serve          the bundle (pipeline + model) behind the Open Inference Protocol
#   bare C++ gRPC server  the same RPC returning a constant: the cost of gRPC itself
# alternating the two REPS times; prints each run, the medians and the ratio (target >= 0.8).
#
#   bench/serving/run_h2load.sh [REQUESTS] [REPS]
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
requests=${1:-200000}
reps=${2:-5}
scripts/install-deps.sh --bench >/dev/null
source bench/build.sh
bench_build escala_cli bench_serving_bare_server
source bench/serving/common.sh
# The request body: a gRPC frame (uncompressed flag, big-endian length) around the message.
/usr/bin/python3 - "$work" <<'PY'
import struct, sys
sys.path.insert(0, f"{sys.argv[1]}/stubs")
from inference import open_inference_pb2 as pb
req = pb.ModelInferRequest(model_name="m")
t = req.inputs.add(name="features", datatype="FP32", shape=[1, 64])
req.raw_input_contents.append(struct.pack("<64f", *[(i % 7) / 7.0 - 0.5 for i in range(64)]))
body = req.SerializeToString()
open(f"{sys.argv[1]}/body.bin", "wb").write(b"\0" + struct.pack(">I", len(body)) + body)
PY

start escala "$escala" serve --model "m=$work/m.bundle" --address 127.0.0.1 --grpc-port 0 --no-http
escala_port=$PORT
start bare "$b/bench/serving/bench_serving_bare_server" 127.0.0.1:0
bare_port=$PORT

h2() {  # h2 PORT: prints req/s of one run
  h2load -n "$requests" -c 16 -m 8 -t 1 -d "$work/body.bin" \
    -H 'content-type: application/grpc' -H 'te: trailers' \
    "http://127.0.0.1:$1/inference.GRPCInferenceService/ModelInfer" >"$work/h2.txt"
  grep -q " 0 failed, 0 errored" "$work/h2.txt" || { cat "$work/h2.txt" >&2; exit 1; }
  sed -n 's/^finished in .*, \([0-9.]*\) req\/s.*/\1/p' "$work/h2.txt"
}
# h2load counts HTTP status 200; a gRPC error would hide in the trailers: check the request once.
/usr/bin/python3 - "$work" "$escala_port" <<'PY'
import sys, grpc
sys.path.insert(0, f"{sys.argv[1]}/stubs")
from inference import open_inference_pb2 as pb, open_inference_pb2_grpc as rpc
body = open(f"{sys.argv[1]}/body.bin", "rb").read()[5:]
stub = rpc.GRPCInferenceServiceStub(grpc.insecure_channel(f"127.0.0.1:{sys.argv[2]}"))
r = stub.ModelInfer(pb.ModelInferRequest.FromString(body))
assert len(r.outputs) == 3, r
PY
h2 "$escala_port" >/dev/null  # warm-up
h2 "$bare_port" >/dev/null
for _ in $(seq "$reps"); do
  echo "escala $(h2 "$escala_port")"
  echo "bare $(h2 "$bare_port")"
done | tee "$work/results.txt"
/usr/bin/python3 - "$work/results.txt" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, rps = line.split()
    runs.setdefault(name, []).append(float(rps))
e, b = statistics.median(runs["escala"]), statistics.median(runs["bare"])
pairs = [x / y for x, y in zip(runs["escala"], runs["bare"])]
print(f"h2load 16 connections x 8 streams, 1-row ModelInfer, medians of {len(pairs)} alternating runs")
print(f"  escala serve  {e:10.0f} req/s")
print(f"  bare gRPC     {b:10.0f} req/s")
print(f"  escala / bare {statistics.median(pairs):.2f} (median of per-pair ratios; target >= 0.8)")
PY
