r"""Two-stage selection of each N's setting: chosen on a coarse pass, measured on a fresh
fine one (``--selection two-stage``).

The stage that chooses and the stage that measures see different random numbers, so the
luck of the choice does not enter the lifetime (sample splitting: the maximum of many noisy
estimates is biased upward, :mod:`.selection`), and the fine pass spends its synapses on
the few settings that matter:

1. **Coarse pass.** The model's whole grid on ``coarse_synapses`` synapses (perceptron
   writes: a quarter of the perceptrons, at least 4), a quarter of the memories followed:
   each N's ``candidates`` settings with the longest lifetimes there.
2. **Widening.** Where the coarse pass's best setting at some N sits on the first or last
   value of an axis that can go further (:func:`widen`), the axis gains the next value
   beyond it, spaced as the axis is, and the new settings are simulated on the coarse pass
   too, up to ``rounds`` times. An edge still binding after that is reported (``edges``).
   Widening is decided on the coarse pass alone, which the fine pass does not see.
3. **Fine pass.** The candidates' chains with the candidates' writes, on a fresh simulation
   of the run's synapses and memories; each N chooses among its own candidates by
   cross-fitting (one half of the groups chooses, the other measures, and the other way
   round), so that the choice among the few is not credited with its luck either.

The bootstrap resamples the fine pass's groups within their halves and redoes the choice
among the candidates; the candidates are held fixed, so an interval is conditional on the
coarse pass's choice.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from .estimate import Grid, Part, Run, Stages, simulate_part, simulations
from .selection import lifetimes

__all__ = ["AXES", "LIMITS", "axes_of", "widen", "candidates", "fine_bound", "coarse_run", "two_stage"]

AXES = ("n", "alpha", "beta", "write")
# How far an axis may be widened: n within the C library's 2..32 levels; alpha down to a
# sixteenth of a step; a write at most the whole range [-1, 1] (a binary synapse's q = 1).
LIMITS = {"n": (2, 32), "alpha": (1 / 16, np.inf), "beta": (0.0, np.inf), "write": (0.0, 2.0)}
COARSE_SEED = 1_000_003  # the coarse pass's seeds lie this far from the fine pass's
ROUND_SEED = 77_777  # and each widening round's this far from the one before


def axes_of(grid: Grid) -> dict[str, list[float]]:
    """The grid's values along each axis, sorted."""
    return {
        "n": sorted({c[0] for c in grid.chains}),
        "alpha": sorted({c[1] for c in grid.chains}),
        "beta": sorted({c[2] for c in grid.chains}),
        "write": sorted(set(grid.writes)),
    }


def _beyond(axis: str, values: list[float], last: bool) -> float | None:
    """The next value past the first or ``last`` one, spaced as the two nearest are
    (n arithmetically, the others geometrically), or None where there is none within
    :data:`LIMITS` (or the axis has one value: nothing says how far to go)."""
    if len(values) < 2:
        return None
    a, b = (values[-2], values[-1]) if last else (values[1], values[0])
    value = b + (b - a) if axis == "n" else b * (b / a)
    lo, hi = LIMITS[axis]
    return value if lo <= value <= hi and (lo > 0 or value > 0) else None


def widen(grid: Grid, chosen: list) -> tuple[Grid, list[str]]:
    """The grid with each axis on whose first or last value one of the ``chosen``
    settings ((n, alpha, beta), write, values) sits extended by the next value beyond
    (chains kept to alpha <= beta), and what was added (e.g. ``"beta 40000"``)."""
    axes = axes_of(grid)
    added = []
    for chain, write, _ in chosen:
        value = dict(zip(AXES, (*chain, write), strict=True))
        for axis in AXES:
            options = axes[axis]
            for last, end in ((False, options[0]), (True, options[-1])):
                nxt = _beyond(axis, options, last) if len(set(options)) > 1 and value[axis] == end else None
                if nxt is not None and nxt not in options:
                    options.append(nxt)
                    options.sort()
                    added.append(f"{axis} {nxt:g}")
    if not added:
        return grid, []
    chains = grid.chains
    if len(grid.chains) > 1:  # a chain grid: every (n, alpha, beta) of the axes, alpha <= beta
        product = itertools.product(axes["n"], axes["alpha"], axes["beta"])
        chains = tuple(sorted((int(n), a, b) for n, a, b in product if a <= b))
    return Grid(chains, tuple(axes["write"]), grid.levels, grid.ranged), added


