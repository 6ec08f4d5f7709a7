"""The scenario matrix: {split, permuted} x {task, domain, class} for a list of methods,
over seeds; one table (Markdown and CSV) and one figure, mean +- SEM per cell. Every run
is cached by its parameter stamp, so a stopped matrix resumes where it was."""

from __future__ import annotations

from typing import Any

from ..reports.stats import summarize
from ..run.settings import RunSettings
from .compare import Variant, run_all

__all__ = ["run_matrix"]


def run_matrix(
    base: RunSettings,
    variants: list[Variant],
    experiments: list[str],
    scenarios: list[str],
    seeds: list[int],
    jobs: int = 1,
) -> dict[str, Any]:
    cells = [(e, sc) for e in experiments for sc in scenarios]
    grid = [(cell, v, seed) for cell in cells for v in variants for seed in seeds]
    settings = [base.replace(experiment=e, scenario=sc, seed=seed, **v.changes) for (e, sc), v, seed in grid]
    flat, n_run = run_all(settings, jobs)
    out: dict[str, Any] = {
        "seeds": seeds,
        "methods": [v.name for v in variants],
        "cells": {},
        "runs_made": n_run,
        "stamps": [r["stamp"] for r in flat],
    }
    for e, sc in cells:
        results = {v.name: [] for v in variants}
        for ((ce, csc), v, _), r in zip(grid, flat):
            if (ce, csc) == (e, sc):
                results[v.name].append(r)
        out["cells"][f"{e}/{sc}"] = summarize(results, seeds)
    out["wall_time_s"] = float(sum(r["wall_time_s"] for r in flat))
    return out
