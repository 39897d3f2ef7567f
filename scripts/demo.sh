#!/usr/bin/env bash
# Command 1 of the README: installs what is missing, builds escala (Release) and runs the whole
# loop on the bundled Palmer penguins table: explore and clean, fit features and train, serve,
# query, retrain on new data and hot-swap the new version into the running server; then the same
# at scale on synthetic data. Outputs go to ./demo-out.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out="$root/demo-out"

stage() { printf '\n==== %s\n' "$1"; }

stage "dependencies"
scripts/install-deps.sh

stage "build (release)"
cmake --preset release >/dev/null
cmake --build --preset release
escala="$root/build/release/src/cli/escala"
data="$root/examples/data/penguins.csv"
rm -rf "$out"
mkdir -p "$out/repo/penguins"

stage "1. explore: statistics, correlations, outliers, duplicates"
"$escala" stats --data "$data" --label species --html "$out/penguins_report.html"
echo "(HTML report with histograms and a correlation heat map: $out/penguins_report.html)"

stage "2. features + training across 2 local workers (escala launch): each reads its shard, the
   pipeline's statistics and the gradients are all-reduced over gRPC"
pipeline="impute(median) | impute(most_frequent) | clip(iqr=3) | expr(bill_ratio = bill_length_mm / bill_depth_mm) | standardize | onehot(island, sex, unknown=ignore)"
mkdir -p "$out/repo/penguins/1"
"$escala" launch --nproc 2 -- "$escala" train --data "$data" --label species --model mlp --hidden 32,16 \
  --epochs 60 --batch-size 32 --lr 0.01 --early-stopping 8 --valid-fraction 0.2 \
  --pipeline "$pipeline" --history "$out/history_v1.csv" \
  --out "$out/repo/penguins/1/model.bundle"
echo "beside it, boosted trees on the same 2 workers (histograms all-reduced per level; missing"
echo "values go the way each split learned; early stopping keeps the best round)"
mkdir -p "$out/repo/penguins_trees/1"
"$escala" launch --nproc 2 -- "$escala" train --data "$data" --label species --model gbdt \
  --rounds 200 --max-depth 4 --learning-rate 0.1 --early-stopping 10 --valid-fraction 0.2 \
  --out "$out/repo/penguins_trees/1/model.bundle"
"$escala" score --model "$out/repo/penguins_trees/1/model.bundle" --data "$data" --contributions \
  --out "$out/trees_contributions.csv"
echo "(each row's TreeSHAP contributions: $out/trees_contributions.csv)"

stage "3. serve: Open Inference Protocol over gRPC, metrics over HTTP"
"$escala" serve --model-repository "$out/repo" --address 127.0.0.1 --grpc-port 0 --http-port 0 \
  --poll-secs 1 >"$out/serve.out" 2>"$out/serve.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "grpc port" "$out/serve.out" 2>/dev/null && break; sleep 0.1; done
read -r grpc http < <(sed -n 's/.*grpc port \([0-9]*\), http port \([0-9]*\).*/\1 \2/p' "$out/serve.out")
echo "server up: gRPC 127.0.0.1:$grpc, HTTP 127.0.0.1:$http"

stage "4. query the running server: the MLP, then the trees"
"$escala" query --server "127.0.0.1:$grpc" --model penguins --data "$data" --rows 5
for _ in $(seq 50); do
  "$escala" query --server "127.0.0.1:$grpc" --model penguins_trees --data "$data" --rows 1 \
    >/dev/null 2>&1 && break
  sleep 0.2
done
"$escala" query --server "127.0.0.1:$grpc" --model penguins_trees --data "$data" --rows 5

stage "5. retrain on new data (warm start) and hot-swap version 2 into the running server"
mkdir -p "$out/repo/penguins/2"
"$escala" train --data "$data" --label species --model mlp --hidden 32,16 \
  --epochs 10 --batch-size 32 --lr 0.005 --valid-fraction 0.2 \
  --init-from "$out/repo/penguins/1/model.bundle" \
  --out "$out/repo/penguins/2/model.bundle"
for _ in $(seq 50); do
  "$escala" query --server "127.0.0.1:$grpc" --model penguins --data "$data" --rows 1 2>/dev/null \
    | grep -q "version 2" && break
  sleep 0.2
done
"$escala" query --server "127.0.0.1:$grpc" --model penguins --data "$data" --rows 3
exec 3<>"/dev/tcp/127.0.0.1/$http"
printf 'GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n' >&3
echo "metrics:"; grep '^escala_inference_request_success_total' <&3 || true
exec 3<&-

stage "6. graceful shutdown (SIGTERM: stop reporting ready, drain, exit 0)"
kill -TERM "$server"
wait "$server"
trap - EXIT
echo "server exited cleanly"

stage "7. at scale: 200k synthetic rows in 4 part files, logistic regression (L-BFGS) on 2 workers, batch scoring, exported to ONNX"
mkdir -p "$out/synthetic"
for part in 0 1 2 3; do
  "$escala" datagen --task classification --rows 50000 --start-row $((part * 50000)) --features 32 \
    --informative 16 --seed 42 --out "$out/synthetic/part-0000$part.csv"
done
"$escala" launch --nproc 2 -- "$escala" train --data "$out/synthetic" --label label --model logistic \
  --valid-fraction 0.1 --out "$out/synthetic.bundle"
"$escala" score --model "$out/synthetic.bundle" --data "$out/synthetic" --out "$out/synthetic_scores.npy"
# The same model as one ONNX graph (pipeline and model), scored by escala's own ONNX runtime.
"$escala" export --model "$out/synthetic.bundle" --onnx "$out/synthetic.onnx"
"$escala" score --model "$out/synthetic.onnx" --data "$out/synthetic" --out "$out/synthetic_onnx.npy"

stage "8. from Python: read, describe, fit, predict, save, serve and query (import escala)"
if [[ -d "$root/build/release/python/escala" ]]; then
  PYTHONPATH="$root/build/release/python" /usr/bin/python3 - "$data" "$out" <<'PY'
import sys
import escala
data, out = sys.argv[1], sys.argv[2]
df = escala.read_csv(data)                       # escala's parallel reader, into pandas
print(escala.describe(df, label="species")[["type", "count", "missing", "mean"]])
X, y = df.drop(columns="species"), df["species"]
clf = escala.GBDTClassifier(n_estimators=50, max_depth=3, learning_rate=0.1).fit(X, y)
print("training accuracy", round(clf.score(X, y), 4), "classes", list(clf.classes_))
clf.to_bundle(f"{out}/python_trees.bundle")       # the CLI's bundle format
with escala.serve({"penguins": clf}) as server:  # the embedded server, on free ports
    reply = escala.Client(f"127.0.0.1:{server.grpc_port}").infer("penguins", X.head(3))
    print("served:", list(reply["label"]), reply["probabilities"].astype(float).round(3).tolist())
PY
else
  echo "(the Python package was not built: pybind11-dev and python3-dev are needed)"
fi

echo
echo "demo finished: outputs in $out"
