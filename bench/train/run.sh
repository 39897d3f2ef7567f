#!/usr/bin/env bash
# W1 and W2 (shared/BENCHMARKS.md) on W0 (1,000,000 x 64 train, 200,000 test, from escala datagen):
#   W1  logistic regression: fit time to scikit-learn LogisticRegression()'s test log-loss
#   W2  MLP 64-256-256-1, ReLU, Adam 1e-3, batch 256, 3 epochs: samples/s and test accuracy,
#       against scikit-learn's MLPClassifier and PyTorch CPU at its best thread setting.
# Times are the fit only (data loading excluded on both sides). escala runs REPS times (medians);
# each peer runs once per setting (they take minutes). Ratios are printed last.
#
#   bench/train/run.sh [REPS] [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
reps=${1:-3}
work=${2:-$(mktemp -d)}
scripts/install-deps.sh --bench >/dev/null
source bench/build.sh
bench_build escala_cli
escala="$b/src/cli/escala"
w0_generate "$work" csv npy

fit() {  # fit ARGS... -> "seconds logloss accuracy"
  "$escala" --threads 2 train --data "$work/w0_train.csv" --valid "$work/w0_test.csv" --label label \
    --pipeline none "$@" --out "$work/m.bundle" 2>/dev/null |
    /usr/bin/python3 -c '
import re, sys
text = sys.stdin.read()
secs = re.search(r" in ([0-9.]+) s", text).group(1)
ll = re.search(r"logloss ([0-9.]+)", text).group(1)
acc = re.search(r"accuracy ([0-9.]+)", text).group(1)
print(secs, ll, acc)'
}
results="$work/results.txt"
: >"$results"
for _ in $(seq "$reps"); do echo "escala-lr $(fit --model logistic)" >>"$results"; done
for _ in $(seq "$reps"); do
  echo "escala-mlp $(fit --model mlp --hidden 256,256 --activation relu --optimizer adam --lr 0.001 \
    --batch-size 256 --epochs 3)" >>"$results"
done
peer() { /usr/bin/python3 "$root/bench/train/peers.py" "$@" "$work/w0_train.npy" "$work/w0_test.npy"; }
# Debian's numpy/scipy use OpenBLAS's pthreads build (libopenblas0-pthread): 2 threads here.
echo "sklearn-lr $(peer lr)" >>"$results"
echo "sklearn-mlp $(peer mlp)" >>"$results"
for t in 1 2; do
  echo "torch-mlp-t$t $(OPENBLAS_NUM_THREADS=1 /usr/bin/python3 "$root/bench/train/peers.py" torch \
    "$work/w0_train.npy" "$work/w0_test.npy" $t)" >>"$results"
  echo "torch-mlp-t$t-blas $(/usr/bin/python3 "$root/bench/train/peers.py" torch \
    "$work/w0_train.npy" "$work/w0_test.npy" $t)" >>"$results"
done

/usr/bin/python3 - "$results" <<'PY'
import collections, statistics, sys
r = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, *vals = line.split()
    r[name].append([float(v) for v in vals])
def med(name, i):
    return statistics.median(v[i] for v in r[name])
print("W1 logistic regression on W0 (1M x 64; test 200k)")
print(f"  escala L-BFGS       fit {med('escala-lr', 0):7.2f} s   test logloss {med('escala-lr', 1):.5f}   accuracy {med('escala-lr', 2):.4f}   (median of {len(r['escala-lr'])})")
print(f"  sklearn lbfgs       fit {med('sklearn-lr', 0):7.2f} s   test logloss {med('sklearn-lr', 2):.5f}   accuracy {med('sklearn-lr', 3):.4f}")
print()
print("W2 MLP 64-256-256-1, ReLU, Adam 1e-3, batch 256, 3 epochs")
esc = 3_000_000 / med('escala-mlp', 0)
print(f"  escala              {esc:9.0f} samples/s   test accuracy {med('escala-mlp', 2):.4f}   (median of {len(r['escala-mlp'])})")
print(f"  sklearn MLP         {med('sklearn-mlp', 1):9.0f} samples/s   test accuracy {med('sklearn-mlp', 3):.4f}")
torch = {k: v[0] for k, v in r.items() if k.startswith("torch")}
best = max(torch, key=lambda k: torch[k][1])
for k, v in sorted(torch.items()):
    print(f"  PyTorch {k[10:]:12} {v[1]:9.0f} samples/s   test accuracy {v[3]:.4f}")
print()
print("ratios")
lr_ratio = med('escala-lr', 0) / med('sklearn-lr', 0)
gap = med('escala-lr', 1) - med('sklearn-lr', 2)
print(f"  W1 fit time escala / sklearn:        {lr_ratio:.2f}  (target <= 0.25), logloss gap {gap:+.5f} (target <= 0.0005)")
print(f"  W2 samples/s escala / sklearn MLP:   {esc / med('sklearn-mlp', 1):.2f}  (target >= 2)")
print(f"  W2 samples/s escala / best PyTorch:  {esc / torch[best][1]:.2f}  (target >= 2; best: {best[6:]})")
print(f"  W2 escala samples/s:                 {esc:.0f}  (target >= 150000)")
PY
