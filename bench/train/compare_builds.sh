#!/usr/bin/env bash
# W1 and W2 fit times of two escala binaries (or of one binary with different ESCALA_CPU_ISA caps),
# run alternately on the same W0 data (bench/train/run.sh generates it), medians and ratios:
#
#   bench/train/compare_builds.sh REPS WORKDIR NAME=CMD NAME=CMD ...
#   e.g. bench/train/compare_builds.sh 5 /tmp/w0 \
#          native=build/native/src/cli/escala default=build/release/src/cli/escala \
#          "baseline-kernels=env ESCALA_CPU_ISA=baseline build/release/src/cli/escala"
#
# The first variant is the reference of the ratios. WORKDIR must hold w0_train.csv and
# w0_test.csv. W2 runs the script's MLP (64-256-256-1, Adam, batch 256) for one epoch.
set -euo pipefail
reps=$1
work=$2
shift 2
fit() {  # fit CMD ARGS... -> seconds
  # shellcheck disable=SC2086
  $1 --threads 2 train --data "$work/w0_train.csv" --valid "$work/w0_test.csv" --label label \
    --pipeline none "${@:2}" --out "$out/m.bundle" 2>/dev/null |
    sed -n 's/.* in \([0-9.]*\) s .*/\1/p' | head -1
}
out=$(mktemp -d)
results="$out/results.txt"
for _ in $(seq "$reps"); do
  for v in "$@"; do
    name=${v%%=*}
    cmd=${v#*=}
    echo "$name w1 $(fit "$cmd" --model logistic)" >>"$results"
    echo "$name w2 $(fit "$cmd" --model mlp --hidden 256,256 --activation relu --optimizer adam \
      --lr 0.001 --batch-size 256 --epochs 1)" >>"$results"
  done
done
/usr/bin/python3 - "$results" "${@%%=*}" <<'PY'
import collections, statistics, sys
r = collections.defaultdict(list)
for line in open(sys.argv[1]):
    name, w, secs = line.split()
    r[(name, w)].append(float(secs))
names = sys.argv[2:]
ref = names[0]
for w, what in (("w1", "W1 logistic L-BFGS fit, s"), ("w2", "W2 MLP 1 epoch fit, s")):
    print(what)
    for n in names:
        v = r[(n, w)]
        m = statistics.median(v)
        print(f"  {n:20} median {m:6.2f}  runs {' '.join(f'{x:.2f}' for x in v)}"
              f"  ratio to {ref} {m / statistics.median(r[(ref, w)]):.2f}")
PY
rm -rf "$out"
