"""``simulate memory``: the SNR of a tracked memory in a stream of random memories
(closed form against Monte Carlo), and the memory lifetime against N."""

from __future__ import annotations

from pathlib import Path

from .. import LabExperiment
from .chain_options import add_chain_options, file_name, int_list, synapse, write_csv

ORDER = 2


def add_options(k) -> None:
    add_chain_options(k)
    k.add_argument("--synapses", type=int, default=1000, help="N for the SNR curve (default %(default)s)")
    k.add_argument("--trials", type=int, default=200, help="Monte Carlo repetitions (default %(default)s)")
    k.add_argument(
        "--burn-in",
        type=int,
        default=None,
        help="memories stored before the tracked one (default: 3 beta, at most 30000)",
    )
    k.add_argument(
        "--mc",
        choices=("projected", "full"),  # model.MC_METHODS (a test checks), without importing torch
        default="projected",
        help="Monte Carlo of the SNR: 'projected' steps one chain per trial, kicked by the tracked "
        "memory's overlap with each new one (the same law as N synapses, N times faster); 'full' "
        "steps all trials x N synapses (default %(default)s)",
    )
    k.add_argument(
        "--n-list", default="1,2,4,8", help="beakers for the lifetime curves (default %(default)s)"
    )
    k.add_argument(
        "--synapses-list",
        default="100,1000,10000,100000",
        help="N for the lifetime curves (default %(default)s)",
    )


def _table(ages, closed, mc, se) -> list[str]:
    lines = [f"  {'age':>8s} {'closed form':>12s} {'Monte Carlo':>12s} {'SE':>8s} {'z':>6s}"]
    lines += [
        f"  {a:8d} {c:12.4g} {m:12.4g} {e:8.3g} {(m - c) / e:6.2f}"
        for a, c, m, e in zip(ages, closed, mc, se)
    ]
    return lines


def _lifetime_table(synapses, lifetimes, best) -> list[str]:
    lines = ["  lifetime (steps until SNR < 1), best beta for each N, alpha = 1 step:"]
    lines.append("  " + f"{'N':>8s} " + " ".join(f"{k:>22s}" for k in lifetimes))
    for i, n in enumerate(synapses):
        cells = " ".join(f"{lifetimes[k][i]:10.4g} (beta {best[k][i]:8.3g})" for k in lifetimes)
        lines.append(f"  {n:8d} {cells}")
    return lines


def run(args):
    from ..memory import memory_study
    from ..plots import plot_lifetimes, plot_memory

    s = synapse(args)
    name = file_name("memory", s)
    ns = int_list(args.n_list, "--n-list")
    synapses = int_list(args.synapses_list, "--synapses-list")
    r = memory_study(s, args.synapses, args.trials, args.burn_in, ns, synapses, args.mc, progress=True)
    ages, closed, mc, se = r["ages"], r["snr_closed"], r["snr_mc"], r["se_mc"]
    lifetimes, best = r["lifetimes"], r["best_beta"]
    label = f"{s.n_beakers} beakers, alpha {s.alpha:g}, beta {s.beta:g}"
    plots = plot_memory(ages, closed, mc, se, args.synapses, label, Path(args.plot_dir) / name, args.pdf)
    plots += plot_lifetimes(synapses, lifetimes, Path(args.plot_dir) / f"{name}-lifetimes", args.pdf)
    out = Path(args.results_dir)
    rows = [[int(a), float(c), float(m), float(e)] for a, c, m, e in zip(ages, closed, mc, se)]
    csv = write_csv(out / f"{name}.csv", ["age", "snr_closed", "snr_mc", "se_mc"], rows)
    rows = [
        [k, n, float(lifetimes[k][i]), float(best[k][i])] for k in lifetimes for i, n in enumerate(synapses)
    ]
    csv2 = write_csv(out / f"{name}-lifetimes.csv", ["n_beakers", "synapses", "lifetime", "best_beta"], rows)
    lines = [
        f"memory SNR: {label}, N = {args.synapses}, {args.trials} trials, "
        f"tracked memory after {r['burn_in']} others"
    ]
    lines += _table(ages, closed, mc, se) + _lifetime_table(synapses, lifetimes, best)
    lines.append(f"  plots: {', '.join(map(str, plots))}\n  data: {csv}, {csv2}")
    record = {
        "ages": ages.tolist(),
        "snr_closed": closed.tolist(),
        "snr_mc": mc.tolist(),
        "se_mc": se.tolist(),
        "lifetimes": {k: dict(zip(map(str, synapses), v)) for k, v in lifetimes.items()},
        "best_beta": {k: dict(zip(map(str, synapses), v)) for k, v in best.items()},
        "plots": [str(p) for p in plots],
    }
    return record, lines


EXPERIMENT = LabExperiment(
    "memory", "SNR of a tracked memory in a stream of random memories; lifetime against N", add_options, run
)
