#!/usr/bin/python3
"""digits_npy.py CSV FIRST COUNT X.npy [Y.npy]: rows FIRST .. FIRST+COUNT-1 of a digits CSV (64 pixels
0..16, then the label; .csv or .csv.gz) as x, float32 [COUNT, 64] scaled by 1/16 as the train blocks
do, and y, int64 [COUNT]. Plain Python (no NumPy), so the AOT tests need nothing else."""
import gzip
import struct
import sys


def write_npy(path, descr, shape, values, fmt):
    dims = "%d," % shape[0] if len(shape) == 1 else ", ".join("%d" % s for s in shape)
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (descr, dims)
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * (pad % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        f.write(struct.pack("<%d%s" % (len(values), fmt), *values))


def main():
    src, first, count, xpath = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    opener = gzip.open if src.endswith(".gz") else open
    with opener(src, "rt") as f:
        rows = [line.strip().split(",") for line in f if line.strip()][first:first + count]
    if len(rows) != count or any(len(r) != 65 for r in rows):
        sys.exit("digits_npy.py: %s has no %d rows of 65 values from row %d" % (src, count, first))
    write_npy(xpath, "<f4", (count, 64), [float(v) / 16 for r in rows for v in r[:64]], "f")
    if len(sys.argv) > 5:
        write_npy(sys.argv[5], "<i8", (count,), [int(r[64]) for r in rows], "q")


if __name__ == "__main__":
    main()
