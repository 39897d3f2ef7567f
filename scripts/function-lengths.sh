#!/usr/bin/env bash
# The longest functions in src/, include/ and cuda/, measured by universal-ctags (Debian's
# universal-ctags): one line per function, "LINES FILE:LINE NAME", longest first.
#
#   scripts/function-lengths.sh [TOP] [--max N]
#
# With --max N, exits 1 when a function is longer than N lines (the project's limit is 150;
# docs/architecture.md). A lambda counts toward the function that holds it.
set -euo pipefail
cd "$(dirname "$0")/.."
top=20
max=0
while (( $# )); do
  case "$1" in
    --max) max=$2; shift 2 ;;
    *) top=$1; shift ;;
  esac
done
command -v ctags >/dev/null && ctags --version 2>/dev/null | grep -q "Universal Ctags" || {
  echo "function-lengths.sh: needs universal-ctags (apt-get install universal-ctags)" >&2
  exit 2
}
lengths=$(ctags -R --fields=+ne --c++-kinds=f --languages=C++ --map-C++=+.cu --map-C++=+.cuh \
  -f - src include cuda |
  awk -F'\t' '{ s = ""; e = ""
    for (i = 4; i <= NF; i++) { if ($i ~ /^line:/) s = substr($i, 6); if ($i ~ /^end:/) e = substr($i, 5) }
    if (s != "" && e != "") print e - s + 1, $2 ":" s, $1 }' | sort -rn)
echo "$lengths" | head -n "$top" || true  # head closes the pipe early
if (( max > 0 )); then
  over=$(echo "$lengths" | awk -v m="$max" '$1 > m' | wc -l)
  if (( over > 0 )); then
    echo "function-lengths.sh: $over function(s) over $max lines" >&2
    exit 1
  fi
fi
