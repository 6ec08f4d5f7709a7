"""Step time of ComplexSynapse against fused Adam on the same parameters.

    python benchmarks/optimizer_step.py [--numel 10000000] [--tensors 10] [--device cpu]

Every configuration steps the same parameters (10M float32 elements in 10 tensors by
default) with fixed gradients; the configurations are timed in turns, round after
round, so that all of them see the same machine load, and each reports its median
step time. The headline ratio is ComplexSynapse(Adam, n_beakers=5, exact, time in
iterations, fused=True passed to Adam) over torch.optim.Adam(fused=True). On a CUDA
device the step is replayed as a CUDA graph from its second step on (the default); the
same step launched kernel by kernel is timed beside it.

Long chains (``--lengths``, default 5, 10, 16, 32; exact and Euler) are set beside their
floors: the memory-traffic floor, (7 + 2(n-1)) / 7 times fused Adam (its 7 streams per
element: parameter, gradient, two moments read and three written, plus every extra
level read and written), and the arithmetic floor where it is the higher one, n x n
multiply-adds per element at this machine's measured matrix-product rate (the C
library's work: n x n where its loop is unrolled, up to 10 levels, else each row of the
propagator over its band). Beside them: the same step with bfloat16 state, and the
generic path (SGD with momentum) against its floor, (2n + 5) / 7 times fused Adam; the
state's bytes per parameter (Adam's moments and the hidden levels), measured from the
optimizer's state, float32 and bfloat16, and the bfloat16 step over the float32 one
beside the ratio of their bytes moved (targets: 0.85 for n=5, 0.8 for n=10 and 16),
and the bytes each moves per second (a float32 step that moves its bytes no faster than
the bfloat16 one moves fewer is not bound by memory here, and the bfloat16 ratio cannot
then reach the bytes' ratio);
and with Adam's moments in bfloat16 too (``moments_dtype``), its step over the float32
one beside its bytes' ratio and its state's bytes.
``--dense`` runs the long chains with alpha 1 and beta 4^(n-1), whose fast level moves
every step (targets: n=16 within 1.4x of its floor, n=32 within 2x of its memory
floor). Prints a table, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np
import torch

from complex_synapses import ComplexSynapse
from complex_synapses.chain import propagator


def chain_timescales(n: int, dense: bool) -> dict[str, float]:
    """The long chains' alpha and beta: 500 and 2500 (slow levels, a narrow band), or with
    ``dense`` 1 and 4^(n-1) (capped at the chain's limit, 1e12 alpha): the fast level moves
    every step and the propagator's fast corner is dense."""
    return dict(alpha=1.0, beta=min(4.0 ** (n - 1), 1e12)) if dense else dict(alpha=500.0, beta=2500.0)


BF16_ALL = dict(state_dtype=torch.bfloat16, moments_dtype=torch.bfloat16)


def chain_configs(params, lengths, known, dense=False):
    """For each chain length (names among ``known`` left out): CS Adam exact and Euler,
    exact with bfloat16 state (and with Adam's moments in bfloat16 too), and the generic
    path (SGD with momentum), exact."""
    for n in lengths:
        cs = chain_timescales(n, dense)
        made = {
            f"CS Adam n={n} exact": lambda n=n, cs=cs: ComplexSynapse(
                params, torch.optim.Adam, n_beakers=n, lr=1e-3, fused=True, **cs
            ),
            f"CS Adam n={n} euler": lambda n=n, cs=cs: ComplexSynapse(
                params, torch.optim.Adam, n_beakers=n, integrator="euler", lr=1e-3, fused=True, **cs
            ),
            f"CS Adam n={n} exact, bf16 state": lambda n=n, cs=cs: ComplexSynapse(
                params, torch.optim.Adam, n_beakers=n, lr=1e-3, fused=True, state_dtype=torch.bfloat16, **cs
            ),
            f"CS Adam n={n} exact, bf16 state+moments": lambda n=n, cs=cs: ComplexSynapse(
                params, torch.optim.Adam, n_beakers=n, lr=1e-3, fused=True, **BF16_ALL, **cs
            ),
            f"CS SGD(momentum) n={n} (generic)": lambda n=n, cs=cs: ComplexSynapse(
                params, torch.optim.SGD, n_beakers=n, lr=1e-3, momentum=0.9, **cs
            ),
        }
        for name, make in made.items():
            if name not in known:
                yield name, make()


def band_work(n: int, alpha: float = 500.0, beta: float = 2500.0) -> int:
    """Multiply-adds per element of the C library's exact step: n^2 where its loop is
    unrolled (n <= 10), else each row of the propagator summed over its band, the
    entries above 2^-32 of the row's largest (as csrc/step.h's ``bands``)."""
    if n <= 10:
        return n * n
    P = np.abs(propagator(n, alpha, beta, 1.0).astype(np.float32))
    work = 0
    for i, row in enumerate(P):
        kept = np.flatnonzero(row > row.max() * 2.0**-32)
        work += max(kept.max(), i) - min(kept.min(), i) + 1
    return int(work)


def state_bytes(opt) -> float:
    """Bytes of optimizer state per parameter element: the chain's levels and the base's
    moments as they are held (counters and keys left out)."""
    opts = [opt, opt.base] if isinstance(opt, ComplexSynapse) else [opt]
    held = [t for o in opts for st in o.state.values() for t in _tensors(st) if t.dim() > 0]
    numel = sum(p.numel() for g in opt.param_groups for p in g["params"])
    return sum(t.numel() * t.element_size() for t in held) / numel


def _tensors(state: dict):
    for value in state.values():
        if isinstance(value, torch.Tensor):
            yield value
        elif isinstance(value, list):
            yield from (v for v in value if isinstance(v, torch.Tensor))


# The bfloat16-state step's targets over the float32-state one (issue 41), by chain
# length: below its bytes' ratio plus some room for the rounding's arithmetic.
BF16_TARGETS = {5: 0.85, 10: 0.8, 16: 0.8}


def f32_traffic(n: int) -> int:
    """Bytes moved per element by the fused Adam step with float32 levels: the weight and
    two moments read and written, the gradient read, n - 1 levels read and written."""
    return 28 + 8 * (n - 1)


def state16_traffic(n: int, moments: bool = False) -> int:
    """The same with the hidden levels in bfloat16: 2 bytes each way for each level (and
    with ``moments``, for each of Adam's two moments)."""
    return 28 - 8 * moments + 4 * (n - 1)


def matmul_rate(device) -> float:
    """Multiply-adds per second of a float32 matrix product here: the arithmetic peak
    that the exact step's n x n products could reach at best."""
    a = torch.randn(1024, 1024, device=device)
    for _ in range(2):
        a @ a
    sync(device)
    t0 = time.perf_counter()
    for _ in range(10):
        a @ a
    sync(device)
    return 10 * 1024**3 / (time.perf_counter() - t0)


def floors(n: int, numel: int, base_s: float, rate: float, work: int) -> dict[str, float]:
    """The step's floors for a chain of n levels, as multiples of fused Adam's step:
    its memory traffic, its ``work`` multiply-adds per element at the matrix-product
    rate, and the generic path's memory traffic (the chain's n levels read and written
    before SGD with momentum's 5 streams)."""
    memory = (7 + 2 * (n - 1)) / 7
    arithmetic = numel * work / rate / base_s
    generic = (2 * n + 5) / 7
    return {
        "memory": memory,
        "arithmetic": arithmetic,
        "floor": max(memory, arithmetic),
        "generic_floor": generic,
    }


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
    ap.add_argument(
        "--lengths", default="5,10,16,32", help="chain lengths set beside their floors (default %(default)s)"
    )
    ap.add_argument(
        "--dense",
        action="store_true",
        help="long chains with alpha 1 and beta 4^(n-1) (the fast level moves every step) instead of "
        "alpha 500, beta 2500 (the headline table's n=5 and n=10 rows then run these timescales too)",
    )
    args = ap.parse_args()
    lengths = [int(x) for x in args.lengths.split(",") if x.strip()]
    if not lengths or min(lengths) < 1 or max(lengths) > 32:
        ap.error(f"--lengths must be chain lengths 1..32, got {args.lengths!r}")
    device = torch.device(args.device)

    torch.manual_seed(0)
    size = args.numel // args.tensors
    params = [torch.nn.Parameter(torch.randn(size, device=device) * 0.01) for _ in range(args.tensors)]
    for p in params:
        p.grad = torch.randn_like(p)

    opts, first_step = {}, {}
    made = list(configs(params, device))
    made += list(
        chain_configs(params, lengths, {name for name, _ in made} if not args.dense else set(), args.dense)
    )
    if args.dense:  # the dense chains replace the headline's n=5 and n=10 rows of the same names
        made = list({name: opt for name, opt in made}.items())
    for name, opt in made:
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
    rate = matmul_rate(device)
    chains = {}
    scales = "alpha 1, beta 4^(n-1)" if args.dense else "alpha 500, beta 2500"
    print(f"\nlong chains ({scales}), x fused Adam (matrix products: {rate / 1e9:.1f} G mul-adds/s)")
    head = ("n", "exact", "euler", "memory", "work", "arith.", "exact/floor", "bf16 st.", "bf16/f32", "bytes")
    head += ("generic", "gen. floor", "gen./floor", "state B", "bf16 B", "+moments", "/f32", "bytes", "B")
    widths = (3, 7, 7, 7, 5, 7, 12, 9, 9, 6, 8, 11, 11, 8, 7, 9, 6, 6, 5)
    print(" ".join(f"{h:>{w}s}" for h, w in zip(head, widths)))
    for n in lengths:
        work = band_work(n, **chain_timescales(n, args.dense))
        f = floors(n, args.numel, base, rate, work)
        exact, euler, half, generic_n = (
            median[f"CS {name}"] / base
            for name in (f"Adam n={n} exact", f"Adam n={n} euler", f"Adam n={n} exact, bf16 state",
                         f"SGD(momentum) n={n} (generic)")
        )  # fmt: skip
        state = state_bytes(opts[f"CS Adam n={n} exact"])
        state16 = state_bytes(opts[f"CS Adam n={n} exact, bf16 state"])
        both = median[f"CS Adam n={n} exact, bf16 state+moments"] / base
        both_bytes = state_bytes(opts[f"CS Adam n={n} exact, bf16 state+moments"])
        both_traffic = state16_traffic(n, moments=True) / f32_traffic(n)
        chains[n] = {"exact": round(exact, 3), "euler": round(euler, 3), "bf16_state": round(half, 3)}
        chains[n] |= {"work_per_element": work, "generic": round(generic_n, 3)}
        chains[n] |= {k: round(v, 3) for k, v in f.items()}
        chains[n] |= {"exact_over_floor": round(exact / f["floor"], 3)}
        chains[n] |= {"generic_over_floor": round(generic_n / f["generic_floor"], 3)}
        chains[n] |= {"state_bytes_per_param": state, "bf16_state_bytes_per_param": state16}
        # issue 41: the bfloat16-state step against the float32-state one, bytes beside
        bf16_ratio = half / exact
        target = BF16_TARGETS.get(n)
        chains[n] |= {"bf16_over_f32": round(bf16_ratio, 3), "bf16_target_max": target}
        chains[n] |= {"bf16_pass": None if target is None else bf16_ratio <= target}
        chains[n] |= {"bytes_ratio": round(state16_traffic(n) / f32_traffic(n), 3)}
        chains[n] |= {
            "bf16_moments_over_f32": round(both / exact, 3),
            "bf16_moments_bytes_ratio": round(both_traffic, 3),
        }
        chains[n] |= {"bf16_moments_state_bytes_per_param": both_bytes}
        cells = (n, exact, euler, f["memory"], work, f["arithmetic"], exact / f["floor"], half, bf16_ratio)
        cells += (
            state16_traffic(n) / f32_traffic(n),
            generic_n,
            f["generic_floor"],
            generic_n / f["generic_floor"],
        )
        cells += (state, state16, both, both / exact, both_traffic, both_bytes)
        fmt = (
            "{:3d}",
            "{:7.2f}",
            "{:7.2f}",
            "{:7.2f}",
            "{:5d}",
            "{:7.2f}",
            "{:12.2f}",
            "{:9.2f}",
            "{:9.2f}",
            "{:6.2f}",
        )
        fmt += ("{:8.2f}",)
        fmt += ("{:11.2f}", "{:11.2f}", "{:8.1f}", "{:7.1f}", "{:9.2f}", "{:6.2f}", "{:6.2f}", "{:5.1f}")
        print(" ".join(f.format(c) for f, c in zip(fmt, cells)))
    # The bytes each step moves per second: where the float32-state step moves its bytes no
    # faster than the bfloat16 one moves fewer, it is not bound by memory on this machine,
    # and the bfloat16 step's ratio cannot reach the ratio of their bytes.
    print("\nbytes moved per second (GB/s): fused Adam " + f"{args.numel * 28 / base / 1e9:.1f}", end="")
    for n in lengths:
        rates = {
            "f32": args.numel * f32_traffic(n) / median[f"CS Adam n={n} exact"] / 1e9,
            "bf16": args.numel * state16_traffic(n) / median[f"CS Adam n={n} exact, bf16 state"] / 1e9,
        }
        chains[n] |= {
            "gb_per_s_f32_state": round(rates["f32"], 1),
            "gb_per_s_bf16_state": round(rates["bf16"], 1),
        }
        print(f"; n={n}: float32 state {rates['f32']:.1f}, bfloat16 state {rates['bf16']:.1f}", end="")
    print()
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
                "chains": chains,
                "dense": args.dense,
                # issue 41's aims: bf16 state within its targets; dense n=16 within 1.4x of its floor,
                # n=32 within 2x of its memory floor
                "bf16_pass": all(c["bf16_pass"] for c in chains.values() if c["bf16_pass"] is not None),
                "dense_pass": (
                    (16 not in chains or chains[16]["exact_over_floor"] <= 1.4)
                    and (32 not in chains or chains[32]["exact"] / chains[32]["memory"] <= 2.0)
                )
                if args.dense
                else None,
                "matmul_rate": rate,
            }
        )
    )


if __name__ == "__main__":
    main()
