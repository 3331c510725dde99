#!/bin/sh
# dlc against PyTorch eager and TorchScript on the CPU, three models (an MLP, a small CNN, one
# transformer block), forward and AdamW training step, 1 and 2 threads, plus dlc's compile times
# (bench/models.py says how; bench/README.md has results). Generated files go to
# BUILD_DIR/bench-models/. OPENBLAS_CORETYPE is removed for PyTorch's sake (see run_gemm.sh).
#   bench/run_models.sh [BUILD_DIR]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$(cd "${1:-$root/build}" && pwd)
cmake --build "$dir" --target dlc >/dev/null
env -u OPENBLAS_CORETYPE /usr/bin/python3 "$root/bench/models.py" "$dir/dlc" "$dir/bench-models"
