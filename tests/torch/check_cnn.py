#!/usr/bin/python3
"""The CNN example's weights in PyTorch: the file dlc saved loads into the equivalent torch model
unchanged (strict load_state_dict: running statistics and num_batches_tracked included), and in
eval mode it gives the logits of `dlc run cnn.dl --entry Cnn.forward` with the same weights.

usage: check_cnn.py make X.npy DIGITS.csv.gz | check WEIGHTS.safetensors X.npy DLC_LOGITS.npy
"""
import gzip
import json
import struct
import sys

import numpy as np
import torch
from torch import nn

DTYPES = {"F32": "<f4", "I64": "<i8"}


def load_safetensors(path):
    blob = open(path, "rb").read()
    n = struct.unpack("<Q", blob[:8])[0]
    out = {}
    for name, t in json.loads(blob[8:8 + n]).items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        a = np.frombuffer(blob[8 + n + b:8 + n + e], dtype=DTYPES[t["dtype"]]).reshape(t["shape"])
        out[name] = torch.tensor(a.copy())
    return out


class Cnn(nn.Module):
    def __init__(self, c=16):
        super().__init__()
        self.conv1 = nn.Conv2d(1, c, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, 2 * c, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(2 * c)
        self.fc = nn.Linear(2 * c * 2 * 2, 10)

    def forward(self, x):
        h = x.reshape(-1, 1, 8, 8)
        h = nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(h))), 2)
        h = nn.functional.max_pool2d(torch.relu(self.bn2(self.conv2(h))), 2)
        return self.fc(h.reshape(h.shape[0], -1))


def main():
    if sys.argv[1] == "make":
        d = np.loadtxt(gzip.open(sys.argv[3]), delimiter=",")[:200]
        np.save(sys.argv[2], (d[:, :-1] * (1 / 16)).astype(np.float32))
        return 0
    weights, x, ref = sys.argv[2:5]
    model = Cnn()
    model.load_state_dict(load_safetensors(weights), strict=True)
    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor(np.load(x)))
    diff = (logits - torch.tensor(np.load(ref))).abs().max().item()
    print(f"cnn: strict load_state_dict ok; max |logits torch - dlc| {diff:.2e}")
    print("PASS" if diff < 1e-4 else "FAIL")
    return 0 if diff < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
