"""Measures of one run's memory, from the accuracy matrix and the test curves it
records: how well each task was learned, how much of it was forgotten by the end, and
how quickly a task that comes back is learned again."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["learning_and_forgetting", "relearning"]


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
