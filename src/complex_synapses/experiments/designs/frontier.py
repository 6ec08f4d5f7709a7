"""The stability-plasticity frontier: every method over a fixed grid of its settings, in
every cell, with no tuner; for each setting how well each task is learned and how much
of the old tasks is kept.

A method helps in a cell where its frontier (its non-dominated settings: none learns
more and keeps more) lies above the frontier of the plain network (`none` over its
learning rates) at matched learning accuracy, beyond the seeds' noise. No search depth
and no tuning noise enter: every method's grid is fixed in the file, at the same
density per option.

The file (TOML)::

    [frontier]
    seeds = [0, 1, 2]                       # every setting on every seed
    results_dir = "store/frontier/pilot"    # the runs (the result cache)
    csv = "docs/results/frontier-pilot.csv" # one row per (cell, method, setting)
    figure = "docs/results/frontier-pilot"  # one panel per cell (.png added)

    [base]                                  # run options of every run
    experiment = "permMNIST"
    validation = 0.1

    [cells.bnn]                             # each cell: run options over the base
    weight_bits = 1

    [methods.none]                          # each method: fixed options, and a grid
    grid = { lr = [5e-4, 1e-3, 2e-3, 5e-3, 1e-2] }

    [methods.ema]
    fixed = { lr = 5e-3 }
    points = [ { ema_decay = 0.999 }, { ema_decay = 0.9999 } ]

A grid is every combination of its lists; ``points`` lists settings one by one; given
both, every point is run with every combination of the grid. A value "<x> tasks" is x
times the cell's iterations per task, "<x> runs" x times its whole run (iterations x
tasks x rounds), so that timescales (a chain's ``alpha = "0.3 tasks"``) follow each cell.

Measures of a run (:mod:`..run.metrics`): ``learning`` (each task right after its
training), ``retention`` (the old tasks' final accuracy: tasks 1..T-1 after the last),
``retention_auc`` (each old task's mean accuracy over its evaluations after its training
ended, averaged over tasks: the area under its retention curve per unit age), and the
final average accuracy.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..execution.runner import run_many
from ..execution.where import Execution
from ..reports.frontier import non_dominated
from ..run.metrics import retention_points
from ..run.settings import OptionError, RunSettings
from .toml_files import check_keys, check_sections, read_toml, seed_list, setting_keys

__all__ = [
    "FrontierConfig",
    "load_frontier",
    "frontier_runs",
    "frontier_rows",
    "non_dominated",
    "run_frontier",
]

FRONTIER_KEYS = ("seeds", "results_dir", "csv", "figure")
METHOD_KEYS = ("fixed", "grid", "points")
UNIT = re.compile(r"^\s*([0-9.eE+-]+)\s*(tasks?|runs?)\s*$")


@dataclass
class FrontierConfig:
    """A frontier file, read and checked: the seeds, where runs and outputs go, the base
    run options, each cell's options and each method's settings (resolved per cell)."""

    path: Path
    seeds: list[int]
    results_dir: Path
    csv: Path | None
    figure: Path | None
    base: dict[str, Any]
    cells: dict[str, dict[str, Any]]
    methods: dict[str, list[dict[str, Any]]]  # method -> its settings (values may be "x tasks")


def _settings_of(name: str, spec: dict[str, Any], where: str) -> list[dict[str, Any]]:
    check_keys(spec, METHOD_KEYS, where)
    fixed = setting_keys(spec.get("fixed", {}), f"{where} fixed")
    grid = setting_keys(spec.get("grid", {}), f"{where} grid")
    for k, v in grid.items():
        if not isinstance(v, list) or not v:
            raise OptionError(f"{where} grid: {k} must be a non-empty list, got {v!r}")
    points = spec.get("points", [])
    if not isinstance(points, list) or not all(isinstance(p, dict) for p in points):
        raise OptionError(f"{where} points: a list of tables, got {points!r}")
    combos = [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]
    listed = [setting_keys(p, f"{where} points") for p in points] or [{}]
    return [{"method": name, **fixed, **p, **c} for p in listed for c in combos]


def load_frontier(path: str | Path) -> FrontierConfig:
    """Read and check a frontier file (see the module docstring); OptionError naming the
    first thing that is wrong, before anything runs."""
    path = Path(path)
    raw = read_toml(path)
    check_sections(raw, ("frontier", "base", "cells", "methods"), str(path))
    head = raw.get("frontier", {})
    check_keys(head, FRONTIER_KEYS, f"{path} [frontier]")
    seeds = seed_list(head.get("seeds"), f"{path} [frontier] seeds")
    cells = {c: setting_keys(v, f"{path} [cells.{c}]") for c, v in raw.get("cells", {}).items()}
    methods = {m: _settings_of(m, v, f"{path} [methods.{m}]") for m, v in raw.get("methods", {}).items()}
    if not cells or not methods:
        raise OptionError(f"{path}: a frontier needs at least one [cells.NAME] and one [methods.NAME]")
    config = FrontierConfig(
        path=path,
        seeds=seeds,
        results_dir=Path(head.get("results_dir", f"store/frontier/{path.stem}")),
        csv=Path(head["csv"]) if "csv" in head else None,
        figure=Path(head["figure"]) if "figure" in head else None,
        base=setting_keys(raw.get("base", {}), f"{path} [base]"),
        cells=cells,
        methods=methods,
    )
    for _, _, run in frontier_runs(config):  # every run checked before any runs
        run.check()
    return config


def _resolved(value: Any, cell: RunSettings) -> Any:
    """A value, with "<x> tasks" and "<x> runs" in the cell's iterations."""
    if not isinstance(value, str) or not UNIT.match(value):
        return value
    x, unit = UNIT.match(value).groups()
    per = cell.iters if unit.startswith("task") else cell.iters * cell.tasks * cell.rounds
    return float(x) * per


