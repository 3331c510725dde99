#!/usr/bin/python3
"""compare.py GOT.npy WANT.npy [--rtol R] [--atol A]: exit 0 when the arrays have the same shape
and dtype kind and agree within the tolerances; print the largest difference otherwise."""
import sys

import numpy as np


def main():
    args = sys.argv[1:]
    rtol = float(args[args.index("--rtol") + 1]) if "--rtol" in args else 1e-5
    atol = float(args[args.index("--atol") + 1]) if "--atol" in args else 1e-6
    got, want = np.load(args[0]), np.load(args[1])
    if got.shape != want.shape or got.dtype.kind != want.dtype.kind:
        print(f"compare: {args[0]} is {got.dtype}{list(got.shape)}, expected {want.dtype}{list(want.shape)}")
        return 1
    if not np.allclose(got, want, rtol=rtol, atol=atol):
        print(f"compare: max abs difference {np.max(np.abs(got.astype(np.float64) - want)):.3g}")
        return 1
    print(f"compare: {args[0]} matches ({got.dtype}{list(got.shape)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
