"""The coupled estimator of ``simulate capacity`` against the plain one: the variance of a
setting's signal at the ages where lifetimes are read, per second of work, side by side
in one run.

    python benchmarks/capacity_estimator.py [--synapses 1024] [--steps 2000] [--seed 0]

For each setting (the paper preset's winning chains at N in the thousands, and the
16-value simple synapse) both estimators simulate the same synapses, burn-in and
memories (the plain one follows one memory in 4, the coupled one one in 16, each
``simulate capacity``'s choice), one thread each. At the lifetime of N = 10^3, 10^4 and
3.16 x 10^4 (the age where sqrt(N) s(a) / sqrt(E[w^2]) falls to 1 on the coupled curve,
at the nearest followed age) the standard error of each estimator's mean signal over
its 16 groups is read, and the gain is

    (SE_plain^2 x time_plain) / (SE_coupled^2 x time_coupled),

how many times less work the coupled estimator needs for the same standard error
there. Both means are also compared (their difference in combined standard errors): the
coupled estimator is unbiased, so that number is of order 1. Target: a gain of at least
10 at N = 10^4 for every chain. Prints a table; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch

from complex_synapses.lab.coupled import coupled_curves
from complex_synapses.lab.writes import burn_in, signal_curves

SPACING = 2.0 / 15  # of the 16 values
SETTINGS = {  # name: (chain, write)
    "chain n12 alpha4 beta4": ((12, 4.0, 4.0), SPACING),
    "chain n8 alpha4 beta64": ((8, 4.0, 64.0), SPACING),
    "chain n12 alpha4 beta256": ((12, 4.0, 256.0), SPACING),
    "simple-m": ((1, 1.0, 1e12), 0.125 * SPACING),
}
COUNTS = (1000, 10000, 31623)
TARGET = 10.0


def measure(fn) -> tuple[object, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def both(chain, write, ages, kw) -> tuple:
    """(curves, seconds) of the plain estimator and of the coupled one on one setting."""
    plain = measure(lambda: signal_curves([chain], (write,), 16, ages, stride=4, **kw))
    coupled = measure(lambda: coupled_curves([chain], (write,), 16, ages, stride=16, **kw))
    return plain, coupled


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--synapses", type=int, default=1024, help="synapses a setting (default %(default)s)")
    p.add_argument("--steps", type=int, default=2000, help="memories followed (default %(default)s)")
    p.add_argument("--max-age", type=int, default=3000, help="oldest age followed (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    a = p.parse_args()
    torch.set_num_threads(1)
    ages = np.unique(np.concatenate([[0], np.geomspace(1, a.max_age, 48).astype(int)]))
    rows, out = [], {}
    for name, (chain, write) in SETTINGS.items():
        burn = min(burn_in([chain], (write,), 16), 20000)
        kw = dict(synapses=a.synapses, steps=a.steps, groups=16, seed=a.seed, burn=burn)
        (plain, tp), (coupled, tc) = both(chain, write, ages, kw)
        gp, gc = plain.signal[:, 0, 0, :], coupled.signal[:, 0, 0, :]
        mp, mc = gp.mean(0), gc.mean(0)
        sp, sc = gp.std(0, ddof=1) / 4, gc.std(0, ddof=1) / 4
        out[name] = {"plain_s": tp, "coupled_s": tc, "at": {}}
        for n in COUNTS:
            snr = math.sqrt(n) * mc / math.sqrt(coupled.power[0, 0])
            below = np.nonzero(snr < 1)[0]
            if not len(below) or below[0] == 0:  # outlives the ages followed, or never seen
                continue
            i = int(below[0])
            gain = (sp[i] ** 2 * tp) / (sc[i] ** 2 * tc)
            z = (mc[i] - mp[i]) / math.hypot(sp[i], sc[i])
            out[name]["at"][str(n)] = {"age": int(ages[i]), "gain": float(gain), "z": float(z)}
            rows.append((name, n, int(ages[i]), tp, tc, sp[i], sc[i], gain, z))
    print(
        f"{'setting':26s} {'N':>6s} {'age':>5s} {'plain s':>8s} {'coupled s':>9s} {'SE plain':>9s} "
        f"{'SE coupled':>10s} {'gain':>7s} {'z':>5s}"
    )
    for name, n, age, tp, tc, sp, sc, gain, z in rows:
        print(f"{name:26s} {n:6d} {age:5d} {tp:8.1f} {tc:9.1f} {sp:9.2e} {sc:10.2e} {gain:7.1f} {z:5.1f}")
    at_target = [r[7] for r in rows if r[1] == 10000 and r[0].startswith("chain")]
    met = bool(at_target) and bool(min(at_target) >= TARGET)
    print(json.dumps({"settings": out, "target_gain_at_10000": TARGET, "met": met}))


if __name__ == "__main__":
    main()
