r"""Reading a stability-plasticity frontier: a method's gain over the plain network at
matched learning accuracy, its test, and the power of that test.

The reference is the plain network's frontier in the cell: `none`'s non-dominated
settings (its learning rates), sorted by learning accuracy :math:`L` and joined by
straight lines; flat beyond its first and last points. A setting with learning accuracy
:math:`L` and retention :math:`R` (the old tasks' final accuracy, a fraction) gains

.. math::

    g = R - \left[w R_{lo} + (1 - w) R_{hi}\right], \qquad
    w = \frac{L_{hi} - L}{L_{hi} - L_{lo}},

over the reference points lo and hi either side of :math:`L` (means over seeds). Every
setting of a cell runs on the same seeds, which fix the task permutations, the data order
and the initial weights, so the gain is taken seed by seed,
:math:`g_s = R_s - [w R_{lo,s} + (1 - w) R_{hi,s}]`, and tested with a one-sample t over
seeds. The weight :math:`w` comes from the means and is held fixed: the noise of the
learning accuracies themselves is not carried (small beside the retention's, and stated).

A **claim point** is chosen by a rule fixed before any test: among a method's settings
whose learning accuracy lies inside the reference's range (any setting where none does),
the one with the largest gain on the grid's seeds. It is then run on fresh seeds and
tested there: superiority (:math:`H_0: g \le 0`) and, for a "no gain beyond X" claim,
non-superiority (:math:`H_0: g \ge X`), each one-sided, Holm within the cell's family.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["non_dominated", "Gain", "OneSided", "gains", "claim_point", "one_sided", "detectable", "verdict"]


@dataclass(frozen=True)
class Gain:
    """One setting's gain over the reference (fractions of accuracy): ``reference`` is the
    plain network's interpolated retention at this ``learning``, ``gain`` its mean over
    seeds with ``gain_sem``, ``per_seed`` the seeds' gains in ``seeds`` order. ``inside``
    is False where the learning accuracy lies beyond the reference's range (its end point
    is used). ``lo``/``hi`` are the reference settings' args, ``weight`` the w above."""

    cell: str
    method: str
    args: str
    learning: float
    retention: float
    reference: float
    gain: float
    gain_sem: float
    per_seed: tuple[float, ...]
    seeds: tuple[int, ...]
    inside: bool
    lo: str
    hi: str
    weight: float


def non_dominated(points: list[tuple[float, float]]) -> set[int]:
    """The indices of the points no other point beats in both coordinates (higher is
    better in each; a point equal in both to another is kept)."""
    out = set()
    for i, (x, y) in enumerate(points):
        beaten = any((a >= x and b >= y) and (a > x or b > y) for j, (a, b) in enumerate(points) if j != i)
        if not beaten:
            out.add(i)
    return out


def _per_seed(row: dict[str, Any]) -> dict[int, float]:
    seeds = [int(s) for s in str(row["seeds"]).split()]
    values = [float(v) for v in str(row["per_seed_retention"]).split()]
    return dict(zip(seeds, values))


