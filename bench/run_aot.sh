#!/bin/sh
# The AOT library against PyTorch: the digits MLP's forward per call, dlc's library
# (bench/aot_forward.c, linked against `dlc examples/digits/train.dl -o libdigits.so`) vs PyTorch
# eager and TorchScript (bench/aot.py) with the same trained weights, same threads, in one run.
# OPENBLAS_CORETYPE is removed for PyTorch's sake (see run_gemm.sh).
#   bench/run_aot.sh [BUILD_DIR] [BATCH ...]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/build}
[ $# -gt 0 ] && shift
batches=${*:-1 64 1024}
cmake --build "$dir" --target dlc >/dev/null
work=$dir/bench-aot
mkdir -p "$work"
weights=$root/examples/digits/digits_mlp.safetensors
[ -f "$weights" ] || "$dir/dlc" run "$root/examples/digits/train.dl" --quiet
"$dir/dlc" "$root/examples/digits/train.dl" -o "$work/libdigits.so"
cc -O2 -I"$root" -I"$work" -o "$work/aot_forward" "$root/bench/aot_forward.c" -L"$work" -ldigits \
   -Wl,-rpath,"$work"
# shellcheck disable=SC2086
"$work/aot_forward" "$weights" $batches > "$work/dlc.txt"
# shellcheck disable=SC2086
env -u OPENBLAS_CORETYPE /usr/bin/python3 "$root/bench/aot.py" "$weights" $batches > "$work/torch.txt"
echo "digits MLP forward, us per call (median of 7), threads: ${DLC_NUM_THREADS:-all}"
printf '%8s %12s %12s %12s %14s %14s\n' batch dlc-aot eager script eager/dlc script/dlc
join "$work/dlc.txt" "$work/torch.txt" |
    awk '{ printf "%8d %12.2f %12.2f %12.2f %14.2f %14.2f\n", $1, $2, $3, $4, $3 / $2, $4 / $2 }'
