#!/usr/bin/env bash
# Boosted trees on W0 (1,000,000 x 64 training rows, 200,000 test rows): `escala train --model
# gbdt` (100 rounds, depth 6, learning rate 0.3, 255 value bins and the missing-value bin: one
# byte per bin index; no feature pipeline) against XGBoost's `tree_method="hist"` with 256 bins and
# otherwise the same settings (bench/train/peers.py xgb), on the same NPY files
# and thread count, alternating run by run. The fit alone on both sides (escala's own report;
# XGBoost's fit() timed around the call), neither evaluating a validation set while it trains; the
# test log-loss of each side's model, from `escala evaluate` and from XGBoost's predict_proba
# after the fit; then batch prediction of the
# 200,000 test rows by the trained model alone (bench_trees_predict against XGBoost's
# inplace_predict, medians of five calls each), and one fit on 2 worker processes of 1 thread
# each (escala launch) with the share of it spent in the histogram all-reduces. Targets (the
# trees issue): fit <= 0.5x XGBoost's at test log-loss <= XGBoost's + 0.002; prediction >= 1.0x
# XGBoost's rows/s.
#
#   bench/train/gbdt.sh [RUNS] [WORKDIR] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
runs=${1:-3}
work=${2:-/tmp/escala-bench-w0}
threads=${3:-2}
scripts/install-deps.sh --bench >/dev/null
source bench/build.sh
bench_build escala_cli bench_trees_predict
escala="$b/src/cli/escala"
w0_generate "$work" npy
results="$work/gbdt.txt"
: >"$results"
for r in $(seq "$runs"); do
  "$escala" --threads "$threads" train --data "$work/w0_train.npy" --label label --model gbdt \
    --pipeline none --rounds 100 --max-depth 6 --learning-rate 0.3 --max-bin 255 \
    --out "$work/gbdt.bundle" >"$work/gbdt.out" 2>&1
  fit=$(sed -n 's/^trained .* in \([0-9.]*\) s .*/\1/p' "$work/gbdt.out")
  ll=$("$escala" --threads "$threads" evaluate --model "$work/gbdt.bundle" \
    --data "$work/w0_test.npy" --label label 2>/dev/null | sed -n 's/^logloss *\([0-9.]*\)$/\1/p')
  predict=$("$b/bench/train/bench_trees_predict" "$work/gbdt.bundle" "$work/w0_test.npy" 5 \
    "$threads" | cut -d' ' -f2)
  echo "escala $fit $ll $predict" >>"$results"
  OPENBLAS_NUM_THREADS=$threads /usr/bin/python3 "$root/bench/train/peers.py" xgb \
    "$work/w0_train.npy" "$work/w0_test.npy" "$threads" >"$work/xgb.out"
  echo "xgboost $(cut -d' ' -f1,3,6 "$work/xgb.out")" >>"$results"
  echo "run $r done" >&2
done
"$escala" --threads 1 launch --nproc 2 -- "$escala" train --data "$work/w0_train.npy" \
  --valid "$work/w0_test.npy" --label label --model gbdt --pipeline none --rounds 100 \
  --max-depth 6 --learning-rate 0.3 --max-bin 255 --out "$work/gbdt2.bundle" \
  >"$work/gbdt2.out" 2>&1
sed -n 's/.*\(gbdt: .* in the histogram all-reduces\).*/\1/p' "$work/gbdt2.out" >"$work/gbdt2.txt"
/usr/bin/python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    who, fit, ll, rate = line.split()
    rows.setdefault(who, []).append((float(fit), float(ll), float(rate)))
med = statistics.median
e, x = rows["escala"], rows["xgboost"]
print(f"W6 (trees) on W0, {len(e)} alternating runs (medians of the fit alone)")
for name, r in (("escala gbdt", e), ("xgboost hist", x)):
    print(f"  {name:<14} fit {med(f for f, _, _ in r):7.2f} s  runs "
          f"{' '.join(f'{f:.2f}' for f, _, _ in r)}  test logloss {med(l for _, l, _ in r):.6f}"
          f"  predict {med(p for _, _, p in r) / 1e6:.2f} M rows/s")
print(f"  fit ratio escala/xgboost: {med(f for f, _, _ in e) / med(f for f, _, _ in x):.2f}x "
      f"(target <= 0.5)")
print(f"  test log-loss, escala - xgboost: "
      f"{med(l for _, l, _ in e) - med(l for _, l, _ in x):+.6f} (target <= +0.002)")
print(f"  batch prediction rows/s, escala/xgboost: "
      f"{med(p for _, _, p in e) / med(p for _, _, p in x):.2f}x (target >= 1.0)")
PY
echo "  2 worker processes x 1 thread: $(cat "$work/gbdt2.txt")"
