"""The scenario matrix: {split, permuted} x {task, domain, class} for a list of methods,
over seeds; one table (Markdown and CSV) and one figure, mean +- SEM per cell. Every run
is cached by its parameter stamp, so a stopped matrix resumes where it was."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from ..figures import pyplot, save_figure
from .compare import Variant, run_all
from .settings import RunSettings
from .stats import summarize

__all__ = ["run_matrix", "markdown_table", "csv_text", "plot_matrix"]

LABEL = {"splitMNIST": "split", "permMNIST": "permuted"}


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
    }
    for e, sc in cells:
        results = {v.name: [] for v in variants}
        for ((ce, csc), v, _), r in zip(grid, flat):
            if (ce, csc) == (e, sc):
                results[v.name].append(r)
        out["cells"][f"{e}/{sc}"] = summarize(results, seeds)
    out["wall_time_s"] = float(sum(r["wall_time_s"] for r in flat))
    return out


def _cell(m: dict[str, Any]) -> str:
    sem = "" if np.isnan(m["sem"]) else f" ± {100 * m['sem']:.1f}"
    return f"{100 * m['mean']:.1f}{sem}"


def markdown_table(matrix: dict[str, Any]) -> str:
    cells = list(matrix["cells"])
    head = [f"{LABEL.get(c.split('/')[0], c.split('/')[0])} {c.split('/')[1]}-IL" for c in cells]
    lines = ["| method | " + " | ".join(head) + " |", "|---|" + "---:|" * len(cells)]
    for name in matrix["methods"]:
        lines.append(
            f"| {name} | " + " | ".join(_cell(matrix["cells"][c]["methods"][name]) for c in cells) + " |"
        )
    return "\n".join(lines)


def csv_text(matrix: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["experiment", "scenario", "method", "mean", "sem", "n", "per_seed"])
    for cell, summary in matrix["cells"].items():
        e, sc = cell.split("/")
        for name, m in summary["methods"].items():
            w.writerow(
                [e, sc, name, m["mean"], m["sem"], len(m["per_seed"]), " ".join(map(str, m["per_seed"]))]
            )
    return buf.getvalue()


def plot_matrix(matrix: dict[str, Any], title: str, path: Path, pdf: bool = False) -> list[Path]:
    """One panel per cell: a bar per method, mean with SEM error bars."""
    plt = pyplot()
    cells = list(matrix["cells"])
    experiments = sorted(
        {c.split("/")[0] for c in cells}, key=lambda e: [c.split("/")[0] for c in cells].index(e)
    )
    scenarios = sorted(
        {c.split("/")[1] for c in cells}, key=lambda s: [c.split("/")[1] for c in cells].index(s)
    )
    names = matrix["methods"]
    fig, axes = plt.subplots(
        len(experiments),
        len(scenarios),
        squeeze=False,
        figsize=(3.0 * len(scenarios) + 0.5, 2.9 * len(experiments) + 0.6),
        sharey=True,
    )
    colors = plt.get_cmap("tab10")
    for r, e in enumerate(experiments):
        for c, sc in enumerate(scenarios):
            ax = axes[r][c]
            summary = matrix["cells"].get(f"{e}/{sc}")
            if summary is None:
                ax.axis("off")
                continue
            means = [100 * summary["methods"][n]["mean"] for n in names]
            sems = [
                0 if np.isnan(summary["methods"][n]["sem"]) else 100 * summary["methods"][n]["sem"]
                for n in names
            ]
            ax.bar(
                range(len(names)),
                means,
                yerr=sems,
                capsize=2,
                color=[colors(i % 10) for i in range(len(names))],
            )
            ax.set_title(f"{LABEL.get(e, e)}, {sc}-IL", fontsize=9)
            ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
            ax.set_ylim(0, 100)
            if c == 0:
                ax.set_ylabel("average test accuracy (%)", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, pdf, dpi=120)
