#!/usr/bin/python3
"""External referee for dlc's shape inference: PyTorch decides.

For every op of ir/ops.def (except constant, assign and return) this script builds many cases
with concrete shapes and attribute settings, runs the PyTorch op on real tensors and compares
the result shapes and dtypes with what `dlc-opt` infers:

  * cases PyTorch accepts go, one function each (@case0, @case1, ...), into one big .dlir file
    that dlc-opt reads once; every inferred result type must equal PyTorch's;
  * cases PyTorch rejects (it raises) go into one small file each; dlc-opt must reject each of
    them with exit status 1 and an `error:` line (never a crash or another status).

Where dlc deliberately differs from PyTorch (ir/shape.c, ir/ops.def: no implicit dtype
promotion, operands of binary ops and losses must have equal dtypes/types, conv2d needs a 4-D
input, float-only ops reject integer operands, no bool arithmetic, ...) no case is generated.

usage: check_shapes.py DLC-OPT [-v]
  -v lists the cases per op and where PyTorch's verdict differs from the generator's guess;
  CHECK_SHAPES_KEEP=DIR keeps the generated .dlir files in DIR.
Prints `check_shapes: N cases, M mismatches`; exits 0 only without mismatches, 77 (skip) when
torch cannot be imported.
"""
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

try:
    import warnings

    warnings.filterwarnings("ignore")
    import torch
    import torch.nn.functional as F
except Exception as e:  # pragma: no cover - depends on the machine
    print(f"check_shapes: skipped, torch cannot be imported ({e})")
    sys.exit(77)

torch.manual_seed(0)

DTYPES = {
    torch.float32: "f32", torch.float64: "f64", torch.float16: "f16", torch.bfloat16: "bf16",
    torch.int8: "i8", torch.uint8: "u8", torch.int32: "i32", torch.int64: "i64",
    torch.bool: "bool",
}
TORCH_DT = {v: k for k, v in DTYPES.items()}


def type_str(t):
    """A tensor's type in dlc's syntax: f32[2, 3], or the bare dtype for rank 0."""
    dt = DTYPES[t.dtype]
    return f"{dt}[{', '.join(str(d) for d in t.shape)}]" if t.dim() else dt


# ---- tensors ------------------------------------------------------------------------------

def T(shape, dt="f32", lo=None, hi=None):
    """A tensor of `shape` and dlc dtype `dt`: floats in [0, 1) (or [lo, hi)), integers in
    [lo, hi) (default [0, 1): valid indices everywhere), bools at random."""
    shape = tuple(shape)
    td = TORCH_DT[dt]
    if dt == "bool":
        return torch.rand(shape) < 0.5
    if td.is_floating_point:
        x = torch.rand(shape, dtype=torch.float64)
        if lo is not None:
            x = lo + (hi - lo) * x
        return x.to(td)
    return torch.randint(0 if lo is None else lo, 1 if hi is None else hi, shape, dtype=td)


def I(shape, hi=1, dt="i64"):
    return T(shape, dt, 0, hi)


class DType:
    def __init__(self, name):
        self.name = name


def attr_str(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        s = repr(v)
        return s if any(c in s for c in ".ein") else s + ".0"
    if isinstance(v, str):
        return '"' + v + '"'
    if isinstance(v, DType):
        return v.name
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(attr_str(e) for e in v) + "]"
    raise TypeError(v)


# ---- cases --------------------------------------------------------------------------------

class Case:
    __slots__ = ("op", "ins", "attrs", "fn", "want", "expect", "ir", "nres", "error", "desc")


CASES = []


def case(op, ins, attrs, fn, nres=1, expect=None):
    """One case: dlc op `op` on tensors `ins` with attributes `attrs` (a dict, None values
    left out); fn(*ins) is the PyTorch reference returning a tensor or a tuple of them.
    `expect` ("ok"/"err") is only the generator's guess, reported with -v when PyTorch
    disagrees; PyTorch's verdict is what counts."""
    c = Case()
    c.op, c.ins, c.fn, c.nres, c.expect = op, ins, fn, nres, expect
    c.attrs = {k: v for k, v in (attrs or {}).items() if v is not None}
    CASES.append(c)
    return c


def ok(*a, **k):
    return case(*a, expect="ok", **k)


def bad(*a, **k):
    return case(*a, expect="err", **k)


def norm(d, r):
    return d + r if d < 0 else d


# -- elementwise, one operand

UNARY_FLOAT = {
    "exp": torch.exp, "log": torch.log, "log1p": torch.log1p, "sqrt": torch.sqrt,
    "rsqrt": torch.rsqrt, "sin": torch.sin, "cos": torch.cos, "tanh": torch.tanh,
    "sigmoid": torch.sigmoid, "silu": F.silu, "erf": torch.erf,
}
UNARY_ANY = {"neg": torch.neg, "abs": torch.abs, "relu": torch.relu, "sign": torch.sign,
             "floor": torch.floor, "ceil": torch.ceil, "round": torch.round}
SHAPES = [[], [5], [2, 3], [2, 1, 4], [1, 1, 1, 1, 2], [3, 0]]

for s in SHAPES:
    for name, f in UNARY_FLOAT.items():
        for dt in ("f32", "f64"):
            ok(name, [T(s, dt)], {}, f)
    for name, f in UNARY_ANY.items():
        for dt in ("f32", "f64", "i64", "i32"):
            ok(name, [T(s, dt, 0, 5)], {}, f)
    for dt in ("f32", "f64"):
        ok("leaky_relu", [T(s, dt)], {}, F.leaky_relu)
        ok("leaky_relu", [T(s, dt)], {"negative_slope": 0.2}, lambda x: F.leaky_relu(x, 0.2))
        ok("gelu", [T(s, dt)], {}, F.gelu)
        ok("gelu", [T(s, dt)], {"approximate": "tanh"}, lambda x: F.gelu(x, approximate="tanh"))
        ok("clamp", [T(s, dt)], {"min": 0.25}, lambda x: torch.clamp(x, min=0.25))
        ok("clamp", [T(s, dt)], {"max": 0.5}, lambda x: torch.clamp(x, max=0.5))
        ok("clamp", [T(s, dt)], {"min": -1.0, "max": 0.5}, lambda x: torch.clamp(x, -1.0, 0.5))
    for dt in ("i64", "i32"):
        # Integer-valued bounds: torch promotes an int tensor clamped by a float scalar.
        ok("clamp", [T(s, dt, 0, 9)], {"min": 2.0, "max": 5.0}, lambda x: torch.clamp(x, 2, 5))
    ok("not", [T(s, "bool")], {}, torch.logical_not)
for s in ([2, 3], []):
    bad("neg", [T(s, "bool")], {}, torch.neg)
    bad("abs", [T(s, "bool")], {}, torch.abs)

# -- elementwise, two and three operands

PAIRS = [([2, 3], [2, 3]), ([2, 3], [3]), ([3], [2, 3]), ([2, 1, 4], [3, 1]), ([], [2, 3]),
         ([2, 3], []), ([1], [4]), ([5, 1, 1], [1, 6, 1]), ([1, 1], [1]), ([4, 1, 3], [1, 2, 1]),
         ([], []), ([2, 0], [1]), ([1, 2, 1, 2, 1, 2], [2, 1, 2, 1, 2, 1])]
BAD_PAIRS = [([2, 3], [4, 3]), ([2, 3], [2]), ([3, 2], [2, 3]), ([2, 1, 4], [3, 3]),
             ([0], [2])]
BINARY = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div,
          "pow": torch.pow, "maximum": torch.maximum, "minimum": torch.minimum,
          "floor_div": torch.floor_divide, "mod": torch.remainder}
COMPARE = {"eq": torch.eq, "ne": torch.ne, "lt": torch.lt, "le": torch.le, "gt": torch.gt,
           "ge": torch.ge}
