#!/bin/sh
# The main job: set up, build, check the digits example and train it (examples/digits/train.dl:
# the MLP of digits.dl and its train block), printing one line per epoch and the held-out
# accuracy; then compile the model ahead of time to a library (build/digits/libdigits.so and its
# header) and call it from C: examples/digits/classify.c loads the trained weights and classifies
# the 180 held-out digits.
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
echo
echo "== dlc examples/digits/train.dl -o build/digits/libdigits.so (the library and libdigits.h)"
out=$root/build/digits
mkdir -p "$out"
"$dlc" "$example" -o "$out/libdigits.so"
readelf -d "$out/libdigits.so" | grep NEEDED
# The same library from Python (ctypes, numpy arrays passed without copies), where numpy is;
# the main job ends with the C program.
if /usr/bin/python3 -c "import numpy" 2>/dev/null; then
    echo
    echo "== python3 examples/digits/classify.py (the same library through ctypes)"
    /usr/bin/python3 "$root/examples/digits/classify.py" "$out/libdigits.so" \
        "$root/examples/digits/digits_mlp.safetensors" "$root/examples/digits/data/digits_test.csv"
fi
echo
echo "== cc examples/digits/classify.c -ldigits && classify (the trained weights, the held-out digits)"
cc -O2 -Wall -Wextra -o "$out/classify" "$root/examples/digits/classify.c" -I"$out" -L"$out" -ldigits \
   -Wl,-rpath,"$out"
"$out/classify" "$root/examples/digits/digits_mlp.safetensors" "$root/examples/digits/data/digits_test.csv"
