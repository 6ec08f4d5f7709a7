"""``simulate capacity``: memory lifetime against the number of synapses N for bounded,
discrete, simple and complex synapses, each N at its model's best setting (the paper's
headline; the science is in :mod:`..capacity`)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .. import LabExperiment
from ..options import int_list, write_csv

ORDER = 4
DEFAULT_COUNTS = "100,178,316,562,1000,1778,3162,5623,10000"


def add_options(k) -> None:
    from ..capacity import MODELS

    k.description = (
        "The paper's headline (Benna & Fusi 2016): memory lifetime (age at which a memory's SNR falls "
        "below 1) against the number of synapses N, each N at the best setting of each model's grid "
        "(complex_synapses/lab/capacity.py states the grids). Models: "
        + "; ".join(f"{m}: {t}" for m, t in MODELS.items())
        + ". Monte Carlo with the real optimizer (bound 1, --grid-values values) where no closed form exists."
    )
    k.add_argument("--models", default=",".join(MODELS), help="models to compute (default: all)")
    k.add_argument(
        "--grid-values",
        "--levels",
        dest="levels",
        type=int,
        default=16,
        help="values each level can take, m (--levels: its old name; default %(default)s)",
    )
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


def _table(r: dict, models: list[str], counts: np.ndarray, errors: dict) -> list[str]:
    lines = [f"  {'N':>8s} " + " ".join(f"{m:>17s}" for m in models)]
    for i, n in enumerate(counts):
        cells = []
        for m in models:
            life, se = r["models"][m]["lifetime"][i], errors[m][i]
            cells.append(f"{life:9.4g} +- {se:<5.2g}" if se else f"{life:17.4g}")
        lines.append(f"  {int(n):8d} " + " ".join(cells))
    exps = [f"{r['models'][m]['exponent']:9.3f} +- {r['models'][m]['exponent_se']:<5.2g}" for m in models]
    return lines + ["  exponent " + " ".join(exps)]


def run(args):
    from ..capacity import capacity_study
    from ..plots import plot_capacity

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    counts = np.array(int_list(args.synapse_counts, "--synapse-counts"), dtype=float)
    start = time.perf_counter()
    r = capacity_study(
        models, counts, args.levels, args.synapses, args.steps, args.groups, args.max_age, args.seed,
        max_burn_in=args.max_burn_in,
    )  # fmt: skip
    r["wall_time_s"] = time.perf_counter() - start
    r["grid_values"] = args.levels
    name = f"simulate-capacity--m{args.levels}"
    r["plots"] = [str(p) for p in plot_capacity(r, Path(args.plot_dir) / name, args.pdf)]
    errors = {m: r["models"][m].get("se") or [0.0] * len(counts) for m in models}  # closed forms: none
    rows = [[m, int(n), float(r["models"][m]["lifetime"][i]), float(errors[m][i])]
            for m in models for i, n in enumerate(counts)]  # fmt: skip
    r["csv"] = str(write_csv(Path(args.results_dir) / f"{name}.csv", ["model", "N", "lifetime", "se"], rows))
    lines = [
        f"memory lifetime (steps until SNR < 1) against N, each N at its best setting; m = {args.levels}"
    ]
    lines += _table(r, models, counts, errors)
    lines.append(f"  {r['wall_time_s']:.0f} s; plot: {', '.join(r['plots'])}; data: {r['csv']}")
    return r, lines


EXPERIMENT = LabExperiment(
    "capacity",
    "memory lifetime against the number of synapses N: bounded, discrete, simple and complex",
    add_options,
    run,
)