for a, b in PAIRS:
    for name, f in BINARY.items():
        for dt in ("f32", "f64") if name == "div" else ("f32", "f64", "i64", "i32"):
            ok(name, [T(a, dt, 1, 4), T(b, dt, 1, 4)], {}, f)
    for name, f in COMPARE.items():
        for dt in ("f32", "i64", "bool"):
            ok(name, [T(a, dt, 0, 3), T(b, dt, 0, 3)], {}, f)
    ok("and", [T(a, "bool"), T(b, "bool")], {}, torch.logical_and)
    ok("or", [T(a, "bool"), T(b, "bool")], {}, torch.logical_or)
for a, b in BAD_PAIRS:
    for name, f in BINARY.items():
        bad(name, [T(a, "f32"), T(b, "f32")], {}, f)
    for name, f in COMPARE.items():
        bad(name, [T(a, "f32"), T(b, "f32")], {}, f)
    bad("and", [T(a, "bool"), T(b, "bool")], {}, torch.logical_and)
    bad("or", [T(a, "bool"), T(b, "bool")], {}, torch.logical_or)
bad("sub", [T([2], "bool"), T([2], "bool")], {}, torch.sub)

TRIPLES = [([2, 3], [2, 3], [2, 3]), ([2, 1], [1, 3], [3]), ([], [2, 3], []),
           ([3], [2, 1], [1]), ([4, 1, 1], [1, 5, 1], [1, 1, 6]), ([2, 3], [], []),
           ([], [], [])]
for c_, a, b in TRIPLES:
    for dt in ("f32", "i64", "bool"):
        ok("where", [T(c_, "bool"), T(a, dt), T(b, dt)], {}, torch.where)
for c_, a, b in [([4], [2, 3], [3]), ([2, 3], [3, 2], [1]), ([2], [3], [3])]:
    bad("where", [T(c_, "bool"), T(a), T(b)], {}, torch.where)

# -- reductions

def full_dims(x, dims):
    return tuple(range(x.dim())) if dims is None else tuple(dims)


def red_sum(x, dims, keep):
    return torch.sum(x) if dims is None and not keep else torch.sum(x, full_dims(x, dims), keep)


def red_mean(x, dims, keep):
    return torch.mean(x) if dims is None and not keep else torch.mean(x, full_dims(x, dims), keep)


def red_max(x, dims, keep):
    return torch.amax(x, full_dims(x, dims), keep)


def red_min(x, dims, keep):
    return torch.amin(x, full_dims(x, dims), keep)


def red_prod(x, dims, keep):
    # torch.prod takes one dimension at a time.
    if dims is None and not keep:
        return torch.prod(x)
    torch.sum(x, full_dims(x, dims))  # let torch check the dimensions (range, repeats)
    ds = [norm(d, max(x.dim(), 1)) for d in full_dims(x, dims)]
    if not ds:
        return torch.prod(x)
    for d in sorted(ds, reverse=True):
        x = torch.prod(x, d if x.dim() else 0, keep)
    return x


def red_lse(x, dims, keep):
    return torch.logsumexp(x, full_dims(x, dims), keep)


REDUCE = {"sum": red_sum, "mean": red_mean, "max": red_max, "min": red_min, "prod": red_prod,
          "logsumexp": red_lse}
RED_INPUTS = [([], [None, [0], [-1]]),
              ([5], [None, [0], [-1]]),
              ([2, 3], [None, [0], [1], [-1], [0, 1], [-1, -2]]),
              ([2, 3, 4], [None, [0], [-1], [0, 2], [2, 0], [1, -1], [0, 1, 2]]),
              ([1, 4, 1, 2], [None, [2], [-4, 3], [1, 2]])]
RED_BAD = [([2, 3], [2]), ([2, 3], [-3]), ([2, 3], [0, 0]), ([2, 3], [1, -1]), ([], [1]),
           ([2, 3, 4], [0, 3])]
for s, dimss in RED_INPUTS:
    for dims in dimss:
        for keep in (False, True):
            attrs = {"dim": dims, "keepdim": keep}
            for name, f in REDUCE.items():
                for dt in ("f32", "i64", "i32") if name in ("sum", "max", "min", "prod") else ("f32", "f64"):
                    ok(name, [T(s, dt, 0, 3)], attrs, lambda x, f=f, d=dims, k=keep: f(x, d, k))
            for name, f in (("var", torch.var), ("std", torch.std)):
                for corr in (None, 0, 2):
                    ok(name, [T(s)], dict(attrs, correction=corr),
                       lambda x, f=f, d=dims, k=keep, c=corr:
                       f(x, None if d is None else tuple(d), correction=1 if c is None else c,
                         keepdim=k))
for s, dims in RED_BAD:
    for name, f in REDUCE.items():
        bad(name, [T(s)], {"dim": dims}, lambda x, f=f, d=dims: f(x, d, False))
    bad("var", [T(s)], {"dim": dims}, lambda x, d=dims: torch.var(x, tuple(d)))
    bad("std", [T(s)], {"dim": dims}, lambda x, d=dims: torch.std(x, tuple(d)))
# Zero-size inputs: PyTorch refuses max/min/argmax over an empty dimension (no identity).
for s, dims in (([0, 3], [0]), ([0, 3], [1]), ([0, 3], None), ([2, 0], [0])):
    for name, f in REDUCE.items():
        case(name, [T(s)], {"dim": dims}, lambda x, f=f, d=dims: f(x, d, False))
    for name, f in (("argmax", torch.argmax), ("argmin", torch.argmin)):
        d = None if dims is None else dims[0]
        case(name, [T(s)], {"dim": d}, lambda x, f=f, d=d: f(x, d))
bad("mean", [T([2, 3], "i64")], {}, torch.mean)
bad("mean", [T([2, 3], "i64")], {"dim": [0]}, lambda x: torch.mean(x, 0))

for s in ([], [5], [2, 3], [2, 3, 4], [3, 1, 2]):
    for dim in [None] + list(range(-len(s) or -1, len(s) or 1)):
        for keep in (False, True):
            for name, f in (("argmax", torch.argmax), ("argmin", torch.argmin)):
                for dt in ("f32", "i64"):
                    ok(name, [T(s, dt, 0, 9)], {"dim": dim, "keepdim": keep},
                       lambda x, f=f, d=dim, k=keep: f(x, d, k))
for s, dim in (([2, 3], 2), ([2, 3], -3), ([], 1), ([4], 1)):
    for name, f in (("argmax", torch.argmax), ("argmin", torch.argmin)):
        bad(name, [T(s)], {"dim": dim}, lambda x, f=f, d=dim: f(x, d))

# -- shape and data movement

for s, shapes in (([2, 3, 4], [[6, 4], [-1], [4, -1], [2, -1, 2], [24], [1, 24, 1], [-1, 1, 3],
                               [2, 3, 4], [3, 2, 2, 2]]),
                  ([1], [[], [1, 1, 1], [-1]]), ([], [[], [1], [1, -1, 1]]),
                  ([0, 3], [[3, 0], [0, -1], [0]])):
    for shp in shapes:
        for dt in ("f32", "i64", "bool"):
            ok("reshape", [T(s, dt)], {"shape": shp}, lambda x, p=shp: torch.reshape(x, p))
for s, shp in (([2, 3, 4], [5, 5]), ([2, 3, 4], [-1, -1]), ([2, 3, 4], [7, -1]),
               ([2, 3, 4], [2, -2, 6]), ([], [2])):
    bad("reshape", [T(s)], {"shape": shp}, lambda x, p=shp: torch.reshape(x, p))

for s, pairs in (([2, 3, 4], [(0, 1), (0, -1), (-1, -2), (1, 1), (2, 0)]),
                 ([], [(0, 0), (-1, 0), (0, -1)]), ([5], [(0, 0), (0, -1)])):
    for a, b in pairs:
        ok("transpose", [T(s)], {"dim0": a, "dim1": b}, lambda x, a=a, b=b: torch.transpose(x, a, b))
for s, (a, b) in (([2, 3, 4], (0, 3)), ([2, 3], (-3, 0)), ([], (1, 0))):
    bad("transpose", [T(s)], {"dim0": a, "dim1": b}, lambda x, a=a, b=b: torch.transpose(x, a, b))

