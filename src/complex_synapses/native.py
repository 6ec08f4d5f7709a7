"""The fused step as a small C library, built once per machine and loaded with ctypes.

A compiled kernel from ``torch.compile`` costs every new process seconds before its
first step (tracing the kernel and loading the compiler: about 4 s on 2 cores with
torch's on-disk cache warm, 20 s cold), which a short run never wins back. The same
arithmetic in plain C (``csrc/step.h``, a line-for-line mirror of
:func:`complex_synapses.kernels.fused_step_`) builds in about a second with the
machine's C compiler and loads in milliseconds, so on the CPU the fused step needs no
tracing at all.

The library is built on first use into a cache folder (``COMPLEX_SYNAPSES_CACHE``,
else ``$XDG_CACHE_HOME/complex_synapses``, else ``~/.cache/complex_synapses``) under a
name that hashes the source, the compiler, its flags and the CPU's features, written
to a temporary name and renamed, so processes that build it at once do not collide.
Where no C compiler is found or the build fails, :func:`library` returns None and the
optimizer uses torch's kernels as before.

Large parameters are cut into ranges stepped on ``torch.get_num_threads()`` threads
(ctypes releases the GIL during a call); the elements are independent, so the result
does not depend on the cut.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["library", "supports", "step_batch", "chain_batch", "bound_batch", "cache_dir", "MAX_LEVELS"]

MAX_LEVELS = 32  # CS_MAX_LEVELS in csrc/step.c: longer chains use torch's kernels
# No contraction into fused multiply-adds: the same roundings as torch's eager ops, so
# that the stochastic rounding onto the grid agrees with theirs bit for bit.
FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-ffp-contract=off", "-shared", "-fPIC", "-std=c11")
# Elements per range stepped on one thread: below this, splitting costs more than it saves.
MIN_RANGE = 1 << 15
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
_REAL = {torch.float32: ctypes.c_float, torch.float64: ctypes.c_double}
_build_lock = threading.Lock()


def cache_dir() -> Path:
    """Where built libraries are kept (see the module's docstring)."""
    if os.environ.get("COMPLEX_SYNAPSES_CACHE"):
        return Path(os.environ["COMPLEX_SYNAPSES_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "complex_synapses"


def _source() -> dict[str, str]:
    folder = resources.files("complex_synapses") / "csrc"
    return {name: (folder / name).read_text() for name in ("step.c", "step.h")}


def _cpu_features() -> str:
    """What ``-march=native`` compiles for: a library built on one CPU must not be
    loaded on another with fewer instructions (a cache folder shared over a network)."""
    try:
        with open("/proc/cpuinfo") as fh:
            return next((line for line in fh if line.startswith(("flags", "Features"))), "")
    except OSError:
        return platform.processor()


def _compiler() -> str | None:
    cc = os.environ.get("CC")
    if cc:
        return shutil.which(cc)
    return next(filter(None, map(shutil.which, ("cc", "gcc", "clang"))), None)


def _build(cc: str, sources: dict[str, str], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        for name, text in sources.items():
            (Path(tmp) / name).write_text(text)
        out = Path(tmp) / target.name
        subprocess.run(
            [cc, *FLAGS, "-o", str(out), str(Path(tmp) / "step.c"), "-lm"],
            check=True,
            capture_output=True,
            text=True,
        )
        os.replace(out, target)


@functools.cache
def library() -> ctypes.CDLL | None:
    """The loaded library, built first if this machine has not built it; None where it
    cannot be built here (no C compiler, a failed build, not Linux or macOS)."""
    if sys.platform not in ("linux", "darwin") or os.environ.get("COMPLEX_SYNAPSES_NO_NATIVE"):
        return None
    cc = _compiler()
    if cc is None:
        return None
    sources = _source()
    key = hashlib.sha256(
        "\0".join([*sources.values(), cc, *FLAGS, platform.machine(), _cpu_features()]).encode()
    ).hexdigest()[:20]
    target = cache_dir() / f"step-{key}.so"
    try:
        with _build_lock:
            if not target.exists():
                _build(cc, sources, target)
        lib = ctypes.CDLL(str(target))
    except (OSError, subprocess.CalledProcessError):
        return None
    for suffix, real in (("f32", ctypes.c_float), ("f64", ctypes.c_double)):
        fn = getattr(lib, f"cs_step_{suffix}")
        ptr = ctypes.POINTER(real)
        fn.argtypes = [ctypes.c_int64, ctypes.c_int64, ctypes.c_int, ptr, ptr, ctypes.POINTER(ptr)]
        fn.argtypes += [ptr, ptr, ptr, ptr, ctypes.c_int, ctypes.c_int, ctypes.c_int]
        fn.restype = None
        fn = getattr(lib, f"cs_pre_{suffix}")
        fn.argtypes = [
            ctypes.c_int64,
            ctypes.c_int64,
            ctypes.c_int,
            ptr,
            ctypes.POINTER(ptr),
            ptr,
            ctypes.c_int,
        ]
        fn.restype = None
        fn = getattr(lib, f"cs_post_{suffix}")
        fn.argtypes = [ctypes.c_int64, ctypes.c_int64, ctypes.c_int, ptr, ctypes.POINTER(ptr), ptr]
        fn.restype = None
        fn = getattr(lib, f"cs_bound_{suffix}")
        fn.argtypes = [ctypes.c_int64, ctypes.c_int64, ptr, ptr, ctypes.c_int64, ctypes.c_int64]
        fn.argtypes += [ctypes.c_int, ctypes.c_int]
        fn.restype = None
    return lib


def supports(tensors: list[Tensor], n_levels: int) -> bool:
    """True where the C step can take these tensors: all on the CPU, contiguous, of
    one dtype (float32 or float64; a 16-bit parameter's gradient is not), and a chain
    of at most :data:`MAX_LEVELS` levels."""
    dtype = tensors[0].dtype
    return (
        dtype in _SUFFIX
        and n_levels <= MAX_LEVELS
        and all(t.device.type == "cpu" and t.dtype == dtype and t.is_contiguous() for t in tensors)
    )


@functools.cache
def _pool(threads: int, pid: int) -> ThreadPoolExecutor:
    """One pool per process: a forked child (a DataLoader worker) inherits the parent's
    pool object but none of its threads, and makes its own rather than rely on how the
    standard library's pool copes with that."""
    return ThreadPoolExecutor(max_workers=threads, thread_name_prefix="complex_synapses")


def _pointer(t: Tensor, real: type) -> ctypes._Pointer:
    return ctypes.cast(t.data_ptr(), ctypes.POINTER(real))


def step_batch(batch, lib: ctypes.CDLL) -> None:
    """Step every parameter of a :class:`complex_synapses.graphs.Batch` (whose tensors
    :func:`supports`) with the C kernel, in place."""
    dtype = batch.coef.dtype
    real = _REAL[dtype]
    fn = getattr(lib, f"cs_step_{_SUFFIX[dtype]}")
    coef, hyper = batch.coef.contiguous(), batch.hyper.contiguous()
    exact, adam = int(batch.integrator == "exact"), int(batch.base == "adam")
    calls = []
    for i, w in enumerate(batch.ws):
        hidden = (ctypes.POINTER(real) * max(1, len(batch.hiddens[i])))(
            *[_pointer(h, real) for h in batch.hiddens[i]]
        )
        m = _pointer(batch.ms[i], real) if adam else None
        v = _pointer(batch.vs[i], real) if adam else None
        args = (len(batch.hiddens[i]) + 1, _pointer(w, real), _pointer(batch.gs[i], real), hidden)
        args += (_pointer(coef, real), _pointer(hyper, real), m, v, exact, adam, int(batch.maximize))
        calls += [(start, end, args) for start, end in _ranges(w.numel())]
    _run(fn, calls)


def chain_batch(
    stage: str, ws: list[Tensor], hiddens: list[list[Tensor]], coef: Tensor, integrator: str, lib
) -> None:
    """:func:`complex_synapses.kernels.chain_pre_multi_` (``stage="pre"``) or
    ``chain_post_multi_`` (``"post"``, euler only) with the C kernels: the chain around
    a base optimizer's own step (the generic path)."""
    real = _REAL[coef.dtype]
    fn = getattr(lib, f"cs_{stage}_{_SUFFIX[coef.dtype]}")
    coef = coef.contiguous()
    extra = (int(integrator == "exact"),) if stage == "pre" else ()
    calls = []
    for w, hidden in zip(ws, hiddens):
        levels = (ctypes.POINTER(real) * max(1, len(hidden)))(*[_pointer(h, real) for h in hidden])
        args = (len(hidden) + 1, _pointer(w, real), levels, _pointer(coef, real), *extra)
        calls += [(start, end, args) for start, end in _ranges(w.numel())]
    _run(fn, calls)


def bound_batch(
    levels: list[list[Tensor]], limit: Tensor, keys: list[Tensor], steps: list[Tensor], lib
) -> None:
    """:func:`complex_synapses.kernels.bound_multi_` with the C kernel, bit for bit:
    every level of each parameter into [-B, B], and where ``keys`` are given onto the
    grid, rounded from each parameter's stream at its ``steps`` counter."""
    dtype = limit.dtype
    real = _REAL[dtype]
    fn = getattr(lib, f"cs_bound_{_SUFFIX[dtype]}")
    quantize = int(bool(keys))
    bound = _pointer(limit, real)
    calls = []
    for i, param_levels in enumerate(levels):
        key, step = (int(keys[i]), int(steps[i])) if quantize else (0, 0)
        for k, level in enumerate(param_levels):
            args = (_pointer(level, real), bound, key, step, k, quantize)
            calls += [(start, end, args) for start, end in _ranges(level.numel())]
    _run(fn, calls)


def _run(fn, calls: list) -> None:
    """Each ``(start, end, args)`` call of ``fn``, on the thread pool where worth it."""
    threads = torch.get_num_threads()
    work = sum(end - start for start, end, _ in calls)
    if threads == 1 or len(calls) == 1 or work < 2 * MIN_RANGE:  # threads cost more than they save
        for start, end, args in calls:
            fn(start, end, *args)
    else:
        list(_pool(threads, os.getpid()).map(lambda c: fn(c[0], c[1], *c[2]), calls))


def _ranges(n: int) -> list[tuple[int, int]]:
    """[0, n) in at most ``torch.get_num_threads()`` ranges of at least MIN_RANGE."""
    parts = max(1, min(torch.get_num_threads(), n // MIN_RANGE))
    bounds = [n * k // parts for k in range(parts + 1)]
    return list(zip(bounds[:-1], bounds[1:]))
