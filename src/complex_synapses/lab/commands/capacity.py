"""``simulate capacity``: memory lifetime against the number of synapses N for bounded,
discrete, simple and complex synapses, each N at its model's best setting (the paper's
headline; the science is in :mod:`..capacity`)."""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

from .. import LabExperiment
from .capacity_options import CHAIN_OPTIONS, PLAIN, PRESETS, QUICK_CHAINS, add_options
from .chain_options import int_list, write_csv

ORDER = 4


def _announce(preset: str):
    """What prints a preset's estimated time before its work starts."""
    return lambda estimate: print(estimate.line(f"--preset {preset}"), file=sys.stderr, flush=True)


def _resolve(args) -> None:
    """The preset's options where none was given (quick where random writes name none;
    its chain list only where a chain model is asked and no grid or chain option is
    given), then the plain defaults."""
    from ..capacity_study import CHAIN_MODELS

    if args.preset is not None and args.writes != "random":
        raise ValueError(f"--preset {args.preset} is for random writes, got --writes {args.writes}")
    if args.preset is None and args.writes == "random":
        args.preset = "quick"
    chosen = args.grid is not None or any(getattr(args, k) is not None for k in CHAIN_OPTIONS)
    for key, value in PRESETS.get(args.preset, {}).items():
        if getattr(args, key) is None and key != "chains":
            setattr(args, key, value)
    if args.preset == "quick" and not chosen and set(_models(args)) & set(CHAIN_MODELS):
        args.chains = QUICK_CHAINS
    for key, value in PLAIN.items():
        if getattr(args, key) is None:
            setattr(args, key, value)


def _stages(args):
    """The two-stage settings given, refused for another selection."""
    from ..estimate import Stages

    given = {k: getattr(args, k) for k in ("candidates", "coarse_synapses", "widen")}
    if args.selection != "two-stage":
        if any(v is not None for v in given.values()):
            raise ValueError("--candidates, --coarse-synapses and --widen are for --selection two-stage")
        return None
    if args.writes == "perceptron" and given["coarse_synapses"] is not None:
        raise ValueError(
            "--coarse-synapses is for random writes: with perceptron writes the coarse pass takes a "
            "quarter of the --groups perceptrons (at least 4)"
        )
    return Stages(**{k: v for k, v in given.items() if v is not None})


def _models(args) -> list[str]:
    from ..capacity_study import MODELS

    if args.models is None:
        return [m for m in MODELS if args.writes == "random" or not m.endswith("-unbounded")]
    return [m.strip() for m in args.models.split(",") if m.strip()]


def _table(r: dict, models: list[str], counts: np.ndarray) -> list[str]:
    lines = [f"  {'N':>8s} " + " ".join(f"{m:>17s}" for m in models)]
    for i, n in enumerate(counts):
        cells = []
        for m in models:
            life, se = r["models"][m]["lifetime"][i], (r["models"][m].get("se") or [0.0] * len(counts))[i]
            if math.isinf(life):
                cells.append(f"> {r['max_age']}".rjust(17))
            else:
                cells.append(f"{life:9.4g} +- {se:<5.2g}" if se else f"{life:17.4g}")
        lines.append(f"  {int(n):8d} " + " ".join(cells))
    exps = []
    for m in models:
        ci = r["models"][m].get("exponent_ci")
        interval = f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""
        exps.append(f"{r['models'][m]['exponent']:6.3f}{interval}".rjust(17))
    lines.append("  exponent " + " ".join(exps))
    basic = [r["models"][m].get("exponent_ci_basic") for m in models]
    if any(basic):
        cells = [(f"[{b[0]:.2f}, {b[1]:.2f}]" if b else "").rjust(17) for b in basic]
        lines.append("  basic CI " + " ".join(cells))
    for m in models:
        cut, edges = r["models"][m].get("cut_off", []), r["models"][m].get("edges", [])
        at_edge = [f"N={int(n)}: {', '.join(e)}" for n, e in zip(counts, edges, strict=False) if e]
        if cut or at_edge:
            lines.append(f"  {m}: " + "; ".join(([f"cut off at N = {cut}"] if cut else []) + at_edge))
    return lines


def run(args):
    from ..batches import default_jobs
    from ..capacity_study import DEFAULT_COUNTS, capacity_study
    from ..plots import plot_capacity

    if args.synapses is not None and args.writes == "perceptron":
        raise ValueError(
            "--synapses is for random writes: with perceptron writes each N is --groups perceptrons"
        )
    _resolve(args)
    models = _models(args)
    stages = _stages(args)
    text = args.synapse_counts or DEFAULT_COUNTS[args.writes]
    counts = np.array(int_list(text, "--synapse-counts"), dtype=float)
    start = time.perf_counter()
    r = capacity_study(
        models,
        counts,
        args.levels,
        args.synapses or 1024,
        args.steps,
        args.groups,
        args.max_age,
        args.seed,
        max_burn_in=args.max_burn_in,
        writes=args.writes,
        chains=_chains(args, models),
        selection=args.selection,
        jobs=default_jobs() if args.jobs is None else args.jobs,
        grid=args.grid,
        stages=stages,
        announce=None if args.preset in (None, "quick") else _announce(args.preset),
        cache=Path(args.results_dir) / "capacity-batches",
        reuse=not args.fresh,
        estimator=args.estimator,
    )
    r["preset"] = args.preset
    r["wall_time_s"] = time.perf_counter() - start
    r["grid_values"] = args.levels
    name = f"simulate-capacity--m{args.levels}" + ("-perceptron" if args.writes == "perceptron" else "")
    name += {"cross-fit": "-crossfit", "two-stage": "-twostage"}.get(args.selection, "")
    name += "-fair" if args.grid == "fair" else ""
    name += {"coupled": "-coupled", "auto": "-auto"}.get(args.estimator, "")
    r["plots"] = [str(p) for p in plot_capacity(r, Path(args.plot_dir) / name, args.pdf)]
    rows = _rows(r, models, counts)
    header = ["model", "N", "lifetime", "se", "lifetime_snr3", "initial_snr", "bits", "best", "at_grid_edge"]
    r["csv"] = str(write_csv(Path(args.results_dir) / f"{name}.csv", header, rows))
    r["tables"], r["tables_md"] = _tables(r, Path(args.results_dir) / f"{name}-tables.md")
    lines = [
        f"memory lifetime (steps until SNR < 1) against N, each N at its best setting; m = {args.levels}, "
        f"{args.writes} writes, ages followed to {r['max_age']}; exponent [bootstrap 95% interval]"
    ]
    lines += _table(r, models, counts)
    lines.append(f"  {r['wall_time_s']:.0f} s; plot: {', '.join(r['plots'])}; data: {r['csv']}")
    if r["tables_md"]:
        lines.append(f"  the comparisons (equal precision, equal bits, continuous): {r['tables_md']}")
    return r, lines