for s, perms in (([2, 3, 4], [[2, 0, 1], [-1, 0, 1], [0, 1, 2], [1, 2, 0], [-3, -1, -2]]),
                 ([], [[]]), ([5], [[0], [-1]]), ([2, 1, 3, 1], [[3, 2, 1, 0]])):
    for p in perms:
        ok("permute", [T(s)], {"dims": p}, lambda x, p=p: x.permute(p))
for s, p in (([2, 3, 4], [0, 0, 1]), ([2, 3, 4], [0, 1]), ([2, 3, 4], [0, 1, 3]),
             ([2, 3, 4], [0, 1, 2, 3]), ([2, 3, 4], [0, -3, 1])):
    bad("permute", [T(s)], {"dims": p}, lambda x, p=p: x.permute(p))

for s, shapes in (([3, 1], [[3, 4], [2, 3, 4], [-1, 5], [2, -1, -1], [3, 1], [3, 0]]),
                  ([], [[2, 3], [1], []]), ([1], [[0], [4], [2, 1]]),
                  ([2, 1, 1], [[2, 3, 4], [5, 2, 1, 6], [-1, -1, 7]])):
    for shp in shapes:
        ok("expand", [T(s)], {"shape": shp}, lambda x, p=shp: x.expand(p))
        ok("broadcast_to", [T(s)], {"shape": shp}, lambda x, p=shp: torch.broadcast_to(x, p))
for s, shp in (([3, 1], [4, 4]), ([3, 1], [4]), ([3, 1], [-1, 3, 1]), ([2, 3], [2, 1]),
               ([3, 1], [3, -2])):
    bad("expand", [T(s)], {"shape": shp}, lambda x, p=shp: x.expand(p))
    bad("broadcast_to", [T(s)], {"shape": shp}, lambda x, p=shp: torch.broadcast_to(x, p))

for shapes, dims in (([[2, 3], [4, 3]], [0, -2, None]), ([[2, 3], [2, 5], [2, 1]], [1, -1]),
                     ([[3]], [0, -1, None]), ([[2, 3, 4], [2, 3, 4]], [0, 1, 2, -1]),
                     ([[2, 0], [2, 3]], [1]), ([[1], [2], [3], [4]], [0])):
    for d in dims:
        for dt in ("f32", "i64"):
            ok("concat", [T(s, dt) for s in shapes], {"dim": d},
               lambda *xs, d=d: torch.cat(xs, 0 if d is None else d))
for shapes, d in (([[2, 3], [2]], 0), ([[2, 3], [3, 3]], 1), ([[], []], 0), ([[2, 3], [2, 3]], 2),
                  ([[2, 3], [2, 3]], -3), ([[2, 3, 4], [2, 3, 5]], 1)):
    bad("concat", [T(s) for s in shapes], {"dim": d}, lambda *xs, d=d: torch.cat(xs, d))

for shape, n, dims in (([2, 3], 3, [0, 1, 2, -1, -3, None]), ([], 2, [0, -1]), ([4], 1, [0, 1, -2]),
                       ([1, 2, 1], 4, [3, -4])):
    for d in dims:
        for dt in ("f32", "bool"):
            ok("stack", [T(shape, dt) for _ in range(n)], {"dim": d},
               lambda *xs, d=d: torch.stack(xs, 0 if d is None else d))
for shapes, d in (([[2, 3], [3, 2]], 0), ([[2, 3], [2, 3]], 3), ([[2, 3], [2, 3]], -4),
                  ([[2], [2, 1]], 0)):
    bad("stack", [T(s) for s in shapes], {"dim": d}, lambda *xs, d=d: torch.stack(xs, d))

for shape, splits in (([5, 4], [([2, 3], 0), ([1, 1, 2], -1), ([0, 5], 0), ([4], 1), ([5], None),
                               ([1, 1, 1, 1], 1), ([2, 0, 2], 1)]),
                      ([6], [([1, 2, 3], 0), ([6], -1)])):
    for sizes, d in splits:
        ok("split", [T(shape)], {"sizes": sizes, "dim": d},
           lambda x, s=sizes, d=d: torch.split(x, s, 0 if d is None else d), nres=len(sizes))
for shape, sizes, d in (([5, 4], [2, 2], 0), ([5, 4], [3, 3], 0), ([5, 4], [4], 2),
                        ([5, 4], [2, 2], -3), ([5, 4], [5, 1], 1)):
    bad("split", [T(shape)], {"sizes": sizes, "dim": d},
        lambda x, s=sizes, d=d: torch.split(x, s, d), nres=len(sizes))


def torch_slice(x, d, start, end, step):
    if step <= 0:
        raise ValueError("step must be positive")
    idx = [slice(None)] * x.dim()
    idx[d] = slice(start, end, step)
    return x[tuple(idx)]


for shape, dims in (([10, 4], [0, -2, 1, -1]), ([7], [0]), ([3, 1, 5], [2])):
    for start, end, step in ((0, None, 1), (2, 8, 1), (-3, None, 1), (2, -2, 3), (-100, 100, 1),
                             (5, 2, 1), (8, 100, 4), (0, 10, 20), (None, -1, 2), (3, 3, 1),
                             (-1, None, 1), (0, -100, 1), (100, None, 1), (1, None, 2),
                             (-5, -2, 2)):
        for d in dims:
            ok("slice", [T(shape)], {"dim": d, "start": start, "end": end, "step": step},
               lambda x, d=d, a=start, b=end, s=step: torch_slice(x, d, a, b, s))
for shape, d, step in (([10, 4], 0, 0), ([10, 4], 1, -1), ([10, 4], 2, 1), ([10, 4], -3, 1)):
    bad("slice", [T(shape)], {"dim": d, "step": step},
        lambda x, d=d, s=step: torch_slice(x, norm(d, x.dim()) if -x.dim() <= d < x.dim()
                                           else x.dim() + 99, 0, None, s))


def torch_squeeze(x, dims):
    if dims is None:
        return torch.squeeze(x)
    r = x.dim()
    for d in sorted({norm(d, max(r, 1)) for d in dims}, reverse=True):
        x = torch.squeeze(x, d if r else dims[0])
    return x


for shape, dimss in (([1, 3, 1, 2], [None, [0], [1], [-2], [0, 2], [-1], [3, 0, 1]]),
                     ([], [None, [0], [-1]]), ([1], [None, [0]]), ([1, 1, 1], [None, [1], [-1, 0]]),
                     ([2, 3], [None, [0], [1, 0]])):
    for dims in dimss:
        ok("squeeze", [T(shape)], {"dim": dims}, lambda x, d=dims: torch_squeeze(x, d))
for shape, dims in (([1, 3, 1, 2], [4]), ([1, 3], [-3]), ([], [1])):
    bad("squeeze", [T(shape)], {"dim": dims}, lambda x, d=dims: torch.squeeze(x, d[0]))

for shape, dims in (([2, 3], [0, 1, 2, -1, -2, -3]), ([], [0, -1]), ([4], [0, 1, -1, -2])):
    for d in dims:
        ok("unsqueeze", [T(shape)], {"dim": d}, lambda x, d=d: torch.unsqueeze(x, d))
for shape, d in (([2, 3], 3), ([2, 3], -4), ([], 1), ([], -2)):
    bad("unsqueeze", [T(shape)], {"dim": d}, lambda x, d=d: torch.unsqueeze(x, d))

for shape, ranges in (([2, 3, 4, 5], [(None, None), (0, -1), (1, 2), (-2, -1), (2, 2), (1, -1),
                                      (0, 0), (-4, 1), (3, None)]),
                      ([], [(None, None), (0, -1), (0, 0)]), ([3], [(0, 0), (None, None), (-1, -1)]),
                      ([0, 2, 3], [(1, 2), (None, None)])):
    for s, e in ranges:
        ok("flatten", [T(shape)], {"start_dim": s, "end_dim": e},
           lambda x, s=s, e=e: torch.flatten(x, 0 if s is None else s, -1 if e is None else e))
