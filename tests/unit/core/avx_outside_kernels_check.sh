#!/bin/sh
# avx_outside_kernels_check.sh OBJDUMP BINARY
#
# Fails when a function of BINARY outside the AVX2/AVX-512 kernel builds (src/core/simd) holds a
# VEX- or EVEX-encoded instruction (mnemonic v...): with a baseline below x86-64-v3 such code
# dies with SIGILL on CPUs without AVX. Catches a flag applied too widely and a kernel's inline
# function merged into baseline code alike.
set -eu
bad=$("$1" -d --no-show-raw-insn -C "$2" |
  awk -F'\t' '/^[0-9a-f]+ <.*>:$/ { fn = $0; next }
              NF >= 2 && $2 ~ /^v/ && !(fn in seen) { seen[fn] = 1; print fn }' |
  grep -v -E 'EigenAvx2|EigenAvx512|escala::simd::avx2::|escala::simd::avx512::' || true)
if [ -n "$bad" ]; then
  echo "AVX instructions outside the dispatched kernels in $2:" >&2
  echo "$bad" | head -50 >&2
  exit 1
fi
echo "$2: AVX instructions only in the dispatched kernels"