def _rows(r: dict, models: list[str], counts: np.ndarray) -> list[list]:
    """The CSV's rows: one per model and N."""
    rows = []
    for m in models:
        got = r["models"][m]
        se = got.get("se") or [0.0] * len(counts)
        edges = got.get("edges", [[]] * len(counts))
        at_3 = got["lifetime_at"]["3"]
        for i, n in enumerate(counts):
            rows.append(
                [
                    m,
                    int(n),
                    float(got["lifetime"][i]),
                    float(se[i]),
                    float(at_3[i]),
                    float(got["initial_snr"][i]),
                    float(got["bits"][i]),
                    _setting(got["best"][i]),
                    "; ".join(edges[i]),
                ]
            )
    return rows


def _tables(r: dict, path: Path) -> tuple[list[dict], str | None]:
    """The labelled comparisons (lab/tables.py) the result holds, as JSON and as a
    Markdown file beside the CSV (None where the result holds none)."""
    from ...files import write_text
    from ..tables import markdown, tables

    found = tables(r)
    data = [{"title": t.comparison.title, "reference": t.comparison.reference, "rows": t.rows} for t in found]
    if not found:
        return data, None
    return data, str(write_text(path, "\n\n".join(markdown(t) for t in found) + "\n"))


def _chains(args, models: list[str]) -> tuple | None:
    """The chain grid of --chains, or of --chain-lengths, --chain-alphas, --chain-betas
    (each defaulting to the stated grid's axis), or None where none is given."""
    from ..capacity_study import CHAIN_MODELS, default_grids

    given = {a: getattr(args, f"chain_{a}") for a in ("lengths", "alphas", "betas")}
    if args.chains is None and all(v is None for v in given.values()):
        return None
    if not set(CHAIN_MODELS) & set(models):
        raise ValueError(
            "--chains, --chain-lengths, --chain-alphas and --chain-betas are for complex, complex-ranged and "
            "complex-bounded"
        )
    if args.chains is not None:
        if any(v is not None for v in given.values()):
            raise ValueError(
                "--chains is a list of chains: not with --chain-lengths, --chain-alphas, --chain-betas"
            )
        return _chain_list(args.chains)
    stated = default_grids(args.levels, args.writes)["complex"].chains
    axes = {}
    for i, (axis, text) in enumerate(given.items()):
        kind = int if axis == "lengths" else float
        try:
            values = sorted({kind(x) for x in text.split(",")}) if text else sorted({c[i] for c in stated})
        except ValueError:
            raise ValueError(f"--chain-{axis} must be comma-separated numbers, got {text!r}") from None
        if (
            not values
            or min(values) <= 0
            or (axis == "lengths" and not 2 <= min(values) <= max(values) <= 32)
        ):
            raise ValueError(f"--chain-{axis} must be numbers > 0 (lengths: integers 2..32), got {text!r}")
        axes[axis] = values
    chains = tuple(
        (n, a, b) for n in axes["lengths"] for a in axes["alphas"] for b in axes["betas"] if a <= b
    )
    if not chains:
        raise ValueError("no chain with alpha <= beta in --chain-alphas and --chain-betas")
    return chains


def _chain_list(text: str) -> tuple:
    """--chains: n:alpha:beta, comma-separated, n an integer 2..32, 0 < alpha <= beta."""
    allowed = "n:alpha:beta, comma-separated, with n an integer 2..32 and 0 < alpha <= beta"
    chains = []
    for item in text.split(","):
        try:
            n, alpha, beta = item.split(":")
            chain = (int(n), float(alpha), float(beta))
        except ValueError:
            raise ValueError(f"--chains must be {allowed}; got {item!r}") from None
        if not (2 <= chain[0] <= 32 and 0 < chain[1] <= chain[2] < math.inf):
            raise ValueError(f"--chains must be {allowed}; got {item!r}")
        chains.append(chain)
    return tuple(dict.fromkeys(chains))


def _setting(best: dict) -> str:
    return " ".join(f"{k}={v:g}" for k, v in best.items() if v is not None)


EXPERIMENT = LabExperiment(
    "capacity",
    "memory lifetime against the number of synapses N: bounded, discrete, simple and complex",
    add_options,
    run,
)
