"""Checks on a CUDA device: no host synchronisation per step, compiled == eager.

    python benchmarks/device_check.py [--device cuda]

For each configuration: a few warm-up steps (state, compilation), then steps under
``torch.cuda.set_sync_debug_mode("error")``, which raises on any operation that
synchronises the host with the device; then the compiled and eager kernels are compared
after the same steps. Prints a table and one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json

import torch

from complex_synapses import ComplexSynapse

CONFIGS = {
    "Adam fused, exact, iteration": (torch.optim.Adam, dict(lr=1e-3, fused=True), dict()),
    "Adam, exact, lr time": (torch.optim.Adam, dict(lr=1e-3), dict(time_unit="lr")),
    "AdamW, euler, iteration": (
        torch.optim.AdamW,
        dict(lr=1e-3, weight_decay=0.01),
        dict(integrator="euler"),
    ),
    "SGD momentum (generic), exact": (torch.optim.SGD, dict(lr=1e-2, momentum=0.9), dict()),
    "RMSprop (generic), euler, lr time": (
        torch.optim.RMSprop,
        dict(lr=1e-3),
        dict(integrator="euler", time_unit="lr"),
    ),
}


def run(device, base, base_kw, chain_kw, kernel, dtype=torch.float32, steps=20, check_sync=False):
    torch.manual_seed(0)
    params = [
        torch.nn.Parameter(torch.randn(s, device=device, dtype=dtype)) for s in [(64, 32), (32,), (10, 64)]
    ]
    grads = [[torch.randn_like(p) for p in params] for _ in range(steps)]
    opt = ComplexSynapse(
        params, base, n_beakers=4, alpha=2.0, beta=100.0, kernel=kernel, **chain_kw, **base_kw
    )
    for i in range(steps):
        for p, g in zip(params, grads[i]):
            p.grad = g
        if check_sync and i >= 3:
            torch.cuda.set_sync_debug_mode("error")
        try:
            opt.step()
        finally:
            torch.cuda.set_sync_debug_mode(0)
    return [p.detach().float().cpu() for p in params], [opt.beakers(p).float().cpu() for p in params]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    device = torch.device(args.device)
    results = {}
    print(
        f"{'configuration':38s} {'no sync (compiled)':>19s} {'no sync (eager)':>16s} "
        f"{'max |compiled-eager|':>21s}"
    )
    for name, (base, base_kw, chain_kw) in CONFIGS.items():
        row = {}
        for kernel in ("compiled", "eager"):
            try:
                row[kernel] = run(device, base, base_kw, chain_kw, kernel, check_sync=True)
                row[f"sync_{kernel}"] = "ok"
            except RuntimeError as exc:
                row[f"sync_{kernel}"] = f"SYNC: {str(exc).splitlines()[0][:60]}"
                row[kernel] = run(device, base, base_kw, chain_kw, kernel)
        diff = max(
            (a - b).abs().max().item()
            for xs, ys in zip(row["compiled"], row["eager"])
            for a, b in zip(xs, ys)
        )
        results[name] = {
            "sync_compiled": row["sync_compiled"],
            "sync_eager": row["sync_eager"],
            "max_diff": diff,
        }
        print(f"{name:38s} {row['sync_compiled']:>19s} {row['sync_eager']:>16s} {diff:21.2e}")
    bf16 = run(device, torch.optim.Adam, dict(lr=1e-3), {}, "compiled", dtype=torch.bfloat16)
    print("bfloat16 compiled: finite", all(torch.isfinite(p).all().item() for p in bf16[0]))
    ok = all(
        r["sync_compiled"] == "ok" and r["sync_eager"] == "ok" and r["max_diff"] < 1e-4
        for r in results.values()
    )
    print(
        json.dumps(
            {
                "benchmark": "device_check",
                "device": torch.cuda.get_device_name(device),
                "pass": ok,
                "torch": torch.__version__,
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
