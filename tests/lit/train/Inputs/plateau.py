"""plateau.py LOG.jsonl LR PATIENCE FACTOR: the learning rate of every epoch in dlc's log is the one
torch.optim.lr_scheduler.ReduceLROnPlateau gives when fed the same validation losses."""
import json
import sys

import torch

log, lr, patience, factor = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
events = [json.loads(l) for l in open(log)]
epoch_lr = {e["epoch"]: e["lr"] for e in events if e["event"] == "step" and e["batch"] == 1}
valid = [e["valid_loss"] for e in events if e["event"] == "epoch"]
opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, patience=patience, factor=factor)
want = []
for v in valid:
    want.append(opt.param_groups[0]["lr"])
    sched.step(v)
got = [epoch_lr[e + 1] for e in range(len(valid))]
ok = len(got) >= 4 and all(abs(a - b) <= 1e-6 * b for a, b in zip(got, want)) and len(set(want)) > 1
print("plateau:", "ok" if ok else f"MISMATCH dlc {got} torch {want}")
sys.exit(0 if ok else 1)