for shape, s, e in (([2, 3, 4, 5], 2, 1), ([2, 3, 4, 5], -1, 0), ([2, 3, 4, 5], 0, 4),
                    ([2, 3, 4, 5], -5, -1)):
    bad("flatten", [T(shape)], {"start_dim": s, "end_dim": e},
        lambda x, s=s, e=e: torch.flatten(x, s, e))

for shape, pads in (([2, 3, 4], [[1, 1], [0, 2, 1, 0], [-1, -1], [1, 2, 3, 4, 5, 6], [-1, 2, 0, 0],
                                 [-4, 0], [0, 0], [0, 0, -3, 0], [-2, -2, 1, 1]]),
                    ([5], [[2, 3], [-5, 0], [-2, -1]]), ([1, 1, 2, 2], [[1, 1, 1, 1, 1, 1, 1, 1]])):
    for p in pads:
        for value in (None, 1.5):
            for dt in ("f32", "i64"):
                ok("pad", [T(shape, dt)], {"pad": p, "value": value},
                   lambda x, p=p, v=value: F.pad(x, p, value=0 if v is None else
                                                 (v if x.is_floating_point() else int(v))))
for shape, p in (([2, 3, 4], [1]), ([2, 3, 4], [1, 1, 1, 1, 1, 1, 1, 1]), ([2, 3, 4], [-3, -2]),
                 ([5], [-3, -3]), ([2, 3, 4], [1, 1, -2, -2])):
    bad("pad", [T(shape)], {"pad": p}, lambda x, p=p: F.pad(x, p))

for xs, idxs, dims in (([3, 4], [[3, 4], [2, 2], [5, 4], [1, 1], [3, 0]], [0, 1, -1, -2]),
                       ([5], [[3], [7]], [0, -1]), ([2, 3, 4], [[2, 3, 1], [1, 1, 9]], [2])):
    for ix in idxs:
        for d in dims:
            for dt in ("f32", "i64"):
                ok("gather", [T(xs, dt), I(ix)], {"dim": d}, lambda x, i, d=d: torch.gather(x, d, i))
for xs, ix, d, idt in (([3, 4], [3], 0, "i64"), ([3, 4], [3, 5], 0, "i64"), ([3, 4], [4, 4], 1, "i64"),
                       ([3, 4], [3, 4], 2, "i64"), ([3, 4], [3, 4], 0, "f32")):
    bad("gather", [T(xs), T(ix, idt)], {"dim": d}, lambda x, i, d=d: torch.gather(x, d, i))

for xs, idxs, dims in (([5, 3], [[2], [4], [0], [7]], [0, 1, -1, -2]), ([4], [[2], [6]], [0, -1]),
                       ([2, 3, 4], [[5]], [1, 2])):
    for ix in idxs:
        for d in dims:
            for idt in ("i64", "i32"):
                ok("index_select", [T(xs), I(ix, 2, idt)], {"dim": d},
                   lambda x, i, d=d: torch.index_select(x, d, i))
# A 0-d index (PyTorch treats it as one element) and a 0-d input.
ok("index_select", [T([5, 3]), I([], 2)], {"dim": 0}, lambda x, i: torch.index_select(x, 0, i))
ok("index_select", [T([]), I([1], 1)], {"dim": 0}, lambda x, i: torch.index_select(x, 0, i))
for xs, ix, d, idt in (([5, 3], [2, 2], 0, "i64"), ([5, 3], [2], 2, "i64"), ([5, 3], [2], 0, "f32")):
    bad("index_select", [T(xs), T(ix, idt)], {"dim": d},
        lambda x, i, d=d: torch.index_select(x, d, i))

for shape in ([], [4], [2, 3], [1, 1, 1, 1]):
    for k in (1, 5):
        ok("one_hot", [I(shape)], {"num_classes": k}, lambda x, k=k: F.one_hot(x, k))
bad("one_hot", [T([3])], {"num_classes": 4}, lambda x: F.one_hot(x, 4))

# -- linear algebra and layers

MATMUL = [([3], [3]), ([2, 3], [3]), ([3], [3, 4]), ([2, 3], [3, 4]), ([5, 2, 3], [3, 4]),
          ([3], [5, 3, 4]), ([5, 2, 3], [3]), ([2, 1, 2, 3], [4, 3, 5]), ([1, 2, 3], [7, 3, 4]),
          ([6, 1, 2, 3], [5, 3, 1]), ([2, 3], [6, 3, 2]), ([1, 3], [3, 1]), ([4, 0], [0, 2]),
          ([2, 2, 3, 4], [2, 2, 4, 5]), ([1], [1, 7])]
for a, b in MATMUL:
    for dt in ("f32", "f64"):
        ok("matmul", [T(a, dt), T(b, dt)], {}, torch.matmul)
for a, b in (([2, 3], [4, 5]), ([3], [4]), ([2, 2, 3], [3, 3, 4]), ([], [3]), ([3], []),
             ([5, 2, 3], [4]), ([4], [5, 3, 4])):
    bad("matmul", [T(a), T(b)], {}, torch.matmul)


def conv(x, w, b=None, **kw):
    return F.conv2d(x, w, b, **kw)


CONVS = [  # x, w, bias?, attrs
    ([1, 3, 8, 8], [4, 3, 3, 3], False, {}),
    ([1, 3, 8, 8], [4, 3, 3, 3], True, {"stride": [2, 2]}),
    ([1, 3, 8, 8], [4, 3, 3, 3], False, {"padding": [1, 1]}),
    ([1, 3, 8, 8], [4, 3, 3, 3], False, {"padding": [1, 2], "stride": [2, 1]}),
    ([1, 3, 8, 8], [4, 3, 3, 3], True, {"dilation": [2, 2]}),
    ([2, 3, 9, 7], [6, 1, 3, 3], True, {"groups": 3}),
    ([2, 4, 7, 9], [8, 2, 3, 2], False, {"groups": 2, "stride": [2, 3], "padding": [1, 0],
                                         "dilation": [1, 2]}),
    ([1, 3, 5, 5], [2, 3, 1, 1], False, {}),
    ([1, 3, 5, 5], [2, 3, 5, 5], True, {}),
    ([1, 3, 4, 4], [2, 3, 3, 3], False, {"stride": [3]}),
    ([1, 3, 4, 4], [2, 3, 6, 6], False, {"padding": [1]}),
    ([3, 2, 6, 6], [2, 2, 2, 2], False, {"stride": [5, 5]}),
    ([1, 4, 6, 6], [4, 1, 3, 3], True, {"groups": 4, "padding": [2], "dilation": [3]}),
]
for x, w, bias, attrs in CONVS:
    ins = [T(x), T(w)] + ([T([w[0]])] if bias else [])
    kw = {k: v for k, v in attrs.items()}
    ok("conv2d", ins, attrs, lambda *a, kw=kw: F.conv2d(*a, **kw))
    ins64 = [t.double() for t in ins]
    ok("conv2d", ins64, attrs, lambda *a, kw=kw: F.conv2d(*a, **kw))
BAD_CONVS = [
    ([1, 3, 8, 8], [4, 2, 3, 3], False, {}),                  # channels
    ([1, 3, 2, 2], [4, 3, 3, 3], False, {}),                  # kernel larger than input
    ([1, 4, 8, 8], [5, 2, 3, 3], False, {"groups": 2}),       # out channels vs groups
    ([1, 3, 8, 8], [6, 1, 3, 3], False, {"groups": 2}),       # in channels vs groups
    ([1, 3, 8, 8], [4, 3, 3, 3], "bad", {}),                  # bias size
    ([1, 3, 8, 8], [4, 3, 3, 3], False, {"stride": [0, 1]}),
    ([1, 3, 8, 8], [4, 3, 3, 3], False, {"padding": [-1, 0]}),
    ([1, 3, 8, 8], [4, 3, 3, 3], False, {"dilation": [0]}),
    ([1, 3, 8, 8], [4, 3, 3], False, {}),                     # 3-D weight
    ([1, 3, 5, 5], [4, 3, 3, 3], False, {"dilation": [3]}),   # dilated kernel too large
]
for x, w, bias, attrs in BAD_CONVS:
    ins = [T(x), T(w)] + ([T([w[0] + 1])] if bias == "bad" else [])
    bad("conv2d", ins, attrs, lambda *a, kw=dict(attrs): F.conv2d(*a, **kw))

