"""The statistics of results over seeds: mean, SEM, paired differences and tests."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["sem", "summarize", "group_rows"]


def sem(x) -> float:
    """Standard error of the mean (NaN for fewer than two values)."""
    x = np.asarray(x, dtype=float)
    return float(np.std(x, ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")


def summarize(results: dict[str, list[dict[str, Any]]], seeds: list[int]) -> dict[str, Any]:
    """Mean and SEM of the average accuracy per method; for every method after the
    first, the paired difference from the first with its SEM and the paired t-test."""
    from scipy import stats

    names = list(results)
    acc = {n: np.array([r["accuracy"]["average"] for r in results[n]]) for n in names}
    summary: dict[str, Any] = {"seeds": seeds, "methods": {}, "differences": {}}
    for n in names:
        summary["methods"][n] = {
            "mean": float(acc[n].mean()),
            "sem": sem(acc[n]),
            "per_seed": acc[n].tolist(),
        }
    ref = names[0]
    for n in names[1:]:
        d = acc[n] - acc[ref]
        p = float(stats.ttest_rel(acc[n], acc[ref]).pvalue) if len(d) > 1 and np.any(d != 0) else float("nan")
        summary["differences"][f"{n} - {ref}"] = {"mean": float(d.mean()), "sem": sem(d), "p_paired_t": p}
    return summary


def group_rows(keyed: list[tuple[tuple, float]], axes: list[str]) -> list[dict[str, Any]]:
    """Mean, SEM and count of the values that share a key, one row per key (sorted)."""
    groups: dict[tuple, list[float]] = {}
    for key, value in keyed:
        groups.setdefault(key, []).append(value)
    rows = []
    for key, values in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0]))):
        a = np.array(values)
        rows.append({**dict(zip(axes, key)), "mean": float(a.mean()), "sem": sem(a), "n": len(a)})
    return rows
