"""Two builds of the optimizer's C library stepping in turns in one process: a change to
``csrc/`` timed against a git revision without the drift of a shared machine between runs.

    python benchmarks/native_ab.py --base HEAD~1 [--lengths 16,32] [--dense] [--steps 20]

The base build compiles the C sources (``src/complex_synapses/step/csrc``) of ``--base``,
the other those of the working tree, both with this tree's flags (``native.FLAGS``, with
OpenMP where the compiler takes it), into a temporary folder. Each configuration (CS Adam,
exact, at each chain length; float32 state, and bfloat16 state with ``--bf16``) steps one
optimizer whose library is swapped before each step, the two in turns (ABBA...), on the
same parameters and gradients (``--numel`` float32 elements in 10 tensors, torch's
threads); it reports each build's median step and the median of the steps' paired ratios
(working tree over base). On a shared machine whose speed drifts by 20% from one minute to
the next, this tells a change of a few percent from the noise, which separate runs of
``benchmarks/optimizer_step.py`` cannot.

Before timing, the two builds step copies of the same parameters (three tensors, one of
them of odd length) four times with the same gradients, and the parameters and every
state tensor are compared bit for bit: ``same`` in the table. A change to the arithmetic
shows there; its timing is still printed. The last line is JSON.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from complex_synapses import ComplexSynapse
from complex_synapses.step import native

ROOT = Path(__file__).resolve().parents[1]
CSRC = "src/complex_synapses/step/csrc"


def base_sources(rev: str) -> dict[str, str]:
    """Revision ``rev``'s C sources, by file name."""
    sources = {}
    for name in ("step.c", "step.h"):
        shown = subprocess.run(
            ["git", "show", f"{rev}:{CSRC}/{name}"], cwd=ROOT, capture_output=True, text=True
        )
        if shown.returncode:
            raise SystemExit(f"--base {rev!r}: git cannot show {CSRC}/{name} there: {shown.stderr.strip()}")
        sources[name] = shown.stdout
    return sources


def base_library(sources: dict[str, str], rev: str, folder: Path) -> ctypes.CDLL:
    """The library built from ``sources`` (revision ``rev``'s) with this tree's flags, in a
    cache folder of its own under ``folder``."""
    cc = native._compiler()
    if cc is None:
        raise SystemExit("no C compiler found (cc, gcc, clang, or CC): nothing to build")
    before = os.environ.get("COMPLEX_SYNAPSES_CACHE")
    os.environ["COMPLEX_SYNAPSES_CACHE"] = str(folder / "cache")  # not the machine's cache
    try:
        lib = native.built(cc, sources)
    finally:
        if before is None:
            del os.environ["COMPLEX_SYNAPSES_CACHE"]
        else:
            os.environ["COMPLEX_SYNAPSES_CACHE"] = before
    if lib is None:
        raise SystemExit(f"the C sources of {rev} do not build with {cc}")
    return lib


def chain(n: int, dense: bool) -> dict[str, float]:
    """benchmarks/optimizer_step.py's long chains: alpha 500, beta 2500, or with ``dense``
    alpha 1 and beta 4^(n-1) (the fast level moves every step)."""
    return dict(alpha=1.0, beta=min(4.0 ** (n - 1), 1e12)) if dense else dict(alpha=500.0, beta=2500.0)


def flat(x) -> list[torch.Tensor]:
    if isinstance(x, torch.Tensor):
        return [x]
    if isinstance(x, dict):
        return [t for v in x.values() for t in flat(v)]
    if isinstance(x, (list, tuple)):
        return [t for v in x for t in flat(v)]
    return []


def same_steps(libs: list[ctypes.CDLL], current: list, n: int, dense: bool, dtype: torch.dtype) -> bool:
    """Whether the two builds step copies of the same parameters to the same bits."""
    found = []
    for lib in libs:
        current[0] = lib
        gen = torch.Generator().manual_seed(0)
        params = [torch.nn.Parameter(torch.randn(k, generator=gen)) for k in (100_003, 77, 4096)]
        opt = ComplexSynapse(
            params, torch.optim.Adam, n_beakers=n, lr=1e-2, state_dtype=dtype, **chain(n, dense)
        )
        for _ in range(4):
            for p in params:
                p.grad = torch.randn(p.shape, generator=gen)
            opt.step()
        found.append([t.detach().clone() for t in params + flat(list(opt.state.values()))])
    a, b = found
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