CONVTS = [
    ([1, 4, 5, 5], [4, 2, 3, 3], False, {}),
    ([1, 4, 5, 5], [4, 2, 3, 3], True, {"stride": [2, 2]}),
    ([1, 4, 5, 5], [4, 2, 3, 3], False, {"stride": [2, 2], "output_padding": [1, 1]}),
    ([1, 4, 5, 5], [4, 2, 3, 3], False, {"padding": [1, 1]}),
    ([2, 4, 5, 5], [4, 2, 3, 3], False, {"dilation": [2, 2]}),
    ([1, 4, 5, 5], [4, 3, 3, 3], True, {"groups": 2}),
    ([1, 4, 5, 6], [4, 2, 2, 3], False, {"stride": [2, 3], "output_padding": [1, 2]}),
    ([1, 4, 5, 5], [4, 2, 3, 3], False, {"dilation": [2], "output_padding": [1]}),
    ([1, 4, 3, 3], [4, 1, 1, 1], False, {"stride": [3], "padding": [1], "output_padding": [2]}),
    ([2, 6, 4, 4], [6, 1, 3, 3], True, {"groups": 3, "stride": [2], "padding": [1],
                                        "output_padding": [1], "dilation": [1]}),
    ([1, 2, 1, 1], [2, 2, 1, 1], False, {}),
]
for x, w, bias, attrs in CONVTS:
    g = attrs.get("groups", 1)
    ins = [T(x), T(w)] + ([T([w[1] * g])] if bias else [])
    kw = {k: v for k, v in attrs.items()}
    ok("conv_transpose2d", ins, attrs, lambda *a, kw=kw: F.conv_transpose2d(*a, **kw))
BAD_CONVTS = [
    ([1, 4, 5, 5], [4, 2, 3, 3], False, {"stride": [2], "output_padding": [2]}),
    ([1, 4, 5, 5], [4, 2, 3, 3], False, {"output_padding": [1]}),
    ([1, 4, 5, 5], [3, 2, 3, 3], False, {}),
    ([1, 3, 5, 5], [3, 2, 3, 3], False, {"groups": 2}),
    ([1, 4, 1, 1], [4, 2, 1, 1], False, {"padding": [1]}),
    ([1, 4, 5, 5], [4, 2, 3, 3], "bad", {}),
    ([1, 4, 5, 5], [4, 2, 3, 3], False, {"stride": [0]}),
    ([1, 4, 5, 5], [4, 2, 3, 3], False, {"padding": [-1]}),
]
for x, w, bias, attrs in BAD_CONVTS:
    ins = [T(x), T(w)] + ([T([w[1] + 1])] if bias == "bad" else [])
    bad("conv_transpose2d", ins, attrs, lambda *a, kw=dict(attrs): F.conv_transpose2d(*a, **kw))


def pool_kw(attrs):
    kw = dict(attrs)
    if "stride" not in kw:
        kw["stride"] = None
    return kw


for x in ([1, 2, 7, 7], [2, 9, 8], [1, 1, 5, 6], [1, 1, 3, 3]):
    for k in ([2], [3], [2, 3], [1]):
        for s in (None, [1], [2], [3, 1]):
            for p in ([0], [1], [1, 0]):
                for ceil in (False, True):
                    for d in ([1], [2]):
                        attrs = {"kernel_size": k, "stride": s, "padding": p, "dilation": d,
                                 "ceil_mode": ceil}
                        case("max_pool2d", [T(x)], attrs,
                             lambda t, kw=pool_kw(attrs): F.max_pool2d(t, **kw))
                    for cip in (True, False):
                        attrs = {"kernel_size": k, "stride": s, "padding": p, "ceil_mode": ceil,
                                 "count_include_pad": cip}
                        case("avg_pool2d", [T(x)], attrs,
                             lambda t, kw=pool_kw(attrs): F.avg_pool2d(t, **kw))
for x in ([4, 4], [1, 1, 1, 4, 4]):
    bad("max_pool2d", [T(x)], {"kernel_size": [2]}, lambda t: F.max_pool2d(t, 2))
    bad("avg_pool2d", [T(x)], {"kernel_size": [2]}, lambda t: F.avg_pool2d(t, 2))
    bad("adaptive_avg_pool2d", [T(x)], {"output_size": [2]},
        lambda t: F.adaptive_avg_pool2d(t, 2))
for x, k in (([1, 2, 7, 7], [0]), ([1, 2, 7, 7], [2, 2, 2])):
    bad("max_pool2d", [T(x)], {"kernel_size": k}, lambda t, k=k: F.max_pool2d(t, k))
bad("max_pool2d", [T([1, 2, 7, 7])], {"kernel_size": [2], "stride": [0]},
    lambda t: F.max_pool2d(t, 2, 0))
bad("max_pool2d", [T([1, 2, 7, 7])], {"kernel_size": [2], "dilation": [0]},
    lambda t: F.max_pool2d(t, 2, dilation=0))

for x in ([1, 3, 8, 8], [3, 7, 5], [2, 1, 4, 4], [1, 1, 1, 1]):
    for o in ([1], [2, 3], [8, 8], [10, 3], [4]):
        for dt in ("f32", "f64"):
            # One element means both, as an int does for PyTorch.
            ok("adaptive_avg_pool2d", [T(x, dt)], {"output_size": o},
               lambda t, o=o: F.adaptive_avg_pool2d(t, o[0] if len(o) == 1 else o))
bad("adaptive_avg_pool2d", [T([1, 3, 8, 8])], {"output_size": [2, 2, 2]},
    lambda t: F.adaptive_avg_pool2d(t, [2, 2, 2]))

for shape, dims in (([], [None, 0, -1]), ([5], [0, -1]), ([2, 3], [0, 1, -1, -2]),
                    ([2, 3, 4], [1, -1, None])):
    for d in dims:
        for dt in ("f32", "f64"):
            ok("softmax", [T(shape, dt)], {"dim": d},
               lambda x, d=d: F.softmax(x, -1 if d is None else d))
            ok("log_softmax", [T(shape, dt)], {"dim": d},
               lambda x, d=d: F.log_softmax(x, -1 if d is None else d))
for shape, d in (([2, 3], 2), ([2, 3], -3), ([], 1)):
    bad("softmax", [T(shape)], {"dim": d}, lambda x, d=d: F.softmax(x, d))
    bad("log_softmax", [T(shape)], {"dim": d}, lambda x, d=d: F.log_softmax(x, d))
bad("softmax", [T([2, 3], "i64")], {}, lambda x: F.softmax(x, -1))

for shape, nss in (([2, 3, 4], [[4], [3, 4], [2, 3, 4]]), ([5], [[5]]), ([2, 1, 3], [[1, 3]])):
    for ns in nss:
        for nw in (0, 1, 2):
            for dt in ("f32", "f64"):
                ins = [T(shape, dt)] + [T(ns, dt) for _ in range(nw)]
                ok("layer_norm", ins, {"normalized_shape": ns, "eps": 1e-3 if nw == 1 else None},
                   lambda x, *wb, ns=ns: F.layer_norm(x, ns, *wb))
for shape, ns, wshape in (([2, 3, 4], [3], None), ([2, 3, 4], [2, 3], None), ([2, 3, 4], [4], [3]),
                          ([2, 3, 4], [3, 4], [4]), ([2, 3, 4], [1, 2, 3, 4], None)):
    ins = [T(shape)] + ([T(wshape)] if wshape else [])
    bad("layer_norm", ins, {"normalized_shape": ns}, lambda x, *w, ns=ns: F.layer_norm(x, ns, *w))


def bn(x, w, b, rm, rv, training=False, momentum=0.1, eps=1e-5):
    rm, rv = rm.clone(), rv.clone()
    y = F.batch_norm(x, rm, rv, w, b, training, momentum, eps)
    return y, rm, rv


