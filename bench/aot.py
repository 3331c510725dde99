#!/usr/bin/python3
"""The digits MLP's forward in PyTorch (eager, and TorchScript: torch.jit.trace + freeze, torch's
own ahead-of-time artifact in 1.13) with the weights dlc trained: microseconds per call at each
batch size, timed as bench/aot_forward.c times the AOT library (median of 7 samples of >= 20 ms of
back-to-back calls after a 0.2 s warm-up). Prints "BATCH eager_us script_us". Run through
bench/run_aot.sh.

usage: aot.py WEIGHTS.safetensors BATCH...
"""
import json
import os
import statistics
import struct
import sys
import time

import numpy as np
import torch
from torch import nn


def load_safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        assert t["dtype"] == "F32", name
        out[name] = torch.tensor(np.frombuffer(raw[8 + n + b:8 + n + e], dtype=np.float32).reshape(t["shape"]))
    return out


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(64, 128), nn.Linear(128, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def per_call(fn, x, samples=7):
    t_end = time.perf_counter() + 0.2
    while time.perf_counter() < t_end:
        fn(x)
    times = []
    for _ in range(samples):
        calls, t0 = 0, time.perf_counter()
        while True:
            fn(x)
            calls += 1
            t = time.perf_counter()
            if t - t0 >= 0.02:
                break
        times.append((t - t0) / calls)
    return 1e6 * statistics.median(times)


def main():
    torch.set_num_threads(int(os.environ.get("DLC_NUM_THREADS", os.cpu_count())))
    model = Mlp().eval()
    model.load_state_dict(load_safetensors(sys.argv[1]))
    with torch.no_grad():
        script = torch.jit.freeze(torch.jit.trace(model, torch.zeros(64, 64)).eval())
        for b in sys.argv[2:]:
            x = torch.tensor(np.random.RandomState(1).uniform(-1, 1, (int(b), 64)).astype(np.float32))
            print(f"{b} {per_call(model, x):.3f} {per_call(script, x):.3f}")


if __name__ == "__main__":
    main()