def frontier_runs(config: FrontierConfig) -> list[tuple[str, str, RunSettings]]:
    """Every run as (cell, method, its settings): each cell, each method's setting, each
    seed, in the file's order."""
    runs = []
    for cell_name, cell_values in config.cells.items():
        cell = RunSettings.make(**{"results_dir": str(config.results_dir), **config.base, **cell_values})
        for method, settings in config.methods.items():
            for s in settings:
                point = cell.replace(**{k: _resolved(v, cell) for k, v in s.items()})
                runs += [(cell_name, method, point.replace(seed=seed)) for seed in config.seeds]
    return runs


def _measures(result: dict[str, Any], settings: RunSettings) -> dict[str, float]:
    a = result["accuracy"]
    points = retention_points(
        result["curves"]["eval_iters"], result["curves"]["accuracy_per_task"], settings.iters
    )
    by_task: dict[int, list[float]] = {}
    for task, _, acc in points:
        by_task.setdefault(task, []).append(acc)
    auc = float(np.mean([np.mean(v) for v in by_task.values()])) if by_task else math.nan
    return {
        "learning": a.get("learning", math.nan),
        "retention": float(np.mean(a["per_task"][:-1])) if len(a["per_task"]) > 1 else math.nan,
        "retention_auc": auc,
        "average": a["average"],
    }


def _sem(x: np.ndarray) -> float:
    return float(x.std(ddof=1) / math.sqrt(len(x))) if len(x) > 1 else math.nan


def frontier_rows(runs: list[tuple[str, str, RunSettings]], results: list[dict]) -> list[dict]:
    """One row per (cell, method, setting): its args, seeds, the measures' means and SEMs
    over seeds, each seed's values, and whether it is on its method's frontier in the cell."""
    groups: dict[tuple[str, str, str], list[tuple[RunSettings, dict]]] = {}
    for (cell, method, run), result in zip(runs, results):
        groups.setdefault((cell, method, " ".join(run.run_args())), []).append((run, result))
    rows = []
    for (cell, method, args), members in groups.items():
        measures = [_measures(r, s) for s, r in members]
        # the threads the runs had (their sums' order, so their last bits), so that a row
        # reruns exactly from its args and a seed
        threads = {r.get("versions", {}).get("threads") for _, r in members}
        if len(threads) == 1 and None not in threads:
            args = f"{args} --threads {threads.pop()}"
        row = {"cell": cell, "method": method, "args": args, "n_seeds": len(members)}
        for name in ("learning", "retention", "retention_auc", "average"):
            values = np.array([m[name] for m in measures], dtype=float)
            row[name], row[f"{name}_sem"] = float(values.mean()), _sem(values)
        row["seeds"] = " ".join(str(s.seed) for s, _ in members)
        row["per_seed_average"] = " ".join(f"{m['average']:.6g}" for m in measures)
        row["per_seed_retention"] = " ".join(f"{m['retention']:.6g}" for m in measures)
        rows.append(row)
    for cell, method in {(r["cell"], r["method"]) for r in rows}:
        mine = [r for r in rows if r["cell"] == cell and r["method"] == method]
        front = non_dominated([(r["learning"], r["retention"]) for r in mine])
        for i, r in enumerate(mine):
            r["on_frontier"] = i in front
    return rows


def run_frontier(config: FrontierConfig, how: Execution | None = None, progress: bool = True) -> list[dict]:
    """Every run through the runner (from the cache where made), then the rows."""
    runs = frontier_runs(config)
    settings = [run for _, _, run in runs]
    results = run_many(settings, how, progress=progress, desc="frontier").ordered(settings)
    return frontier_rows(runs, results)