for shape in ([4, 3], [2, 3, 5], [2, 3, 4, 4], [2, 3, 2, 2, 2], [1, 3, 2], [1, 3]):
    for training in (False, True):
        for dt in ("f32", "f64"):
            C = shape[1]
            ins = [T(shape, dt), T([C], dt), T([C], dt), T([C], dt), T([C], dt, 0.5, 1.0)]
            ok("batch_norm", ins, {"training": training, "momentum": 0.2 if training else None},
               lambda x, w, b, m, v, tr=training: bn(x, w, b, m, v, tr, 0.2 if tr else 0.1), nres=3)
for shape, cs in (([4, 3], [4, 3, 3, 3]), ([4, 3], [3, 3, 3, 4]), ([4, 3, 2], [3, 3, 2, 3]),
                  ([3], [3, 3, 3, 3])):
    ins = [T(shape)] + [T([c]) for c in cs]
    bad("batch_norm", ins, {}, bn, nres=3)

for shape in ([], [4], [2, 3], [2, 1, 3]):
    for idt in ("i64", "i32"):
        for dt in ("f32", "f64"):
            ok("embedding", [I(shape, 10, idt), T([10, 5], dt)], {}, F.embedding)
bad("embedding", [T([4]), T([10, 5])], {}, F.embedding)
bad("embedding", [I([4], 1), T([10])], {}, F.embedding)

for shape in ([], [5], [2, 3], [2, 3, 4, 5]):
    for p in (None, 0.0, 0.3):
        for dt in ("f32", "f64"):
            ok("dropout", [T(shape, dt), I([], 1000)], {"p": p},
               lambda x, key, p=p: F.dropout(x, 0.5 if p is None else p, training=True))
bad("dropout", [T([2, 3]), I([], 1000)], {"p": 1.5}, lambda x, key: F.dropout(x, 1.5))
bad("dropout", [T([2, 3]), I([], 1000)], {"p": -0.5}, lambda x, key: F.dropout(x, -0.5))


def sdpa(q, k, v, mask=None, causal=False, scale=None):
    """Scaled dot-product attention as torch 2's math path computes it (torch 1.13 lacks
    F.scaled_dot_product_attention): softmax(q @ k^T * scale + mask) @ v."""
    if mask is not None and causal:
        raise RuntimeError("explicit attn_mask should not be set when is_causal=True")
    scale = 1 / q.size(-1) ** 0.5 if scale is None else scale
    s = torch.matmul(q, k.transpose(-2, -1)) * scale
    if causal:
        L, S = s.shape[-2], s.shape[-1]
        s = s.masked_fill(~torch.ones(L, S, dtype=torch.bool).tril(), float("-inf"))
    if mask is not None:
        # In place, as torch 2's math path does: the mask must broadcast to the scores
        # without enlarging them.
        if mask.dtype == torch.bool:
            s.masked_fill_(~mask, float("-inf"))
        else:
            s.add_(mask)
    return torch.matmul(torch.softmax(s, -1), v)


SDPAS = [([2, 4, 3, 8], [2, 4, 5, 8], [2, 4, 5, 6]), ([3, 8], [5, 8], [5, 8]),
         ([2, 1, 3, 8], [1, 4, 5, 8], [4, 5, 6]), ([3, 8], [2, 5, 8], [5, 7]),
         ([1, 3, 8], [2, 3, 8], [1, 3, 8]), ([4, 4, 4], [4, 4, 4], [4, 4, 4])]
for q, k, v in SDPAS:
    L, S = q[-2], k[-2]
    for dt in ("f32", "f64"):
        for attrs in ({}, {"causal": True}, {"scale": 0.5}, {"causal": False, "scale": 2.0}):
            ok("scaled_dot_product_attention", [T(q, dt), T(k, dt), T(v, dt)], attrs,
               lambda q_, k_, v_, a=attrs: sdpa(q_, k_, v_, None, a.get("causal", False),
                                                a.get("scale")))
    for mshape in ([L, S], [1, S], [S], [1, 1, L, S]):
        for mdt in ("bool", "f32"):
            ok("scaled_dot_product_attention", [T(q), T(k), T(v), T(mshape, mdt)], {},
               lambda *a: sdpa(*a))
    full = list(torch.broadcast_shapes(q[:-2], k[:-2], v[:-2]))
    ok("scaled_dot_product_attention", [T(q), T(k), T(v), T(full + [L, S], "bool")], {},
       lambda *a: sdpa(*a))
for q, k, v, m, attrs in (([3, 8], [5, 7], [5, 8], None, {}), ([3, 8], [5, 8], [4, 8], None, {}),
                          ([2, 3, 8], [3, 5, 8], [5, 8], None, {}),
                          ([3, 8], [5, 8], [5, 8], [4, 5], {}), ([3, 8], [5, 8], [5, 8], [3, 4], {}),
                          ([3, 8], [5, 8], [5, 8], [3, 5], {"causal": True}),
                          ([3, 8], [5, 8], [5, 8], [2, 3, 5], {}),
                          ([2, 3, 8], [2, 5, 8], [2, 5, 8], [1, 1, 3, 5], {})):
    ins = [T(q), T(k), T(v)] + ([T(m, "bool")] if m else [])
    bad("scaled_dot_product_attention", ins, attrs,
        lambda *a, c=attrs.get("causal", False): sdpa(*a[:3], a[3] if len(a) > 3 else None, c))

# -- losses

PAIR_LOSSES = {
    "mse_loss": (F.mse_loss, {}), "l1_loss": (F.l1_loss, {}),
    "huber_loss": (F.huber_loss, {"delta": 0.5}), "smooth_l1_loss": (F.smooth_l1_loss, {"beta": 0.5}),
    "bce": (F.binary_cross_entropy, {}), "bce_with_logits": (F.binary_cross_entropy_with_logits, {}),
    "kl_div": (F.kl_div, {"log_target": True}),
}
for shape in ([], [5], [2, 3], [2, 3, 4], [1, 1]):
    for name, (f, extra) in PAIR_LOSSES.items():
        reds = [None, "mean", "sum", "none"] + (["batchmean"] if name == "kl_div" else [])
        for red in reds:
            for ex in ({}, extra):
                for dt in ("f32", "f64"):
                    attrs = dict(ex, reduction=red)
                    kw = {k: v for k, v in attrs.items() if v is not None}
                    ok(name, [T(shape, dt), T(shape, dt)], attrs, lambda a, b, f=f, kw=kw: f(a, b, **kw))
for a, b in (([2, 3], [4, 3]), ([2, 3], [2, 4]), ([3], [4])):
    for name, (f, _) in PAIR_LOSSES.items():
        for red in ("mean", "none"):
            bad(name, [T(a), T(b)], {"reduction": red}, lambda x, y, f=f, r=red: f(x, y, reduction=r))
for a, b in (([2, 3], [3]), ([2, 3], [2, 1]), ([2, 3], [])):
    bad("bce", [T(a), T(b)], {}, F.binary_cross_entropy)

CLASS = [([4, 5], [4]), ([5], []), ([2, 5, 3, 3], [2, 3, 3]), ([2, 5, 3], [2, 3]), ([1, 1], [1])]
for x, y in CLASS:
    C = x[0] if len(x) == 1 else x[1]
    for red in (None, "mean", "sum", "none"):
        for extra in ({}, {"ignore_index": 0}, {"label_smoothing": 0.1}):
            attrs = dict(extra, reduction=red)
            kw = {k: v for k, v in attrs.items() if v is not None}
            for dt in ("f32", "f64"):
                ok("cross_entropy", [T(x, dt), I(y, C)], attrs,
                   lambda a, b, kw=kw: F.cross_entropy(a, b, **kw))
                if "ignore_index" not in extra:
                    ok("cross_entropy", [T(x, dt), T(x, dt)], attrs,
                       lambda a, b, kw=kw: F.cross_entropy(a, b, **kw))
                if "label_smoothing" not in extra:
                    ok("nll_loss", [T(x, dt), I(y, C)], attrs,
                       lambda a, b, kw=kw: F.nll_loss(a, b, **kw))
