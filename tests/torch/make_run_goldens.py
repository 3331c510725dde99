#!/usr/bin/python3
"""Goldens for the `dlc run --entry` tests (tests/lit/run/): PyTorch computes the expected outputs.

Writes into tests/lit/run/Inputs/:
  mlp.safetensors   the weights of the digits MLP (torch.nn.Linear layers, state_dict names)
  x.npy             a batch of 5 digit-like inputs
  mlp_out.npy       torch's output of the MLP on x
  small.dl inputs   (see the .dl files next to the tests)
Run with Debian's python3-torch: /usr/bin/python3 tests/torch/make_run_goldens.py
"""
import json
import os
import struct

import numpy as np
import torch

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lit", "run", "Inputs")


def save_safetensors(path, tensors):
    """The safetensors layout: u64 header length, JSON header (padded to 8 with spaces), data;
    tensors ordered by dtype alignment then name, as the reference writer does."""
    names = sorted(tensors, key=lambda k: (-tensors[k].element_size(), k))
    header, data, off = {}, b"", 0
    for k in names:
        b = tensors[k].contiguous().numpy().tobytes()
        dt = {torch.float32: "F32", torch.int64: "I64"}[tensors[k].dtype]
        header[k] = {"dtype": dt, "shape": list(tensors[k].shape), "data_offsets": [off, off + len(b)]}
        off += len(b)
        data += b
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + data)


def main():
    torch.manual_seed(0)
    mlp = torch.nn.Sequential()
    mlp.fc1 = torch.nn.Linear(64, 128)
    mlp.act = torch.nn.ReLU()
    mlp.fc2 = torch.nn.Linear(128, 10)
    sd = {k: v.detach() for k, v in mlp.state_dict().items()}
    save_safetensors(os.path.join(HERE, "mlp.safetensors"), sd)
    x = torch.rand(5, 64) * 16 / 16
    np.save(os.path.join(HERE, "x.npy"), x.numpy())
    with torch.no_grad():
        np.save(os.path.join(HERE, "mlp_out.npy"), mlp(x).numpy())

    # A two-result function: softmax and its argmax over rows, on an f64 input converted to f32.
    a = torch.randn(3, 7, dtype=torch.float64)
    np.save(os.path.join(HERE, "a.npy"), a.numpy())
    af = a.float()
    np.save(os.path.join(HERE, "softmax_out.npy"), torch.softmax(af, dim=1).numpy())
    np.save(os.path.join(HERE, "argmax_out.npy"), torch.argmax(af, dim=1).numpy())
    # A truncated file, for the error test.
    with open(os.path.join(HERE, "x.npy"), "rb") as f:
        raw = f.read()
    with open(os.path.join(HERE, "truncated.npy"), "wb") as f:
        f.write(raw[:200])


if __name__ == "__main__":
    main()
