"""The counter-based stream in torch's operations: the folded draw against the documented one.

    python benchmarks/stream.py [--numel 10000000] [--rounds 7] [--device cpu]

The stream's value for element i of level k is hash(hash(hash(key) + k * 0x3C6EF372 + i)
^ step) (``kernels.bits_at``). ``kernels`` draws it with the inner hash's last xorshift
and the outer one's first folded into one xor (``element_hash``, ``bits_from``); this
times that draw against the nested hashes written out as documented, in turns, round
after round, on the same indices, and checks that both give the same bits. Beside them,
the two kernels that draw from it: the bfloat16 rounding (``round_bfloat16_``) and the
grid's rounding of two levels (``bound_``), which have no unfolded version to compare
with. Prints a table; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from complex_synapses.step import kernels

sys.path.insert(0, str(Path(__file__).parent))
from optimizer_step import sync  # noqa: E402

MASK = 0xFFFFFFFF


def documented(idx: torch.Tensor, key: torch.Tensor, step: torch.Tensor, level: int) -> torch.Tensor:
    """The stream as its docstring states it: two nested hashes, nothing folded."""
    h = kernels._hash32
    return h(h((idx + h(key & MASK) + level * 0x3C6EF372) & MASK) ^ (step & MASK))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--numel", type=int, default=10_000_000, help="elements drawn (default 10M)")
    ap.add_argument("--rounds", type=int, default=7, help="timing rounds (default %(default)s)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, ... (default cpu)")
    args = ap.parse_args()
    if args.numel < 1 or args.rounds < 1:
        ap.error(f"--numel and --rounds must be >= 1, got {args.numel}, {args.rounds}")
    device = torch.device(args.device)
    n = args.numel
    idx = torch.arange(n, device=device, dtype=torch.int64)
    key, step = torch.tensor(7, device=device), torch.tensor(2**31 + 99999, device=device)
    src = torch.randn(n, device=device)
    dst = torch.empty(n, device=device, dtype=torch.bfloat16)
    levels = [torch.randn(n, device=device) for _ in range(2)]
    grid = torch.tensor([0.5, 17.0], device=device)
    calls = {
        "documented: hash(hash(place) ^ step)": lambda: documented(idx, key, step, 1),
        "kernels.bits_at (folded)": lambda: kernels.bits_at(idx, key, step, 1),
        "kernels.round_bfloat16_": lambda: kernels.round_bfloat16_(dst, src, key, step, 1),
        "kernels.bound_ (two levels, grid)": lambda: kernels.bound_(levels, grid, key, step, True),
    }
    same = torch.equal(documented(idx, key, step, 1), kernels.bits_at(idx, key, step, 1))
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(args.rounds):
        for name, call in calls.items():
            sync(device)
            t0 = time.perf_counter()
            call()
            sync(device)
            times[name].append(time.perf_counter() - t0)
    median = {name: statistics.median(ts) for name, ts in times.items()}
    print(f"{n:,} elements on {device}, {torch.get_num_threads()} threads, medians of {args.rounds} rounds")
    print(f"{'call':40s} {'median ms':>10s} {'ns/element':>11s}")
    for name, t in median.items():
        print(f"{name:40s} {1e3 * t:10.1f} {1e9 * t / n:11.2f}")
    ratios = [a / b for a, b in zip(times["kernels.bits_at (folded)"], times[next(iter(calls))])]
    ratio = statistics.median(ratios)
    print(f"\nfolded / documented: {ratio:.3f} (median of the rounds' own ratios); the same bits: {same}")
    out = {"benchmark": "stream", "device": str(device), "numel": n, "rounds": args.rounds}
    out |= {"median_ms": {k: round(1e3 * v, 2) for k, v in median.items()}}
    out |= {"folded_over_documented": round(ratio, 3), "same_bits": same}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
