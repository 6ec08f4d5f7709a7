"""The optimizer state of a 100M-parameter model, float32 and bfloat16 chain state.

    python benchmarks/state_memory.py [--params 100000000] [--lengths 5,10,16]

For each configuration (fused Adam alone; ComplexSynapse around it with n levels,
``state_dtype`` float32 and bfloat16) a fresh process makes the parameters (ten float32
tensors), gives them gradients, takes two steps (the second timed), and reports the bytes of optimizer
state it holds (the chain's hidden levels and Adam's moments, summed over the state's
tensors) and the process's peak resident memory (``ru_maxrss``, which also counts the
parameters, their gradients, the step's float32 pieces and Python itself). Prints a
table, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch
from optimizer_step import state_bytes  # benchmarks/ is on the path when run as a script

from complex_synapses import ComplexSynapse


def measure(params: int, n: int, state_dtype: str) -> dict:
    """One configuration, in this process (n = 0: fused Adam alone)."""
    size = params // 10
    ps = [torch.nn.Parameter(torch.randn(size) * 0.01) for _ in range(10)]
    for p in ps:
        p.grad = torch.randn_like(p)
    if n == 0:
        opt = torch.optim.Adam(ps, lr=1e-3, fused=True)
    else:
        dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16}[state_dtype]
        opt = ComplexSynapse(ps, torch.optim.Adam, n_beakers=n, alpha=500.0, beta=2500.0, lr=1e-3,
                             fused=True, state_dtype=dtype)  # fmt: skip
    opt.step()  # makes the state
    start = time.perf_counter()
    opt.step()
    step_s = time.perf_counter() - start
    state = state_bytes(opt) * size * 10  # the same count as optimizer_step.py's table
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux
    out = {"n": n, "state_dtype": state_dtype, "params": size * 10, "state_bytes": state}
    return out | {"state_bytes_per_param": state / (size * 10), "peak_rss_bytes": peak, "step_s": step_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--params", type=int, default=100_000_000, help="parameter elements (default 100M)")
    ap.add_argument("--lengths", default="5,10,16", help="chain lengths (default %(default)s)")
    ap.add_argument("--one", nargs=2, metavar=("N", "DTYPE"), help=argparse.SUPPRESS)  # a child's task
    args = ap.parse_args()
    if args.params < 10:
        ap.error(f"--params must be at least 10 (ten tensors), got {args.params}")
    if args.one:
        print(json.dumps(measure(args.params, int(args.one[0]), args.one[1])))
        return
    lengths = [int(x) for x in args.lengths.split(",") if x.strip()]
    if not lengths or min(lengths) < 1 or max(lengths) > 32:
        ap.error(f"--lengths must be chain lengths 1..32, got {args.lengths!r}")
    configs = [(0, "float32")] + [(n, d) for n in lengths for d in ("float32", "bfloat16")]
    rows = []
    for n, dtype in configs:
        cmd = [sys.executable, __file__, "--params", str(args.params), "--one", str(n), dtype]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{rows[0]['params']:,} float32 parameters in 10 tensors, CPU, torch {torch.__version__}")
    print(f"{'configuration':34s} {'state GB':>9s} {'B/param':>8s} {'peak RSS GB':>12s} {'2nd step s':>11s}")
    for r in rows:
        name = "Adam(fused=True)" if r["n"] == 0 else f"CS Adam n={r['n']}, {r['state_dtype']} state"
        print(f"{name:34s} {r['state_bytes'] / 1e9:9.2f} {r['state_bytes_per_param']:8.1f} "
              f"{r['peak_rss_bytes'] / 1e9:12.2f} {r['step_s']:11.2f}")  # fmt: skip
    print(json.dumps({"benchmark": "state_memory", "rows": rows}))


if __name__ == "__main__":
    main()
