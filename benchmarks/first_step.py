"""What the first step of a new process costs: tracing and compiling the fused kernel.

    python benchmarks/first_step.py [--tensors 1 6 20] [--device cpu]

For each number of parameter tensors (70,000 float32 elements each; ComplexSynapse over
Adam, 5 beakers, exact), two new processes each time their first step: the first with
an empty compile cache of its own (TORCHINDUCTOR_CACHE_DIR in a fresh folder: what the
first run on a machine pays), the second with that cache filled (what every later
process pays). Kernel calls take at most 16 tensors, so counts above 16 compile a list
of 16 and one of the remainder. Prints a table; the last line is JSON.
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
n, device = int(sys.argv[1]), sys.argv[2]
ps = [torch.nn.Parameter(torch.randn(70000, device=device)) for _ in range(n)]
opt = ComplexSynapse(ps, torch.optim.Adam, lr=1e-3, n_beakers=5, alpha=500, beta=2500)
for p in ps:
    p.grad = torch.randn_like(p)
t0 = time.perf_counter()
opt.step()
if device.startswith("cuda"):
    torch.cuda.synchronize()
print(time.perf_counter() - t0)
"""


def first_step(n: int, device: str, cache: str) -> float:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(n), device], check=True, capture_output=True, text=True, env=env
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--tensors", type=int, nargs="+", default=[1, 6, 20], help="tensor counts (default 1 6 20)"
    )
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    args = ap.parse_args()
    rows = {}
    print(f"{'tensors':>8s} {'cold cache s':>13s} {'warm cache s':>13s}")
    for n in args.tensors:
        with tempfile.TemporaryDirectory() as cache:
            cold = first_step(n, args.device, cache)
            warm = first_step(n, args.device, cache)
        rows[n] = {"cold_s": round(cold, 2), "warm_s": round(warm, 2)}
        print(f"{n:8d} {cold:13.2f} {warm:13.2f}")
    print(json.dumps({"benchmark": "first_step", "device": args.device, "first_step_s": rows}))


if __name__ == "__main__":
    main()
