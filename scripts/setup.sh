#!/bin/sh
# Installs what dlc needs on Debian 12, as root: the build (LLVM 19, Flex, Bison, CMake, Ninja)
# and, with --test, the external referee the tests compare against (Debian's PyTorch, CPU) and
# clang 19 with its libFuzzer runtime for the fuzz targets (tests/fuzz), and Valgrind for the AOT
# libraries' memory and thread checks.
# Idempotent: when everything is present it only checks (about a second). docs/dependencies.md
# says why each package is here.
set -eu

pkgs="llvm-19-dev llvm-19-tools libzstd-dev zlib1g-dev flex bison cmake ninja-build gcc g++ make python3"
if [ "${1:-}" = "--test" ]; then
    pkgs="$pkgs python3-torch python3-numpy clang-19 libclang-rt-19-dev valgrind"
fi

missing=""
for p in $pkgs; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

echo "setup: installing$missing"
if [ "$(id -u)" != 0 ]; then
    echo "setup: these Debian packages are missing:$missing; run this script as root" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