for x, y, ydt in (([4, 5], [5], "i64"), ([4, 5], [4, 1], "i64"), ([4, 5], [4, 4], "f32"),
                  ([4, 5], [4], "f32"), ([5], [1], "i64"), ([2, 5, 3], [2, 4], "i64"),
                  ([2, 5, 3], [2, 5], "i64"), ([], [], "i64")):
    ins = [T(x), T(y, ydt, 0, 1)]
    bad("cross_entropy", ins, {}, F.cross_entropy)
    if ydt == "i64":
        bad("nll_loss", ins, {}, F.nll_loss)

for shape in ([4, 8], [8], [1, 1]):
    for red in (None, "mean", "sum", "none"):
        for extra in ({}, {"margin": 0.5, "p": 1.0, "swap": True}, {"eps": 1e-3, "p": 3.0}):
            attrs = dict(extra, reduction=red)
            kw = {k: v for k, v in attrs.items() if v is not None}
            for dt in ("f32", "f64"):
                ok("triplet_margin_loss", [T(shape, dt) for _ in range(3)], attrs,
                   lambda a, p, n, kw=kw: F.triplet_margin_loss(a, p, n, **kw))
for a, p, n in (([4, 8], [4, 7], [4, 8]), ([4, 8], [4, 8], [3, 8]), ([8], [4, 8], [8])):
    bad("triplet_margin_loss", [T(a), T(p), T(n)], {}, F.triplet_margin_loss)


# -- metrics

def accuracy(x, y):
    return (x.argmax(1) == y).float().mean()


def top_k_accuracy(x, y, k=5):
    if y.dim() != 1:
        raise RuntimeError("labels must be 1-D")
    return (x.topk(k, 1).indices == y[:, None]).any(1).float().mean()


for x in ([8, 5], [1, 1], [3, 10]):
    for dt in ("f32", "f64", "i64"):
        ok("accuracy", [T(x, dt, 0, 9), I([x[0]], x[1])], {}, accuracy)
        for k in (None, 1, 3, 5):
            if k is None or k <= x[1]:
                ok("top_k_accuracy", [T(x, dt, 0, 9), I([x[0]], x[1])], {"k": k},
                   lambda a, b, k=k: top_k_accuracy(a, b, 5 if k is None else k))
for x, y, k in (([8, 5], [7], 1), ([8, 5], [8], 6), ([8, 3], [8], None), ([5], [5], 1)):
    bad("top_k_accuracy", [T(x), I(y)], {"k": k},
        lambda a, b, k=k: top_k_accuracy(a, b, 5 if k is None else k))
    if k == 1:
        bad("accuracy", [T(x), I(y)], {}, accuracy)

# -- cast

for shape in ([], [2, 3], [4, 0]):
    for src in ("f32", "f64", "i64", "i32", "bool", "f16", "u8"):
        for dst in ("f32", "f64", "f16", "bf16", "i8", "u8", "i32", "i64", "bool"):
            ok("cast", [T(shape, src)], {"dtype": DType(dst)}, lambda x, d=dst: x.to(TORCH_DT[d]))

# -- gradient ops (torch's backward decides: the gradient of fn at the operand for dy)

def grad_of(fn, wrt=0):
    """g(dy, *operands): the gradient of fn(*operands) with respect to operand `wrt`."""
    def g(dy, *ins):
        with torch.enable_grad():
            ins = [t.detach().requires_grad_(i == wrt) for i, t in enumerate(ins)]
            fn(*ins).backward(dy)
        return ins[wrt].grad
    return g


SCATTERS = [([4, 5], [2, 5], [2, 5], 0), ([4, 5], [2, 3], [3, 4], 1), ([4, 5], [4, 7], [4, 7], 1),
            ([3], [5], [5], 0), ([2, 3, 4], [2, 1, 4], [2, 2, 4], -2), ([], [], [], 0),
            ([2, 3], [1, 1], [1, 1], -1)]
for xs, ix, ss, d in SCATTERS:
    for dt in ("f32", "f64", "i64"):
        n = xs[d] if xs else 1
        ok("scatter_add", [T(xs, dt, 0, 5), I(ix, n), T(ss, dt, 0, 5)], {"dim": d},
           lambda x, i, s, d=d: x.scatter_add(d, i, s))
for xs, ix, ss, d, dts in (([4, 5], [5, 5], [5, 5], 1, "f32"), ([4, 5], [2, 5], [2, 4], 0, "f32"),
                           ([4, 5], [2], [2], 0, "f32"), ([4, 5], [2, 5], [2, 5], 2, "f32"),
                           ([4, 5], [2, 5], [2, 5], 0, "f64")):
    bad("scatter_add", [T(xs), I(ix), T(ss, dts)], {"dim": d},
        lambda x, i, s, d=d: x.scatter_add(d, i, s))
bad("scatter_add", [T([4, 5]), T([2, 5]), T([2, 5])], {"dim": 0},
    lambda x, i, s: x.scatter_add(0, i, s))

for x in ([1, 2, 7, 7], [2, 9, 8]):
    for k, s, p in (([2], None, [0]), ([3], [2], [1]), ([2, 3], [1], [1, 0])):
        for ceil in (False, True):
            for dt in ("f32", "f64"):
                attrs = {"kernel_size": k, "stride": s, "padding": p, "ceil_mode": ceil}
                for op, fn, extra in (("max_pool2d_grad", F.max_pool2d, {"dilation": [1, 2]}),
                                      ("avg_pool2d_grad", F.avg_pool2d, {"count_include_pad": False})):
                    for a in (attrs, dict(attrs, **extra)):
                        f = lambda t, fn=fn, kw=pool_kw(a): fn(t, **kw)
                        xt = T(x, dt)
                        ok(op, [T(f(xt).shape, dt), xt], a, grad_of(f))
                # dy of the wrong shape
                bad("max_pool2d_grad", [T(x, dt), T(x, dt)], attrs,
                    grad_of(lambda t, kw=pool_kw(attrs): F.max_pool2d(t, **kw)))
for x in ([1, 3, 8, 8], [3, 7, 5]):
    for o in ([1], [2, 3], [10, 3]):
        xt = T(x)
        f = lambda t, o=o: F.adaptive_avg_pool2d(t, o[0] if len(o) == 1 else o)
        ok("adaptive_avg_pool2d_grad", [T(f(xt).shape), xt], {"output_size": o}, grad_of(f))
        bad("adaptive_avg_pool2d_grad", [T(x[:-2] + [4, 4]), xt], {"output_size": o}, grad_of(f))


def conv_wgrad(ws, kw):
    def g(x, dy):
        with torch.enable_grad():
            w = torch.zeros(ws, dtype=x.dtype, requires_grad=True)
            F.conv2d(x, w, **kw).backward(dy)
        return w.grad
    return g


for x, ws, attrs in (([2, 4, 7, 6], [3, 4, 3, 3], {}),
                     ([2, 4, 7, 6], [5, 4, 3, 2], {"stride": [2, 1], "padding": [1, 2], "dilation": [1, 2]}),
                     ([1, 4, 5, 5], [6, 2, 3, 3], {"padding": [1], "groups": 2}),
                     ([2, 3, 8, 7], [3, 1, 2, 2], {"stride": [3], "groups": 3}),
                     ([1, 2, 3, 3], [2, 2, 3, 3], {})):
    for dt in ("f32", "f64"):
        kw = dict(attrs)
        y = F.conv2d(T(x, dt), T(ws, dt), **kw)
        ok("conv2d_grad_weight", [T(x, dt), T(y.shape, dt)], dict(attrs, weight_shape=ws),
           conv_wgrad(ws, kw))
        bad("conv2d_grad_weight", [T(x, dt), T(list(y.shape[:2]) + [y.shape[2] + 1, y.shape[3]], dt)],
            dict(attrs, weight_shape=ws), conv_wgrad(ws, kw))
