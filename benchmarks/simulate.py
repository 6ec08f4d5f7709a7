"""Time of the exact impulse response: the weight of a 10-beaker chain at each of 10^6
steps, computed from the eigendecomposition (no stepping). Target: under a second.

    python benchmarks/simulate.py [--steps 1000000] [--beakers 10]

Also times every beaker (impulse_response) and, for scale, the real optimizer stepping
the same chain for 10^4 steps. Prints a table; the last line is JSON. It has no --device:
the closed forms are float64 NumPy on the CPU, and the stepped chain is one scalar
parameter, which a GPU would only slow down.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from complex_synapses.chain import impulse_response, weight_response
from complex_synapses.lab.memory import Synapse, impulse_stepped


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--beakers", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    t = np.arange(args.steps + 1, dtype=np.float64)
    n, alpha, beta = args.beakers, 1.0, 1e4
    w_time = best_of(lambda: weight_response(n, alpha, beta, t), args.repeats)
    all_time = best_of(lambda: impulse_response(n, alpha, beta, t[: args.steps // 10]), args.repeats) * 10
    step_time = best_of(lambda: impulse_stepped(Synapse(n, alpha, beta), 10_000), 1) * args.steps / 10_000
    print(f"{n} beakers, alpha {alpha:g}, beta {beta:g}, {args.steps:,} steps (medians of {args.repeats})")
    print(f"{'what':44s} {'seconds':>10s}")
    print(f"{'exact weight response (weight_response)':44s} {w_time:10.3f}")
    print(f"{'exact, every beaker (impulse_response), scaled':44s} {all_time:10.3f}")
    print(f"{'stepping the optimizer, scaled from 10^4 steps':44s} {step_time:10.1f}")
    print(
        json.dumps(
            {
                "benchmark": "simulate",
                "steps": args.steps,
                "n_beakers": n,
                "exact_w_s": round(w_time, 4),
                "exact_all_beakers_s": round(all_time, 3),
                "stepped_s_estimate": round(step_time, 1),
                "target_s": 1.0,
                "pass": w_time < 1.0,
            }
        )
    )


if __name__ == "__main__":
    main()
