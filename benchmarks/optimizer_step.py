"""Step time of ComplexSynapse against fused Adam on the same parameters.

    python benchmarks/optimizer_step.py [--numel 10000000] [--tensors 10] [--device cpu]

Every configuration steps the same parameters (10M float32 elements in 10 tensors by
default) with fixed gradients; the configurations are timed in turns, round after
round, so that all of them see the same machine load, and each reports its median
step time. The headline ratio is ComplexSynapse(Adam, n_beakers=5, exact, time in
iterations, fused=True passed to Adam) over torch.optim.Adam(fused=True). On a CUDA
device the step is replayed as a CUDA graph from its second step on (the default); the
same step launched kernel by kernel is timed beside it. Prints a table, then one JSON
object as the last line.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from complex_synapses import ComplexSynapse


def configs(params, device):
    fused = {"fused": True}
    cs = dict(alpha=500.0, beta=2500.0)
    yield "Adam(fused=True)", torch.optim.Adam(params, lr=1e-3, **fused)
    yield "CS Adam n=5 exact", ComplexSynapse(params, torch.optim.Adam, n_beakers=5, lr=1e-3, **cs, **fused)
    yield (
        "CS Adam n=5 euler",
        ComplexSynapse(params, torch.optim.Adam, n_beakers=5, integrator="euler", lr=1e-3, **cs, **fused),
    )
    if device.type == "cpu":  # the default there is the C library; torch.compile's kernel beside it
        yield (
            "CS Adam n=5 exact, compiled",
            ComplexSynapse(params, torch.optim.Adam, n_beakers=5, lr=1e-3, kernel="compiled", **cs, **fused),
        )
    if device.type == "cuda":  # the same step without its CUDA graph: what the graph saves
        yield (
            "CS Adam n=5 exact, no graph",
            ComplexSynapse(params, torch.optim.Adam, n_beakers=5, lr=1e-3, cuda_graph=False, **cs, **fused),
        )
    yield "CS Adam n=1 exact", ComplexSynapse(params, torch.optim.Adam, n_beakers=1, lr=1e-3, **cs, **fused)
    yield "CS Adam n=10 exact", ComplexSynapse(params, torch.optim.Adam, n_beakers=10, lr=1e-3, **cs, **fused)
    yield "SGD", torch.optim.SGD(params, lr=1e-3)
    yield "CS SGD n=5 exact", ComplexSynapse(params, torch.optim.SGD, n_beakers=5, lr=1e-3, **cs)
    yield (
        "CS SGD(momentum) n=5 (generic)",
        ComplexSynapse(params, torch.optim.SGD, n_beakers=5, lr=1e-3, momentum=0.9, **cs),
    )
    if device.type == "cuda":  # the generic path's chain launched, not replayed
        yield (
            "CS SGD(momentum) n=5 (generic), no graph",
            ComplexSynapse(
                params, torch.optim.SGD, n_beakers=5, lr=1e-3, momentum=0.9, cuda_graph=False, **cs
            ),
        )


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--numel", type=int, default=10_000_000, help="parameter elements in all (default 10M)")
    ap.add_argument("--tensors", type=int, default=10, help="number of parameter tensors (default 10)")
    ap.add_argument("--rounds", type=int, default=7, help="timing rounds (default 7)")
    ap.add_argument("--steps", type=int, default=5, help="steps per configuration per round (default 5)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    args = ap.parse_args()
    device = torch.device(args.device)

    torch.manual_seed(0)
    size = args.numel // args.tensors
    params = [torch.nn.Parameter(torch.randn(size, device=device) * 0.01) for _ in range(args.tensors)]
    for p in params:
        p.grad = torch.randn_like(p)

    opts, first_step = {}, {}
    for name, opt in configs(params, device):
        sync(device)
        t0 = time.perf_counter()
        opt.step()  # the first step pays for state and compilation
        sync(device)
        first_step[name] = time.perf_counter() - t0
        opts[name] = opt

    times: dict[str, list[float]] = {name: [] for name in opts}
    for _ in range(args.rounds):
        for name, opt in opts.items():
            sync(device)
            t0 = time.perf_counter()
            for _ in range(args.steps):
                opt.step()
            sync(device)
            times[name].append((time.perf_counter() - t0) / args.steps)

    median = {name: statistics.median(ts) for name, ts in times.items()}
    base = median["Adam(fused=True)"]
    print(
        f"{args.numel:,} float32 parameters in {args.tensors} tensors on {device} "
        f"({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__})"
    )
    print(f"{'configuration':42s} {'median step ms':>15s} {'x fused Adam':>13s} {'first step s':>13s}")
    for name in opts:
        print(f"{name:42s} {1e3 * median[name]:15.2f} {median[name] / base:13.2f} {first_step[name]:13.2f}")
    ratio = median["CS Adam n=5 exact"] / base
    generic = median["CS SGD(momentum) n=5 (generic)"] / base
    cuda = device.type == "cuda"
    print(
        json.dumps(
            {
                "benchmark": "optimizer_step",
                "device": str(device),
                "numel": args.numel,
                "tensors": args.tensors,
                "ratio_cs_adam_n5_vs_fused_adam": round(ratio, 3),
                "target_max": 3.0,
                "aim": 2.5,
                "pass": ratio <= 3.0,
                "ratio_generic_vs_fused_adam": round(generic, 3),
                # issue 12's aims on CUDA: CS Adam n=5 within 2.2x fused Adam, the generic path within 3x
                "target_cs_adam_cuda": 2.2,
                "target_generic_cuda": 3.0,
                "pass_cuda": (ratio <= 2.2 and generic <= 3.0) if cuda else None,
                "median_ms": {k: round(1e3 * v, 3) for k, v in median.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
