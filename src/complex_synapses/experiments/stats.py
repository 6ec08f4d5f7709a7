"""The statistics of results over seeds: mean, SEM, paired differences and tests."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["sem", "summarize", "group_rows", "paired", "holm", "mean_ci", "learning_and_forgetting"]
__all__ += ["relearning"]


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


def learning_and_forgetting(matrix: list[list[float]]) -> dict[str, float]:
    """From the accuracy matrix (row i: every task's accuracy after training task i, T x
    T, or R T x T where the tasks came R times): ``learning``, the mean accuracy of each
    task right after it was first trained (the first round's diagonal), and
    ``forgetting``, the mean over tasks 1..T-1 of that less its accuracy after the last
    task (the negative of backward transfer). Empty for another shape."""
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.shape[1] < 1 or m.shape[0] < m.shape[1] or m.shape[0] % m.shape[1]:
        return {}
    diag = np.diagonal(m[: m.shape[1]])
    forgetting = float((diag[:-1] - m[-1, :-1]).mean()) if len(diag) > 1 else 0.0
    return {"learning": float(diag.mean()), "forgetting": forgetting}


def relearning(
    matrix: list[list[float]],
    eval_iters: list[int],
    curves: list[list[float]],
    iters: int,
    share: float = 0.9,
) -> dict[str, Any]:
    """Where tasks come back (``--rounds``): for each return of a task, the training steps
    it took to regain ``share`` of the accuracy the task had at the end of its first visit
    (0 where it had kept that much; None where it did not regain it within the visit),
    read from the test curves (``curves[j]``: task j's accuracy at ``eval_iters``), so to
    within ``--eval-log`` steps. ``matrix``: a row per visit, as the training loop keeps it."""
    n_tasks = len(matrix[0]) if matrix else 0
    returns = []
    for v in range(n_tasks, len(matrix)):
        j, start = v % n_tasks, v * iters
        target = share * matrix[j][j]
        steps = 0 if matrix[v - 1][j] >= target else None
        if steps is None:
            hits = [
                it - start
                for it, a in zip(eval_iters, curves[j])
                if start < it <= start + iters and a >= target
            ]
            steps = hits[0] if hits else None
        returns.append({"task": j + 1, "round": v // n_tasks + 1, "steps": steps})
    regained = [r["steps"] for r in returns if r["steps"] is not None]
    return {
        "returns": returns,
        "mean_steps": float(np.mean(regained)) if regained else float("nan"),
        "not_regained": len(returns) - len(regained),
    }
