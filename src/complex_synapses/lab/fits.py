r"""Lifetimes and power laws from memory-signal curves: where an SNR falls below 1,
the exponent of lifetime against N with its bootstrap interval, and local slopes.

The bootstrap resamples the groups of synapses (the independent units of a Monte
Carlo run) with replacement and redoes everything downstream in each resample,
including the choice of each N's best setting, so that the interval carries the
selection's noise too; intervals are percentile intervals, and basic (reverse-percentile)
ones beside them where the estimate is given: the right ones where the estimate is
biased, as an in-sample choice of the best of many settings is (:mod:`.selection`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np

__all__ = ["crossing", "crossings", "fit_exponent", "local_slopes", "bootstrap"]

BOOTSTRAP = 200  # resamples
LEVEL = 0.95


def crossing(ages: np.ndarray, snr: np.ndarray) -> float:
    """The age at which ``snr`` first falls below 1, linear between the sampled ages;
    0 where it starts below 1, inf where it never does within the ages."""
    return float(crossings(ages, np.asarray(snr, dtype=float)))


def crossings(ages: np.ndarray, snr: np.ndarray) -> np.ndarray:
    """:func:`crossing` along the last axis of ``snr`` (..., ages), for every row."""
    below = snr < 1
    k = np.argmax(below, -1)
    never = ~below.any(-1)
    prev = np.maximum(k - 1, 0)
    s0 = np.take_along_axis(snr, prev[..., None], -1)[..., 0]
    s1 = np.take_along_axis(snr, k[..., None], -1)[..., 0]
    a0, a1 = ages[prev], ages[k]
    with np.errstate(divide="ignore", invalid="ignore"):
        out = a0 + (a1 - a0) * (s0 - 1) / (s0 - s1)
    out = np.where(k == 0, 0.0, out)
    return np.where(never, np.inf, out)


def _usable(ns: np.ndarray, lifetimes: np.ndarray) -> np.ndarray:
    return np.isfinite(lifetimes) & (lifetimes > 0)


def fit_exponent(ns: np.ndarray, lifetimes: np.ndarray) -> tuple[float, float]:
    """Slope of log lifetime against log N (least squares over finite, positive
    lifetimes) and its standard error (nan with fewer than 3 such points)."""
    ok = _usable(ns, lifetimes)
    if ok.sum() < 3:
        return float("nan"), float("nan")
    coef, cov = np.polyfit(np.log(ns[ok]), np.log(lifetimes[ok]), 1, cov=True)
    return float(coef[0]), float(np.sqrt(cov[0, 0]))


def local_slopes(ns: np.ndarray, lifetimes: np.ndarray) -> np.ndarray:
    """The slope of log lifetime against log N between neighbouring N (nan where either
    lifetime is cut off or 0)."""
    logs = np.where(_usable(ns, lifetimes), np.log(np.where(lifetimes > 0, lifetimes, 1.0)), np.nan)
    return np.diff(logs) / np.diff(np.log(ns))


def _interval(values: np.ndarray) -> list[float]:
    """The percentile interval of ``values`` along axis 0 (nan where fewer than half are
    finite)."""
    tail = (1 - LEVEL) / 2 * 100
    finite = np.isfinite(values)
    with warnings.catch_warnings():  # a column of nan (every resample cut off) is nan, said below
        warnings.simplefilter("ignore", RuntimeWarning)
        lo = np.nanpercentile(np.where(finite, values, np.nan), tail, axis=0)
        hi = np.nanpercentile(np.where(finite, values, np.nan), 100 - tail, axis=0)
    enough = finite.mean(0) >= 0.5
    return np.where(enough, lo, np.nan).tolist(), np.where(enough, hi, np.nan).tolist()


def _draw_all(rng: np.random.Generator, g: int) -> np.ndarray:
    return rng.integers(0, g, g)


def _basic(point: float | np.ndarray, lo, hi) -> tuple[list, list]:
    """The basic (reverse-percentile) interval from a percentile one: 2 x the estimate
    less each bound, so that a bias of the resamples about the estimate is turned back
    on the estimate instead of added to it."""
    point = np.asarray(point, dtype=float)
    return (2 * point - np.asarray(hi, dtype=float)).tolist(), (
        2 * point - np.asarray(lo, dtype=float)
    ).tolist()


def bootstrap(
    groups: list[int],
    best: Callable[[list[np.ndarray]], np.ndarray],
    ns: np.ndarray,
    seed: int,
    draw: Callable[[np.random.Generator, int], np.ndarray] = _draw_all,
    point: np.ndarray | None = None,
) -> dict:
    """Resample the groups of each of the simulations (``groups[k]`` groups in the
    k-th) ``BOOTSTRAP`` times (``draw(rng, g)``: the indices of one resample, all
    groups with replacement by default); ``best(indices)`` gives the lifetime at every N
    from them. Returns the lifetimes' standard errors, the exponent's interval and the
    local slopes' intervals, keyed as in a capacity result; with ``point`` (the
    lifetimes from every group) also their basic intervals (``exponent_ci_basic``,
    ``local_slopes_ci_basic``)."""
    rng = np.random.default_rng(seed)
    lives, exps, slopes = [], [], []
    for _ in range(BOOTSTRAP):
        life = best([draw(rng, g) for g in groups])
        lives.append(life)
        exps.append(fit_exponent(ns, life)[0])
        slopes.append(local_slopes(ns, life))
    lives = np.array(lives)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        se = np.nanstd(np.where(np.isfinite(lives), lives, np.nan), axis=0)
    se = np.where(np.all(lives == lives[:1], axis=0), 0.0, se)  # no spread (exact curves), not rounding's
    (lo,), (hi,) = _interval(np.array(exps)[:, None])
    slope_lo, slope_hi = _interval(np.array(slopes))
    out = {
        "se": [0.0 if math.isnan(s) else float(s) for s in se],
        "exponent_ci": [lo, hi],
        "local_slopes_ci": [list(p) for p in zip(slope_lo, slope_hi, strict=True)],
    }
    if point is not None:
        (b_lo,), (b_hi,) = _basic([fit_exponent(ns, point)[0]], [lo], [hi])
        s_lo, s_hi = _basic(local_slopes(ns, point), slope_lo, slope_hi)
        out["exponent_ci_basic"] = [b_lo, b_hi]
        out["local_slopes_ci_basic"] = [list(p) for p in zip(s_lo, s_hi, strict=True)]
    return out