bad("conv2d_grad_weight", [T([1, 3, 5, 5]), T([1, 4, 3, 3])], {"weight_shape": [4, 2, 3, 3]},
    conv_wgrad([4, 2, 3, 3], {}))
bad("conv2d_grad_weight", [T([1, 4, 5, 5]), T([1, 6, 3, 3])], {"weight_shape": [6, 2, 3, 3], "groups": 3},
    conv_wgrad([6, 2, 3, 3], {"groups": 3}))


# ---- running them ---------------------------------------------------------------------------

TYPE_RE = re.compile(r"(f32|f64|f16|bf16|i8|u8|i32|i64|bool)(\[[^\]]*\])?")


def norm_type(s):
    m = TYPE_RE.fullmatch(s.strip())
    if not m:
        return s.strip()
    return m.group(1) + (("[" + ", ".join(d.strip() for d in m.group(2)[1:-1].split(",")) + "]")
                         if m.group(2) else "")


def describe(c):
    ins = ", ".join(type_str(t) for t in c.ins)
    attrs = ", ".join(f"{k}={attr_str(v)}" for k, v in c.attrs.items())
    return f"{c.op}({ins}){' {' + attrs + '}' if attrs else ''}"


def func_text(c, name):
    args = ", ".join(f"%a{i}: {type_str(t)}" for i, t in enumerate(c.ins))
    res = ", ".join(f"%r{i}" for i in range(c.nres))
    ops = ", ".join(f"%a{i}" for i in range(len(c.ins)))
    attrs = ", ".join(f"{k}={attr_str(v)}" for k, v in c.attrs.items())
    return (f"func @{name}({args}) -> () {{\n"
            f"  {res} = {c.op} {ops}{' {' + attrs + '}' if attrs else ''}\n"
            f"  return\n}}\n")


def run_dlc(dlc, path):
    p = subprocess.run([dlc, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return p.returncode, p.stdout, p.stderr


def run_single(dlc, tmp, kind, i, c):
    """dlc-opt on a file holding case c alone (as @case0)."""
    p = os.path.join(tmp, f"{kind}{i}.dlir")
    with open(p, "w") as f:
        f.write(func_text(c, "case0"))
    return run_dlc(dlc, p)


def parse_types(out):
    """{case number: [result types]} from dlc-opt's output (one op per @caseN)."""
    got, cur = {}, None
    for ln in out.splitlines():
        m = re.match(r"func @case(\d+)\(", ln)
        if m:
            cur = int(m.group(1))
        elif cur is not None and cur not in got and re.match(r"\s+%0", ln) and " : " in ln:
            got[cur] = [norm_type(t.group(0)) for t in TYPE_RE.finditer(ln.rsplit(" : ", 1)[1])]
    return got


def main():
    if len(sys.argv) < 2:
        print("usage: check_shapes.py DLC-OPT [-v]", file=sys.stderr)
        return 2
    dlc, verbose = sys.argv[1], "-v" in sys.argv[2:]
    t0 = time.time()
    good, rejected, flipped = [], [], 0
    for c in CASES:
        try:
            with torch.no_grad():
                r = c.fn(*c.ins)
            rs = list(r) if isinstance(r, (tuple, list)) else [r]
            c.want = [type_str(t) for t in rs]
            c.error = None
            if len(rs) != c.nres:
                raise AssertionError(f"{describe(c)}: torch gave {len(rs)} results, case says {c.nres}")
            good.append(c)
        except AssertionError:
            raise
        except Exception as e:  # PyTorch rejects it
            c.want, c.error = None, f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            rejected.append(c)
        if c.expect and (c.expect == "ok") != (c.error is None):
            flipped += 1
            if verbose:
                print(f"note: torch {'rejects' if c.error else 'accepts'} {describe(c)}"
                      f"{' (' + c.error + ')' if c.error else ''}")
    mismatches = []
    with tempfile.TemporaryDirectory(prefix="check_shapes.") as tmp:
        if os.environ.get("CHECK_SHAPES_KEEP"):
            tmp = os.environ["CHECK_SHAPES_KEEP"]
            os.makedirs(tmp, exist_ok=True)
        # Accepted cases: one big file; cases dlc rejects are taken out and the rest re-run.
        # Should dlc-opt crash on it, every case is run on its own instead.
        pending, out = list(good), ""
        while pending:
            path = os.path.join(tmp, "accepted.dlir")
            lines, owner = [], {}
            for i, c in enumerate(pending):
                start = len(lines) + 1
                lines.extend(func_text(c, f"case{i}").splitlines())
                for ln in range(start, len(lines) + 1):
                    owner[ln] = i
            with open(path, "w") as f:
                f.write("\n".join(lines) + "\n")
            rc, out, err = run_dlc(dlc, path)
            if verbose:
                print(f"dlc-opt on {len(pending)} accepted cases: exit {rc}")
            if rc == 0:
                break
            bad_idx = {}
            for ln in err.splitlines() if rc == 1 else []:
                m = re.match(r".*?:(\d+):\d+: error: (.*)", ln)
                if m and int(m.group(1)) in owner:
                    bad_idx.setdefault(owner[int(m.group(1))], m.group(2))
            if bad_idx:
                for i, msg in sorted(bad_idx.items()):
                    mismatches.append((pending[i], pending[i].want, "rejected: " + msg))
                pending = [c for i, c in enumerate(pending) if i not in bad_idx]
                continue
            # A crash, or a failure without a located error: one file per case.
            last = (err.strip().splitlines() or ["(no message)"])[-1]
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 4) as ex:
                results = list(ex.map(lambda ic: run_single(dlc, tmp, "single", *ic),
                                      enumerate(pending)))
            if all(src in (0, 1) for src, _, _ in results):
                mismatches.append((None, None, f"dlc-opt exit {rc} on the file of all accepted"
                                   f" cases, though no single case fails that way: {last}"))
            for c, (src, sout, serr) in zip(pending, results):
                if src == 0:
                    g = parse_types(sout).get(0)
                    if g != c.want:
                        mismatches.append((c, c.want, g))
                else:
                    mismatches.append((c, c.want, f"dlc-opt exit {src}: "
                                       + (serr.strip().splitlines() or ["(no message)"])[0]))
            pending, out = [], ""
        got = parse_types(out)
        for i, c in enumerate(pending):
            if got.get(i) != c.want:
                mismatches.append((c, c.want, got.get(i)))
        # Rejected cases: one file each; dlc-opt must fail with status 1 and an error line.
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 4) as ex:
            results = list(ex.map(lambda ic: run_single(dlc, tmp, "rejected", *ic),
                                  enumerate(rejected)))
        for c, (rc, out, err) in zip(rejected, results):
            if rc != 1 or "error:" not in err:
                what = ("accepted: " + " ".join(ln.rsplit(" : ", 1)[1] for ln in out.splitlines()
                                                 if "%0" in ln and " : " in ln)) if rc == 0 \
                    else f"exit {rc}: {err.strip()[:200]}"
                mismatches.append((c, "error (" + c.error + ")", what))

    per_op = {}
    for c in CASES:
        n = per_op.setdefault(c.op, [0, 0])
        n[0 if c.error is None else 1] += 1
    if verbose:
        for op, (a, r) in sorted(per_op.items()):
            print(f"  {op:30s} {a:5d} accepted {r:4d} rejected by torch")
        print(f"  ({flipped} cases where torch's verdict differs from the generator's guess)")
    for c, want, got in mismatches:
        if c is None:
            print(f"MISMATCH: {got}")
            continue
        w = ", ".join(want) if isinstance(want, list) else want
        g = ", ".join(got) if isinstance(got, list) else got
        print(f"MISMATCH: {describe(c)}\n    torch: {w}\n    dlc:   {g}")
    print(f"  {len(good)} cases accepted and {len(rejected)} rejected by torch; "
          f"{time.time() - t0:.1f} s")
    print(f"check_shapes: {len(CASES)} cases, {len(mismatches)} mismatches")
    return 0 if not mismatches else 1


if __name__ == "__main__":
    sys.exit(main())
