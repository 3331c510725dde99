#!/bin/sh
# The main job, as far as dlc goes today: set up, build, check the digits example and train it
# (examples/digits/train.dl: the MLP of digits.dl and its train block), printing one line per
# epoch and the held-out accuracy. Calling the trained model from C comes with the AOT library.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh" build -DCMAKE_BUILD_TYPE=RelWithDebInfo
dlc=$root/build/dlc
example=$root/examples/digits/train.dl
echo "== dlc check examples/digits/train.dl"
"$dlc" check "$example"
echo "ok"
echo
echo "== dlc run examples/digits/train.dl (train the MLP; the weights go to examples/digits/digits_mlp.safetensors)"
"$dlc" run "$example" --log "$root/examples/digits/digits_mlp.log.jsonl"
