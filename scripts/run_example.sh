#!/bin/sh
# The main job, as far as dlc goes today: set up, build, check the digits example
# (examples/digits/digits.dl: an MLP and its train block), print the IR it lowers to, then the
# IR after the default passes. Training it and calling it from C come with code generation.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh" build -DCMAKE_BUILD_TYPE=RelWithDebInfo
dlc=$root/build/dlc
example=$root/examples/digits/digits.dl
echo "== dlc check examples/digits/digits.dl"
"$dlc" check "$example"
echo "ok"
echo
echo "== dlc examples/digits/digits.dl --emit=ir"
"$dlc" "$example" --emit=ir
echo
echo "== dlc examples/digits/digits.dl --emit=ir-opt (after fold, simplify, cse, dce)"
"$dlc" "$example" --emit=ir-opt --time-passes
