#!/usr/bin/python3
"""losses.py LOG.jsonl LOSSES.txt [--skip K] [--rtol R]: the per-step losses of `dlc run --log` against
those a C program printed ("step I loss L" lines, I from 1), skipping the program's first K steps
(a log of a run resumed after K steps). Prints how many were compared and the largest relative
difference; exits 1 when the counts differ or a difference is above R (default 1e-6)."""
import json
import sys


def main():
    args = sys.argv[1:]
    skip = int(args[args.index("--skip") + 1]) if "--skip" in args else 0
    rtol = float(args[args.index("--rtol") + 1]) if "--rtol" in args else 1e-6
    with open(args[0]) as f:
        logged = [json.loads(line)["loss"] for line in f if '"event": "step"' in line]
    with open(args[1]) as f:
        printed = [float(line.split()[3]) for line in f if line.startswith("step ") and " loss " in line]
    printed = printed[skip:]
    if len(logged) != len(printed) or not logged:
        print("losses: the log has %d steps, the program %d" % (len(logged), len(printed)))
        return 1
    worst = max(abs(a - b) / max(abs(b), 1e-30) for a, b in zip(logged, printed))
    ok = worst <= rtol
    print("losses: %d compared, max relative difference %.3g: %s" % (len(logged), worst, "ok" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
