"""The statistics of results over seeds: mean, SEM, paired differences and tests."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["sem", "summarize", "group_rows", "paired", "holm", "mean_ci"]


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


def mean_ci(x, level: float = 0.95) -> tuple[float, float]:
    """The t-based confidence interval of the mean of ``x`` (NaNs for fewer than two)."""
    from scipy import stats

    x = np.asarray(x, dtype=float)
    if len(x) < 2:
        return float("nan"), float("nan")
    half = stats.t.ppf(0.5 + level / 2, len(x) - 1) * sem(x)
    return float(x.mean() - half), float(x.mean() + half)


def paired(a, b) -> dict[str, float]:
    """``a`` against ``b`` on the same seeds: the mean difference ``a - b``, its 95%
    confidence interval, the effect size d_z (mean / SD of the differences) and the
    two-sided paired t-test's p. Where every difference is the same the t-test has no
    variance to work with: p is then the exact sign-flip test's, 2 / 2^n for n equal
    nonzero differences (the smallest p that n seeds can give), and 1 where they are 0."""
    from scipy import stats

    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    low, high = mean_ci(d)
    sd = float(np.std(d, ddof=1)) if len(d) > 1 else float("nan")
    if len(d) < 2:
        p = float("nan")
    elif not np.any(d != d[0]):
        p = 1.0 if d[0] == 0 else min(1.0, 2.0 * 0.5 ** len(d))
    else:
        p = float(stats.ttest_rel(a, b).pvalue)
    d_z = float(d.mean() / sd) if sd and np.isfinite(sd) else float("nan")
    return {"diff": float(d.mean()), "ci_low": low, "ci_high": high, "d_z": d_z, "p": p}


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjustment of ``pvalues`` (NaNs kept out and returned as NaN):
    the k-th smallest of m is multiplied by m - k + 1, then made monotone, capped at 1."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(len(p), np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    order = valid[np.argsort(p[valid], kind="stable")]
    m, running = len(order), 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * p[i]))
        out[i] = running
    return out.tolist()
