"""A study's table from its units: per (cell, method) the mean and SEM on the evaluation
seeds, paired tests against ``none``, against the method's baseline at the same precision
and against the cell's best baseline (by tuning score), Holm-corrected within each
family of tests.

The families are named before anything runs (the study file's ``baseline`` of each
method): the **primary** family holds, in every cell, each method under test (a chain,
``Method.treatment``) against its baseline and against the best method without a chain;
everything else (baselines against ``none`` and against the best, a chain against
``none`` where its baseline is another) is **secondary**. Holm's correction runs within
each family; the 95% intervals beside the p-values are not adjusted for multiplicity.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...reports.stats import holm, mean_ci, paired, sem
from ...run.methods import flags

__all__ = ["analyse", "search_lines", "FAMILIES", "verdict"]

FAMILIES = ("primary", "secondary")
NO_TEST = dict.fromkeys(("diff", "ci_low", "ci_high", "d_z", "p"), float("nan"))


def treated(unit: dict[str, Any]) -> bool:
    """Whether a unit's method holds a method under test (the study's first units say it
    by their ``uses_FLAG`` keys)."""
    if "treatment" in unit:
        return unit["treatment"]
    return any(v for k, v in unit.items() if k.startswith("uses_"))


def _row(cell: str, name: str, u: dict[str, Any], here: dict[str, dict], best: str) -> dict[str, Any]:
    acc = np.array(u["accuracy"])
    baseline = u.get("baseline", "none") if treated(u) else "none"
    row = {"cell": cell, "method": name, "args": u["args"], "n_seeds": len(acc), "treatment": treated(u)}
    row.update({"mean": float(acc.mean()), "sem": sem(acc), "best_baseline": best, "baseline": baseline})
    row.update({f"best_non_{flag}": best for flag in flags()})  # the study's first name for it
    row["family"] = "primary" if treated(u) else "secondary"
    for ref, tag in (("none", "none"), (best, "best"), (baseline, "baseline")):
        test = paired(acc, here[ref]["accuracy"]) if name != ref else NO_TEST
        row.update({f"diff_vs_{tag}": test["diff"], f"ci_low_vs_{tag}": test["ci_low"]})
        row.update({f"ci_high_vs_{tag}": test["ci_high"], f"d_vs_{tag}": test["d_z"]})
        row[f"p_vs_{tag}_raw"] = test["p"]
    columns = {"learning": "learning", "forgetting": "forgetting", "relearning": "relearning_steps"}
    for key, column in columns.items():
        values = [v for v in u.get(key, []) if v is not None]
        row[column] = float(np.mean(values)) if values else float("nan")
    row["tune_score"] = u["tune_score"]
    row["code"] = u.get("code", "unknown")
    row.update({f"trials_{k.lower()}": v for k, v in u["trials"].items()})
    row["ci_mean"] = mean_ci(acc)
    return row


def _tests(row: dict[str, Any]) -> dict[str, str]:
    """The family of each of a row's tests (by its tag)."""
    if row["treatment"]:
        none = "primary" if row["baseline"] == "none" else "secondary"
        return {"baseline": "primary", "best": "primary", "none": none}
    return {"none": "secondary", "best": "secondary", "baseline": "secondary"}


def verdict(row: dict[str, Any], tag: str, smallest_gain: float | None) -> str:
    """The claim a primary test allows, by the rule a study registers: "helps" (or
    "hurts") where its Holm-corrected p is below 0.05; "no gain >= G" where the 95%
    interval of the difference lies below ``smallest_gain`` G (a fraction of accuracy);
    else "undecided". Secondary tests allow no claim ("")."""
    if _tests(row)[tag] != "primary" or not np.isfinite(row[f"p_vs_{tag}"]):
        return ""
    if row[f"p_vs_{tag}"] < 0.05:
        return "helps" if row[f"diff_vs_{tag}"] > 0 else "hurts"
    if smallest_gain is not None and row[f"ci_high_vs_{tag}"] < smallest_gain:
        return f"no gain >= {100 * smallest_gain:g} points"
    return "undecided"


def analyse(units: list[dict[str, Any]], smallest_gain: float | None = None) -> list[dict[str, Any]]:
    """One row per (cell, method) (see the module's docstring): ``p_vs_TAG`` are Holm-
    corrected within the test's family, ``p_vs_TAG_raw`` not; ``verdict_vs_baseline``
    and ``verdict_vs_best`` the claims the primary tests allow (:func:`verdict`)."""
    rows = []
    for cell in dict.fromkeys(u["cell"] for u in units):
        here = {u["method"]: u for u in units if u["cell"] == cell}
        plain = [u for u in here.values() if not treated(u)]
        best = max(plain, key=lambda u: u["tune_score"])["method"]
        rows += [_row(cell, name, u, here, best) for name, u in here.items()]
    for family in FAMILIES:
        tests = [(r, tag) for r in rows for tag, f in _tests(r).items() if f == family]
        tests = [(r, tag) for r, tag in tests if not (tag == "baseline" and r["baseline"] == "none")]
        for (r, tag), p in zip(tests, holm([r[f"p_vs_{tag}_raw"] for r, tag in tests]), strict=True):
            r[f"p_vs_{tag}"] = p
    for r in rows:
        if r["baseline"] == "none":  # the same test as against none
            r["p_vs_baseline"] = r["p_vs_none"]
        r["verdict_vs_baseline"] = verdict(r, "baseline", smallest_gain)
        r["verdict_vs_best"] = verdict(r, "best", smallest_gain)
    return rows


def search_lines(units: list[dict[str, Any]]) -> list[str]:
    """Each unit's final search ranges and the search's best values, the values still at
    an edge of their range after its widenings, and where the unit has one, its off
    point's score and whether it was chosen (units of earlier releases kept no ranges)."""
    lines = []
    for u in units:
        if "space" not in u:
            continue
        best = u.get("search_params") or u["params"]
        ranges = "; ".join(_search_range(k, _drawn(k, best, r), r) for k, r in u["space"].items())
        edge = ", ".join(f"{k} at its {end} end" for k, end in u.get("at_edge", {}).items())
        widened = f", widened {u['widened']}x" if u.get("widened") else ""
        line = f"{u['cell']} / {u['method']}: {ranges}{widened}"
        if u.get("off_point"):
            score = "diverged" if u["off_score"] is None else f"{100 * u['off_score']:.2f}%"
            line += f"; off point {score} against the search's {100 * u['search_score']:.2f}%"
            line += ": CHOSEN" if u["off_won"] else ""
        lines.append(line + (f" -- STILL BINDS: {edge}" if edge else ""))
    return lines


def _factor_of(r: list) -> str | None:
    """The option a recorded range (``[1, 1e4, "x alpha"]``) is a factor of, or None."""
    return r[2][2:] if len(r) == 3 and isinstance(r[2], str) and r[2].startswith("x ") else None


def _drawn(name: str, values: dict[str, Any], r: list) -> Any:
    """A value as its range is searched: a factor's as the factor."""
    other = _factor_of(r)
    return values[name] / values[other] if other else values[name]


def _search_range(name: str, value: Any, r: list) -> str:
    """``beta 3000 in [300, 1e5]``; a factor's range as ``in [1, 1e4] x alpha``; choices bare."""
    factor = _factor_of(r) is not None
    if len(r) == 2 or factor:
        return f"{name} {_fmt(value)} in [{_fmt(r[0])}, {_fmt(r[1])}]" + (f" {r[2]}" if factor else "")
    return f"{name} {value}"


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)
