#!/usr/bin/python3
"""External referee for dlc's safetensors writer (runtime/safetensors.c): the bytes must be those
the reference implementation (huggingface/safetensors) writes for the same tensors.

For each FILE this script reads the tensors (name, dtype, shape, bytes) and metadata back with
its own small parser, serializes them again with a writer that follows the reference's rules,
and requires the result to equal FILE byte for byte. The rules (safetensors/src/tensor.rs,
`prepare` and `Metadata::serialize`; TOOLCHAIN.md section 6):

  * u64 little-endian header length N, N bytes of compact JSON, then the data;
  * `__metadata__` first when there is any; then the tensors, sorted by dtype in *descending*
    order of the Dtype enum (BOOL < U8 < I8 < F8_E5M2 < F8_E4M3 < I16 < U16 < F16 < BF16 < I32 <
    U32 < F32 < F64 < I64 < U64, i.e. alignment), ties broken by name (bytewise);
  * each entry {"dtype","shape","data_offsets"} in that key order, offsets contiguous from 0;
  * strings escaped as serde_json does (json.dumps with ensure_ascii=False escapes the same way);
  * the JSON padded with spaces to a multiple of 8 bytes.

Where the `safetensors` package is importable the bytes are also compared with its own
`serialize` (only for files with at most one metadata key: the reference keeps metadata in a
hash map, so the order of several keys is not defined).

usage: st_reference.py FILE...
Prints one line per file; exits 0 only when every file matches.
"""
import json
import struct
import sys

DTYPES = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16", "BF16", "I32", "U32",
          "F32", "F64", "I64", "U64"]
SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2,
         "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "F64": 8, "I64": 8, "U64": 8}
# The dtype names the Python binding's serialize() takes.
BINDING_NAMES = {"BOOL": "bool", "U8": "uint8", "I8": "int8", "F8_E5M2": "float8_e5m2",
                 "F8_E4M3": "float8_e4m3fn", "I16": "int16", "U16": "uint16", "F16": "float16",
                 "BF16": "bfloat16", "I32": "int32", "U32": "uint32", "F32": "float32",
                 "F64": "float64", "I64": "int64", "U64": "uint64"}


def parse(blob):
    """(metadata dict or None, {name: (dtype, shape, bytes)}) of a safetensors file."""
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    meta = header.pop("__metadata__", None)
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        numel = 1
        for d in info["shape"]:
            numel *= d
        assert end - begin == numel * SIZES[info["dtype"]], name
        tensors[name] = (info["dtype"], list(info["shape"]), data[begin:end])
    return meta, tensors


def reference_bytes(meta, tensors):
    """What the reference writer produces for these tensors and metadata."""
    order = sorted(tensors, key=lambda k: k.encode("utf-8"))
    order.sort(key=lambda k: DTYPES.index(tensors[k][0]), reverse=True)   # stable: names stay sorted
    header = {}
    if meta is not None:
        header["__metadata__"] = meta
    offset = 0
    for name in order:
        dtype, shape, data = tensors[name]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(tensors[k][2] for k in order)


def package_bytes(meta, tensors):
    """The safetensors package's own bytes, or None where it is missing or cannot decide."""
    try:
        import safetensors
    except ImportError:
        return None
    if meta is not None and len(meta) > 1:
        return None
    flat = {k: {"dtype": BINDING_NAMES[d], "shape": s, "data": b} for k, (d, s, b) in tensors.items()}
    return bytes(safetensors.serialize(flat, metadata=meta))


def first_difference(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[-3], file=sys.stderr)
        return 2
    status = 0
    for path in argv[1:]:
        with open(path, "rb") as f:
            blob = f.read()
        meta, tensors = parse(blob)
        for who, want in (("reference rules", reference_bytes(meta, tensors)),
                          ("safetensors package", package_bytes(meta, tensors))):
            if want is None:
                continue
            if want == blob:
                print(f"{path}: matches {who} ({len(blob)} bytes)")
            else:
                i = first_difference(want, blob)
                print(f"{path}: differs from {who} at byte {i}: "
                      f"want {want[max(0, i - 16):i + 16]!r}, got {blob[max(0, i - 16):i + 16]!r}")
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
