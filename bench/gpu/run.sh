#!/usr/bin/env bash
# W6 (shared/BENCHMARKS.md) and the GPU test suite, in one go, on a machine with an NVIDIA GPU:
# builds (or takes a prebuilt bundle), runs the GPU tests, runs escala and PyTorch side by side
# on MLP training (784-1024-1024-10 and 64-4096-4096-1, batch 1024 and 4096, FP32 and TF32), and
# prints a table last. A few minutes on an H100/H200.
#
#   bench/gpu/run.sh            on the GPU machine
#   bench/gpu/run.sh bundle     here (no GPU needed): build the binaries for Hopper into
#                               .gpu-bundle/ with the shared libraries they need, for a GPU
#                               machine that lacks escala's build dependencies (carry .gpu-bundle)
#
# Environment: OUT (a folder for logs; default a temporary one), EPOCHS (default 4),
# STEPS (steps per epoch, default 32), SKIP_TESTS=1, SKIP_TORCH=1.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
bundle="$root/.gpu-bundle"

if [[ "${1:-}" == "bundle" ]]; then
  # Hopper only (sm_90), no -march=native (the GPU machine's CPU may differ from this one).
  cmake -S . -B build/gpu-bundle -G Ninja -DCMAKE_BUILD_TYPE=Release -DESCALA_WITH_CUDA=ON \
    -DESCALA_CUDA_ARCHITECTURES=90 -DESCALA_NATIVE_ARCH=OFF -DESCALA_BUILD_BENCH=ON \
    -DESCALA_BUILD_TESTS=ON -DESCALA_BUILD_EXAMPLES=OFF >/dev/null
  cmake --build build/gpu-bundle --target escala_gpu_tests escala_bench_gpu -j "$(nproc)"
  rm -rf "$bundle"
  mkdir -p "$bundle/bin" "$bundle/lib"
  for exe in build/gpu-bundle/tests/escala_gpu_tests build/gpu-bundle/bench/gpu/escala_bench_gpu; do
    cp "$exe" "$bundle/bin/"
    strip "$bundle/bin/$(basename "$exe")"
    # Every shared library but glibc's, the driver's and CUDA's own (found on the GPU machine).
    ldd "$exe" | awk '/=> \// {print $3}' | while read -r lib; do
      case "$(basename "$lib")" in
        libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*|libcuda.so*|libcublas*|libnccl*) ;;
        *) cp -n "$lib" "$bundle/lib/" ;;
      esac
    done
  done
  du -sh "$bundle"
  echo "bundle ready: carry .gpu-bundle and run bench/gpu/run.sh on the GPU machine"
  exit 0
fi

out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
epochs=${EPOCHS:-4}
steps=${STEPS:-32}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"

# Binaries: the carried bundle, else a build here.
if [[ -x "$bundle/bin/escala_gpu_tests" ]]; then
  tests="$bundle/bin/escala_gpu_tests"
  bench="$bundle/bin/escala_bench_gpu"
  export LD_LIBRARY_PATH="$bundle/lib:${LD_LIBRARY_PATH:-}"
else
  cmake -S . -B build/gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DESCALA_WITH_CUDA=ON \
    -DESCALA_CUDA_ARCHITECTURES=90 -DESCALA_BUILD_BENCH=ON -DESCALA_BUILD_TESTS=ON \
    -DESCALA_BUILD_EXAMPLES=OFF >/dev/null
  cmake --build build/gpu --target escala_gpu_tests escala_bench_gpu -j "$(nproc)"
  tests="$root/build/gpu/tests/escala_gpu_tests"
  bench="$root/build/gpu/bench/gpu/escala_bench_gpu"
fi

# cuBLAS and NCCL: the toolkit's, else the ones PyTorch's wheels bring.
py=$(command -v python3)
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib; do
  [[ -d "$d" ]] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$d"
done
site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' 2>/dev/null || true)
for d in "$site"/nvidia/cublas/lib "$site"/nvidia/cu13/lib "$site"/nvidia/nccl/lib; do
  [[ -d "$d" ]] && export LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$d"
done
if [[ -z "${ESCALA_NCCL_LIBRARY:-}" ]]; then
  nccl=$(find /usr/local/cuda*/lib* "$site"/nvidia -name 'libnccl.so.2' 2>/dev/null | head -1 || true)
  [[ -n "$nccl" ]] && export ESCALA_NCCL_LIBRARY="$nccl"
fi
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH ESCALA_NCCL_LIBRARY=${ESCALA_NCCL_LIBRARY:-}"

status=0
if [[ -z "${SKIP_TESTS:-}" ]]; then
  echo "==== GPU tests"
  "$tests" 2>&1 | tee "$out/tests.log" | grep -E '^\[ +(OK|FAILED|SKIPPED) +\]|PASSED|FAILED|tests ran' || true
  grep -q '^\[  PASSED  \]' "$out/tests.log" && ! grep -q '^\[  FAILED  \]' "$out/tests.log" || status=1
fi

echo "==== benchmark (epochs $epochs x $steps steps; median over epochs after the first)"
: >"$out/bench.txt"
for model in 784,1024,1024,10 64,4096,4096,1; do
  for batch in 1024 4096; do
    for prec in fp32 tf32; do
      args=(--sizes "$model" --batch "$batch" --precision "$prec")
      "$bench" "${args[@]}" --epochs "$epochs" --steps-per-epoch "$steps" | tee -a "$out/bench.txt" || status=1
      if [[ -z "${SKIP_TORCH:-}" ]]; then
        PYTHONUNBUFFERED=1 "$py" bench/gpu/torch_mlp.py "${args[@]}" --epochs "$epochs" \
          --steps-per-epoch "$steps" | tee -a "$out/bench.txt" || status=1
      fi
    done
  done
done

echo
echo "==== W6: MLP training on $(head -1 "$out/gpu.txt" | cut -d, -f1), samples/s (Adam, data on the device)"
"$py" - "$out/bench.txt" <<'PY'
import re, sys
rows = {}
for line in open(sys.argv[1]):
    kv = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', line))
    if not kv:
        continue
    key = (kv["model"], int(kv["batch"]), kv["precision"])
    rows.setdefault(key, {})[line.split()[0]] = kv
print(f"{'model':<18}{'batch':>6}{'prec':>6}{'escala':>10}{'torch':>10}{'ratio':>7}"
      f"{'gemm share':>11}{'gemm TF/s':>10}{'peak TF/s':>10}")
for (model, batch, prec), r in rows.items():
    e, t = r.get("escala", {}), r.get("torch", {})
    es = float(e.get("samples_per_s", "nan")); ts = float(t.get("samples_per_s", "nan"))
    print(f"{model.replace(',', '-'):<18}{batch:>6}{prec:>6}{es:>10.0f}{ts:>10.0f}{es / ts:>7.2f}"
          f"{float(e.get('gemm_share', 'nan')):>11.2f}{float(e.get('gemm_tflops', 'nan')):>10.1f}"
          f"{float(e.get('peak_tflops', 'nan')):>10.1f}")
print("ratio = escala / PyTorch (>= 1: escala at least as fast); gemm share = the step's GEMMs"
      " timed alone / step time; peak = cuBLAS on 8192^3 in the same precision")
PY
exit $status
