#!/usr/bin/python3
"""dlc against PyTorch on the CPU (eager and TorchScript), three models, forward and training step.

The models (bench/models/*.dl, mirrored below in torch with the same parameter names):
  mlp    MLP 784-512-256-10, ReLU, batch 64, cross-entropy
  cnn    conv3x3(1->16)+ReLU+maxpool2, conv3x3(16->32)+ReLU+maxpool2, linear 1568->10, 28x28,
         batch 64, cross-entropy
  block  one pre-LN transformer block (lang/std/nn.dl's TransformerBlock, causal): d 256,
         4 heads, FFN 1024 (GELU), seq 128, batch 8, mean-squared loss against a random target
Training step: forward, loss, backward, AdamW(lr 1e-3, weight decay 0.01) on every parameter.

dlc: each .dl's train block compiled to an AOT library (`dlc M.dl -o libM.so`), timed by
bench/models.c through the library's DLPack entry (forward, train_step), DLC_NUM_THREADS threads;
the libraries of `-O reduce-overhead` and `-O max-autotune` (docs/modes.md: specialized to the
train block's batch, the batch timed) likewise, in columns of their own.
PyTorch (Debian's python3-torch 1.13): eager (forward under no_grad; training with
zero_grad(set_to_none=True), loss, backward, AdamW.step()), and TorchScript: for the forward
torch.jit.trace + torch.jit.freeze of the model in eval mode, for training the traced model (not
frozen) inside the same eager loop (loss, backward and AdamW stay eager: torch.optim's step is
not scriptable). torch.set_num_threads(T).

Both sides start from the same weights (torch's initialisation, seed 0, written to a safetensors
file that the library loads at create) and time the same batch. Before timing, the forward's
results are compared and the losses of the first three training steps printed side by side.
Timing, both sides alike: a 0.3 s warm-up (at least 5 calls), then 7 samples of at least 0.2 s and
3 calls of back-to-back calls; the median per call (and the spread over the samples). 1 thread
runs pinned to CPU 0 (taskset), 2 threads unpinned.

PyTorch's matrix products go to libblas.so.3. Debian's python3-torch links the reference BLAS
(libblas3, 10-30x slower than OpenBLAS here) unless an OpenBLAS package is installed. With
OpenBLAS's OpenMP build (`apt-get install libopenblas0-openmp`) installed, the PyTorch processes get
it through LD_LIBRARY_PATH: it runs on PyTorch's own OpenMP threads, as PyTorch's official
builds do with MKL. The pthread build (libopenblas0-pthread, what libopenblas-dev installs as the
default libblas.so.3) starts threads of its own beside OpenMP's, and on 2 vCPUs the two pools'
spinning makes 2-thread steps 3-30x slower than 1-thread ones. The report names the BLAS used and
warns about the reference one. OPENBLAS_NUM_THREADS is set to the thread count.

The machine may be shared (other jobs' builds and tests), and PyTorch's OpenMP barriers in
particular slow down many times when another process takes one of the two CPUs. So before each
measurement the driver waits for two seconds in which other processes use less than 0.15 CPU,
counts the CPU time that processes other than its own used during the measurement (/proc/stat
less getrusage), and measures again (BENCH_TRIES times in all, default 3) while that exceeds 0.1
CPU on average, keeping the least disturbed try. Waiting and measuring again spend at most
BENCH_WAIT_S seconds in all (default 300; a quiet machine needs none of it and the whole run takes
about 4 minutes). Rows still above 0.1 CPU are starred in the table.

Compile times: for each -O mode dlc accepts, the forward alone (`--model "Name()"`) and the train
block's library, cold (--no-cache when dlc has a cache), and the latter once more into a fresh
--cache-dir, twice, the second time being a cache hit.

Last, `dlc run M.dl --steps 20 --profile --threads T` profiles each training step (per-kernel
times, WORK_DIR/profile_M_Tt.txt); the report prints the time per kind of kernel.

usage: models.py DLC WORK_DIR            (what bench/run_models.sh runs)
       models.py --torch WORK_DIR MODEL THREADS   (one PyTorch measurement, JSON on stdout)
"""
import json
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import time

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ("mlp", "cnn", "block")
TITLES = {"mlp": "MLP 784-512-256-10, batch 64", "cnn": "CNN 28x28, batch 64",
          "block": "transformer block d256 h4 ff1024, 8x128"}
