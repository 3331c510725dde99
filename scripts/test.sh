#!/bin/sh
# Runs every test: a -Werror release build (unit tests under CTest, the lit suite), then an
# AddressSanitizer + UndefinedBehaviorSanitizer build running the same, then (where clang-19 is
# installed) the libFuzzer targets in build-fuzz/: saved regressions replayed, then 30 s of
# fuzzing per target (tests/fuzz/run.sh). Ends with one summary line; exits non-zero if anything
# failed. GPU tests skip (exit 77 / REQUIRES: gpu) without a GPU.
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh" --test || exit 1
lit=/usr/lib/llvm-19/build/utils/lit/lit.py
summary=""
status=0

# run_suite NAME DIR [cmake options]: build, then ctest (all but lit) and lit; appends to summary.
run_suite() {
    name=$1 dir=$2
    shift 2
    echo "== $name: build"
    if ! "$root/scripts/build.sh" "$dir" "$@"; then
        summary="$summary | $name: BUILD FAILED"
        status=1
        return
    fi
    echo "== $name: unit tests"
    out=$(cd "$root/$dir" && ctest --output-on-failure -E '^lit$' 2>&1)
    rc=$?
    echo "$out"
    [ $rc = 0 ] || status=1
    unit=$(echo "$out" | sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\2 run, \1 failed/p')
    skipped=$(echo "$out" | grep -c '(Skipped)' || true)
    echo "== $name: lit"
    out=$(/usr/bin/python3 "$lit" -sv "$root/$dir/tests/lit" 2>&1)
    rc=$?
    echo "$out" | grep -v '^PASS' | tail -n 40
    [ $rc = 0 ] || status=1
    litsum=$(echo "$out" | sed -n 's/^ *\(Passed\|Failed\|Unsupported\|Expectedly Failed\|Unresolved\|Timed Out\) *: *\([0-9]*\).*/\2 \1/p' |
             tr 'A-Z' 'a-z' | paste -sd, - | sed 's/,/, /g')
    summary="$summary | $name: unit ${unit:-none run} ($skipped skipped); lit $litsum"
}

run_suite release build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDLC_WERROR=ON -DDLC_VERIFY_EACH=ON
run_suite asan build-asan -DCMAKE_BUILD_TYPE=Debug -DDLC_WERROR=ON -DDLC_SANITIZE=ON

# The fuzzers: clang only (libFuzzer), everything instrumented with ASan + UBSan.
if [ -x /usr/bin/clang-19 ]; then
    echo "== fuzz: build"
    if "$root/scripts/build.sh" build-fuzz -DCMAKE_C_COMPILER=/usr/bin/clang-19 \
            -DCMAKE_CXX_COMPILER=/usr/bin/clang++-19 -DCMAKE_BUILD_TYPE=RelWithDebInfo \
            -DDLC_WERROR=ON -DDLC_FUZZ=ON; then
        out=$("$root/tests/fuzz/run.sh" build-fuzz "${DLC_FUZZ_SECONDS:-30}" 2>&1)
        rc=$?
        echo "$out"
        [ $rc = 0 ] || status=1
        summary="$summary | $(echo "$out" | tail -n 1)"
    else
        summary="$summary | fuzz: BUILD FAILED"
        status=1
    fi
else
    summary="$summary | fuzz: skipped (no /usr/bin/clang-19)"
fi

if [ $status = 0 ]; then result=PASS; else result=FAIL; fi
echo "SUMMARY: $result$summary"
exit $status
