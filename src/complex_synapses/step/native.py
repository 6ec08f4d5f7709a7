"""The fused step as a small C library, built once per machine and loaded with ctypes.

A compiled kernel from ``torch.compile`` costs every new process seconds before its
first step (tracing the kernel and loading the compiler: about 4 s on 2 cores with
torch's on-disk cache warm, 20 s cold), which a short run never wins back. The same
arithmetic in plain C (``csrc/step.h``, a line-for-line mirror of
:func:`complex_synapses.step.kernels.fused_step_`) builds once per machine with its C
compiler (10 s on this machine's 2 cores, its parts compiled at once) and then loads in
milliseconds, so on the CPU the fused step needs no tracing at all.

The library is built on first use into a cache folder (``COMPLEX_SYNAPSES_CACHE``,
else ``$XDG_CACHE_HOME/complex_synapses``, else ``~/.cache/complex_synapses``) under a
name that hashes the source, the compiler, its flags and the CPU's features, written
to a temporary name and renamed, so processes that build it at once do not collide.
Where no C compiler is found or the build fails, :func:`library` returns None and the
optimizer uses torch's kernels as before (said once, with what to install).

The library runs inside every training process, so the cache is trusted as ssh trusts
its keys (:mod:`.trust`): a folder or file owned by another user, or writable by group
or others, is refused (one warning; torch's kernels), and the library is loaded only if
its size and SHA-256 are those recorded when it was built (``step-KEY.json`` beside it).
A library cut short (a full disk, a killed copy) is rebuilt; one changed in any other
way is refused.

Each call takes every parameter of a call. Where the work is worth it, the elements
(the call's tensors laid end to end) are cut into ``torch.get_num_threads()`` pieces,
stepped on torch's own OpenMP threads where the library was built with OpenMP (it then
shares the libgomp torch loaded: see ``csrc/step.c``), else on a thread pool of this
module (ctypes releases the GIL during a call). In a training loop this matters: after
the backward pass torch's threads spin, waiting for work, and a pool of our own had to
wait for the cores (the step of a 478K-parameter MLP took 2.5 ms on that pool, 1.3 ms
on torch's threads, on 2 cores). The elements are independent, so the result does not
depend on the cut.
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
import warnings
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path

import torch
from torch import Tensor

from ..files import atomic_path
from .trust import Refused, folder_lock, record_build, untrusted, verify

__all__ = ["library", "openmp", "supports", "step_call", "chain_call", "bound_call", "cache_dir"]
__all__ += ["MAX_LEVELS", "launch", "addresses", "suffixes"]

MAX_LEVELS = 32  # CS_MAX_LEVELS in csrc/step.c: longer chains use torch's kernels
# The fused arithmetic csrc/step.c implements; a base kernel added to kernels.py alone
# (not yet in C) steps with torch's kernels instead of being taken for SGD here.
BASE_KERNELS = ("adam", "sgd")
# step.c's parts (its CS_ONLY), a compiler process each: the steps of bfloat16 state (16)
# and of bfloat16 state and moments (17), float32 with the rest (32), float64 (64).
PARTS = (16, 17, 32, 64)
# No contraction into fused multiply-adds (torch's eager roundings, bit for bit); no traps
# assumed, so that GCC vectorises the grid's rounding without AVX-512 too (csrc/step.h).
FLAGS = ("-O3", "-march=native", "-fno-math-errno", "-ffp-contract=off", "-fno-trapping-math")
FLAGS += ("-fPIC", "-std=c11")
# Elements per range stepped on one thread: below this, splitting costs more than it saves.
MIN_RANGE = 1 << 15
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}
_build_lock = threading.Lock()


def cache_dir() -> Path:
    """Where built libraries are kept (see the module's docstring)."""
    if os.environ.get("COMPLEX_SYNAPSES_CACHE"):
        return Path(os.environ["COMPLEX_SYNAPSES_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "complex_synapses"


def _source() -> dict[str, str]:
    folder = resources.files("complex_synapses.step") / "csrc"
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


def _build(cc: str, sources: dict[str, str], target: Path, flags: tuple[str, ...]) -> None:
    """Compile the library's parts at once (a process each: the build is most of a cold
    first step; step.c's ``CS_ONLY``), and link them into the library, atomically."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        for name, text in sources.items():
            (Path(tmp) / name).write_text(text)
        objects = [Path(tmp) / f"step{part}.o" for part in PARTS]
        compiles = [
            subprocess.Popen(
                [cc, *flags, f"-DCS_ONLY={part}", "-c", "-o", str(obj), str(Path(tmp) / "step.c")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for part, obj in zip(PARTS, objects)
        ]
        errors = [proc.communicate()[1] for proc in compiles]  # every one waited for, failed or not
        for proc, err in zip(compiles, errors):
            if proc.returncode:
                raise subprocess.CalledProcessError(proc.returncode, proc.args, stderr=err)
        with atomic_path(target) as out:
            link = [cc, *flags, "-shared", "-o", str(out), *map(str, objects), "-lm"]
            subprocess.run(link, check=True, capture_output=True, text=True)


def _load(cc: str, sources: dict[str, str], flags: tuple[str, ...]) -> ctypes.CDLL | None:
    """The library built with ``flags`` (built first where this machine has not built
    it, rebuilt where it was cut short), or None where it does not build or load;
    Refused where the cache is not to be trusted."""
    key = hashlib.sha256(
        "\0".join([*sources.values(), cc, *flags, platform.machine(), _cpu_features()]).encode()
    ).hexdigest()[:20]
    target = cache_dir() / f"step-{key}.so"
    record = target.with_suffix(".json")
    try:
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        if untrusted(target.parent):
            raise Refused(untrusted(target.parent))
        with _build_lock, folder_lock(target.parent):
            problem = untrusted(target) or untrusted(record)
            if problem is None and target.exists():
                problem = verify(target, record)  # removes a library cut short, to be rebuilt
            if problem is not None:
                raise Refused(problem)
            if not target.exists():
                _build(cc, sources, target, flags)
                record_build(target, record)
        return ctypes.CDLL(str(target))
    except (OSError, subprocess.CalledProcessError):
        return None


_warned: set[str] = set()


def _warn_once(problem: str) -> None:
    if problem not in _warned:
        _warned.add(problem)
        warnings.warn(
            f"complex_synapses: {problem}: not loaded; the optimizer step runs on torch's kernels",
            RuntimeWarning,
            stacklevel=3,
        )


@functools.cache
def library() -> ctypes.CDLL | None:
    """The loaded library, built first if this machine has not built it; None where it
    cannot be built here (no C compiler, a failed build, not Linux or macOS). Built
    with OpenMP where the compiler has it (see :func:`openmp`), without otherwise."""
    if sys.platform not in ("linux", "darwin") or os.environ.get("COMPLEX_SYNAPSES_NO_NATIVE"):
        return None
    cc = _compiler()
    if cc is None:
        _warn_once(
            f"no C compiler found ({'CC=' + os.environ['CC'] if os.environ.get('CC') else 'cc, gcc, clang'}) "
            "for the fused step's C library (install one, e.g. apt-get install gcc, or set CC; "
            "COMPLEX_SYNAPSES_NO_NATIVE=1 says no to it quietly); it is several times faster on the CPU"
        )
        return None
    try:
        lib = built(cc, _source())
    except Refused as why:
        _warn_once(str(why))
        return None
    if lib is None:
        _warn_once(f"the fused step's C library did not build or load with {cc} (in {cache_dir()})")
    return lib


def built(cc: str, sources: dict[str, str]) -> ctypes.CDLL | None:
    """The library of ``sources`` (csrc's files by name) built with ``cc`` into the cache
    (once) and loaded, its entry points declared: with OpenMP where the compiler takes
    it, without otherwise; None where it does not build or load; Refused where the cache
    is not to be trusted. :func:`library` is this for the package's own sources
    (``benchmarks/native_ab.py`` builds another revision's)."""
    lib = _load(cc, sources, (*FLAGS, "-fopenmp")) or _load(cc, sources, FLAGS)
    if lib is not None:
        _declare(lib)
        if lib.cs_openmp():
            _openmp_in[id(lib)] = os.getpid()
    return lib


def _declare(lib: ctypes.CDLL) -> None:
    """The argument types of the library's entry points (pointers as plain addresses)."""
    p, pp, i64, c_int = ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int
    head = [c_int, ctypes.POINTER(i64)]  # count, numel[count]
    tail = [c_int, c_int, c_int]  # threads, part, parts
    step = [c_int, pp, pp, pp, p, p, pp, pp, c_int, c_int, c_int]  # n, p, g, hidden, coef, hyper, m, v, flags
    for suffix in _SUFFIX.values():
        args = {
            "step": step,
            "pre": [c_int, pp, pp, p, c_int],
            "post": [c_int, pp, pp, p],
            "bound": [pp, p, ctypes.POINTER(i64), ctypes.POINTER(i64), ctypes.POINTER(c_int), c_int, c_int],
        }
        for name, middle in args.items():
            fn = getattr(lib, f"cs_{name}_many_{suffix}")
            fn.argtypes, fn.restype = head + middle + tail, None
    lib.cs_openmp.restype = c_int
    bf16 = {"round": [pp, pp, *map(ctypes.POINTER, (i64, i64, c_int, i64))], "widen": [pp, pp]}
    bf16["step"] = [*step, ctypes.POINTER(i64), ctypes.POINTER(i64)]  # and each tensor's stream
    for name, middle in bf16.items():  # state16's: 16-bit levels stored, read and stepped
        fn = getattr(lib, f"cs_{name}_bf16_many")
        fn.argtypes, fn.restype = head + middle + tail, None
    lib.cs_step_bf16m_many.argtypes, lib.cs_step_bf16m_many.restype = head + bf16["step"] + tail, None


# The process that loaded each library built with OpenMP: a forked child inherits the
# parent's library, but not the OpenMP threads behind it (see _launch).
_openmp_in: dict[int, int] = {}


def openmp(lib: ctypes.CDLL) -> bool:
    """Whether ``lib`` runs its calls on OpenMP threads: built with OpenMP, and in the
    process that loaded it. With torch's own libgomp loaded first (torch's Linux
    wheels), those are torch's threads (see csrc/step.c)."""
    return _openmp_in.get(id(lib)) == os.getpid()


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


def _addresses(tensors: list[Tensor]) -> ctypes.Array:
    return (ctypes.c_void_p * max(1, len(tensors)))(*[t.data_ptr() for t in tensors])


def step_call(call, lib: ctypes.CDLL) -> None:
    """Step every parameter of a :class:`complex_synapses.step.calls.KernelCall` (whose
    tensors :func:`supports`) with the C kernel, in place: one C call for all of them."""
    dtype = call.coef.dtype
    fn = getattr(lib, f"cs_step_many_{_SUFFIX[dtype]}")
    coef, hyper = call.coef.contiguous(), call.hyper.contiguous()
    exact, adam = int(call.integrator == "exact"), int(call.base == "adam")
    n = len(call.hiddens[0]) + 1
    hidden = _addresses([h for levels in call.hiddens for h in levels])
    m, v = (_addresses(call.ms), _addresses(call.vs)) if adam else (None, None)
    args = (n, _addresses(call.ws), _addresses(call.gs), hidden, coef.data_ptr(), hyper.data_ptr())
    _launch(fn, lib, [w.numel() for w in call.ws], *args, m, v, exact, adam, int(call.maximize))


def chain_call(
    stage: str, ws: list[Tensor], hiddens: list[list[Tensor]], coef: Tensor, integrator: str, lib
) -> None:
    """:func:`complex_synapses.step.kernels.chain_pre_multi_` (``stage="pre"``) or
    ``chain_post_multi_`` (``"post"``, euler only) with the C kernels: the chain around
    a base optimizer's own step (the generic path)."""
    fn = getattr(lib, f"cs_{stage}_many_{_SUFFIX[coef.dtype]}")
    coef = coef.contiguous()
    extra = (int(integrator == "exact"),) if stage == "pre" else ()
    hidden = _addresses([h for levels in hiddens for h in levels])
    n = len(hiddens[0]) + 1
    _launch(fn, lib, [w.numel() for w in ws], n, _addresses(ws), hidden, coef.data_ptr(), *extra)


def bound_call(
    levels: list[list[Tensor]], limit: Tensor, keys: list[Tensor], steps: list[Tensor], lib
) -> None:
    """:func:`complex_synapses.step.kernels.bound_multi_` with the C kernel, bit for bit:
    every level of each parameter into [-B, B] (its own row of ``limit`` where it has a
    row per level), and where ``keys`` are given onto the grid, rounded from each
    parameter's stream at its ``steps`` counter."""
    fn = getattr(lib, f"cs_bound_many_{_SUFFIX[limit.dtype]}")
    quantize = int(bool(keys))
    tensors, key, step, index = [], [], [], []
    for i, param_levels in enumerate(levels):
        k, s = (int(keys[i]), int(steps[i])) if quantize else (0, 0)
        for j, level in enumerate(param_levels):
            tensors.append(level)
            key.append(k)
            step.append(s)
            index.append(j)
    count = len(tensors)
    args = (_addresses(tensors), limit.data_ptr(), (ctypes.c_int64 * count)(*key))
    args += ((ctypes.c_int64 * count)(*step), (ctypes.c_int * count)(*index), quantize, int(limit.dim() == 2))
    _launch(fn, lib, [t.numel() for t in tensors], *args)


def _launch(fn, lib: ctypes.CDLL, numel: list[int], *args) -> None:
    """``fn(count, numel, *args, threads, part, parts)`` over tensors of ``numel``
    elements: on the calling thread where the work is small (threads would cost more
    than they save), else on torch's OpenMP threads where the library has them (see
    :func:`openmp`), else in pieces on a thread pool of this module, the calling thread
    taking the first (ctypes releases the GIL during a call)."""
    threads, work = torch.get_num_threads(), sum(numel)
    sizes = (ctypes.c_int64 * len(numel))(*numel)
    head = (len(numel), sizes, *args)
    if threads == 1 or work < 2 * MIN_RANGE:
        fn(*head, 1, 0, 0)
    elif openmp(lib):
        fn(*head, threads, 0, 0)
    else:
        parts = min(threads, work // MIN_RANGE)
        pool = _pool(threads, os.getpid())
        others = [pool.submit(fn, *head, 1, part, parts) for part in range(1, parts)]
        fn(*head, 1, 0, parts)
        for future in others:
            future.result()


launch, addresses, suffixes = _launch, _addresses, _SUFFIX  # for other modules (state16, chosen)
