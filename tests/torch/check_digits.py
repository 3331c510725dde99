#!/usr/bin/python3
"""The trained digits MLP in PyTorch: the weights dlc saved load into the equivalent torch model
unchanged (load_state_dict, strict), its logits match `dlc run --entry Mlp.forward` with the same
weights, and it classifies the digits as well as dlc's log says.

usage: check_digits.py WEIGHTS.safetensors LOG.jsonl DIGITS.csv.gz DLC_LOGITS.npy
"""
import gzip
import json
import struct
import sys

import numpy as np
import torch


def load_safetensors(path):
    blob = open(path, "rb").read()
    n = struct.unpack("<Q", blob[:8])[0]
    header = json.loads(blob[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, t in header.items():
        assert t["dtype"] == "F32", (name, t["dtype"])
        b, e = t["data_offsets"]
        arr = np.frombuffer(blob[8 + n + b:8 + n + e], dtype="<f4").reshape(t["shape"])
        out[name] = torch.tensor(arr.copy())
    return out


class Mlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(64, 128)
        self.fc2 = torch.nn.Linear(128, 10)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


def main():
    weights, log, csv, dlc_logits = sys.argv[1:5]
    model = Mlp()
    model.load_state_dict(load_safetensors(weights), strict=True)
    data = np.loadtxt(gzip.open(csv), delimiter=",", dtype=np.float64)
    x = torch.tensor((data[:, :-1] * (1 / 16)).astype(np.float32))
    y = torch.tensor(data[:, -1].astype(np.int64))
    with torch.no_grad():
        logits = model(x)
    acc = (logits.argmax(1) == y).double().mean().item()
    ref = torch.tensor(np.load(dlc_logits))
    diff = (logits - ref).abs().max().item()
    epochs = [json.loads(l) for l in open(log) if '"epoch"' in l and '"event": "epoch"' in l]
    valid = epochs[-1]["valid_accuracy"]
    print(f"digits: torch accuracy on all {len(y)} samples {acc:.4f}; dlc held-out accuracy {valid:.4f}; "
          f"max |logits torch - dlc| {diff:.2e}")
    ok = acc >= 0.95 and valid >= 0.95 and diff < 1e-4
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
