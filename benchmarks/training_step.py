"""One training step of the run's MLP, eager against ``--compile``, timed side by side.

    python benchmarks/training_step.py [--steps 300] [--rounds 5] [--device cpu]

The step of ``complex-synapses run`` with default settings: a batch of 128 images of
784 pixels through the 3-layer, 400-unit ReLU MLP, cross-entropy on a 2-class head,
backward, optimizer step. Configurations, each with its own copy of the same model:

- ``eager, Adam``: what ``run`` and the bare loop of ``benchmarks/experiment.py`` do
  (torch's default Adam: the single-tensor loop on the CPU, foreach on CUDA);
- ``eager, Adam(fused)``: only the optimizer changed;
- ``compiled, Adam(fused)``: what ``run --compile`` does (the model under torch.compile,
  on CUDA with CUDA graphs: mode "reduce-overhead");
- ``eager, CS Adam n=5``: what ``run --cs`` does.

The configurations take turns, ``--steps`` steps each per round, so that all see the
same machine load; each reports its median step (forward + backward + step) and, for
the compiled one, its first call (tracing, and compiling where torch's cache is cold).
The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from complex_synapses import ComplexSynapse
from complex_synapses.experiments.run.network import Classifier


def configs(device: torch.device):
    def model():
        torch.manual_seed(0)
        return Classifier(784, 10).to(device)

    m = model()
    yield "eager, Adam", m, torch.optim.Adam(m.parameters(), lr=1e-3)
    m = model()
    yield "eager, Adam(fused)", m, torch.optim.Adam(m.parameters(), lr=1e-3, fused=True)
    m = model()
    mode = "reduce-overhead" if device.type == "cuda" else None
    yield (
        "compiled, Adam(fused)",
        torch.compile(m, mode=mode),
        torch.optim.Adam(m.parameters(), lr=1e-3, fused=True),
    )
    m = model()
    cs = ComplexSynapse(m.parameters(), torch.optim.Adam, n_beakers=5, alpha=500.0, beta=2500.0, lr=1e-3)
    yield "eager, CS Adam n=5", m, cs


def step(forward, optimizer, x: torch.Tensor, y: torch.Tensor, graphs: bool) -> None:
    if graphs:
        torch.compiler.cudagraph_mark_step_begin()
    optimizer.zero_grad()
    F.cross_entropy(forward(x)[:, 0:2], y).backward()
    optimizer.step()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300, help="steps per configuration per round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    args = ap.parse_args()
    if args.steps < 1 or args.rounds < 1:
        ap.error("--steps and --rounds must be at least 1")
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(1)
    images = torch.randn(60000, 784, generator=gen).to(device)
    labels = torch.randint(0, 2, (60000,), generator=gen).to(device)
    rows = torch.randint(0, 60000, (args.steps, 128), generator=gen).to(device)
    setups = list(configs(device))
    times: dict[str, list[float]] = {name: [] for name, *_ in setups}
    first: dict[str, float] = {}
    for name, forward, optimizer in setups:  # one untimed step each; the compiled one's first call
        graphs = device.type == "cuda" and name.startswith("compiled")
        t0 = time.perf_counter()
        step(forward, optimizer, images[rows[0]], labels[rows[0]], graphs)
        sync(device)
        first[name] = time.perf_counter() - t0
    for _ in range(args.rounds):
        for name, forward, optimizer in setups:
            graphs = device.type == "cuda" and name.startswith("compiled")
            for i in range(args.steps):
                t0 = time.perf_counter()
                step(forward, optimizer, images[rows[i]], labels[rows[i]], graphs)
                sync(device)
                times[name].append(time.perf_counter() - t0)
    median = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    base = median["eager, Adam"]
    print(
        f"training step of the 784-400-400-10 MLP, batch 128, on {device} ({torch.get_num_threads()} threads)"
    )
    print(f"{'configuration':24s} {'median step ms':>15s} {'x eager Adam':>13s} {'first step s':>13s}")
    for k, v in median.items():
        print(f"{k:24s} {v:15.3f} {v / base:13.2f} {first[k]:13.2f}")
    print(
        json.dumps(
            {
                "benchmark": "training_step",
                "device": str(device),
                "median_ms": {k: round(v, 3) for k, v in median.items()},
                "first_step_s": {k: round(v, 3) for k, v in first.items()},
                "ratio_compiled_vs_eager_adam": round(median["compiled, Adam(fused)"] / base, 3),
                "ratio_compiled_vs_eager_fused": round(
                    median["compiled, Adam(fused)"] / median["eager, Adam(fused)"], 3
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
