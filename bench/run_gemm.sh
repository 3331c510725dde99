#!/bin/sh
# Runs bench_gemm (dlc sgemm vs OpenBLAS) on 1 thread pinned to CPU 0 and on 2 threads, with
# OPENBLAS_CORETYPE removed from the environment: this machine exports Haswell, which forces
# OpenBLAS onto its AVX2 kernels and halves it. OpenBLAS reads the variable when the library
# loads, so it has to be gone before the process starts.
#   bench/run_gemm.sh [BUILD_DIR] [SIZE ...]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/build}
[ $# -gt 0 ] && shift
cmake --build "$dir" --target bench_gemm >/dev/null
env -u OPENBLAS_CORETYPE OPENBLAS_NUM_THREADS=1 taskset -c 0 "$dir/bench_gemm" 1 "$@"
env -u OPENBLAS_CORETYPE "$dir/bench_gemm" 2 "$@"
