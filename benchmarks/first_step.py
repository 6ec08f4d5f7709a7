"""What the first step of a new process costs, against torch.optim.Adam's first step.

    python benchmarks/first_step.py [--tensors 1 6 40] [--kernels auto compiled] [--device cpu]

For each number of parameter tensors (70,000 float32 elements each; ComplexSynapse over
Adam, 5 beakers, exact) and each kernel choice, two new processes each time their
first ``opt.step()``: the first with empty caches of its own (TORCHINDUCTOR_CACHE_DIR
and COMPLEX_SYNAPSES_CACHE in a fresh folder: what the first run on a machine pays),
the second with those caches filled (what every later process pays). Beside them, a
new process times torch.optim.Adam's first step on the same tensors. ``auto`` is the
default kernel: on the CPU the C library of :mod:`complex_synapses.step.native` (built on
a cold machine, loaded on a warm one); ``compiled`` is torch.compile's kernel (traced
in every process, compiled on a cold machine).

Targets (issue 12): warm at most 0.5 s above Adam's first step, cold at most 10 s.
Prints a table; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import sys, time, torch
from complex_synapses import ComplexSynapse
n, device, kernel = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ps = [torch.nn.Parameter(torch.randn(70000, device=device)) for _ in range(n)]
if kernel == "adam":
    opt = torch.optim.Adam(ps, lr=1e-3)
else:
    opt = ComplexSynapse(ps, torch.optim.Adam, lr=1e-3, n_beakers=5, alpha=500, beta=2500, kernel=kernel)
for p in ps:
    p.grad = torch.randn_like(p)
t0 = time.perf_counter()
opt.step()
if device.startswith("cuda"):
    torch.cuda.synchronize()
print(time.perf_counter() - t0)
"""

WARM_MAX_ABOVE_ADAM = 0.5
COLD_MAX = 10.0


def first_step(n: int, device: str, kernel: str, cache: str) -> float:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache, "COMPLEX_SYNAPSES_CACHE": cache}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(n), device, kernel],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--tensors", type=int, nargs="+", default=[1, 6, 40], help="tensor counts (default 1 6 40)"
    )
    ap.add_argument(
        "--kernels",
        nargs="+",
        default=["auto", "compiled"],
        choices=["auto", "compiled", "native", "eager"],
        help="ComplexSynapse kernel choices to time (default auto compiled)",
    )
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    args = ap.parse_args()
    rows = []
    print(f"{'tensors':>8s} {'kernel':>9s} {'Adam s':>8s} {'cold s':>8s} {'warm s':>8s} {'warm - Adam':>12s}")
    for n in args.tensors:
        with tempfile.TemporaryDirectory() as cache:
            adam = first_step(n, args.device, "adam", cache)
        for kernel in args.kernels:
            with tempfile.TemporaryDirectory() as cache:
                cold = first_step(n, args.device, kernel, cache)
                warm = first_step(n, args.device, kernel, cache)
            row = {"tensors": n, "kernel": kernel, "adam_s": adam, "cold_s": cold, "warm_s": warm}
            row = {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}
            rows.append(row)
            print(f"{n:8d} {kernel:>9s} {adam:8.3f} {cold:8.2f} {warm:8.3f} {warm - adam:12.3f}")
    default = [r for r in rows if r["kernel"] == "auto"]
    ok = all(r["warm_s"] - r["adam_s"] <= WARM_MAX_ABOVE_ADAM and r["cold_s"] <= COLD_MAX for r in default)
    print(
        json.dumps(
            {
                "benchmark": "first_step",
                "device": args.device,
                "rows": rows,
                "target": {"warm_max_above_adam_s": WARM_MAX_ABOVE_ADAM, "cold_max_s": COLD_MAX},
                "pass": ok if default else None,
            }
        )
    )


if __name__ == "__main__":
    main()
