#!/bin/sh
# The main job, as far as dlc goes today: set up, build, then print a small model's IR (the
# digits MLP's training loss) and run the default pass pipeline on it, printing the IR after
# each pass.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh" build -DCMAKE_BUILD_TYPE=RelWithDebInfo
opt=$root/build/dlc-opt
echo "== the digits MLP's loss, as IR (examples/mlp.dlir)"
"$opt" "$root/examples/mlp.dlir"
echo
echo "== the default passes, the IR after each"
"$opt" "$root/examples/mlp.dlir" --pass=fold,simplify,cse,dce --print-after-all --time-passes \
    -o /dev/null