def timed_pairs(libs, current, n: int, dense: bool, dtype: torch.dtype, numel: int, steps: int):
    """Each build's step times (s), the two stepping one optimizer in turns."""
    gen = torch.Generator().manual_seed(1)
    params = [torch.nn.Parameter(torch.randn(numel // 10, generator=gen)) for _ in range(10)]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen) * 1e-3
    opt = ComplexSynapse(params, torch.optim.Adam, n_beakers=n, lr=1e-3, state_dtype=dtype, **chain(n, dense))
    for lib in libs:  # the state made, each build's first call
        current[0] = lib
        opt.step()
    times: list[list[float]] = [[], []]
    for i in range(steps):
        for k in (0, 1) if i % 2 == 0 else (1, 0):
            current[0] = libs[k]
            t0 = time.perf_counter()
            opt.step()
            times[k].append(time.perf_counter() - t0)
    return times


def compare(libs, current, n: int, dense: bool, dtype: torch.dtype, numel: int, steps: int) -> dict:
    """One configuration: whether the two builds step to the same bits, each build's
    median step (ms) and the median of the steps' paired ratios (new over base)."""
    same = same_steps(libs, current, n, dense, dtype)
    a, b = timed_pairs(libs, current, n, dense, dtype, numel, steps)
    return {
        "base_ms": round(statistics.median(a) * 1e3, 2),
        "new_ms": round(statistics.median(b) * 1e3, 2),
        "paired_ratio": round(statistics.median([y / x for x, y in zip(a, b)]), 3),
        "same": same,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", default="HEAD", help="git revision whose C sources are the base (default HEAD)")
    ap.add_argument("--lengths", default="5,10,16,32", help="chain lengths (default %(default)s)")
    ap.add_argument("--dense", action="store_true", help="alpha 1, beta 4^(n-1) (else alpha 500, beta 2500)")
    ap.add_argument("--bf16", action="store_true", help="also each length with bfloat16 state")
    ap.add_argument("--numel", type=int, default=10_000_000, help="parameter elements (default 10M)")
    ap.add_argument("--steps", type=int, default=20, help="timed steps of each build (default %(default)s)")
    args = ap.parse_args(argv)
    try:
        lengths = [int(x) for x in args.lengths.split(",")]
    except ValueError:
        ap.error(f"--lengths takes chain lengths separated by commas, got {args.lengths!r}")
    if not all(1 <= n <= native.MAX_LEVELS for n in lengths):
        ap.error(f"--lengths must lie in 1..{native.MAX_LEVELS} (the C library's chains), got {args.lengths}")
    if args.numel < 10 or args.steps < 1:
        ap.error(f"--numel must be >= 10 and --steps >= 1, got {args.numel}, {args.steps}")
    sources = base_sources(args.base)
    new = native.library()
    if new is None:
        raise SystemExit("the working tree's C library did not build or load here: nothing to compare")
    with tempfile.TemporaryDirectory() as tmp:
        base = base_library(sources, args.base, Path(tmp))
        libs, current = [base, new], [base]
        native.library = lambda: current[0]  # the optimizer asks for the library at each step
        dtypes = [torch.float32] + ([torch.bfloat16] if args.bf16 else [])
        rows = {}
        print(
            f"{args.numel:,} float32 parameters, {torch.get_num_threads()} threads, "
            f"{'dense chains' if args.dense else 'alpha 500, beta 2500'}; "
            f"base {args.base}, new the working tree"
        )
        print(f"{'configuration':<32} {'base ms':>9} {'new ms':>9} {'new/base':>9} {'paired':>8}  same")
        for n in lengths:
            for dtype in dtypes:
                name = f"CS Adam n={n} exact{', bf16 state' if dtype == torch.bfloat16 else ''}"
                row = rows[name] = compare(libs, current, n, args.dense, dtype, args.numel, args.steps)
                print(
                    f"{name:<32} {row['base_ms']:>9.2f} {row['new_ms']:>9.2f} "
                    f"{row['new_ms'] / row['base_ms']:>9.3f} {row['paired_ratio']:>8.3f}  {row['same']}"
                )
    print(
        json.dumps(
            {
                "benchmark": "native_ab",
                "base": args.base,
                "numel": args.numel,
                "steps": args.steps,
                "dense": args.dense,
                "rows": rows,
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
