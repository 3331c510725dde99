#!/usr/bin/python3
"""PyTorch as the referee of `dlc run`'s training step (passes/train_step.c): the same model, from
the same initial weights, on the same batches, with the same optimizer, schedule and clipping,
must give the same per-step losses, learning rates and gradient norms, to float32 rounding.

For each configuration the script writes a small .dl file (the digits MLP, Linear(64, 32) ->
relu -> Linear(32, 10); `shuffle = false` and no `valid`, so the batches are rows 0..31, 32..63,
... in file order, the last partial batch included, and every epoch repeats that order), makes
the initial weights with torch (nn.Linear's init, torch.manual_seed) and writes them to a
safetensors file, runs `dlc run model.dl --weights init.safetensors --steps 60 --log log.jsonl`,
then trains the same model in float32 with torch.optim's own optimizers (the single-tensor path),
torch.nn.utils.clip_grad_norm_ and torch.optim.lr_scheduler's classes (cosine with warm-up, which
PyTorch has no class for, is the formula of SPEC section 4), and compares step by step:

  |loss_dlc - loss_torch| <= 1e-5 * max(1, |loss_torch|) at every step; the learning rate
  within f32 rounding (1e-7 relative: dlc logs it as f32); the gradient norm before clipping
  within 1e-5 relative (only at micro-batches that end an optimizer step).

Two known differences between dlc's schedules and PyTorch's classes are set explicitly in the
torch run: OneCycleLR and CyclicLR cycle SGD's momentum by default (cycle_momentum=True), dlc's
one_cycle and cyclic change only the learning rate, so the torch side passes
cycle_momentum=False.

usage: parity.py DLC DIGITS.csv.gz [-O MODE] [NAME...]   (-O: dlc's compile mode, docs/modes.md;
       NAMEs: run only those configurations)
Prints one line per configuration and exits non-zero when any disagrees.
"""
import gzip
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch

STEPS = 60
BATCH = 32
TOL = 1e-5

MODEL = """
model Mlp() {
  fc1 = Linear(64, 32)
  fc2 = Linear(32, 10)

  fn forward(x: f32[N, 64]) -> f32[N, 10] {
    return fc2(relu(fc1(x)))
  }
}

train Mlp() {
  data      = csv("%(data)s", label=-1, scale=1/16)
  batch     = %(batch)d
  shuffle   = false
  epochs    = 1
  loss      = %(loss)s
  metrics   = [accuracy(model(x), y)]
  optimizer = %(optimizer)s
  schedule  = %(schedule)s
  clip_grad = %(clip)s
  accumulate = %(accumulate)d
  seed      = 0
}
"""

CE = "cross_entropy(model(x), y)"
MSE = "mse_loss(softmax(model(x), dim=1), one_hot(y, 10) as f32)"


def cosine_warmup(lr, warmup, min_lr=0.0, total=STEPS):
    """SPEC section 4's cosine(warmup, min_lr): the lr of optimizer step s (0-based)."""
    def f(s):
        if s < warmup:
            return lr * s / max(1, warmup)
        pct = min(1.0, (s - warmup) / max(1, total - warmup))
        return min_lr + (lr - min_lr) * 0.5 * (1 + math.cos(math.pi * pct))
    return f


def sgd(**kw):
    return lambda groups: torch.optim.SGD(groups, foreach=False, **kw)


def adam(**kw):
    return lambda groups: torch.optim.Adam(groups, foreach=False, **kw)


def adamw(**kw):
    return lambda groups: torch.optim.AdamW(groups, foreach=False, **kw)


def rmsprop(**kw):
    return lambda groups: torch.optim.RMSprop(groups, foreach=False, **kw)


def adagrad(**kw):
    return lambda groups: torch.optim.Adagrad(groups, foreach=False, **kw)


S = torch.optim.lr_scheduler

