#!/usr/bin/python3
"""st.py: safetensors files for the AOT tests, in plain Python.
  st.py diff A B [--atol T]    every tensor of B is in A with its dtype and shape, and the values
                               differ by at most T (default 0); prints the count and the largest
                               difference, exits 1 otherwise
  st.py drop IN OUT NAME       IN without tensor NAME
  st.py reshape IN OUT NAME    IN with tensor NAME's first dimension one shorter (data cut to fit)
  st.py list IN                names, dtypes and shapes
  st.py show IN NAME           tensor NAME's values
  st.py find IN NAME FILE      whether FILE holds tensor NAME's bytes (the first 256)"""
import json
import struct
import sys

FORMATS = {"F32": "f", "F64": "d", "I64": "q", "I32": "i"}


def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", None)
    data = raw[8 + n:]
    tensors = {}
    for name, t in header.items():
        begin, end = t["data_offsets"]
        tensors[name] = (t["dtype"], t["shape"], data[begin:end])
    return tensors, meta


def save(path, tensors, meta):
    header, blobs, off = {}, [], 0
    if meta is not None:
        header["__metadata__"] = meta
    for name, (dtype, shape, blob) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def values(dtype, blob):
    fmt = FORMATS[dtype]
    return struct.unpack("<%d%s" % (len(blob) // struct.calcsize(fmt), fmt), blob)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "diff":
        atol = float(args[args.index("--atol") + 1]) if "--atol" in args else 0.0
        a, _ = load(args[0])
        b, _ = load(args[1])
        worst = 0.0
        for name, (dtype, shape, blob) in b.items():
            if name not in a or a[name][:2] != (dtype, shape):
                print("st: %s: tensor '%s' is missing or of another dtype or shape" % (args[0], name))
                return 1
            worst = max([worst] + [abs(x - y) for x, y in zip(values(dtype, a[name][2]), values(dtype, blob))])
        ok = worst <= atol
        print("st: %d tensors, max abs difference %.3g: %s" % (len(b), worst, "ok" if ok else "FAIL"))
        return 0 if ok else 1
    tensors, meta = load(args[0])
    if cmd == "list":
        for name, (dtype, shape, _) in sorted(tensors.items()):
            print(name, dtype, shape)
        return 0
    if cmd == "find":
        with open(args[2], "rb") as f:
            print("%s: %s" % (args[1], "found" if tensors[args[1]][2][:256] in f.read() else "not found"))
        return 0
    if cmd == "show":
        print(args[1], list(values(tensors[args[1]][0], tensors[args[1]][2])))
        return 0
    name = args[2]
    dtype, shape, blob = tensors.pop(name)
    if cmd == "reshape":
        shape = [shape[0] - 1] + shape[1:]
        per = len(blob) // (shape[0] + 1)
        tensors[name] = (dtype, shape, blob[:per * shape[0]])
    save(args[1], tensors, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
