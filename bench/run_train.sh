#!/bin/sh
# Training throughput, dlc vs PyTorch eager on the CPU (bench/train.py), with OPENBLAS_CORETYPE
# removed from the environment (it slows PyTorch's BLAS on this machine; see run_gemm.sh).
#   bench/run_train.sh [BUILD_DIR] [EPOCHS]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/build}
cmake --build "$dir" --target dlc >/dev/null
env -u OPENBLAS_CORETYPE /usr/bin/python3 "$root/bench/train.py" "$dir/dlc" "$root/examples" "${2:-6}"