def _reference(none: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The plain network's non-dominated settings, by learning accuracy."""
    front = non_dominated([(float(r["learning"]), float(r["retention"])) for r in none])
    return sorted((none[i] for i in front), key=lambda r: float(r["learning"]))


def _bracket(ref: list[dict[str, Any]], learning: float) -> tuple[dict, dict, float, bool]:
    """The reference points either side of ``learning`` and the weight of the lower one."""
    xs = [float(r["learning"]) for r in ref]
    if learning <= xs[0]:
        return ref[0], ref[0], 1.0, learning == xs[0]
    if learning >= xs[-1]:
        return ref[-1], ref[-1], 1.0, learning == xs[-1]
    k = int(np.searchsorted(xs, learning))
    lo, hi = ref[k - 1], ref[k]
    return lo, hi, float((xs[k] - learning) / (xs[k] - xs[k - 1])), True


def gains(rows: list[dict[str, Any]]) -> list[Gain]:
    """The gain of every setting of every method but `none` over `none`'s frontier in its
    cell (rows as :func:`..designs.frontier.frontier_rows` or the frontier CSV gives them).
    ValueError where a cell has no `none` rows or a setting's seeds are not the reference's."""
    out = []
    for cell in dict.fromkeys(r["cell"] for r in rows):
        mine = [r for r in rows if r["cell"] == cell]
        none = [r for r in mine if r["method"] == "none"]
        if not none:
            raise ValueError(f"cell {cell!r} has no `none` settings: the frontier has no reference")
        ref = _reference(none)
        for r in mine:
            if r["method"] == "none":
                continue
            learning = float(r["learning"])
            lo, hi, w, inside = _bracket(ref, learning)
            own, at_lo, at_hi = _per_seed(r), _per_seed(lo), _per_seed(hi)
            if not set(own) <= set(at_lo) & set(at_hi):
                raise ValueError(
                    f"{cell}/{r['method']}: seeds {sorted(own)} are not all among the reference's "
                    f"{sorted(set(at_lo) & set(at_hi))}; gains are taken seed by seed"
                )
            seeds = tuple(sorted(own))
            per_seed = tuple(own[s] - (w * at_lo[s] + (1 - w) * at_hi[s]) for s in seeds)
            g = np.array(per_seed)
            reference = w * float(lo["retention"]) + (1 - w) * float(hi["retention"])
            out.append(
                Gain(
                    cell=cell,
                    method=r["method"],
                    args=r["args"],
                    learning=learning,
                    retention=float(r["retention"]),
                    reference=reference,
                    gain=float(g.mean()),
                    gain_sem=float(g.std(ddof=1) / math.sqrt(len(g))) if len(g) > 1 else math.nan,
                    per_seed=per_seed,
                    seeds=seeds,
                    inside=inside,
                    lo=lo["args"],
                    hi=hi["args"],
                    weight=w,
                )
            )
    return out


def claim_point(candidates: list[Gain]) -> Gain:
    """The registered rule: among one method's settings in one cell, the largest gain
    among those inside the reference's learning range, or among all where none is."""
    if not candidates:
        raise ValueError("no settings to choose a claim point from")
    if len({(g.cell, g.method) for g in candidates}) != 1:
        raise ValueError("a claim point is chosen among one method's settings in one cell")
    inside = [g for g in candidates if g.inside] or candidates
    return max(inside, key=lambda g: g.gain)


@dataclass(frozen=True)
class OneSided:
    """A one-sided one-sample t-test of the per-seed gains: ``p_gain`` for H0: g <= 0
    (the setting helps), ``p_below`` for H0: g >= margin (no gain beyond the margin),
    and the 95% two-sided interval of the gain."""

    gain: float
    sem: float
    n: int
    ci_low: float
    ci_high: float
    p_gain: float
    p_below: float


def one_sided(per_seed: tuple[float, ...] | list[float], margin: float) -> OneSided:
    """The tests above on ``per_seed`` gains, ``margin`` a fraction of accuracy (0.01: one
    point). NaN p-values for fewer than two seeds."""
    from scipy import stats

    g = np.asarray(per_seed, dtype=float)
    n = len(g)
    if n < 2:
        nan = math.nan
        return OneSided(float(g.mean()) if n else nan, nan, n, nan, nan, nan, nan)
    mean, se = float(g.mean()), float(g.std(ddof=1) / math.sqrt(n))
    t = stats.t(n - 1)
    half = float(t.ppf(0.975)) * se
    if se == 0:  # every seed the same: the t-test has no variance; decide by the sign alone
        p_gain, p_below = float(mean <= 0), float(mean >= margin)
    else:
        p_gain = float(t.sf(mean / se))
        p_below = float(t.cdf((mean - margin) / se))
    return OneSided(mean, se, n, mean - half, mean + half, p_gain, p_below)


def detectable(sd: float, n: int, alpha: float, power: float = 0.8) -> float:
    """The smallest gain a one-sided one-sample t-test at level ``alpha`` detects with
    probability ``power`` on ``n`` seeds whose gains have standard deviation ``sd``
    (noncentral t, solved exactly): the power analysis of a registered test."""
    from scipy import optimize, stats

    if n < 2 or not sd > 0:
        return math.nan
    df, crit = n - 1, float(stats.t.ppf(1 - alpha, n - 1))

    def short(delta: float) -> float:
        return float(stats.nct.sf(crit, df, delta * math.sqrt(n) / sd)) - power

    return float(optimize.brentq(short, 1e-12 * sd, 100 * sd))


def verdict(control_works: bool, p_gain: float, p_below: float, alpha: float, margin: float) -> str:
    """A cell's answer for one method from its Holm-adjusted one-sided p-values: "helps"
    where its gain is shown; "no gain beyond X points" where a gain as large as the
    margin is ruled out and the positive control works in the cell; "no working control"
    where it would be ruled out but the control does not work (the cell cannot carry a
    negative claim); "undecided" otherwise."""
    if p_gain < alpha:
        return "helps"
    if p_below < alpha:
        points = f"{100 * margin:g} point{'' if 100 * margin == 1 else 's'}"
        return f"no gain beyond {points}" if control_works else "no working control"
    return "undecided"
