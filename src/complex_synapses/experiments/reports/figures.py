"""The figures of the experiments: one run's curves, and the summaries of ``compare``,
``matrix``, ``sweep`` and ``study`` (matplotlib, headless; a PNG and, where asked, a PDF
beside it). Nothing here runs or reads a result."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from ...figures import pyplot, save_figure
from .tables import LABEL

__all__ = ["plot_curves", "compare_figure", "matrix_figure", "heatmap", "study_figure", "convergence_figure"]


def plot_curves(result: dict[str, Any], path: Path, pdf: bool = False) -> list[Path]:
    """Write ``path``.png (and .pdf): accuracy curves above, loss below."""
    plt = pyplot()
    c, s = result["curves"], result["settings"]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True, height_ratios=(2, 1))
    for t, accs in enumerate(c["accuracy_per_task"], 1):
        top.plot(c["eval_iters"], accs, lw=1, label=f"task {t}")
    top.plot(c["eval_iters"], c["accuracy_average"], color="black", lw=2.2, label="average")
    if s["stream"] == "task-based":
        for k in range(1, s["tasks"]):
            for ax in (top, bottom):
                ax.axvline(k * s["iters"], color="0.8", lw=0.8, zorder=0)
    top.set_ylabel("test accuracy")
    top.set_ylim(0, 1.02)
    top.legend(fontsize=7, ncol=3, loc="lower left")
    from ..run.methods import flags

    parts = [p for p in s["method"].split("+") if p != "none"]
    parts += [method for flag, method in flags().items() if s.get(flag)]  # the first result files
    kind = "+".join(dict.fromkeys(parts)) or "fine-tuning"
    top.set_title(
        f"{s['experiment']} on {s['dataset']}, {s['scenario']}-IL, method {kind}: "
        f"average {100 * result['accuracy']['average']:.1f}%",
        fontsize=10,
    )
    bottom.plot(c["loss_iters"], c["loss"], color="tab:red")
    bottom.set_xlabel("iteration")
    bottom.set_ylabel("training loss")
    fig.tight_layout()
    return save_figure(fig, path, pdf, dpi=110)


def compare_figure(summary: dict[str, Any], title: str, path: Path, pdf: bool = False) -> list[Path]:
    """Bars of mean accuracy with SEM error bars and every seed as a point."""
    plt = pyplot()
    names = list(summary["methods"])
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(names), 4.6))
    colors = ["0.6", "tab:red", "tab:blue", "tab:green", "tab:purple", "tab:orange"]
    n_seeds = len(summary["seeds"])
    jitter = np.linspace(-0.2, 0.2, n_seeds) if n_seeds > 1 else np.zeros(1)
    points = np.array([100 * np.array(summary["methods"][n]["per_seed"]) for n in names])  # (methods, seeds)
    for i, name in enumerate(names):
        m = summary["methods"][name]
        ax.bar(
            i,
            100 * m["mean"],
            yerr=None if np.isnan(m["sem"]) else 100 * m["sem"],
            capsize=6,
            color=colors[i % len(colors)],
            alpha=0.75,
            edgecolor="black",
            zorder=1,
        )
        ax.scatter(i + jitter, points[i], s=14, color="black", zorder=3)
    for k in range(n_seeds):  # the same seed under each method: the pairing of the t-test
        ax.plot(np.arange(len(names)) + jitter[k], points[:, k], color="black", lw=0.4, alpha=0.35, zorder=2)
    ax.set_ylim(max(0, points.min() - 5), min(100, points.max() + 3))
    ax.set_xticks(range(len(names)), names, rotation=10)
    ax.set_ylabel("average test accuracy (%)")
    ax.set_title("\n".join(textwrap.wrap(title, 60)), fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path, pdf, dpi=130)


def matrix_figure(matrix: dict[str, Any], title: str, path: Path, pdf: bool = False) -> list[Path]:
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


def heatmap(rows: list[dict[str, Any]], axes: tuple[str, str], title: str, path: Path, pdf: bool = False):
    """Mean accuracy over two settings (averaged over all the others)."""
    plt = pyplot()
    xs = sorted({r[axes[0]] for r in rows}, key=str)
    ys = sorted({r[axes[1]] for r in rows}, key=str)
    grid = np.full((len(ys), len(xs)), np.nan)
    for r in rows:
        grid[ys.index(r[axes[1]]), xs.index(r[axes[0]])] = 100 * r["mean"]
    fig, ax = plt.subplots(figsize=(1.4 + 1.1 * len(xs), 1.2 + 0.6 * len(ys)))
    im = ax.imshow(grid, cmap="viridis", aspect="auto")
    for i in range(len(ys)):
        for j in range(len(xs)):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center", color="white", fontsize=8)
    ax.set_xticks(range(len(xs)), [str(x) for x in xs])
    ax.set_yticks(range(len(ys)), [str(y) for y in ys])
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="average test accuracy (%)")
    fig.tight_layout()
    return save_figure(fig, path, pdf)


def _cell_panels(cells: list[str]):
    """A figure with one panel per cell, three to a row; the panels left over hidden.
    Returns the figure and the panels in the cells' order."""
    cols = min(3, len(cells))
    nrows = -(-len(cells) // cols)
    fig, axes = pyplot().subplots(nrows, cols, figsize=(4.2 * cols, 3.2 * nrows), squeeze=False)
    for ax in list(axes.flat)[len(cells) :]:
        ax.axis("off")
    return fig, list(axes.flat)[: len(cells)]


def study_figure(rows: list[dict[str, Any]], path: Path, title: str) -> list[Path]:
    """One panel per cell: each method's mean accuracy on the evaluation seeds with its
    95% confidence interval; the methods under test in orange, none's mean dashed."""
    cells = list(dict.fromkeys(r["cell"] for r in rows))
    fig, axes = _cell_panels(cells)
    for ax, cell in zip(axes, cells):
        here = [r for r in rows if r["cell"] == cell]
        y = np.arange(len(here))[::-1]
        for yi, r in zip(y, here):
            low, high = r["ci_mean"]
            color = "tab:orange" if r["treatment"] else "tab:blue"
            ax.errorbar(
                100 * r["mean"],
                yi,
                xerr=[[100 * (r["mean"] - low)], [100 * (high - r["mean"])]],
                fmt="o",
                color=color,
                capsize=3,
            )
        none = next(r for r in here if r["method"] == "none")
        ax.axvline(100 * none["mean"], color="grey", ls="--", lw=1)
        ax.set_yticks(y, [r["method"] for r in here])
        ax.set_title(cell, fontsize=10)
        ax.set_xlabel("test accuracy (%), mean and 95% CI")
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save_figure(fig, path)


def convergence_figure(units: list[dict[str, Any]], path: Path) -> list[Path]:
    """One panel per cell: each method's best tuning score against the trial, a search
    not seen to converge (its last third improved the best by more than the score's
    standard error) drawn dashed and marked in the legend; where a unit scored an off
    point (``start_from_baseline``), its score is drawn after the last trial, a star
    where it was chosen, a cross where the search's best was. Units of earlier releases,
    which kept no history, are left out."""
    units = [u for u in units if u.get("history")]
    if not units:
        return []
    cells = list(dict.fromkeys(u["cell"] for u in units))
    fig, axes = _cell_panels(cells)
    for ax, cell in zip(axes, cells):
        for u in (u for u in units if u["cell"] == cell):
            _search_curve(ax, u)
        ax.set_title(cell, fontsize=10)
        ax.set_xlabel("trial (star: off point chosen, x: off point not chosen)", fontsize=8)
        ax.set_ylabel("best tuning score (%)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path)


def _search_curve(ax, unit: dict[str, Any]) -> None:
    best = 100 * np.array(unit["history"], dtype=float)
    converged = unit.get("converged", True)
    label = unit["method"] + ("" if converged else " (not converged)")
    (line,) = ax.plot(np.arange(1, len(best) + 1), best, "-" if converged else "--", label=label)
    if unit.get("off_score") is not None:
        won = unit.get("off_won", False)
        ax.plot([len(best) + 1], [100 * unit["off_score"]], "*" if won else "x", color=line.get_color(), ms=9)


def frontier_figure(rows: list[dict[str, Any]], path: Path, title: str) -> list[Path]:
    """The stability-plasticity plane, one panel per cell: each setting's learning accuracy
    against its retention (old tasks' final accuracy), mean and SEM over seeds, one colour
    per method, its non-dominated settings joined; `none` (its learning rates) in grey,
    the reference a method must lie above."""
    cells = list(dict.fromkeys(r["cell"] for r in rows))
    fig, axes = _cell_panels(cells)
    methods = list(dict.fromkeys(r["method"] for r in rows))
    colors = {m: ("0.4" if m == "none" else f"C{i % 10}") for i, m in enumerate(methods)}
    for ax, cell in zip(axes, cells):
        for method in methods:
            mine = [r for r in rows if r["cell"] == cell and r["method"] == method]
            if not mine:
                continue
            x = 100 * np.array([r["learning"] for r in mine])
            y = 100 * np.array([r["retention"] for r in mine])
            xerr = 100 * np.nan_to_num(np.array([r["learning_sem"] for r in mine]))
            yerr = 100 * np.nan_to_num(np.array([r["retention_sem"] for r in mine]))
            ax.errorbar(
                x, y, xerr=xerr, yerr=yerr, fmt="o", color=colors[method], label=method, ms=4, alpha=0.8
            )
            # none: every learning rate joined, the reference; the others: their frontier
            front = sorted((a, b) for a, b, r in zip(x, y, mine) if r["on_frontier"] or method == "none")
            if len(front) > 1:
                ax.plot(*zip(*front), "-", color=colors[method], alpha=0.7)
        ax.set_title(cell)
        ax.set_xlabel("learning accuracy (%)")
        ax.set_ylabel("old tasks' final accuracy (%)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(textwrap.fill(title, 110), fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)
