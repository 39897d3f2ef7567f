#!/usr/bin/env bash
# Installs escala's dependencies from Debian 12's archive. Idempotent: installs only what is
# missing and runs `apt-get update` at most once, only when something must be installed.
#
#   scripts/install-deps.sh            build dependencies
#   scripts/install-deps.sh --test     + what the tests use when present (reference peers, nginx,
#                                        PyTorch's torchrun...)
#   scripts/install-deps.sh --bench    + the benchmark peers (pandas, PyTorch, Gloo, Open MPI...)
#   scripts/install-deps.sh --fuzz     + clang and its libFuzzer runtime (scripts/fuzz.sh; CI
#                                        runs the fuzz targets with GCC and does not need them)
#
# The CUDA toolkit is not a Debian package here: it is used when found at /usr/local/cuda.
set -euo pipefail

want_test=0
want_bench=0
want_fuzz=0
for arg in "$@"; do
  case "$arg" in
    --test) want_test=1 ;;
    --bench) want_bench=1; want_test=1 ;;
    --fuzz) want_fuzz=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "install-deps.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

build_pkgs=(
  build-essential cmake ninja-build ccache git pkg-config ca-certificates
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libeigen3-dev libtbb-dev libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libfast-float-dev zlib1g-dev nlohmann-json3-dev
  python3-dev pybind11-dev python3-numpy python3-pandas libonnx-dev
  clang-format
)
# Used by tests when present; a test whose peer is missing skips.
test_pkgs=(
  python3 python3-numpy python3-sklearn python3-pandas python3-grpcio python3-protobuf
  libopenblas0-pthread openssl nginx curl iproute2 liblinear-tools dataset-fashion-mnist
  python3-torch python3-xgboost python3-pytest python3-onnx openmpi-bin qemu-user
  universal-ctags
)
bench_pkgs=(
  python3-xgboost libgloo-dev openmpi-bin libopenmpi-dev nghttp2-client
  protobuf-compiler-grpc time
)
# libclang-rt-14-dev holds libclang_rt.fuzzer (-fsanitize=fuzzer) and the sanitizer runtimes.
fuzz_pkgs=(clang libclang-rt-14-dev)

pkgs=("${build_pkgs[@]}")
(( want_test )) && pkgs+=("${test_pkgs[@]}")
(( want_bench )) && pkgs+=("${bench_pkgs[@]}")
(( want_fuzz )) && pkgs+=("${fuzz_pkgs[@]}")

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps.sh: run as root or install sudo" >&2; exit 1; }
  SUDO="sudo"
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if (( ${#missing[@]} == 0 )); then
  echo "install-deps.sh: all ${#pkgs[@]} packages present"
  exit 0
fi

echo "install-deps.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Packages that the archive lacks (e.g. a dataset on a mirror without it) must not stop the
# build: install the available ones, report the rest. Build dependencies are all required.
available=()
for p in "${missing[@]}"; do
  if apt-cache show "$p" >/dev/null 2>&1; then
    available+=("$p")
  else
    for b in "${build_pkgs[@]}"; do
      [[ "$p" == "$b" ]] && { echo "install-deps.sh: required package $p not in the archive" >&2; exit 1; }
    done
    echo "install-deps.sh: optional package $p not in the archive; tests that need it will skip"
  fi
done
if (( ${#available[@]} > 0 )); then
  $SUDO apt-get install -y -qq --no-install-recommends "${available[@]}" >/dev/null
fi
echo "install-deps.sh: done"
