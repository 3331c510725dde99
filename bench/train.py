#!/usr/bin/python3
"""Training throughput, dlc vs PyTorch (eager, CPU) in the same run: the digits MLP and the digits
CNN of examples/, same batch size, optimizer, schedule and clipping, samples per second of the
training batches (validation excluded), the median over epochs after the first (which holds
dlc's JIT compile and PyTorch's warm-up). Run through bench/run_train.sh, which removes
OPENBLAS_CORETYPE for PyTorch's sake.

usage: train.py DLC EXAMPLES_DIR [EPOCHS]
"""
import gzip
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
from torch import nn


def digits(examples):
    d = np.loadtxt(gzip.open(os.path.join(examples, "digits/data/digits_train.csv.gz")), delimiter=",")
    return (torch.tensor((d[:, :-1] / 16).astype(np.float32)), torch.tensor(d[:, -1].astype(np.int64)))


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(64, 128), nn.Linear(128, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class Cnn(nn.Module):
    def __init__(self, c=16):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, c, 3, padding=1), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, 2 * c, 3, padding=1), nn.BatchNorm2d(2 * c)
        self.fc = nn.Linear(2 * c * 4, 10)

    def forward(self, x):
        h = x.reshape(-1, 1, 8, 8)
        h = nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(h))), 2)
        h = nn.functional.max_pool2d(torch.relu(self.bn2(self.conv2(h))), 2)
        return self.fc(h.reshape(h.shape[0], -1))


def torch_rate(model, x, y, epochs, holdout, batch=64, warmup=50):
    """The train blocks of the examples: adamw(3e-3, 0.01), cosine(warmup), clip 1.0; the CNN holds
    out 10% of the rows, the MLP validates on its own file (data/digits_test.csv) and trains on all."""
    n = x.shape[0]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    tr = perm[: n - round(holdout * n)]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    steps = epochs * math.ceil(len(tr) / batch)
    lr = lambda s: s / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * min(1, (s - warmup) / max(1, steps - warmup))))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr)
    rates = []
    for e in range(epochs):
        order = tr[torch.randperm(len(tr), generator=torch.Generator().manual_seed(e))]
        model.train()
        t0 = time.perf_counter()
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
        rates.append(len(order) / (time.perf_counter() - t0))
    return statistics.median(rates[1:])


def dlc_rate(dlc, dl_file, epochs):
    with tempfile.TemporaryDirectory() as d:
        log = os.path.join(d, "log.jsonl")
        subprocess.run([dlc, "run", dl_file, "--epochs", str(epochs), "--quiet", "--log", log], check=True)
        rates = [json.loads(l)["samples_per_s"] for l in open(log) if '"event": "epoch"' in l]
    return statistics.median(rates[1:])


def main():
    dlc, examples = sys.argv[1], sys.argv[2]
    epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 6
    torch.set_num_threads(int(os.environ.get("DLC_NUM_THREADS", os.cpu_count())))
    x, y = digits(examples)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; median samples/s over epochs 2..{epochs}")
    print(f"{'model':<12}{'dlc':>12}{'pytorch':>12}{'dlc/pytorch':>14}")
    for name, model, dl, holdout in (("digits MLP", Mlp(), "digits/train.dl", 0.0),
                                     ("digits CNN", Cnn(), "cnn/cnn.dl", 0.1)):
        ours = dlc_rate(dlc, os.path.join(examples, dl), epochs)
        theirs = torch_rate(model, x, y, epochs, holdout)
        print(f"{name:<12}{ours:>12.0f}{theirs:>12.0f}{ours / theirs:>14.2f}")


if __name__ == "__main__":
    main()
