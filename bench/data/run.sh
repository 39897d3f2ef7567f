#!/usr/bin/env bash
# Data-loading benchmarks of escala against the Python peers (Debian's python3-pandas and
# python3-sklearn, with libopenblas0-pthread), side by side on the same files in the same run.
#
#   bench/data/run.sh [--runs N] [--peer-runs N] [--threads T] [--dir DIR]
#
# Workloads:
#   W3      the W0 training CSV (1,000,000 x 64 + label, ~590 MB, from `escala datagen`) parsed
#           into a float32 matrix: escala (T threads) vs pandas read_csv, with `wc -l` and `cat`
#           as floors; peak RSS of the escala run against the output matrix it must hold; and
#           the same file read as a typed table (what `escala train` reads) against that dense
#           path.
#   LIBSVM  500,000 rows x 20 of 1,000 features: escala vs scikit-learn load_svmlight_file.
#   STREAM  a streaming pass (column sums) over 1x and 3x the W0 CSV: peak RSS must not grow with
#           the data.
# Every figure is the median of the runs, each run a fresh process with a warm page cache; escala
# and its peer alternate run by run, so that both see the same machine conditions.
set -euo pipefail
cd "$(dirname "$0")/../.."

runs=5
peer_runs=3
threads=2
dir=/tmp/escala-bench
while (( $# )); do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --peer-runs) peer_runs=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --dir) dir=$2; shift 2 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
py=/usr/bin/python3
[[ -x $py ]] || { echo "run.sh: Debian's /usr/bin/python3 is needed for the peers" >&2; exit 1; }
dpkg-query -W -f='${Status}' libopenblas0-pthread 2>/dev/null | grep -q "ok installed" ||
  echo "run.sh: warning: libopenblas0-pthread missing; numpy/scipy use the reference BLAS" >&2

echo "== build (preset bench)" >&2
source bench/build.sh
bench_build escala_cli escala_bench_data
escala=$b/src/cli/escala
bench=$b/bench/data/escala_bench_data

mkdir -p "$dir"
w0="$dir/w0_train.csv"
if [[ ! -f $w0 ]]; then
  echo "== generating $w0" >&2
  "$escala" datagen --task classification --rows 1000000 --features 64 --informative 16 \
    --classes 2 --noise 0.02 --seed 42 --out "$w0" >&2
fi
svm="$dir/sparse.svm"
[[ -f $svm ]] || "$bench" make-libsvm "$svm" 500000 1000 20
mkdir -p "$dir/x3"
for k in 1 2 3; do [[ -e $dir/x3/part-$k.csv ]] || ln "$w0" "$dir/x3/part-$k.csv"; done
cat "$w0" "$svm" > /dev/null  # warm the page cache

w0_bytes=$(stat -c %s "$w0")
svm_bytes=$(stat -c %s "$svm")

median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

# One run: prints "seconds peak_rss_kb". The command prints its own timing as the first field of
# its last line, unless own_time=0 (then wall time is used).
once() {
  local own_time=$1; shift
  local out wall kb
  out=$( { /usr/bin/time -f "__time %e %M" "$@" > "$dir/out.txt"; } 2>&1 )
  wall=$(grep __time <<<"$out" | awk '{print $2}')
  kb=$(grep __time <<<"$out" | awk '{print $3}')
  if (( own_time )); then echo "$(tail -1 "$dir/out.txt" | awk '{print $1}') $kb"; else echo "$wall $kb"; fi
}

# Runs a command N times; prints "median_seconds median_peak_rss_kb".
measure() {
  local n=$1 own_time=$2; shift 2
  local times=() rss=()
  for ((i = 0; i < n; i++)); do
    local t kb
    read -r t kb < <(once "$own_time" "$@")
    times+=("$t")
    rss+=("$kb")
  done
  echo "$(printf '%s\n' "${times[@]}" | median) $(printf '%s\n' "${rss[@]}" | median)"
}

# Alternates runs of escala (command A, n_a times) and its peer (command B, n_b times) so that
# both see the same machine conditions; prints "median_a rss_a median_b rss_b". Commands are
# passed as strings (word-split).
versus() {
  local n_a=$1 n_b=$2 cmd_a=$3 cmd_b=$4
  local ta=() ra=() tb=() rb=() t kb
  for ((i = 0; i < n_a || i < n_b; i++)); do
    if (( i < n_a )); then read -r t kb < <(once 1 $cmd_a); ta+=("$t"); ra+=("$kb"); fi
    if (( i < n_b )); then read -r t kb < <(once 1 $cmd_b); tb+=("$t"); rb+=("$kb"); fi
  done
  echo "$(printf '%s\n' "${ta[@]}" | median) $(printf '%s\n' "${ra[@]}" | median)" \
       "$(printf '%s\n' "${tb[@]}" | median) $(printf '%s\n' "${rb[@]}" | median)"
}

cat > "$dir/pandas_csv.py" <<'PY'
import sys, time
import pandas as pd
t = time.perf_counter()
df = pd.read_csv(sys.argv[1])
print(f"{time.perf_counter() - t:.4f} {df.shape[0]}")
PY
cat > "$dir/sklearn_svm.py" <<'PY'
import sys, time
from sklearn.datasets import load_svmlight_file
t = time.perf_counter()
X, y = load_svmlight_file(sys.argv[1])
print(f"{time.perf_counter() - t:.4f} {X.shape[0]}")
PY

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== W3: CSV -> float32 ($runs runs; peers $peer_runs)" >&2
read -r wc_s _ < <(measure "$runs" 0 wc -l "$w0")
read -r cat_s _ < <(measure "$runs" 0 cat "$w0")
read -r esc_s esc_kb pd_s pd_kb < <(OPENBLAS_NUM_THREADS=1 versus "$runs" "$peer_runs" \
  "$bench --threads $threads csv $w0 --label label" "$py $dir/pandas_csv.py $w0")
read -r esc1_s _ < <(measure "$runs" 1 "$bench" --threads 1 csv "$w0" --label label)
# Warm: later reads in one process reuse the memory of the previous one (no fresh pages).
warm=()
for ((i = 0; i < runs; i++)); do
  warm+=("$("$bench" --threads "$threads" csv "$w0" --label label --repeat 3 | tail -1 | awk '{print $1}')")
done
warm_s=$(printf '%s\n' "${warm[@]}" | median)
read -r mmap_s mmap_kb < <(measure "$runs" 1 "$bench" --threads "$threads" csv "$w0" --label label --mmap)
# The table path (typed columns, what `escala train` reads) against the dense path, alternately.
read -r tab_s tab_kb den_s _ < <(versus "$runs" "$runs" \
  "$bench --threads $threads table $w0" "$bench --threads $threads csv $w0 --label label")

echo "== LIBSVM -> CSR" >&2
read -r svm_s svm_kb skl_s skl_kb < <(versus "$runs" "$peer_runs" \
  "$bench --threads $threads libsvm $svm" "$py $dir/sklearn_svm.py $svm")

echo "== streaming pass (16 MiB blocks)" >&2
read -r st1_s st1_kb < <(measure 3 1 "$bench" --threads "$threads" stream "$w0" --block-bytes 16777216)
read -r st3_s st3_kb < <(measure 3 1 "$bench" --threads "$threads" stream "$dir/x3" --block-bytes 16777216)
# The same pass under a 1 GiB address-space cap: less than twice the 3x data's size.
cap_ok=no
if ( ulimit -v 1048576; "$bench" --threads "$threads" stream "$dir/x3" --block-bytes 16777216 > /dev/null ); then
  cap_ok=yes
fi

load_after=$(cut -d' ' -f1-3 /proc/loadavg)
matrix_mb=$(awk -v r=1000000 'BEGIN {printf "%.1f", r * 65 * 4 / 1e6}')  # features + labels
mb() { awk -v b="$1" -v s="$2" 'BEGIN {printf "%.0f", b / 1e6 / s}'; }
rssmb() { awk -v k="$1" 'BEGIN {printf "%.0f", k * 1024 / 1e6}'; }

echo
echo "machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), load average $load_before before, $load_after after"
printf '\n%-34s %-36s %9s %9s %12s\n' "workload" "tool" "median s" "MB/s" "peak RSS MB"
printf '%-34s %-36s %9.3f %9s %12s\n' "W3 CSV 1M x 64 ($(( w0_bytes / 1000000 )) MB)" "wc -l (floor)" "$wc_s" "$(mb "$w0_bytes" "$wc_s")" "-"
printf '%-34s %-36s %9.3f %9s %12s\n' "" "cat > /dev/null (floor)" "$cat_s" "$(mb "$w0_bytes" "$cat_s")" "-"
printf '%-34s %-36s %9.3f %9s %12s\n' "" "escala, $threads threads (pread)" "$esc_s" "$(mb "$w0_bytes" "$esc_s")" "$(rssmb "$esc_kb")"
printf '%-34s %-36s %9.3f %9s %12s\n' "" "escala, 1 thread" "$esc1_s" "$(mb "$w0_bytes" "$esc1_s")" "-"
printf '%-34s %-36s %9.3f %9s %12s\n' "" "escala, $threads threads, 3rd read in process" "$warm_s" "$(mb "$w0_bytes" "$warm_s")" "-"
printf '%-34s %-36s %9.3f %9s %12s\n' "" "escala, $threads threads, memory map" "$mmap_s" "$(mb "$w0_bytes" "$mmap_s")" "$(rssmb "$mmap_kb")"
printf '%-34s %-36s %9.3f %9s %12s\n' "" "escala, $threads threads, typed table" "$tab_s" "$(mb "$w0_bytes" "$tab_s")" "$(rssmb "$tab_kb")"
printf '%-34s %-36s %9.3f %9s %12s\n' "" "pandas $($py -c 'import pandas; print(pandas.__version__)') read_csv" "$pd_s" "$(mb "$w0_bytes" "$pd_s")" "$(rssmb "$pd_kb")"
printf '%-34s %-36s %9.3f %9s %12s\n' "LIBSVM 500k x 1000, nnz 20 ($(( svm_bytes / 1000000 )) MB)" "escala, $threads threads" "$svm_s" "$(mb "$svm_bytes" "$svm_s")" "$(rssmb "$svm_kb")"
printf '%-34s %-36s %9.3f %9s %12s\n' "" "scikit-learn load_svmlight_file" "$skl_s" "$(mb "$svm_bytes" "$skl_s")" "$(rssmb "$skl_kb")"
printf '%-34s %-36s %9.3f %9s %12s\n' "stream pass, 16 MiB blocks" "escala, 1x W0 ($(( w0_bytes / 1000000 )) MB)" "$st1_s" "$(mb "$w0_bytes" "$st1_s")" "$(rssmb "$st1_kb")"
printf '%-34s %-36s %9.3f %9s %12s\n' "" "escala, 3x W0 ($(( 3 * w0_bytes / 1000000 )) MB)" "$st3_s" "$(mb $(( 3 * w0_bytes )) "$st3_s")" "$(rssmb "$st3_kb")"

echo
echo "ratios (targets in brackets):"
awk -v e="$esc_s" -v p="$pd_s" 'BEGIN {printf "  CSV: escala vs pandas read_csv          %6.1fx  [>= 15x]\n", p / e}'
awk -v b="$w0_bytes" -v e="$esc_s" 'BEGIN {printf "  CSV: escala throughput                  %6.2f GB/s [>= 1 GB/s]\n", b / 1e9 / e}'
awk -v b="$w0_bytes" -v e="$warm_s" 'BEGIN {printf "  CSV: escala throughput, warm memory     %6.2f GB/s\n", b / 1e9 / e}'
awk -v e="$warm_s" -v p="$pd_s" 'BEGIN {printf "  CSV: escala warm vs pandas read_csv     %6.1fx\n", p / e}'
awk -v k="$esc_kb" -v m="$matrix_mb" 'BEGIN {printf "  CSV: peak RSS / output matrix (pread)   %6.2f  [<= 1.3, no input mapping]\n", k * 1024 / 1e6 / m}'
awk -v k="$mmap_kb" -v m="$matrix_mb" -v b="$w0_bytes" 'BEGIN {printf "  CSV: peak RSS / (matrix + mapping), mmap %5.2f  [<= 1.3]\n", k * 1024 / (m * 1e6 + b)}'
awk -v t="$tab_s" -v d="$den_s" 'BEGIN {printf "  CSV: typed table / dense float32 time   %6.2fx  [<= 1.25x]\n", t / d}'
awk -v e="$svm_s" -v p="$skl_s" 'BEGIN {printf "  LIBSVM: escala vs scikit-learn          %6.1fx  [>= 5x]\n", p / e}'
awk -v a="$st1_kb" -v b="$st3_kb" 'BEGIN {printf "  stream: peak RSS 3x data / 1x data      %6.2f  [~1: independent of size]\n", b / a}'
echo "  stream: 3x data under a 1 GiB address-space cap: $cap_ok"
