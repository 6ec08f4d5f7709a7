"""``complex-synapses simulate``: the synapse model itself (see :mod:`..simulate`). The
science is there; this module parses, prints, and writes the CSV, JSON and figures."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..experiments.checks import check_writable
from ..experiments.settings import OptionError
from .common import add_output_options, int_list

__all__ = ["add_parser", "command"]

HELPS = {
    "impulse": "the response of the weight and of every beaker to a single kick; fitted log-log slope",
    "memory": "SNR of a tracked memory in a stream of random memories; lifetime against N",
    "beakers": "frames (PNG strip and GIF) of the beaker levels after a kick",
    "capacity": "memory lifetime against the number of synapses N: bounded, discrete, simple and complex",
}
DEFAULT_COUNTS = "100,178,316,562,1000,1778,3162,5623,10000"


def _add_chain_options(k: argparse.ArgumentParser) -> None:
    k.add_argument("--beakers", type=int, default=10, help="beakers (default %(default)s)")
    k.add_argument("--alpha", type=float, default=1.0, help="shortest timescale (default %(default)s)")
    k.add_argument("--beta", type=float, default=1e4, help="longest timescale (default %(default)s)")
    k.add_argument(
        "--time-unit",
        choices=["iteration", "lr"],
        default="iteration",
        help="chain time per optimizer step: 1, or the learning rate --lr (default %(default)s)",
    )
    k.add_argument(
        "--lr", type=float, default=1.0, help="SGD learning rate of the stepped optimizer (default 1)"
    )
    k.add_argument(
        "--integrator",
        choices=["exact", "euler"],
        default="exact",
        help="integrator of the stepped optimizer (default %(default)s)",
    )


def add_parser(sub, parser_class) -> None:
    sim = sub.add_parser(
        "simulate",
        help="the synapse model: impulse response, memory SNR, beakers",
        description="What a complex synapse remembers, computed from the same chain code as the optimizer "
        "(exactly, and by stepping the optimizer).",
    )
    kinds = sim.add_subparsers(dest="kind", required=True, parser_class=parser_class)
    for kind, text in HELPS.items():
        k = kinds.add_parser(kind, help=text, description=text)
        if kind == "capacity":
            _add_capacity_options(k)
            add_output_options(k)
            continue
        _add_chain_options(k)
        add_output_options(k)
        if kind == "impulse":
            k.add_argument("--steps", type=int, default=None, help="steps to compute (default: 10 beta)")
            k.add_argument(
                "--stepped",
                type=int,
                default=20000,
                help="steps of the real optimizer to compare with the exact response (default %(default)s)",
            )
        if kind == "memory":
            k.add_argument(
                "--synapses", type=int, default=1000, help="N for the SNR curve (default %(default)s)"
            )
            k.add_argument(
                "--trials", type=int, default=200, help="Monte Carlo repetitions (default %(default)s)"
            )
            k.add_argument(
                "--burn-in",
                type=int,
                default=None,
                help="memories stored before the tracked one (default: 3 beta, at most 30000)",
            )
            k.add_argument(
                "--mc",
                choices=("projected", "full"),  # simulate.MC_METHODS (a test checks), without importing torch
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
        if kind == "beakers":
            k.add_argument(
                "--frames", type=int, default=8, help="frames, log-spaced in time (default %(default)s)"
            )


def _add_capacity_options(k: argparse.ArgumentParser) -> None:
    from ..capacity import MODELS

    k.description = (
        "The paper's headline (Benna & Fusi 2016): memory lifetime (age at which a memory's SNR falls "
        "below 1) against the number of synapses N, each N at the best setting of each model's grid "
        "(complex_synapses/capacity.py states the grids). Models: "
        + "; ".join(f"{m}: {t}" for m, t in MODELS.items())
        + ". Monte Carlo with the real optimizer (bound 1, --levels values) where no closed form exists."
    )
    k.add_argument("--models", default=",".join(MODELS), help="models to compute (default: all)")
    k.add_argument("--levels", type=int, default=16, help="values per level, m (default %(default)s)")
    k.add_argument("--synapse-counts", default=DEFAULT_COUNTS, help="N (default %(default)s)")
    k.add_argument(
        "--synapses", type=int, default=1024, help="simulated synapses per setting (default %(default)s)"
    )
    k.add_argument(
        "--steps", type=int, default=2000, help="steps whose memories are averaged (default %(default)s)"
    )
    k.add_argument("--max-age", type=int, default=2000, help="oldest age followed (default %(default)s)")
    k.add_argument(
        "--groups", type=int, default=16, help="groups of synapses for standard errors (default %(default)s)"
    )
    k.add_argument(
        "--max-burn-in",
        type=int,
        default=6000,
        help="memories stored before any is followed: 2 beta, at most this (default %(default)s)",
    )
    k.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")


def _chain(args: argparse.Namespace):
    from ..chain import validate_chain
    from ..simulate import Chain

    if args.beakers < 1:
        raise OptionError(f"--beakers must be >= 1 for simulate, got {args.beakers}")
    try:
        validate_chain(args.beakers, args.alpha, args.beta)
    except (TypeError, ValueError) as exc:
        raise OptionError(str(exc).replace("n_beakers", "--beakers")) from None
    if not (args.lr > 0 and np.isfinite(args.lr)):
        raise OptionError(f"--lr must be a finite number > 0, got {args.lr}")
    return Chain(args.beakers, args.alpha, args.beta, args.time_unit, args.integrator, args.lr)


def _csv(path: Path, header: list[str], rows) -> Path:
    from ..experiments.results import write_text

    lines = [",".join(header)] + [
        ",".join(f"{v:.10g}" if isinstance(v, float) else str(v) for v in r) for r in rows
    ]
    return write_text(path, "\n".join(lines) + "\n")


def command(args: argparse.Namespace) -> int:
    from ..experiments.results import to_json

    check_writable(args.results_dir, "--results-dir")
    check_writable(args.plot_dir, "--plot-dir")
    if args.kind == "capacity":
        try:
            out = _capacity(args)
        except ValueError as exc:
            raise OptionError(str(exc)) from None
        if args.json:
            print(to_json(out))
        return 0
    chain = _chain(args)
    name = f"simulate-{args.kind}--n{chain.n_beakers}-a{chain.alpha:g}-b{chain.beta:g}-{chain.time_unit}"
    run = {"impulse": _impulse, "memory": _memory, "beakers": _beakers}[args.kind]
    try:
        out = run(args, chain, name)
    except ValueError as exc:  # the model lab's own checks name the option
        raise OptionError(str(exc)) from None
    if args.json:
        print(to_json(out))
    return 0


def _impulse(args, chain, name: str) -> dict:
    from ..simulate import impulse_study
    from ..simulate_plots import plot_impulse

    r = impulse_study(chain, args.steps, args.stepped, progress=True)
    t, u, (lo, hi) = r["t"], r["levels"], r["fit_window"]
    plots = plot_impulse(
        t,
        u,
        r["stepped_t"],
        r["stepped_w"],
        chain.alpha,
        chain.beta,
        r["slope"],
        Path(args.plot_dir) / name,
        args.pdf,
    )
    csv = _csv(
        Path(args.results_dir) / f"{name}.csv",
        ["t"] + [f"u{k + 1}" for k in range(chain.n_beakers)],
        ([float(a), *map(float, row)] for a, row in zip(t, u)),
    )
    print(
        f"impulse response: {chain.n_beakers} beakers, alpha {chain.alpha:g}, beta {chain.beta:g} "
        f"({chain.time_unit} time, dt {chain.dt:g} per step)"
    )
    print(
        f"  fitted log-log slope of w over t in [{lo:.3g}, {hi:.3g}]: {r['slope']:.4f} "
        "(power law t^-1/2: -0.5)"
    )
    print(f"  w at alpha, beta, 10 beta: {r['at'][0]:.4g}, {r['at'][1]:.4g}, {r['at'][2]:.4g}")
    if r["stepped_steps"]:
        print(
            f"  {chain.integrator} optimizer stepped {r['stepped_steps']} times: max relative difference "
            f"from the exact response {r['max_rel_diff_stepped']:.2e}"
        )
    print(f"  plot: {', '.join(map(str, plots))}\n  data: {csv}")
    return {
        "slope": r["slope"],
        "fit_window": [lo, hi],
        "t": t.tolist(),
        "w": u[:, 0].tolist(),
        "stepped_steps": r["stepped_steps"],
        "max_rel_diff_stepped": r["max_rel_diff_stepped"],
        "plots": [str(p) for p in plots],
        "csv": str(csv),
    }


def _memory(args, chain, name: str) -> dict:
    from ..simulate import memory_study
    from ..simulate_plots import plot_lifetimes, plot_memory

    ns = int_list(args.n_list, "--n-list")
    synapses = int_list(args.synapses_list, "--synapses-list")
    r = memory_study(chain, args.synapses, args.trials, args.burn_in, ns, synapses, args.mc, progress=True)
    ages, closed, mc, se = r["ages"], r["snr_closed"], r["snr_mc"], r["se_mc"]
    lifetimes, best = r["lifetimes"], r["best_beta"]
    label = f"{chain.n_beakers} beakers, alpha {chain.alpha:g}, beta {chain.beta:g}"
    plots = plot_memory(ages, closed, mc, se, args.synapses, label, Path(args.plot_dir) / name, args.pdf)
    print(
        f"memory SNR: {label}, N = {args.synapses}, {args.trials} trials, "
        f"tracked memory after {r['burn_in']} others"
    )
    print(f"  {'age':>8s} {'closed form':>12s} {'Monte Carlo':>12s} {'SE':>8s} {'z':>6s}")
    for a, c, m, e in zip(ages, closed, mc, se):
        print(f"  {a:8d} {c:12.4g} {m:12.4g} {e:8.3g} {(m - c) / e:6.2f}")
    plots += plot_lifetimes(synapses, lifetimes, Path(args.plot_dir) / f"{name}-lifetimes", args.pdf)
    print("  lifetime (steps until SNR < 1), best beta for each N, alpha = 1 step:")
    print("  " + f"{'N':>8s} " + " ".join(f"{k:>22s}" for k in lifetimes))
    for i, N in enumerate(synapses):
        print(
            "  "
            + f"{N:8d} "
            + " ".join(f"{lifetimes[k][i]:10.4g} (beta {best[k][i]:8.3g})" for k in lifetimes)
        )
    rows = [[int(a), float(c), float(m), float(e)] for a, c, m, e in zip(ages, closed, mc, se)]
    csv = _csv(Path(args.results_dir) / f"{name}.csv", ["age", "snr_closed", "snr_mc", "se_mc"], rows)
    csv2 = _csv(
        Path(args.results_dir) / f"{name}-lifetimes.csv",
        ["n_beakers", "synapses", "lifetime", "best_beta"],
        (
            [k, N, float(lifetimes[k][i]), float(best[k][i])]
            for k in lifetimes
            for i, N in enumerate(synapses)
        ),
    )
    print(f"  plots: {', '.join(map(str, plots))}\n  data: {csv}, {csv2}")
    return {
        "ages": ages.tolist(),
        "snr_closed": closed.tolist(),
        "snr_mc": mc.tolist(),
        "se_mc": se.tolist(),
        "lifetimes": {k: dict(zip(map(str, synapses), v)) for k, v in lifetimes.items()},
        "best_beta": {k: dict(zip(map(str, synapses), v)) for k, v in best.items()},
        "plots": [str(p) for p in plots],
    }


def _beakers(args, chain, name: str) -> dict:
    from ..simulate import beaker_frames
    from ..simulate_plots import plot_beakers

    times, levels = beaker_frames(chain, args.frames)
    plots = plot_beakers(
        times, levels, chain.n_beakers, chain.alpha, chain.beta, Path(args.plot_dir) / name, args.pdf
    )
    print(f"beaker levels after a kick: {', '.join(map(str, plots))}")
    return {"t": times.tolist(), "levels": levels.tolist(), "plots": [str(p) for p in plots]}


def _capacity(args) -> dict:
    import time

    from ..capacity import capacity_study
    from ..simulate_plots import plot_capacity

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    counts = np.array(int_list(args.synapse_counts, "--synapse-counts"), dtype=float)
    start = time.perf_counter()
    r = capacity_study(
        models,
        counts,
        args.levels,
        args.synapses,
        args.steps,
        args.groups,
        args.max_age,
        args.seed,
        max_burn_in=args.max_burn_in,
    )
    r["wall_time_s"] = time.perf_counter() - start
    name = f"simulate-capacity--m{args.levels}"
    r["plots"] = [str(p) for p in plot_capacity(r, Path(args.plot_dir) / name, args.pdf)]
    print(f"memory lifetime (steps until SNR < 1) against N, each N at its best setting; m = {args.levels}")
    print(f"  {'N':>8s} " + " ".join(f"{m:>17s}" for m in models))
    errors = {m: r["models"][m].get("se") or [0.0] * len(counts) for m in models}  # closed forms: none
    for i, n in enumerate(counts):
        cells = []
        for m in models:
            life, se = r["models"][m]["lifetime"][i], errors[m][i]
            cells.append(f"{life:9.4g} +- {se:<5.2g}" if se else f"{life:17.4g}")
        print(f"  {int(n):8d} " + " ".join(cells))
    print(
        "  exponent "
        + " ".join(
            f"{r['models'][m]['exponent']:9.3f} +- {r['models'][m]['exponent_se']:<5.2g}" for m in models
        )  # fmt: skip
    )
    rows = [[m, int(n), float(r["models"][m]["lifetime"][i]), float(errors[m][i])]
            for m in models for i, n in enumerate(counts)]  # fmt: skip
    r["csv"] = str(_csv(Path(args.results_dir) / f"{name}.csv", ["model", "N", "lifetime", "se"], rows))
    print(f"  {r['wall_time_s']:.0f} s; plot: {', '.join(r['plots'])}; data: {r['csv']}")
    return r