PREFIX = {"mlp": "mlp", "cnn": "smallcnn", "block": "block"}
MODEL_NAME = {"mlp": "Mlp", "cnn": "SmallCnn", "block": "Block"}
MODES = ("-O0", "-O default", "-O reduce-overhead", "-O max-autotune")
# The modes whose libraries are timed besides -O default's, and their file tags.
TIMED = {"-O reduce-overhead": "ro", "-O max-autotune": "ma"}


# ---- the models in PyTorch ----------------------------------------------------------------------

class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.fc3 = nn.Linear(784, 512), nn.Linear(512, 256), nn.Linear(256, 10)

    def forward(self, x):
        return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))


class SmallCnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc = nn.Linear(32 * 7 * 7, 10)

    def forward(self, x):
        h = F.max_pool2d(torch.relu(self.conv1(x)), 2)
        h = F.max_pool2d(torch.relu(self.conv2(h)), 2)
        return self.fc(h.reshape(h.shape[0], 32 * 7 * 7))


class MultiHeadAttention(nn.Module):
    """lang/std/nn.dl's MultiHeadAttention: one qkv projection split as [B, T, 3, heads, d/heads],
    scaled dot-product attention with a causal mask, the output projection."""

    def __init__(self, dim, heads, context=128):
        super().__init__()
        self.heads = heads
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.register_buffer("mask", torch.ones(context, context, dtype=torch.bool).triu(1),
                             persistent=False)

    def forward(self, x):
        b, t, d = x.shape
        qkv = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = (q @ k.transpose(-2, -1)) * (d // self.heads) ** -0.5
        att = att.masked_fill(self.mask[:t, :t], float("-inf")).softmax(dim=-1)
        return self.proj((att @ v).permute(0, 2, 1, 3).reshape(b, t, d))


class FeedForward(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class TransformerBlock(nn.Module):
    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(dim), MultiHeadAttention(dim, heads)
        self.ln2, self.ff = nn.LayerNorm(dim), FeedForward(dim, hidden)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.ff(self.ln2(x))


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = TransformerBlock(256, 4, 1024)

    def forward(self, x):
        return self.block(x)


def make(name):
    torch.manual_seed(0)
    return {"mlp": Mlp, "cnn": SmallCnn, "block": Block}[name]()


def loss_fn(name):
    return F.mse_loss if name == "block" else F.cross_entropy


def make_data(name):
    r = np.random.RandomState(1)
    if name == "mlp":
        return r.rand(64, 784).astype(np.float32), r.randint(0, 10, 64).astype(np.int64)
    if name == "cnn":
        return r.rand(64, 1, 28, 28).astype(np.float32), r.randint(0, 10, 64).astype(np.int64)
    return r.randn(8, 128, 256).astype(np.float32), r.randn(8, 128, 256).astype(np.float32)


def out_shape(name):
    return [8, 128, 256] if name == "block" else [64, 10]


def save_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for k, v in tensors.items():
        b = np.ascontiguousarray(v, dtype=np.float32).tobytes()
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


# ---- timing, the same rule as bench/models.c -------------------------------------------------------

def per_call_ms(fn, samples=7, min_s=0.2):
    t_end, calls = time.perf_counter() + 0.3, 0
    while time.perf_counter() < t_end or calls < 5:
        fn()
        calls += 1
    times = []
    for _ in range(samples):
        calls, t0 = 0, time.perf_counter()
        while True:
            fn()
            calls += 1
            t = time.perf_counter()
            if t - t0 >= min_s and calls >= 3:
                break
        times.append((t - t0) / calls)
    times.sort()
    return [1e3 * statistics.median(times), 1e3 * times[0], 1e3 * times[-1]]


def blas_name():
    """The BLAS PyTorch runs on: the file libblas.so.3 resolves to, and OpenBLAS's core."""
    paths = {l.split()[-1] for l in open("/proc/self/maps") if "blas" in l.split()[-1]}
    path = next((os.path.realpath(p) for p in sorted(paths) if "libblas" in p or "openblas" in p), "?")
    if "openblas" in path:
        try:
            import ctypes
            lib = ctypes.CDLL(path)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            return f"OpenBLAS ({lib.openblas_get_corename().decode()}, {path})"
        except (OSError, AttributeError):
            return f"OpenBLAS ({path})"
    return f"REFERENCE BLAS ({path}): install libopenblas0-pthread" if "/blas/" in path else path


def torch_measure(work, name, threads):
    torch.set_num_threads(threads)
    x, y = (torch.from_numpy(np.load(os.path.join(work, f"{name}_{s}.npy"))) for s in "xy")
    state = make(name).state_dict()
    lf = loss_fn(name)

    def fresh():
        m = make(name)
        m.load_state_dict(state)
        return m

    def trainer(model, params):
        opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = lf(model(x), y)
            loss.backward()
            opt.step()
            return loss.item()
        return step

    res = {"torch": torch.__version__, "threads": torch.get_num_threads(), "blas": blas_name()}
    m = fresh().eval()
    with torch.no_grad():
        ref = m(x).numpy()
        res["eager_forward"] = per_call_ms(lambda: m(x))
        script = torch.jit.freeze(torch.jit.trace(m, x))
        res["script_forward"] = per_call_ms(lambda: script(x))
        res["script_forward_diff"] = float(np.abs(script(x).numpy() - ref).max())
    dlc = np.fromfile(os.path.join(work, f"{name}_dlc_forward.bin"), dtype=np.float32)
    res["forward_diff"] = float(np.abs(dlc.reshape(ref.shape) - ref).max())
    res["forward_max"] = float(np.abs(ref).max())
    m = fresh().train()
    step = trainer(m, m.parameters())
    res["losses"] = [step() for _ in range(3)]
    m = fresh().train()
    res["eager_train"] = per_call_ms(trainer(m, m.parameters()))
    m = fresh().train()
    traced = torch.jit.trace(m, x)
    res["script_train"] = per_call_ms(trainer(traced, list(traced.parameters())))
    return res


# ---- the driver -----------------------------------------------------------------------------------

OPENBLAS_OPENMP = "/usr/lib/x86_64-linux-gnu/openblas-openmp"


def busy_s():
    """CPU seconds all processes have used (user, nice, system, irq, softirq), from /proc/stat."""
    f = open("/proc/stat").readline().split()
    return sum(int(v) for v in f[1:4] + f[6:8]) / os.sysconf("SC_CLK_TCK")


def own_s():
    import resource
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    s = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime + s.ru_utime + s.ru_stime


class Quiet:
    """Waits for the machine to be quiet and measures what others used while a command ran."""

    def __init__(self):
        self.budget = float(os.environ.get("BENCH_WAIT_S", "300"))

    def wait(self):
        """Until two seconds in a row in which others used less than 0.15 CPU (or no budget)."""
        quiet = 0
        while self.budget > 0 and quiet < 2:
            b0, o0 = busy_s(), own_s()
            time.sleep(1)
            self.budget -= 1
            quiet = quiet + 1 if (busy_s() - b0) - (own_s() - o0) < 0.15 else 0

    def run(self, cmd, env):
        """Runs cmd; again (at most BENCH_TRIES times in all, default 3) while others used more
        than 0.1 CPU during it. Returns the least disturbed run and what others used in it."""
        best = None
        for _ in range(int(os.environ.get("BENCH_TRIES", "3"))):
            self.wait()
            b0, o0, t0 = busy_s(), own_s(), time.perf_counter()
            p = sh(cmd, env=env)
            other = max(0.0, (busy_s() - b0) - (own_s() - o0)) / (time.perf_counter() - t0)
            if best is None or other < best[1]:
                best = (p, other)
            if other <= 0.1 or self.budget <= 0:
                break
            self.budget -= time.perf_counter() - t0       # a try again is paid from the budget
        return best

def sh(cmd, env=None, check=True):
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if check and p.returncode:
        sys.exit(f"{' '.join(cmd)}: exit {p.returncode}\n{p.stdout}{p.stderr}")
    return p


def compile_lib(dlc, src, out, mode, extra, flags):
    cmd = [dlc, src, "-o", out, "--time-passes"] + mode.split() + extra + flags
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    llvm = re.search(r"llvm\s+([0-9.]+) ms", p.stderr)
    return p, wall, float(llvm.group(1)) / 1e3 if llvm else float("nan")


def main_driver(dlc, work):
    os.makedirs(work, exist_ok=True)
    quiet = Quiet()
    help_text = sh([dlc, "--help"], check=False).stdout + sh([dlc, "--help"], check=False).stderr
    flags = ["--no-cache"] if "--no-cache" in help_text else []
    notes, compile_rows = [], []
    src = {}
    # The commit dlc was built from: the build folder's source tree (CMakeCache.txt).
    cache = os.path.join(os.path.dirname(dlc), "CMakeCache.txt")
    srcdir = next((l.split("=", 1)[1].strip() for l in open(cache)
                   if l.startswith("CMAKE_HOME_DIRECTORY")), ROOT) if os.path.exists(cache) else ROOT
    rev = sh(["git", "-C", srcdir, "describe", "--always", "--dirty"], check=False).stdout.strip()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"{sh([dlc, '--version'], check=False).stdout.strip()} ({rev}); {cpu}, {os.cpu_count()} CPUs; "
          f"work dir {work}", flush=True)

    for name in MODELS:
        x, y = make_data(name)
        np.save(os.path.join(work, f"{name}_x.npy"), x)
        np.save(os.path.join(work, f"{name}_y.npy"), y)
        weights = {k: v.numpy() for k, v in make(name).state_dict().items()}
        save_safetensors(os.path.join(work, f"{name}.safetensors"), weights)
        shutil.copy(os.path.join(ROOT, "bench/models", f"{name}.dl"), work)

        # The library the benchmark times: -O default. Then compile times of every mode dlc has.
        lib = os.path.join(work, f"lib{name}.so")
        chosen = os.path.join(work, f"{name}.dl")
        p, wall, llvm = compile_lib(dlc, chosen, lib, "-O default", [], flags)
        if p.returncode:
            sys.exit(f"dlc {chosen} -o {lib}: exit {p.returncode}"
                     f"{' (SIGSEGV)' if p.returncode == -11 else ''}\n{p.stderr}")
        src[name] = chosen
        for mode in MODES:
            quiet.wait()
            # "--model Name()": the forward alone (naming the train block's model without
            # arguments would still export its training step, docs/aot.md).
            q, fwall, fllvm = compile_lib(dlc, chosen, os.path.join(work, f"lib{name}_fwd.so"), mode,
                                          ["--model", MODEL_NAME[name] + "()"], flags)
            if q.returncode == 2 and "mode" in q.stderr:
                continue                           # a mode this dlc does not have (usage error)
            r, twall, tllvm = compile_lib(dlc, chosen, os.path.join(work, f"lib{name}_m.so"), mode,
                                          [], flags)
            if q.returncode or r.returncode:
                notes.append(f"{name} {mode}: compile failed: {(q.stderr + r.stderr).strip()[-300:]}")
                continue
            if mode in TIMED:
                shutil.copy(os.path.join(work, f"lib{name}_m.so"), os.path.join(work, f"lib{name}_{TIMED[mode]}.so"))
            if "train_step(" in open(os.path.join(work, f"lib{name}_fwd.h")).read():
                notes.append(f"{name}: the forward-only library has a training step too: its "
                             "compile time is not the forward's alone")
            cached = float("nan")
            if flags:                              # dlc has a compile cache: a fresh one, twice
                cache = os.path.join(work, "cache")
                shutil.rmtree(cache, ignore_errors=True)
                for _ in range(2):
                    c, cached, _ = compile_lib(dlc, chosen, os.path.join(work, f"lib{name}_m.so"),
                                               mode, ["--cache-dir", cache], [])
                if c.returncode:
                    notes.append(f"{name} {mode}: compile with --cache-dir failed: "
                                 f"{c.stderr.strip()[-300:]}")
                    cached = float("nan")
            compile_rows.append((name, mode, fwall, fllvm, twall, tllvm, cached))

    harness = os.path.join(work, "bench_models")
    sh(["cc", "-O2", "-I" + ROOT, "-o", harness, os.path.join(ROOT, "bench/models.c"), "-ldl"])

    results = {}
    for threads in (1, 2):
        pin = ["taskset", "-c", "0"] if threads == 1 else []
        for name in MODELS:
            env = dict(os.environ, DLC_NUM_THREADS=str(threads))
            p, d_other = quiet.run(pin + [harness, os.path.join(work, f"lib{name}.so"), PREFIX[name],
                          os.path.join(work, f"{name}.safetensors"),
                          os.path.join(work, f"{name}_x.npy"), os.path.join(work, f"{name}_y.npy"),
                          ",".join(map(str, out_shape(name))), work], env)
            os.replace(os.path.join(work, "dlc_forward.bin"),
                       os.path.join(work, f"{name}_dlc_forward.bin"))
            d = {"other": d_other}
            for line in p.stdout.splitlines():
                k, *v = line.split()
                d[k] = [float(a) for a in v]
            for mode, tag in TIMED.items():        # the other modes' libraries, when they compiled
                lib = os.path.join(work, f"lib{name}_{tag}.so")
                if not os.path.exists(lib):
                    continue
                q, _ = quiet.run(pin + [harness, lib, PREFIX[name], os.path.join(work, f"{name}.safetensors"),
                                        os.path.join(work, f"{name}_x.npy"), os.path.join(work, f"{name}_y.npy"),
                                        ",".join(map(str, out_shape(name))), work], env)
                for line in q.stdout.splitlines():
                    k, *v = line.split()
                    if k in ("forward_ms", "train_ms"):
                        d[f"{tag}_{k}"] = [float(a) for a in v]
            tenv = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads))
            if os.path.exists(os.path.join(OPENBLAS_OPENMP, "libblas.so.3")):
                tenv["LD_LIBRARY_PATH"] = OPENBLAS_OPENMP + ":" + tenv.get("LD_LIBRARY_PATH", "")
            p, t_other = quiet.run(pin + [sys.executable, os.path.abspath(__file__), "--torch", work,
                                          name, str(threads)], tenv)
            t = json.loads(p.stdout)
            t["other"] = t_other
            results[(name, threads)] = (d, t)
            modes = "".join(f"; {tag} {d[tag + '_forward_ms'][0]:.3f} / {d[tag + '_train_ms'][0]:.3f}"
                            for tag in TIMED.values() if tag + "_train_ms" in d)
            print(f"  {name:<6} {threads} thread(s): dlc fwd {d['forward_ms'][0]:.3f} train "
                  f"{d['train_ms'][0]:.3f} ms{modes}; eager {t['eager_forward'][0]:.3f} / "
                  f"{t['eager_train'][0]:.3f}; script {t['script_forward'][0]:.3f} / "
                  f"{t['script_train'][0]:.3f}; others used {d_other:.2f} / {t_other:.2f} CPU",
                  flush=True)

    profiles = {}
    for threads in (1, 2):
        for name in MODELS:
            p = sh([dlc, "run", src[name], "--steps", "20", "--profile", "--quiet", "--threads",
                    str(threads)] + flags, check=False)
            with open(os.path.join(work, f"profile_{name}_{threads}t.txt"), "w") as f:
                f.write(p.stdout + p.stderr)
            text = p.stdout + p.stderr
            kinds = re.search(r"@train_step: (\d+) calls.*?\n\s*by kind: (.*)", text)
            top = []
            if kinds:
                section = text[kinds.end():].split("dlc: profile of")[0]
                for line in section.splitlines():
                    f = line.split()
                    if len(f) >= 5 and f[0][0].isdigit() and len(top) < 4:
                        top.append(f"{f[3]} {float(f[0]) / int(kinds.group(1)):.2f} ms")
            profiles[(name, threads)] = (f"{kinds.group(2)}\n           top: " + ", ".join(top)) if kinds \
                else f"(no profile: exit {p.returncode})"

    report(results, compile_rows, notes, flags, profiles)


