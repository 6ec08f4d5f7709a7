"""Time of the bound's stochastic rounding onto a grid of values (``bound`` with
``grid_values``: the limited-precision synapses of the model lab), against the clamp
alone, side by side in one run.

    python benchmarks/grid_rounding.py [--elements 1000000] [--levels 8] [--repeats 20]

Every level of one parameter is clamped to [-B, B] and, with a grid, rounded onto its m
values from the parameter's counter-based stream (two multiply-xorshift hashes, a
division and an integer part per element), by the C library and by torch's eager kernel
(the reference it equals bit for bit). The clamp alone reads and writes each element
once: the rounding's floor. Target: the C rounding within 12x the clamp (the loop that
floor() kept scalar measured 25x, 3.7 against 0.15 ns an element, on this benchmark's
defaults). One thread (the lab's runs set their own); the fastest of the repeats, which a
shared machine's other work disturbs least. Prints a table; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from complex_synapses.step import bounds, kernels, native

TARGET = 12.0


def fastest(fn, repeats: int) -> float:
    fn()  # warm: the library loaded, the pages touched
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--elements", type=int, default=1_000_000, help="elements a level (default %(default)s)")
    ap.add_argument("--levels", type=int, default=8, help="levels of the parameter (default %(default)s)")
    ap.add_argument("--values", type=int, default=16, help="the grid's values, m (default %(default)s)")
    ap.add_argument("--repeats", type=int, default=20, help="timed calls (default %(default)s)")
    args = ap.parse_args()
    for name in ("elements", "levels", "repeats"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.values < 2:
        ap.error(f"--values must be >= 2, got {args.values}")
    torch.set_num_threads(1)
    lib = native.library()
    if lib is None:
        raise SystemExit("grid_rounding: the C library could not be built here; nothing to time")
    gen = torch.Generator().manual_seed(0)
    levels = [[torch.rand(args.elements, generator=gen) * 2.2 - 1.1 for _ in range(args.levels)]]
    grid = bounds.bound_tensor(1.0, args.values, torch.device("cpu"), torch.float32)
    clamp = bounds.bound_tensor(1.0, None, torch.device("cpu"), torch.float32)
    key, step = [torch.tensor(7)], [torch.tensor(3)]
    times = {
        "clamp (C)": fastest(lambda: native.bound_call(levels, clamp, [], step, lib), args.repeats),
        "rounding (C)": fastest(lambda: native.bound_call(levels, grid, key, step, lib), args.repeats),
        "rounding (torch, eager)": fastest(
            lambda: kernels.bound_multi_(levels, grid, key, step, True), max(args.repeats // 4, 1)
        ),
    }
    count = args.elements * args.levels
    print(f"{args.levels} levels x {args.elements:,} elements, m = {args.values}, one thread, fastest call")
    print(f"{'what':26s} {'ms':>9s} {'ns/element':>11s} {'x clamp':>8s}")
    for what, t in times.items():
        print(f"{what:26s} {t * 1e3:9.2f} {t / count * 1e9:11.3f} {t / times['clamp (C)']:8.2f}")
    ratio = times["rounding (C)"] / times["clamp (C)"]
    print(
        json.dumps(
            {
                "benchmark": "grid_rounding",
                "elements": args.elements,
                "levels": args.levels,
                "values": args.values,
                "ns_per_element": {k: round(t / count * 1e9, 4) for k, t in times.items()},
                "rounding_over_clamp": round(ratio, 3),
                "target": TARGET,
                "pass": ratio <= TARGET,
            }
        )
    )


if __name__ == "__main__":
    main()
