#!/bin/sh
# Configures and builds dlc into DIR (default build/) with the given extra CMake options.
#   scripts/build.sh [DIR] [-DOPTION=VALUE ...]
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-build}
[ $# -gt 0 ] && shift
case $dir in /*) ;; *) dir=$root/$dir ;; esac
# Debian's python3 (the one python3-torch belongs to), not whatever is first on PATH.
cmake -S "$root" -B "$dir" -G Ninja -DPython3_EXECUTABLE=/usr/bin/python3 "$@" >/dev/null
cmake --build "$dir"