def report(results, compile_rows, notes, flags, profiles):
    t0 = next(iter(results.values()))[1]
    print(f"\nPyTorch {t0['torch']} on {t0['blas']}; ms per batch, median of 7 samples (spread min-max in the "
          f"log above); speed-up = PyTorch time / dlc time (above 1: dlc is faster)\n")
    print("| model | threads | pass | dlc ms | eager ms | TorchScript ms | eager / dlc | "
          "TorchScript / dlc | dlc reduce-overhead ms | dlc max-autotune ms |")
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in MODELS:
        for threads in (1, 2):
            d, t = results[(name, threads)]
            for kind, dk, ek, sk in (("forward", "forward_ms", "eager_forward", "script_forward"),
                                     ("train step", "train_ms", "eager_train", "script_train")):
                a, e, s = d[dk][0], t[ek][0], t[sk][0]
                star = lambda r: "*" if r["other"] > 0.1 else ""
                other = " | ".join(f"{d[tag + '_' + dk][0]:.3f}" if tag + "_" + dk in d else "-"
                                   for tag in TIMED.values())
                print(f"| {TITLES[name]} | {threads} | {kind} | {a:.3f}{star(d)} | {e:.3f}{star(t)} | "
                      f"{s:.3f}{star(t)} | "
                      f"{e / a:.2f} | {s / a:.2f} | {other} |")
    print("\n(*: other processes used more than 0.1 CPU on average while this was measured)")
    print("\nSpread (min-max over the 7 samples, ms): dlc / eager / TorchScript")
    for (name, threads), (d, t) in results.items():
        for dk, ek, sk in (("forward_ms", "eager_forward", "script_forward"),
                           ("train_ms", "eager_train", "script_train")):
            print(f"  {name:<6} {threads}t {dk[:-3]:<8} " + "  ".join(
                f"{v[1]:.3f}-{v[2]:.3f}" for v in (d[dk], t[ek], t[sk])))
    print("\nSame computation? forward max |dlc - eager| (max |eager|), first three training losses:")
    for name in MODELS:
        d, t = results[(name, 1)]
        print(f"  {name:<6} forward {t['forward_diff']:.2e} ({t['forward_max']:.3g}); losses dlc "
              + " ".join(f"{v:.6f}" for v in d["losses"]) + ", torch "
              + " ".join(f"{v:.6f}" for v in t["losses"]))
    print(f"\ndlc compile time, seconds of wall clock (LLVM's share in parentheses){', --no-cache' if flags else ''}"
          "; the last column: the train block's library compiled a second time with a compile cache:")
    print("| model | mode | forward only (`--model \"Name()\"`) | forward + train_step (train block) | "
          "the same, cached |")
    print("| --- | --- | ---: | ---: | ---: |")
    for name, mode, fw, fl, tw, tl, cached in compile_rows:
        print(f"| {name} | `{mode}` | {fw:.2f} ({fl:.2f}) | {tw:.2f} ({tl:.2f}) | {cached:.3f} |")
    print("\ndlc's training step by kind of kernel (`dlc run --profile`, 20 steps; the kernels in "
          "WORK_DIR/profile_*.txt):")
    for (name, threads), kinds in profiles.items():
        print(f"  {name:<6} {threads}t  {kinds}")
    for n in notes:
        print("NOTE: " + n)
    if "OpenBLAS" not in t0["blas"]:
        print(f"WARNING: PyTorch ran on {t0['blas']}, not OpenBLAS: its times are not representative")
    elif "openmp" not in t0["blas"]:
        print("WARNING: PyTorch ran on OpenBLAS's pthread build, whose threads fight PyTorch's OpenMP "
              "ones: install libopenblas0-openmp for representative 2-thread times")


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--torch":
        print(json.dumps(torch_measure(sys.argv[2], sys.argv[3], int(sys.argv[4]))))
    elif len(sys.argv) == 3:
        main_driver(os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
