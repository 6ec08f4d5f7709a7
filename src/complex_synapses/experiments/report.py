"""The one reporter: the tables (text, Markdown, CSV) and figures of ``compare``,
``matrix``, ``sweep`` and ``study``, each a mean +- SEM (or a 95% interval) per method
and cell, drawn from the summaries that :mod:`.stats` computes. Nothing here runs or
reads a result; the modules of those commands re-export their functions by their old
names (``compare.format_table`` is :func:`compare_table`)."""

from __future__ import annotations

import csv
import io
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..figures import pyplot, save_figure
from .results import write_json, write_text
from .stats import sem

if TYPE_CHECKING:
    from .study import StudyConfig

__all__ = ["compare_table", "compare_figure", "matrix_table", "matrix_csv", "matrix_figure", "heatmap"]
__all__ += ["study_table", "study_csv", "study_figure", "csv_columns", "CSV_COLUMNS", "LABEL"]
__all__ += ["convergence_figure", "unit_line", "write_outputs"]

LABEL = {"splitMNIST": "split", "permMNIST": "permuted"}
CSV_COLUMNS = (
    "cell", "method", "args", "n_seeds", "mean", "sem", "p_vs_none", "p_vs_best",
    "best_baseline", "diff_vs_none", "ci_low_vs_none", "ci_high_vs_none", "d_vs_none",
    "diff_vs_best", "ci_low_vs_best", "ci_high_vs_best", "d_vs_best",
    "p_vs_none_raw", "p_vs_best_raw", "tune_score", "trials_complete", "trials_pruned", "trials_diverged",
    "family", "baseline", "p_vs_baseline", "diff_vs_baseline", "ci_low_vs_baseline", "ci_high_vs_baseline",
    "p_vs_baseline_raw", "learning", "forgetting", "code", "verdict_vs_baseline", "verdict_vs_best",
    "relearning_steps",
)  # fmt: skip


def compare_table(summary: dict[str, Any], title: str) -> str:
    n = len(summary["seeds"])
    lines = [title, f"{'method':34s} {'average test accuracy (%)':>28s}   n"]
    for name, m in summary["methods"].items():
        lines.append(f"{name:34s} {100 * m['mean']:17.2f} +- {100 * m['sem']:5.2f} (SEM) {n:3d}")
    for name, d in summary["differences"].items():
        sig = (
            ""
            if np.isnan(d["p_paired_t"])
            else ("significant" if d["p_paired_t"] < 0.05 else "not significant")
        )
        lines.append(
            f"{name:34s} {100 * d['mean']:+17.2f} +- {100 * d['sem']:5.2f} (SEM)   paired t-test p = "
            f"{d['p_paired_t']:.3g} ({sig} at 0.05)"
        )
    return "\n".join(lines)


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


def _cell(m: dict[str, Any]) -> str:
    sem = "" if np.isnan(m["sem"]) else f" ± {100 * m['sem']:.1f}"
    return f"{100 * m['mean']:.1f}{sem}"


def matrix_table(matrix: dict[str, Any]) -> str:
    cells = list(matrix["cells"])
    head = [f"{LABEL.get(c.split('/')[0], c.split('/')[0])} {c.split('/')[1]}-IL" for c in cells]
    lines = ["| method | " + " | ".join(head) + " |", "|---|" + "---:|" * len(cells)]
    for name in matrix["methods"]:
        lines.append(
            f"| {name} | " + " | ".join(_cell(matrix["cells"][c]["methods"][name]) for c in cells) + " |"
        )
    return "\n".join(lines)


def matrix_csv(matrix: dict[str, Any]) -> str:
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


def csv_columns() -> tuple[str, ...]:
    """The CSV's columns: release 0.2's (the best baseline named ``best_non_FLAG`` for
    each method's flag, where a flag exists), then ``best_baseline``."""
    from .methods import flags

    i = CSV_COLUMNS.index("best_baseline")
    old = tuple(f"best_non_{flag}" for flag in flags()) or ("best_baseline",)
    return (*CSV_COLUMNS[:i], *old, *CSV_COLUMNS[i + 1 :]) + (("best_baseline",) if flags() else ())


def study_csv(rows: list[dict[str, Any]]) -> str:
    """The table as CSV (accuracies as fractions, p-values Holm-corrected; ``_raw``: not)."""
    import csv
    import io

    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    columns = csv_columns()
    w.writerow(columns)
    for r in rows:
        w.writerow(["" if _nan(r.get(c)) else _fmt(r.get(c)) for c in columns])
    return out.getvalue()


def _nan(v: Any) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v))


def _fmt(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def study_table(rows: list[dict[str, Any]]) -> str:
    """Accuracy (%) per cell and method, with the paired difference from none and from
    the best baseline (Holm-corrected p in brackets), learning accuracy and forgetting,
    and the claims a primary test allows (against its baseline / the best baseline)."""
    lines = [
        "| cell | method | accuracy (%) | vs none (pp, 95% CI) [p] | vs best baseline (pp, 95% CI) [p] "
        "| learning (%) | forgetting (pp) | claim (primary: vs baseline / vs best) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [r["cell"], r["method"], f"{100 * r['mean']:.2f} ± {100 * r['sem']:.2f}"]
        for tag in ("none", "best"):
            if _nan(r[f"diff_vs_{tag}"]):
                cells.append("—")
                continue
            cells.append(
                f"{100 * r[f'diff_vs_{tag}']:+.2f} ({100 * r[f'ci_low_vs_{tag}']:+.2f}, "
                f"{100 * r[f'ci_high_vs_{tag}']:+.2f}) [{r[f'p_vs_{tag}']:.2g}]"
            )
        cells += [_percent(r.get("learning")), _percent(r.get("forgetting"))]
        claims = [r.get("verdict_vs_baseline") or "", r.get("verdict_vs_best") or ""]
        cells.append(" / ".join(claims) if any(claims) else "")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _percent(v: float | None) -> str:
    return "—" if _nan(v) else f"{100 * v:.1f}"


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
            ax.errorbar(100 * r["mean"], yi, xerr=[[100 * (r["mean"] - low)], [100 * (high - r["mean"])]],
                        fmt="o", color=color, capsize=3)  # fmt: skip
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


def unit_line(unit: dict[str, Any]) -> str:
    """A study unit's line as it finishes: its tuning score and its test accuracy."""
    acc = np.array(unit["accuracy"])
    return (
        f"  {unit['cell']:>14s} {unit['method']:>14s}: tuned {100 * unit['tune_score']:.2f}%, "
        f"test {100 * acc.mean():.2f} +- {100 * sem(acc):.2f}% ({unit['wall_time_s']:.0f} s)"
    )


def write_outputs(config: StudyConfig, rows: list[dict[str, Any]]) -> list[Path]:
    """The CSV, the figure and ``study.json`` (rows and units) where the config says."""
    out = [write_json(config.results_dir / "study.json", {"rows": rows})]
    if config.csv is not None:
        out.append(write_text(config.csv, study_csv(rows)))
    if config.figure is not None:
        out += study_figure(rows, config.figure, f"{config.path.stem}: tuned on seeds "
                          f"{config.tune_seeds}, tested on {len(config.eval_seeds)} others")  # fmt: skip
    return out