def candidates(part: Part, ns: np.ndarray, ages: np.ndarray, k: int) -> np.ndarray:
    """Each of the part's N's ``k`` settings with the longest lifetimes on every group
    (a cut-off lifetime counts as the longest): ``(N, k)`` indices into its settings."""
    lives = lifetimes(part.signal.mean(0), part.power, ages, ns[part.answers])
    return np.argsort(-np.where(np.isinf(lives), np.finfo(float).max, lives), axis=1, kind="stable")[:, :k]


def _grown(part: Part, extra: Part) -> Part:
    """A part with the settings of ``extra`` (the same N, other settings) appended."""
    return Part(
        np.concatenate([part.signal, extra.signal], 1),
        np.concatenate([part.power, extra.power]),
        part.settings + extra.settings,
        part.answers,
        max(part.burn_in, extra.burn_in),
    )


def _new_settings(old: Grid, wider: Grid) -> list[Grid]:
    """The grids of the settings ``wider`` has and ``old`` has not: the new chains with
    every write, the old chains with the new writes."""
    chains = tuple(c for c in wider.chains if c not in set(old.chains))
    writes = tuple(w for w in wider.writes if w not in set(old.writes))
    out = [Grid(chains, wider.writes, old.levels, old.ranged)] if chains else []
    return out + ([Grid(old.chains, writes, old.levels, old.ranged)] if writes else [])


def _coarse(grid: Grid, ns: np.ndarray, run: Run, values: list, rounds: int) -> tuple[list, list, list]:
    """The coarse pass with its widening rounds: its parts, each part's (widened) grid,
    and what was added."""
    parts = simulations(grid, ns, run, values)
    grids, added = [grid] * len(parts), []
    for r in range(1, rounds + 1):
        grown = False
        for i, part in enumerate(parts):
            best = candidates(part, ns, run.ages, 1)[:, 0]
            wider, new = widen(grids[i], [part.settings[j] for j in best])
            if not new:
                continue
            for k, g in enumerate(_new_settings(grids[i], wider)):
                seed = run.seed + ROUND_SEED * r + 31 * i + 7 * k
                extra = simulate_part(g, ns, dataclasses.replace(run, seed=seed), values, part.answers)
                parts[i] = _grown(parts[i], extra)
            grids[i], grown = wider, True
            added += [f"{a} (round {r})" for a in new]
        if not grown:
            break
    return parts, grids, added


def fine_bound(grid: Grid, ns: np.ndarray, stages: Stages) -> Grid:
    """The largest grid a fine pass of ``grid`` can simulate (for the memory check made
    before any work): each N's candidates are at most as many chains, the longest, and as
    many writes as there are candidates in all."""
    most = stages.candidates * len(ns)
    chains = sorted(grid.chains, key=lambda c: c[0], reverse=True)[:most]
    return Grid(tuple(chains), tuple(grid.writes[:most]), grid.levels, grid.ranged)


def coarse_run(run: Run) -> Run:
    """The coarse pass's run: a quarter of the memories, its own seeds, and with random
    writes ``coarse_synapses`` synapses a setting; with perceptron writes, whose
    perceptrons have N synapses each, a quarter of the perceptrons (at least 4)."""
    fewer = {"synapses": run.stages.coarse_synapses}
    if run.writes == "perceptron":
        fewer = {"groups": min(run.groups, max(4, run.groups // 4))}
    return dataclasses.replace(run, steps=max(run.steps // 4, 1), seed=run.seed + COARSE_SEED, **fewer)


def two_stage(grid: Grid, ns: np.ndarray, run: Run, values: list) -> tuple[list[Part], list[Grid], list[str]]:
    """The fine pass's parts, each with its N's candidates marked (``allowed``), the
    coarse pass's grid of each part after widening, and the values widening added; the
    run's :class:`.estimate.Stages` as in the module's text."""
    stages = run.stages
    coarse, grids, added = _coarse(grid, ns, coarse_run(run), values, stages.widen)
    fine = []
    for i, part in enumerate(coarse):
        chosen = candidates(part, ns, run.ages, stages.candidates)
        picked = [part.settings[j] for j in np.unique(chosen)]
        chains, writes = sorted({p[0] for p in picked}), sorted({p[1] for p in picked})
        g = Grid(tuple(chains), tuple(writes), grids[i].levels, grids[i].ranged)
        fine_run = dataclasses.replace(run, seed=run.seed + 31 * i)
        measured = simulate_part(g, ns, fine_run, values, part.answers)
        wanted = [{part.settings[j][:2] for j in row} for row in chosen]
        measured.allowed = np.array([[s[:2] in w for s in measured.settings] for w in wanted])
        fine.append(measured)
    return fine, grids, added
