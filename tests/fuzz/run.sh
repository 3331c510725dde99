#!/bin/sh
# Runs the libFuzzer targets of a DLC_FUZZ build (scripts/test.sh's "fuzz" stage; docs/testing.md).
#   tests/fuzz/run.sh BUILD_DIR [SECONDS] [TARGET...]      (default: 30 s, every target)
# For each target: collects the seed corpus from the repository's sources into
# BUILD_DIR/fuzz/corpus/TARGET (nothing is copied into git), replays every input under
# tests/fuzz/regressions/TARGET (each must run clean), then fuzzes for SECONDS with new inputs
# going to BUILD_DIR/fuzz/work/TARGET and crashing inputs to BUILD_DIR/fuzz/artifacts/.
# Prints one line per target, "fuzz: NAME S s, N runs, no crash" (or what went wrong), and
# exits non-zero if a regression input or the fuzzing run failed.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?usage: tests/fuzz/run.sh BUILD_DIR [SECONDS] [TARGET...]}
case $build in /*) ;; *) build=$root/$build ;; esac
secs=${2:-30}
[ $# -gt 2 ] && shift 2 || set -- frontend ir
flags="-timeout=10 -rss_limit_mb=2048 -print_final_stats=0"
status=0
lines=""

# seeds TARGET DIR: fill DIR with the seed inputs for TARGET.
seeds() {
    case $1 in
    frontend)
        find "$root/examples" "$root/lang/std" "$root/tests/lit" "$root/tests/fuzz/seeds/frontend" \
             -name '*.dl' -type f 2>/dev/null ;;
    ir)
        find "$root/examples" "$root/tests/lit" -name '*.dlir' -type f 2>/dev/null ;;
    esac | while IFS= read -r f; do
        # Flat names that stay unique: the path with '/' turned into '_'.
        rel=${f#"$root"/}
        cp "$f" "$2/$(echo "$rel" | tr '/' '_')"
    done
}

for t in "$@"; do
    exe=$build/tests/fuzz/fuzz_$t
    if [ ! -x "$exe" ]; then
        echo "fuzz: no $exe (configure with -DDLC_FUZZ=ON)" >&2
        lines="$lines|$t: NOT BUILT"
        status=1
        continue
    fi
    corpus=$build/fuzz/corpus/$t work=$build/fuzz/work/$t art=$build/fuzz/artifacts
    rm -rf "$corpus"
    mkdir -p "$corpus" "$work" "$art"
    seeds "$t" "$corpus"
    dict=""
    [ -f "$root/tests/fuzz/$t.dict" ] && dict="-dict=$root/tests/fuzz/$t.dict"

    # Regressions: every saved input must now run clean (libFuzzer runs files given as arguments).
    bad=""
    for r in "$root/tests/fuzz/regressions/$t"/*; do
        [ -f "$r" ] || continue
        if ! "$exe" $flags "$r" >"$art/replay.log" 2>&1; then
            echo "fuzz: $t: regression input ${r#"$root"/} still fails:"
            grep -m1 -E 'runtime error|ERROR|fuzz target exited|internal compiler error|^fuzz_[a-z]*:' "$art/replay.log" || tail -n 5 "$art/replay.log"
            bad="$bad ${r##*/}"
        fi
    done
    if [ -n "$bad" ]; then
        status=1
        lines="$lines|$t: REGRESSIONS FAIL:$bad"
        continue
    fi

    echo "== fuzz: $t for $secs s ($(ls "$corpus" | wc -l) seeds)"
    log=$build/fuzz/$t.log
    "$exe" $flags $dict -max_total_time="$secs" -artifact_prefix="$art/$t-" "$work" "$corpus" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n 1)
    if [ $rc = 0 ]; then
        lines="$lines|$t $secs s, ${runs:-?} runs, no crash"
    else
        status=1
        unit=$(sed -n 's/.*Test unit written to \(.*\)/\1/p' "$log" | tail -n 1)
        grep -E -A 12 '^==[0-9]+==ERROR|runtime error|fuzz target exited|internal compiler error|^fuzz_' "$log" | head -n 30
        echo "fuzz: $t: crash input ${unit:-(see $log)}; save it under tests/fuzz/regressions/$t/"
        lines="$lines|$t CRASH (${unit:-see $log})"
    fi
done
echo "fuzz: $(echo "${lines#|}" | sed 's/|/; /g')"
exit $status
