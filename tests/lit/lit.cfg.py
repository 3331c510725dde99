# The lit suite: text-driven tests of the IR, the passes and (later) the frontend and codegen.
# Each test is a file with `// RUN:` lines; FileCheck checks the output.
import ctypes.util
import os
import shutil
import subprocess
import lit.formats

config.name = "dlc"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".dlir", ".dl", ".test"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.dlc_obj_root, "tests", "lit")
config.excludes = ["Inputs", "lit.cfg.py", "lit.site.cfg.py.in"]

config.substitutions.append(("%dlc-opt", os.path.join(config.dlc_tools_dir, "dlc-opt")))
# After %dlc-opt, which starts with it: the compiler driver itself.
config.substitutions.append(("%dlc", os.path.join(config.dlc_tools_dir, "dlc")))
config.substitutions.append(("%unit", os.path.join(config.dlc_obj_root, "tests", "unit")))
# Before %python, which is a prefix of it: the system Python that has PyTorch (Debian's
# python3-torch), for the tests that use PyTorch as a referee (`REQUIRES: torch`).
TORCH_PYTHON = "/usr/bin/python3"
config.substitutions.append(("%python-torch", TORCH_PYTHON))
config.substitutions.append(("%python", config.python))
config.environment["PATH"] = os.pathsep.join(
    [config.dlc_tools_dir, config.llvm_tools_dir, config.environment.get("PATH", "")])
for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "HOME", "TMPDIR"):
    if var in os.environ:
        config.environment[var] = os.environ[var]
# The compile cache (docs/codegen.md): the suite's own, emptied at each run, never the user's
# ~/.cache/dlc. Tests of the cache itself name theirs with --cache-dir.
cache_home = os.path.join(config.test_exec_root, "xdg-cache")
shutil.rmtree(cache_home, ignore_errors=True)
config.environment["XDG_CACHE_HOME"] = cache_home
# -O max-autotune's smallest search (docs/modes.md): two register blocks, one timed run each.
config.environment["DLC_AUTOTUNE"] = "quick"


# GPU tests say `REQUIRES: gpu`: they run only where the CUDA driver loads and sees a device.
def have_gpu():
    lib = ctypes.util.find_library("cuda")
    try:
        cuda = ctypes.CDLL(lib or "libcuda.so.1")
        count = ctypes.c_int(0)
        return cuda.cuInit(0) == 0 and cuda.cuDeviceGetCount(ctypes.byref(count)) == 0 and count.value > 0
    except OSError:
        return False


if os.environ.get("DLC_TEST_GPU", "auto") != "0" and have_gpu():
    config.available_features.add("gpu")


# PyTorch tests say `REQUIRES: torch`: they run only where the system Python imports torch.
def have_torch():
    try:
        return subprocess.run([TORCH_PYTHON, "-c", "import torch"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=120).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


if have_torch():
    config.available_features.add("torch")
