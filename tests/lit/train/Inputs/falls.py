"""falls.py LOG.jsonl STEPS DROP: the log has STEPS step records, every loss is finite, and the mean
loss of the last quarter is at least DROP below that of the first quarter."""
import json
import math
import sys

steps = [json.loads(l) for l in open(sys.argv[1]) if '"event": "step"' in l]
want, drop = int(sys.argv[2]), float(sys.argv[3])
losses = [s["loss"] for s in steps]
q = max(1, len(losses) // 4)
first, last = sum(losses[:q]) / q, sum(losses[-q:]) / q
print(f"{len(losses)} steps, loss {first:.4f} -> {last:.4f}")
ok = len(losses) == want and all(math.isfinite(x) for x in losses) and last <= first - drop
sys.exit(0 if ok else 1)
