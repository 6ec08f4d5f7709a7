"""Methods over seeds: run (or take from the cache) every (method, seed), then the table
of mean +- SEM, the paired differences with a paired t-test, and the bar plot."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from ..execution.cache import cached, result_path, write_json
from ..execution.runner import run_many, run_one
from ..execution.where import Execution
from ..reports.stats import summarize
from ..run.settings import RunSettings

__all__ = [
    "Variant",
    "methods_for",
    "variants",
    "both_splits",
    "collect",
    "run_all",
    "summarize",
    "result_path",
    "cached",
    "run_and_store",
]


@dataclass(frozen=True)
class Variant:
    name: str
    changes: dict[str, Any]


def both_splits(values: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    """The options given as ``both`` (see :class:`methods.Option`), each with the
    choices it splits into."""
    from ..run.methods import all_options

    opts = all_options()
    return {k: opts[k].choices for k, v in values.items() if v == "both" and k in opts and opts[k].both}


def variants(names: list[str] | None, split: dict[str, tuple[Any, ...]]) -> list[Variant]:
    """The methods to compare: ``names``, or without them ``none`` and every method
    under test (by their labels), each once per combination of the ``split`` options
    it declares."""
    from ..run.methods import get_method, treatments

    labels = {}
    if names is None:
        names = ["none", *(cls.name for cls in treatments())]
        labels = {n: get_method(n).label or n for n in names}
    out = []
    for name in names:
        declared = {k for part in name.split("+") for k in get_method(part).options}
        axes = {k: v for k, v in split.items() if k in declared}
        for combo in itertools.product(*axes.values()):
            suffix = f" ({', '.join(map(str, combo))})" if combo else ""
            out.append(Variant(labels.get(name, name) + suffix, {"method": name, **dict(zip(axes, combo))}))
    return out


def methods_for(time_unit: str, names: list[str] | None = None) -> list[Variant]:
    """The methods to compare, :func:`variants` with ``time_unit`` split where it is
    ``both`` (a time unit alone)."""
    return variants(names, both_splits({"time_unit": time_unit}))


def run_and_store(
    settings: RunSettings, threads: int | None = None, progress: bool = False
) -> dict[str, Any]:
    """Run one experiment and write its result file."""
    result = run_one(settings, threads, progress)
    write_json(result_path(settings), result)
    return result


def run_all(
    settings: list[RunSettings], jobs: int = 1, progress: bool = True
) -> tuple[list[dict[str, Any]], int]:
    """The result of every settings, from the cache where present, else run (in ``jobs``
    processes; see :func:`runner.run_many`). Returns the results in order and how many
    were run; RunFailed if one failed."""
    outcome = run_many(settings, Execution(jobs=jobs), progress=progress)
    return outcome.ordered(settings), outcome.runs_made


def collect(
    base: RunSettings, methods: list[Variant], seeds: list[int], jobs: int = 1, progress: bool = True
):
    """``results[method.name][i]``: the result of each method on ``seeds[i]``."""
    grid = [(m, seed) for m in methods for seed in seeds]
    flat, n_run = run_all([base.replace(seed=seed, **m.changes) for m, seed in grid], jobs, progress)
    results: dict[str, list[dict[str, Any]]] = {m.name: [] for m in methods}
    for (m, _), r in zip(grid, flat):
        results[m.name].append(r)
    return results, n_run
