r"""Retention curves: how a network's accuracy on a task fades with the task's age.

Each run gives points (task, age, accuracy) (:func:`..run.metrics.retention_points`);
pooled over tasks (and seeds), the accuracy above chance, :math:`e = a - a_0`, is fitted
two ways, by least squares on :math:`\log e`:

.. math::

    \text{power law:}\quad \log e = c - b \log t, \qquad
    \text{exponential:}\quad \log e = c - t / \tau,

with :math:`t` the age in iterations. A synapse model that forgets as a power law (the
Benna–Fusi chain, :math:`b = 1/2` for one synapse's memory trace) shows a straight line
in the first form; a simple synapse's exponential decay in the second. Which fits better
is judged on held-out ages: both forms are fitted on the younger half of the ages and
scored (root mean square error of :math:`\log e`) on the older half, an extrapolation the
wrong form gets wrong. The power law's exponent has a bootstrap interval over tasks
(tasks resampled with replacement, all their points together, since a task's points
share its noise). Points at or below chance carry no information about the rate and are
left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["RetentionFit", "fit_retention"]


@dataclass(frozen=True)
class RetentionFit:
    """The two fits of a retention curve: ``exponent`` b of the power law (its bootstrap
    interval ``exponent_ci``, 95%), ``timescale`` tau of the exponential (iterations),
    each form's held-out error (RMSE of log excess accuracy on the older half of the ages),
    ``better`` ("power" or "exponential": the smaller held-out error), and the number
    of points and tasks used."""

    exponent: float
    exponent_ci: tuple[float, float]
    timescale: float
    held_out_power: float
    held_out_exponential: float
    better: str
    n_points: int
    n_tasks: int


def _fit(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and intercept of y on x."""
    slope, intercept = np.polyfit(x, y, 1)
    return float(slope), float(intercept)


def _held_out(x: np.ndarray, y: np.ndarray, young: np.ndarray) -> float:
    slope, intercept = _fit(x[young], y[young])
    return float(np.sqrt(np.mean((y[~young] - (intercept + slope * x[~young])) ** 2)))


def fit_retention(
    tasks: np.ndarray,
    ages: np.ndarray,
    accuracy: np.ndarray,
    chance: float,
    n_boot: int = 2000,
    seed: int = 0,
) -> RetentionFit:
    """Fit the pooled points ``(tasks[i], ages[i], accuracy[i])`` (ages > 0, accuracy as a
    fraction) above ``chance`` (see the module docstring). ValueError where fewer than 4
    points above chance or fewer than 2 distinct ages remain."""
    tasks, ages, accuracy = (np.asarray(v) for v in (tasks, ages, accuracy))
    if not (len(tasks) == len(ages) == len(accuracy)):
        raise ValueError("tasks, ages and accuracy must have the same length")
    keep = (accuracy > chance) & (ages > 0)
    tasks, ages, excess = tasks[keep], ages[keep].astype(float), accuracy[keep] - chance
    if len(ages) < 4 or len(np.unique(ages)) < 2:
        raise ValueError(f"a retention fit needs 4 points above chance at 2 ages or more, got {len(ages)}")
    y = np.log(excess)
    slope, _ = _fit(np.log(ages), y)
    decay, _ = _fit(ages, y)
    young = ages <= np.median(ages)
    if young.all() or not young.any():
        young = ages < ages.max()
    power_error = _held_out(np.log(ages), y, young)
    exponential_error = _held_out(ages, y, young)
    rng = np.random.default_rng(seed)
    labels = np.unique(tasks)
    draws = []
    for _ in range(n_boot):
        chosen = np.concatenate([np.flatnonzero(tasks == t) for t in rng.choice(labels, len(labels))])
        if len(np.unique(ages[chosen])) >= 2:
            draws.append(-_fit(np.log(ages[chosen]), y[chosen])[0])
    low, high = np.percentile(draws, [2.5, 97.5]) if draws else (np.nan, np.nan)
    return RetentionFit(
        exponent=-slope,
        exponent_ci=(float(low), float(high)),
        timescale=-1.0 / decay if decay < 0 else float("inf"),
        held_out_power=power_error,
        held_out_exponential=exponential_error,
        better="power" if power_error <= exponential_error else "exponential",
        n_points=len(ages),
        n_tasks=len(labels),
    )
