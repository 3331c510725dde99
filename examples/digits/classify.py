"""Classifies the held-out digits with the compiled model from Python: ctypes and numpy only, no
dlc. The same as classify.c, through the library `dlc train.dl -o libdigits.so` wrote.

    dlc run train.dl                 # trains, writes digits_mlp.safetensors
    dlc train.dl -o libdigits.so     # the library (and libdigits.h, which C needs, Python not)
    python3 classify.py . digits_mlp.safetensors data/digits_test.csv

Arguments: LIB, the library itself or the folder holding libdigits.so; WEIGHTS, a safetensors
file with the model's parameters (the trained ones, or a checkpoint); DIGITS, a CSV file with one
digit per line (64 pixel values 0..16, then the label).

It runs the model twice over the same numpy arrays, which the library reads and writes where
they are (no copies): once through the typed entry mlp_forward (raw pointers, the batch size as
an argument), once through the DLPack entry mlp_call (DLTensor descriptors), and checks that the
two give the same logits bit for bit. Any error the library reports ends it with the message and
exit status 1. docs/aot.md describes the ABI.
"""
import argparse
import ctypes
import os
import sys

try:
    import numpy as np
except ImportError:
    sys.exit("classify.py: needs numpy (Debian: apt-get install python3-numpy, /usr/bin/python3)")

PIXELS, CLASSES = 64, 10


# DLPack's descriptors (dlpack.h v0.8 and later), as libdigits.h declares them.
class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


KDLCPU, KDLFLOAT = 1, 2


def dltensor(a):
    """A DLTensor over numpy array `a` (C-contiguous float32), sharing its memory. The descriptor
    holds its shape array; pass the descriptor itself (byref), not a copy, to keep both alive."""
    assert a.dtype == np.float32 and a.flags.c_contiguous
    shape = (ctypes.c_int64 * a.ndim)(*a.shape)
    t = DLTensor(data=a.ctypes.data, device=DLDevice(KDLCPU, 0), ndim=a.ndim,
                 dtype=DLDataType(KDLFLOAT, 32, 1), shape=shape,
                 strides=None, byte_offset=0)   # strides NULL: compact row-major
    t._keep = shape
    return t


class Mlp(ctypes.Structure):
    """The opaque instance (typedef struct mlp mlp)."""


def load_library(path):
    """The library and its prototypes, as libdigits.h declares them."""
    if os.path.isdir(path):
        path = os.path.join(path, "libdigits.so")
    try:
        lib = ctypes.CDLL(os.path.abspath(path))   # a path, so the system's search is not used
    except OSError as e:
        sys.exit(f"classify.py: {e}")
    if not hasattr(lib, "mlp_create"):
        sys.exit(f"classify.py: {path}: no mlp_create: not a library of the digits MLP")
    m, f32p = ctypes.POINTER(Mlp), ctypes.POINTER(ctypes.c_float)
    lib.mlp_create.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.mlp_create.restype = m
    lib.mlp_destroy.argtypes = [m]
    lib.mlp_destroy.restype = None
    lib.mlp_last_error.argtypes = [m]
    lib.mlp_last_error.restype = ctypes.c_char_p
    lib.mlp_forward.argtypes = [m, ctypes.c_int64, f32p, f32p]
    lib.mlp_forward.restype = ctypes.c_int
    lib.mlp_call.argtypes = [m, ctypes.c_char_p, ctypes.POINTER(DLTensor), ctypes.c_int32,
                             ctypes.POINTER(DLTensor), ctypes.c_int32]
    lib.mlp_call.restype = ctypes.c_int
    return lib


def read_digits(path):
    """x as float32 [n, 64] scaled to [0, 1] (the train block's scale=1/16), and the labels."""
    try:
        d = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, ValueError) as e:
        sys.exit(f"classify.py: {path}: {e}")
    if d.shape[1] != PIXELS + 1:
        sys.exit(f"classify.py: {path}: expected {PIXELS + 1} comma-separated integers per line")
    x = np.ascontiguousarray(d[:, :PIXELS], dtype=np.float32) / np.float32(16)
    return x, d[:, PIXELS]


def main():
    ap = argparse.ArgumentParser(description="Classify digits with the dlc-compiled MLP.")
    ap.add_argument("lib", metavar="LIB", help="libdigits.so, or the folder holding it")
    ap.add_argument("weights", metavar="WEIGHTS", help="the trained weights (safetensors)")
    ap.add_argument("digits", metavar="DIGITS", help="CSV: 64 pixel values 0..16, then the label")
    args = ap.parse_args()

    lib = load_library(args.lib)
    x, labels = read_digits(args.digits)
    n = x.shape[0]

    err = ctypes.create_string_buffer(512)
    m = lib.mlp_create(os.fsencode(args.weights), err, len(err))
    if not m:
        sys.exit(f"classify.py: mlp_create: {err.value.decode()}")
    try:
        def check(rc, entry):
            if rc != 0:
                sys.exit(f"classify.py: {entry}: error {rc}: {lib.mlp_last_error(m).decode()}")

        # The typed entry: the symbolic dimension B first, then the pointers; the library writes
        # the logits into the caller's array.
        f32p = ctypes.POINTER(ctypes.c_float)
        logits = np.empty((n, CLASSES), dtype=np.float32)
        rc = lib.mlp_forward(m, n, x.ctypes.data_as(f32p), logits.ctypes.data_as(f32p))
        check(rc, "mlp_forward")

        # The DLPack entry: descriptors over the same input and a second output array; B comes
        # from the input's shape. One input and one result, so each "array" is one descriptor.
        logits2 = np.empty_like(logits)
        xt, yt = dltensor(x), dltensor(logits2)
        rc = lib.mlp_call(m, b"forward", ctypes.byref(xt), 1, ctypes.byref(yt), 1)
        check(rc, "mlp_call")
        if not np.array_equal(logits, logits2):
            sys.exit("classify.py: mlp_forward and mlp_call disagree")
    finally:
        lib.mlp_destroy(m)

    correct = int((logits.argmax(axis=1) == labels).sum())
    accuracy = correct / n if n else 0.0
    print(f"classify.py: {correct} of {n} held-out digits right: accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
