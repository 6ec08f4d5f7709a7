"""The host's work per ComplexSynapse step with and without a recorded graph, on the CPU.

    python benchmarks/host_work.py [--tensors 10] [--numel 64] [--rounds 7] [--steps 200]

On a GPU the step of small and medium models is bound by the host: Python, the compiled
kernel's guards, the flat views, a launch per kernel. A CUDA graph leaves the host only
what changes between steps (see ``complex_synapses.step.graphs``). This measures that share
where no GPU is: the optimizer steps tiny parameters (``--tensors`` of ``--numel``
float32 elements, so that the arithmetic is negligible) with ``kernel="compiled"``,
once launching its kernels (``cuda_graph=False``) and once replaying a recording that
does nothing (``graphs.Recording`` replaced, ``graphs.capturable`` answering yes): the
difference is the host work a replay saves, not a GPU step time. Both the fused step
(Adam) and the generic path (SGD with momentum: the base optimizer's own step between
the chain's two recorded stages) are measured, with torch's foreach SGD with momentum
and fused Adam beside them; the configurations take turns, round after round, and
medians are reported. Prints a table, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from complex_synapses import ComplexSynapse
from complex_synapses.step import graphs


class NoReplay:
    """A recording whose replay does nothing: the host's side of a CUDA graph."""

    def __init__(self, fn) -> None:
        pass

    def replay(self) -> None:
        pass


def parameters(tensors: int, numel: int) -> list[torch.nn.Parameter]:
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(numel)) for _ in range(tensors)]
    for p in params:
        p.grad = torch.randn(numel)
    return params


def configs(tensors: int, numel: int):
    chain = dict(n_beakers=5, alpha=500.0, beta=2500.0, kernel="compiled")
    adam, sgd = dict(lr=1e-3, fused=True), dict(lr=1e-3, momentum=0.9, foreach=True)
    yield "torch Adam(fused=True)", torch.optim.Adam(parameters(tensors, numel), **adam)
    yield "torch SGD(momentum, foreach)", torch.optim.SGD(parameters(tensors, numel), **sgd)
    for graph in (False, True):
        tag = "replayed" if graph else "launched"
        params = parameters(tensors, numel)
        yield (
            f"CS Adam n=5, {tag}",
            ComplexSynapse(params, torch.optim.Adam, cuda_graph=graph, **chain, **adam),
        )
        params = parameters(tensors, numel)
        yield (
            f"CS SGD(momentum) n=5, {tag}",
            ComplexSynapse(params, torch.optim.SGD, cuda_graph=graph, **chain, **sgd),
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tensors", type=int, default=10, help="parameter tensors (default 10)")
    ap.add_argument("--numel", type=int, default=64, help="elements per tensor (default 64)")
    ap.add_argument("--rounds", type=int, default=7, help="timing rounds (default 7)")
    ap.add_argument("--steps", type=int, default=200, help="steps per configuration per round (default 200)")
    args = ap.parse_args()
    for name in ("tensors", "numel", "rounds", "steps"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be at least 1, not {getattr(args, name)}")
    graphs.Recording = NoReplay
    graphs.capturable = lambda calls: True

    opts = dict(configs(args.tensors, args.numel))
    for opt in opts.values():
        for _ in range(3):  # state, compilation, recording
            opt.step()
    times: dict[str, list[float]] = {name: [] for name in opts}
    for _ in range(args.rounds):
        for name, opt in opts.items():
            t0 = time.perf_counter()
            for _ in range(args.steps):
                opt.step()
            times[name].append((time.perf_counter() - t0) / args.steps)
    us = {name: 1e6 * statistics.median(ts) for name, ts in times.items()}
    print(
        f"{args.tensors} float32 tensors of {args.numel} elements on the CPU, kernel='compiled', "
        f"torch {torch.__version__}; medians of {args.rounds} rounds of {args.steps} steps"
    )
    print(f"{'configuration':32s} {'host us/step':>13s}")
    for name, t in us.items():
        print(f"{name:32s} {t:13.1f}")
    saved = {
        kind: round(us[f"CS {kind} n=5, launched"] / us[f"CS {kind} n=5, replayed"], 2)
        for kind in ("Adam", "SGD(momentum)")
    }
    print(f"launched / replayed: fused Adam {saved['Adam']}x, generic {saved['SGD(momentum)']}x")
    print(
        json.dumps(
            {
                "benchmark": "host_work",
                "tensors": args.tensors,
                "numel": args.numel,
                "host_us": {k: round(v, 1) for k, v in us.items()},
                "ratio_launched_vs_replayed_fused": saved["Adam"],
                "ratio_launched_vs_replayed_generic": saved["SGD(momentum)"],
            }
        )
    )


if __name__ == "__main__":
    main()
