"""Measures of one run's memory, from the accuracy matrix and the test curves it
records: how well each task was learned, how much of it was forgotten by the end (in the
field's three definitions), how quickly a task that comes back is learned again, and
each task's accuracy against its age, the points of a retention curve.

With R[i, j] the accuracy on task j after training task i (T tasks, 0-based here):

- learning accuracy: mean_j R[j, j];
- ``forgetting``: mean_{j < T-1} (R[j, j] - R[T-1, j]), the negative of backward transfer,
  which is also Avalanche's ``StreamForgetting`` at the end of a stream;
- ``bwt`` (backward transfer, Lopez-Paz & Ranzato 2017): mean_{j < T-1} (R[T-1, j] - R[j, j]);
- ``max_forgetting`` (Chaudhry et al. 2018, as Mammoth computes it): mean_{j < T-1}
  (max_{i >= j} R[i, j] - R[T-1, j]), forgetting from each task's best, never below 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["learning_and_forgetting", "transfer", "relearning", "retention_points"]


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


def transfer(matrix: list[list[float]]) -> dict[str, float]:
    """``bwt`` and ``max_forgetting`` of the accuracy matrix (see the module docstring;
    over R rounds, from each task's first training to the end). Empty for another shape,
    or for one task."""
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.shape[1] < 2 or m.shape[0] < m.shape[1] or m.shape[0] % m.shape[1]:
        return {}
    n = m.shape[1]
    diag = np.diagonal(m[:n])[:-1]
    final = m[-1, :-1]
    best = np.array([m[j:, j].max() for j in range(n - 1)])
    return {"bwt": float((final - diag).mean()), "max_forgetting": float((best - final).mean())}


def retention_points(
    eval_iters: list[int], curves: list[list[float]], iters: int
) -> list[tuple[int, int, float]]:
    """Each task's test accuracy against its age, for a stream of tasks trained once each
    in order (``iters`` iterations a task): ``(task, age, accuracy)`` for every evaluation
    after the task's training ended, its age the iterations since then (> 0). ``curves[j]``:
    task j's accuracy at ``eval_iters``."""
    out = []
    for j, accuracy in enumerate(curves):
        end = (j + 1) * iters
        out += [(j, it - end, float(a)) for it, a in zip(eval_iters, accuracy) if it > end]
    return out


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
