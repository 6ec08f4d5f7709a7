"""Checks on a CUDA device: no host synchronisation per step, compiled == eager, and the
step replayed as a CUDA graph == the same step launched kernel by kernel.

    python benchmarks/device_check.py [--device cuda]

For each configuration: a few warm-up steps (state, compilation), then steps under
``torch.cuda.set_sync_debug_mode("error")``, which raises on any operation that
synchronises the host with the device (the CUDA graphs are recorded on the second step, before
that: the fused step's, or on the generic path the chain's around the base optimizer's own
step); then the compiled and eager kernels, and the compiled kernels with and without the
CUDA graph, are compared after the same steps. Each step gets new gradient tensors, as
``zero_grad(set_to_none=True)`` gives, so the replay's gradient copies are exercised. Prints
a table and one JSON object as the last line.
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


def run(device, base, base_kw, chain_kw, kernel, dtype=torch.float32, steps=20, check_sync=False, graph=True):
    torch.manual_seed(0)
    params = [
        torch.nn.Parameter(torch.randn(s, device=device, dtype=dtype)) for s in [(64, 32), (32,), (10, 64)]
    ]
    grads = [[torch.randn_like(p) for p in params] for _ in range(steps)]
    opt = ComplexSynapse(
        params,
        base,
        n_beakers=4,
        alpha=2.0,
        beta=100.0,
        kernel=kernel,
        cuda_graph=graph,
        **chain_kw,
        **base_kw,
    )
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=5, gamma=0.5)  # new hyper-parameters
    for i in range(steps):
        for p, g in zip(params, grads[i]):
            p.grad = g
        if check_sync and i >= 3:
            torch.cuda.set_sync_debug_mode("error")
        try:
            opt.step()
        finally:
            torch.cuda.set_sync_debug_mode(0)
        sched.step()
    params_out = [p.detach().float().cpu() for p in params]
    return params_out, [opt.levels(p).float().cpu() for p in params], opt._graph is not None


def max_diff(a, b):
    return max((x - y).abs().max().item() for xs, ys in zip(a[:2], b[:2]) for x, y in zip(xs, ys))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    device = torch.device(args.device)
    results = {}
    print(
        f"{'configuration':36s} {'no sync (compiled)':>19s} {'no sync (eager)':>16s} "
        f"{'|compiled-eager|':>17s} {'graph':>6s} {'|graph-launched|':>17s}"
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
        launched = run(device, base, base_kw, chain_kw, "compiled", graph=False)
        diff = max_diff(row["compiled"], row["eager"])
        graph_diff = max_diff(row["compiled"], launched)
        results[name] = {
            "sync_compiled": row["sync_compiled"],
            "sync_eager": row["sync_eager"],
            "max_diff": diff,
            "graph": row["compiled"][2],
            "max_diff_graph": graph_diff,
        }
        print(
            f"{name:36s} {row['sync_compiled']:>19s} {row['sync_eager']:>16s} {diff:17.2e} "
            f"{str(row['compiled'][2]):>6s} {graph_diff:17.2e}"
        )
    bf16 = run(device, torch.optim.Adam, dict(lr=1e-3), {}, "compiled", dtype=torch.bfloat16)
    print("bfloat16 compiled: finite", all(torch.isfinite(p).all().item() for p in bf16[0]))
    ok = all(
        r["sync_compiled"] == "ok"
        and r["sync_eager"] == "ok"
        and r["max_diff"] < 1e-4
        and r["max_diff_graph"] < 1e-6
        for r in results.values()
    )
    # Every configuration must have replayed a graph: the fused step's, or on the generic
    # path (SGD with momentum, RMSprop) the chain's around the base optimizer's own step.
    ok = ok and all(r["graph"] for r in results.values())
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