# Each configuration: name; opt, sched, loss, clip, accumulate (default 1): the .dl settings;
# torch_opt (param groups -> optimizer); torch_sched (optimizer -> lr_scheduler, or None) or lr_fn
# (optimizer step -> lr, set before each step); wd: weight decay, given per param group, of every
# parameter not named in no_decay (whose weight decay is 0). Seeds: the configuration's index.
CONFIGS = [
    dict(name="sgd-nesterov-step",
         opt="sgd(lr=0.1, momentum=0.9, nesterov=true, weight_decay=5e-4)",
         sched="step(every=20, gamma=0.5)", loss=CE, clip=1.0,
         torch_opt=sgd(lr=0.1, momentum=0.9, nesterov=True), wd=5e-4,
         torch_sched=lambda o: S.StepLR(o, step_size=20, gamma=0.5)),
    dict(name="adamw-cosine-nodecay",
         opt='adamw(lr=3e-3, weight_decay=0.01, no_decay=["*.bias"])',
         sched="cosine(warmup=10)", loss=CE, clip=1.0,
         torch_opt=adamw(lr=3e-3), wd=0.01, no_decay=("fc1.bias", "fc2.bias"),
         lr_fn=cosine_warmup(3e-3, 10)),
    dict(name="adam-cosine-minlr",
         opt="adam(lr=3e-3, eps=1e-6)", sched="cosine(min_lr=3e-4)", loss=CE, clip=0.5,
         torch_opt=adam(lr=3e-3, eps=1e-6), lr_fn=cosine_warmup(3e-3, 0, min_lr=3e-4)),
    dict(name="adam-amsgrad-exponential",
         opt="adam(lr=2e-3, betas=[0.8, 0.99], weight_decay=1e-3, amsgrad=true)",
         sched="exponential(gamma=0.98)", loss=CE, clip=1.0,
         torch_opt=adam(lr=2e-3, betas=(0.8, 0.99), amsgrad=True), wd=1e-3,
         torch_sched=lambda o: S.ExponentialLR(o, gamma=0.98)),
    dict(name="rmsprop-centered-multistep",
         opt="rmsprop(lr=1e-3, momentum=0.9, centered=true, weight_decay=1e-4)",
         sched="multistep(milestones=[15, 40], gamma=0.3)", loss=CE, clip=1.0,
         torch_opt=rmsprop(lr=1e-3, momentum=0.9, centered=True), wd=1e-4,
         torch_sched=lambda o: S.MultiStepLR(o, milestones=[15, 40], gamma=0.3)),
    dict(name="rmsprop-plain-constant",
         opt="rmsprop(lr=2e-3, alpha=0.9)", sched="constant()", loss=CE, clip=0,
         torch_opt=rmsprop(lr=2e-3, alpha=0.9), torch_sched=None),
    dict(name="adagrad-constant",
         opt="adagrad(lr=0.05, lr_decay=0.01, weight_decay=1e-4)",
         sched="constant()", loss=CE, clip=1.0,
         torch_opt=adagrad(lr=0.05, lr_decay=0.01), wd=1e-4, torch_sched=None),
    dict(name="sgd-momentum-accumulate2",
         opt="sgd(lr=0.05, momentum=0.9)", sched="constant()", loss=CE, clip=1.0, accumulate=2,
         torch_opt=sgd(lr=0.05, momentum=0.9), torch_sched=None),
    dict(name="sgd-one-cycle",
         opt="sgd(lr=0.01)", sched="one_cycle(max_lr=0.5, pct_start=0.25)", loss=CE, clip=1.0,
         torch_opt=sgd(lr=0.01),
         torch_sched=lambda o: S.OneCycleLR(o, max_lr=0.5, total_steps=STEPS, pct_start=0.25,
                                            cycle_momentum=False)),
    dict(name="sgd-cyclic",
         opt="sgd(lr=0.01)", sched="cyclic(lo=1e-3, hi=0.2, period=20)", loss=CE, clip=1.0,
         torch_opt=sgd(lr=0.01),
         torch_sched=lambda o: S.CyclicLR(o, base_lr=1e-3, max_lr=0.2, step_size_up=10,
                                          cycle_momentum=False)),
    dict(name="mse-sgd-dampening",
         opt="sgd(lr=2.0, momentum=0.8, dampening=0.2)", sched="constant()", loss=MSE, clip=0,
         torch_opt=sgd(lr=2.0, momentum=0.8, dampening=0.2), torch_sched=None),
]


class Mlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(64, 32)
        self.fc2 = torch.nn.Linear(32, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def write_safetensors(path, tensors):
    """u64 LE header length, the JSON header padded with spaces to a multiple of 8, the data."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        b = t.detach().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def batches(x, y, n):
    """The first n batches: file order, the last partial batch included, epochs repeating."""
    out, i = [], 0
    while len(out) < n:
        out.append((x[i:i + BATCH], y[i:i + BATCH]))
        i += BATCH
        if i >= len(x):
            i = 0
    return out


def loss_of(kind, logits, y):
    if kind == CE:
        return torch.nn.functional.cross_entropy(logits, y)
    target = torch.nn.functional.one_hot(y, 10).to(torch.float32)
    return torch.nn.functional.mse_loss(torch.softmax(logits, dim=1), target)


def torch_run(cfg, init, x, y):
    """(losses, lrs, grad norms) of torch training the same model: one entry per micro-batch."""
    model = Mlp()
    model.load_state_dict(init)
    no_decay = set(cfg.get("no_decay", ()))
    wd = cfg.get("wd", 0.0)
    named = list(model.named_parameters())
    groups = [{"params": [p for n, p in named if n not in no_decay], "weight_decay": wd}]
    if no_decay:
        groups.append({"params": [p for n, p in named if n in no_decay], "weight_decay": 0.0})
    opt = cfg["torch_opt"](groups)
    sched = cfg["torch_sched"](opt) if cfg.get("torch_sched") else None
    lr_fn = cfg.get("lr_fn")
    acc = cfg.get("accumulate", 1)
    params = [p for _, p in named]
    losses, lrs, norms = [], [], []
    for i, (xb, yb) in enumerate(batches(x, y, STEPS * acc)):
        step = i // acc
        if lr_fn:
            for g in opt.param_groups:
                g["lr"] = lr_fn(step)
        loss = loss_of(cfg["loss"], model(xb), yb)
        (loss / acc if acc > 1 else loss).backward()
        losses.append(loss.item())
        lrs.append(opt.param_groups[0]["lr"])
        if (i + 1) % acc:
            norms.append(None)      # dlc's norm of a partial accumulation: not compared
            continue
        if cfg["clip"] > 0:
            norm = torch.nn.utils.clip_grad_norm_(params, cfg["clip"])
        else:
            norm = torch.norm(torch.stack([p.grad.norm() for p in params]))
        norms.append(norm.item())
        opt.step()
        opt.zero_grad()
        if sched:
            sched.step()
    return losses, lrs, norms


def dlc_run(cfg, dlc, csv, tmp, init, mode):
    name = cfg["name"]
    src = os.path.join(tmp, name + ".dl")
    with open(src, "w") as f:
        f.write(MODEL % dict(data=os.path.abspath(csv), batch=BATCH, loss=cfg["loss"],
                             optimizer=cfg["opt"], schedule=cfg["sched"], clip=repr(cfg["clip"]),
                             accumulate=cfg.get("accumulate", 1)))
    weights = os.path.join(tmp, name + ".init.safetensors")
    write_safetensors(weights, init)
    log = os.path.join(tmp, name + ".log.jsonl")
    cmd = [dlc, "run", src, "--weights", weights, "--steps", str(STEPS), "--log", log, "--quiet", "-O", mode]
    p = subprocess.run(cmd, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode:
        raise RuntimeError("%s failed (%d):\n%s" % (" ".join(cmd), p.returncode, p.stdout))
    steps = [json.loads(l) for l in open(log) if l.strip()]
    steps = [s for s in steps if s.get("event") == "step"]
    return [s["loss"] for s in steps], [s["lr"] for s in steps], [s["grad_norm"] for s in steps]


def rel(a, b):
    """|a - b| relative to |b| (absolute where b is 0)."""
    return abs(a - b) / abs(b) if b else abs(a)


# What may differ: the loss by float32 rounding (accumulated over the run), at most
# 1e-5 * max(1, |loss|); the learning rate, computed in f64 by both and logged by dlc as f32, by
# the f32 rounding; the gradient norm (dlc sums the squares in f64, torch in f32) by 1e-5.
def ok(what, d, t):
    if what == "loss":
        return abs(d - t) <= TOL * max(1.0, abs(t))
    return rel(d, t) <= (1e-7 if what == "lr" else TOL)


def main():
    if len(sys.argv) < 3:
        print(__doc__.split("usage: ")[1], file=sys.stderr)
        return 2
    dlc, csv, rest, mode = os.path.abspath(sys.argv[1]), sys.argv[2], sys.argv[3:], "default"
    if rest[:1] == ["-O"] and len(rest) > 1:
        mode, rest = rest[1], rest[2:]
    only = set(rest)
    torch.set_num_threads(1)
    data = np.loadtxt(gzip.open(csv), delimiter=",", dtype=np.float64)
    x = torch.tensor((data[:, :-1] / 16).astype(np.float32))
    y = torch.tensor(data[:, -1].astype(np.int64))
    failed = 0
    with tempfile.TemporaryDirectory(prefix="dlc-parity-") as tmp:
        for k, cfg in enumerate(CONFIGS):
            if only and cfg["name"] not in only:
                continue
            torch.manual_seed(k)
            init = Mlp().state_dict()
            d_loss, d_lr, d_norm = dlc_run(cfg, dlc, csv, tmp, init, mode)
            t_loss, t_lr, t_norm = torch_run(cfg, init, x, y)
            n = len(t_loss)
            problems = []
            if len(d_loss) != n:
                problems.append("dlc logged %d steps, torch ran %d" % (len(d_loss), n))
            worst = {"loss": 0.0, "lr": 0.0, "grad_norm": 0.0}
            for i in range(min(n, len(d_loss))):
                for what, d, t in (("loss", d_loss[i], t_loss[i]), ("lr", d_lr[i], t_lr[i]),
                                   ("grad_norm", d_norm[i], t_norm[i])):
                    if t is None:
                        continue
                    r = rel(d, t)
                    worst[what] = max(worst[what], r)
                    if not ok(what, d, t) and len(problems) < 6:
                        problems.append("batch %d: %s dlc %.9g torch %.9g (rel %.1e)" % (i + 1, what, d, t, r))
            acc = cfg.get("accumulate", 1)
            print("parity %s: %d steps%s, loss %.3f -> %.3f, max rel diff loss %.1e, lr %.1e, "
                  "grad_norm %.1e%s"
                  % (cfg["name"], n // acc, " (%d batches)" % n if acc > 1 else "", t_loss[0],
                     t_loss[-1], worst["loss"], worst["lr"], worst["grad_norm"],
                     " FAIL" if problems else ""))
            for p in problems:
                print("  " + p)
            failed += bool(problems)
    print("parity: %d of %d configurations agree" % (sum(1 for c in CONFIGS if not only or c["name"] in only) - failed,
                                                      sum(1 for c in CONFIGS if not only or c["name"] in only)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
