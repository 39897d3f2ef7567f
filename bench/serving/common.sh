# Sourced by the W4 serving scripts after bench_build (needs $b and $root): a work directory
# removed on exit with every server started in it, the W4 data and escala bundle, the Python
# stubs of the Open Inference Protocol, and start() for servers that print their port.
escala="$b/src/cli/escala"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# W4's model: logistic regression over 64 features, trained on 20,000 generated rows.
"$escala" datagen --task classification --rows 20000 --features 64 --informative 32 --seed 42 \
  --out "$work/train.csv" 2>/dev/null
"$escala" train --data "$work/train.csv" --label label --model logistic --out "$work/m.bundle" \
  >/dev/null 2>&1
mkdir -p "$work/stubs"
protoc -I "$root/proto" --python_out="$work/stubs" --grpc_python_out="$work/stubs" \
  --plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin inference/open_inference.proto

start() {  # start NAME CMD... ; sets PORT
  local name=$1; shift
  "$@" >"$work/$name.out" 2>"$work/$name.log" &
  pids+=($!)
  for _ in $(seq 200); do
    PORT=$(sed -n 's/^[^0-9]*port \([0-9][0-9]*\).*/\1/p' "$work/$name.out" | head -1)
    [[ -n "$PORT" ]] && return 0
    sleep 0.05
  done
  echo "$name did not start" >&2; cat "$work/$name.log" >&2; exit 1
}
