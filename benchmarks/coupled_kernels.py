"""The coupled estimator's population and copies clipped and rounded in the optimizer's C
kernel (``step.chosen.bound_at_call``) against torch's operations, side
by side in one run, one thread.

    python benchmarks/coupled_kernels.py [--synapses 1024] [--steps 4096] [--repeats 1]

For each setting (chains of the quick preset, the stated grid's writes of one spacing and
its halves and doubles, followed to age 10,000) the same curves are computed both ways;
they must be equal bit for bit (the run stops otherwise), and the ratio of the times is
the kernel's gain. Prints a table; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from complex_synapses.lab import coupled
from complex_synapses.lab.coupled import coupled_curves
from complex_synapses.step import native

SPACING = 2.0 / 15  # of the 16 values
CHAINS = ((20, 4.0, 256.0), (12, 4.0, 256.0), (20, 4.0, 4.0))
WRITES = (SPACING / 2, SPACING, 2 * SPACING)


def timed(chain, ages, synapses, steps, c_kernel: bool):
    """(curves, seconds) of one chain, with the C kernel or torch's operations."""
    real = native.library
    coupled.native.library = real if c_kernel else (lambda: None)
    try:
        t0 = time.perf_counter()
        curves = coupled_curves([chain], WRITES, 16, ages, synapses, steps, 16, stride=16)
        return curves, time.perf_counter() - t0
    finally:
        coupled.native.library = real


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--synapses", type=int, default=1024, help="synapses a setting (default %(default)s)")
    p.add_argument("--steps", type=int, default=4096, help="memories followed (default %(default)s)")
    p.add_argument("--repeats", type=int, default=1, help="rounds, the faster kept (default %(default)s)")
    a = p.parse_args()
    if native.library() is None:
        p.error("no C library on this machine: nothing to compare")
    torch.set_num_threads(1)
    ages = np.unique(np.concatenate([[0], np.geomspace(1, 10000, 48).astype(int)]))
    print(f"{'chain':18s} {'torch s':>8s} {'C s':>7s} {'gain':>6s}")
    out = {}
    for chain in CHAINS:
        best = {True: float("inf"), False: float("inf")}
        for _ in range(a.repeats):
            curves = {}
            for c_kernel in (False, True):  # interleaved: the machine is shared
                curves[c_kernel], seconds = timed(chain, ages, a.synapses, a.steps, c_kernel)
                best[c_kernel] = min(best[c_kernel], seconds)
            if not np.array_equal(curves[True].signal, curves[False].signal):
                raise SystemExit(f"{chain}: the C kernel's curves differ from torch's")
        name = f"n{chain[0]} a{chain[1]:g} b{chain[2]:g}"
        out[name] = {"torch_s": best[False], "c_s": best[True], "gain": best[False] / best[True]}
        print(f"{name:18s} {best[False]:8.1f} {best[True]:7.1f} {out[name]['gain']:6.2f}")
    print(json.dumps({"settings": out, "synapses": a.synapses, "steps": a.steps}))


if __name__ == "__main__":
    main()
