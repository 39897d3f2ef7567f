#!/usr/bin/env bash
# W5 (../shared/BENCHMARKS.md): all-reduce, float32 sum, 2 ranks on 127.0.0.1, 4 KiB / 1 MiB /
# 16 MiB / 64 MiB. escala's gRPC ring side by side with Gloo's ring all-reduce over TCP and Open
# MPI's MPI_Allreduce over TCP, plus single-thread memcpy as the physical reference.
#
#   bench/distributed/run_allreduce.sh [--rounds K] [--reps R]
#
# Builds the bench preset, installs nothing (scripts/install-deps.sh --bench installs the peers).
# Each round runs escala, Gloo and MPI one after the other, so that the machine's noise falls on
# all three; each program reports the median of R timed repetitions per size, and the table shows
# the median over K rounds. Time per op and bus bandwidth 2(N-1)/N x bytes / time; ratios last.
set -euo pipefail
cd "$(dirname "$0")/../.."

rounds=3
reps=7
while (( $# > 0 )); do
  case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    *) echo "usage: $0 [--rounds K] [--reps R]" >&2; exit 2 ;;
  esac
done
export BENCH_REPS=$reps

source bench/build.sh
targets=(escala_cli escala_allreduce_bench memcpy_bench)
have_gloo=0; have_mpi=0
if [[ -f /usr/include/gloo/allreduce.h ]]; then targets+=(gloo_allreduce_bench); have_gloo=1; fi
if command -v mpirun >/dev/null && command -v mpicxx >/dev/null; then
  targets+=(mpi_allreduce_bench); have_mpi=1
fi
bench_build "${targets[@]}"
bin=$b/bench/distributed
escala=$b/src/cli/escala

results=$(mktemp)
trap 'rm -f "$results"; rm -rf "${store:-}"' EXIT
for (( round = 1; round <= rounds; ++round )); do
  echo "round $round/$rounds: escala" >&2
  "$escala" launch --nproc 2 --no-prefix -- "$bin/escala_allreduce_bench" | grep '^RESULT' >>"$results"
  if (( have_gloo )); then
    echo "round $round/$rounds: gloo" >&2
    store=$(mktemp -d)
    "$bin/gloo_allreduce_bench" 1 2 "$store" >/dev/null &
    "$bin/gloo_allreduce_bench" 0 2 "$store" | grep '^RESULT' >>"$results"
    wait
    rm -rf "$store"
  fi
  if (( have_mpi )); then
    echo "round $round/$rounds: mpi" >&2
    mpirun --allow-run-as-root -np 2 --mca btl tcp,self "$bin/mpi_allreduce_bench" 2>/dev/null |
      grep '^RESULT' >>"$results"
  fi
  "$bin/memcpy_bench" | grep '^RESULT' >>"$results"
done

echo
echo "all-reduce float32 sum, 2 ranks on 127.0.0.1, $(nproc) cores; median of $rounds rounds x $reps repetitions"
echo "$(uname -srm), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
awk '
  function median(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; ++i) for (j = i + 1; j <= n; ++j) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  function human(b) { return b >= 1048576 ? b / 1048576 " MiB" : b / 1024 " KiB" }
  $1 == "RESULT" {
    key = $2 SUBSEP $3; t[key] = t[key] " " $4; ranks[key] = $6
    if ($2 != "memcpy" && !($3 in seen)) { seen[$3] = 1; order[++n] = $3 + 0 }
  }
  END {
    for (i = 1; i <= n; ++i) for (j = i + 1; j <= n; ++j) if (order[j] < order[i]) { x = order[i]; order[i] = order[j]; order[j] = x }
    printf "\n%-8s | %12s %9s | %12s %9s | %12s %9s | %10s %10s\n", "size", "escala us", "GB/s",
           "gloo us", "GB/s", "mpi us", "GB/s", "vs gloo", "vs mpi"
    for (i = 1; i <= n; ++i) {
      s = order[i]
      line = sprintf("%-8s |", human(s))
      split("escala gloo mpi", peers, " ")
      for (p = 1; p <= 3; ++p) {
        k = peers[p] SUBSEP s
        if (k in t) {
          sec = median(t[k]); bw[p] = 2 * (ranks[k] - 1) / ranks[k] * s / sec / 1e9
          line = line sprintf(" %12.1f %9.3f |", sec * 1e6, bw[p])
        } else { bw[p] = 0; line = line sprintf(" %12s %9s |", "-", "-") }
      }
      line = line sprintf(" %9.2fx %9.2fx", bw[2] ? bw[1] / bw[2] : 0, bw[3] ? bw[1] / bw[3] : 0)
      print line
    }
    k = "memcpy" SUBSEP 67108864
    if (k in t) printf "\nsingle-thread memcpy (64 MiB): %.2f GB/s\n", 67108864 / median(t[k]) / 1e9
  }' "$results"
