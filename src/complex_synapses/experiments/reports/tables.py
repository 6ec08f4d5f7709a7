"""The tables of ``compare``, ``matrix``, ``sweep`` and ``study``: text, Markdown and
CSV, each a mean +- SEM (or a 95% interval) per method and cell, from the summaries that
:mod:`.stats` computes. Nothing here runs or reads a result."""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np

from .stats import sem

__all__ = ["compare_table", "matrix_table", "matrix_csv", "study_table", "study_csv", "csv_columns"]
__all__ += ["CSV_COLUMNS", "LABEL", "unit_line"]

LABEL = {"splitMNIST": "split", "permMNIST": "permuted"}
# The study CSV's columns, in the order of the registered study's files (one column a line).
CSV_COLUMNS = (
    "cell",
    "method",
    "args",
    "n_seeds",
    "mean",
    "sem",
    "p_vs_none",
    "p_vs_best",
    "best_baseline",
    "diff_vs_none",
    "ci_low_vs_none",
    "ci_high_vs_none",
    "d_vs_none",
    "diff_vs_best",
    "ci_low_vs_best",
    "ci_high_vs_best",
    "d_vs_best",
    "p_vs_none_raw",
    "p_vs_best_raw",
    "tune_score",
    "trials_complete",
    "trials_pruned",
    "trials_diverged",
    "family",
    "baseline",
    "p_vs_baseline",
    "diff_vs_baseline",
    "ci_low_vs_baseline",
    "ci_high_vs_baseline",
    "p_vs_baseline_raw",
    "learning",
    "forgetting",
    "code",
    "verdict_vs_baseline",
    "verdict_vs_best",
    "relearning_steps",
)


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


def csv_columns() -> tuple[str, ...]:
    """The CSV's columns: the registered study's (the best baseline named ``best_non_FLAG`` for
    each method's flag, where a flag exists), then ``best_baseline``."""
    from ..run.methods import flags

    i = CSV_COLUMNS.index("best_baseline")
    old = tuple(f"best_non_{flag}" for flag in flags()) or ("best_baseline",)
    return (*CSV_COLUMNS[:i], *old, *CSV_COLUMNS[i + 1 :]) + (("best_baseline",) if flags() else ())


def study_csv(rows: list[dict[str, Any]]) -> str:
    """The table as CSV (accuracies as fractions, p-values Holm-corrected; ``_raw``: not)."""
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


def unit_line(unit: dict[str, Any]) -> str:
    """A study unit's line as it finishes: its tuning score and its test accuracy."""
    acc = np.array(unit["accuracy"])
    return (
        f"  {unit['cell']:>14s} {unit['method']:>14s}: tuned {100 * unit['tune_score']:.2f}%, "
        f"test {100 * acc.mean():.2f} +- {100 * sem(acc):.2f}% ({unit['wall_time_s']:.0f} s)"
    )
