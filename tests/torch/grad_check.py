"""grad.test's inputs (`make DIR`) and its referee (`check DIR`): the values and gradients dlc
wrote, against PyTorch's autograd on the same inputs and parameters."""
import json
import struct
import sys

import numpy as np
import torch

PARAMS = {"fc.weight": (5, 3), "fc.bias": (5,), "ln.weight": (5,), "ln.bias": (5,)}


def write_safetensors(path, tensors):
    header, blobs, at = {}, [], 0
    for name, a in tensors.items():
        b = a.astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [at, at + len(b)]}
        blobs.append(b)
        at += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def make(d):
    r = np.random.RandomState(0)
    np.save(f"{d}/x.npy", r.randn(4, 3).astype(np.float32))
    np.save(f"{d}/w.npy", r.randn(3, 6).astype(np.float32))
    np.save(f"{d}/x5.npy", r.randn(6, 3).astype(np.float32))
    np.save(f"{d}/y5.npy", r.randint(0, 5, size=6).astype(np.int64))
    write_safetensors(f"{d}/net.safetensors",
                      {k: r.randn(*s).astype(np.float32) for k, s in PARAMS.items()})


def verdict(a, b):
    return "ok" if np.allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5) else "WRONG"


def read_safetensors(path):
    blob = open(path, "rb").read()
    n = struct.unpack("<Q", blob[:8])[0]
    out = {}
    for name, t in json.loads(blob[8:8 + n]).items():
        b, e = t["data_offsets"]
        out[name] = np.frombuffer(blob[8 + n + b:8 + n + e], dtype="<f4").reshape(t["shape"])
    return out


def check(d):
    x = torch.tensor(np.load(f"{d}/x.npy"), requires_grad=True)
    w = torch.tensor(np.load(f"{d}/w.npy"), requires_grad=True)
    h = torch.tanh(x @ w)
    loss = (torch.softmax(h, 1) * h).sum() + (torch.nn.functional.layer_norm(h, [6]) ** 3).mean()
    loss.backward()
    parts = ["loss " + verdict(loss.item(), np.load(f"{d}/f/0.npy"))]
    parts += [f"grad_{n} " + verdict(t.grad, np.load(f"{d}/f/grad_{n}.npy")) for n, t in (("x", x), ("w", w))]
    print("f: " + ", ".join(parts))

    p = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in read_safetensors(f"{d}/net.safetensors").items()}
    x5 = torch.tensor(np.load(f"{d}/x5.npy"), requires_grad=True)
    y5 = torch.tensor(np.load(f"{d}/y5.npy"))
    z = torch.nn.functional.gelu(x5 @ p["fc.weight"].T + p["fc.bias"])
    z = torch.nn.functional.layer_norm(z, [5], p["ln.weight"], p["ln.bias"])
    loss = torch.nn.functional.cross_entropy(z, y5, label_smoothing=0.1)
    loss.backward()
    same = True
    for run, label in (("net", "Net.loss"), ("net-ref", None)):
        parts = ["loss " + verdict(loss.item(), np.load(f"{d}/{run}/0.npy")),
                 "grad_x " + verdict(x5.grad, np.load(f"{d}/{run}/grad_x.npy"))]
        parts += [f"grad_{k} " + verdict(t.grad, np.load(f"{d}/{run}/grad_{k}.npy")) for k, t in p.items()]
        if label:
            print(f"{label}: " + ", ".join(parts))
        else:
            same = all(s.endswith("ok") for s in parts)
    print("Net.loss on the reference interpreter: " + ("the same" if same else "DIFFERENT"))


if __name__ == "__main__":
    {"make": make, "check": check}[sys.argv[1]](sys.argv[2])
