r"""The Monte Carlo models' lifetimes in a capacity study (:mod:`.capacity_study`): a
model's grid simulated in batches (:mod:`.batches`), each N's best setting chosen and
credited from the groups' signal curves (:mod:`.selection`), the bootstrap of the choice
and the fit (:mod:`.fits`), and the grid's edges where a choice sits on one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import markov
from .batches import Batch, batch_chains, run_batches
from .fits import bootstrap
from .selection import THRESHOLDS, initial_snr, resample
from .selection import best as choose_best
from .writes import grid_of

__all__ = ["Grid", "Stages", "Run", "Part", "plans", "simulations", "simulate_part", "evaluate"]
__all__ += ["monte_carlo", "edges", "ESTIMATORS", "STRIDE", "COUPLED_STRIDE"]

STRIDE = 4  # one memory in STRIDE followed: a quarter of the cost, the error set by the groups
# The coupled estimator's: its copies cost work, and the differences of memories written a
# few steps apart on one synapse are correlated, so following more of them gains little.
COUPLED_STRIDE = 16
ESTIMATORS = ("plain", "coupled", "auto")  # auto: exact where lab.markov has the chain, else coupled
FLOAT32_VALUES = 2**20  # above this many values a level is kept in float64


@dataclass(frozen=True)
class Grid:
    """The settings a Monte Carlo model is tuned over: chains (n, alpha, beta) and
    write strengths; ``levels`` None for continuous levels; ``ranged``: each level on
    its own range (:func:`.writes.level_ranges`), else all on [-1, 1]."""

    chains: tuple[tuple[int, float, float], ...]
    writes: tuple[float, ...]
    levels: int | None
    ranged: bool = False


@dataclass(frozen=True)
class Stages:
    """The two-stage selection's settings (:mod:`.two_stage`): each N's ``candidates``
    kept from a coarse pass of ``coarse_synapses`` synapses a setting, after up to
    ``widen`` rounds of widening a binding grid."""

    candidates: int = 3
    coarse_synapses: int = 256
    widen: int = 2


@dataclass
class Run:
    """What a capacity study holds fixed: the ages followed, synapses, memories and
    groups per setting, the kind of writes, the seed and the burn-in's cap; how each N's
    setting is chosen, and the worker processes."""

    ages: np.ndarray
    synapses: int
    steps: int
    groups: int
    writes: str
    seed: int
    max_burn_in: int | None
    tick: Callable[[int], None] | None = None
    selection: str = "in-sample"
    jobs: int = 1
    stages: Stages = field(default_factory=lambda: Stages())
    cache: Path | None = None  # where each batch's curves are kept (:func:`.batches.run_batches`)
    reuse: bool = True  # whether kept curves are taken instead of running a batch again
    # the signal's estimator, one of ESTIMATORS: each batch's is resolved by _estimator
    estimator: str = "plain"

    def synapses_per_setting(self, ns: np.ndarray) -> int:
        """Synapses a setting simulates: ``synapses`` with random writes; with perceptron
        writes ``groups`` perceptrons of the largest N's synapses."""
        return self.synapses if self.writes == "random" else int(max(ns)) * self.groups


@dataclass
class Part:
    """One simulation: ``signal`` (groups, settings, ages), ``power`` (settings,), its
    ``settings`` ((n, alpha, beta), write, values), the indices of the N it answers, and
    where only some settings may be chosen at an N, which (``allowed``, else all)."""

    signal: np.ndarray
    power: np.ndarray
    settings: list
    answers: list[int]
    burn_in: int
    allowed: np.ndarray | None = None  # (answers, settings): the settings each N chooses among


def _plan(grid: Grid, levels: int | None, run: Run, per_group: int | None, seed: int) -> list[Batch]:
    """The batches of a grid on ``levels`` values (:func:`.batches.batch_chains`): chains batched
    by the burn-in they need. ``per_group``: synapses of one perceptron (perceptron
    writes)."""
    synapses = run.synapses if per_group is None else per_group * run.groups
    dtype = "float64" if levels is not None and levels > FLOAT32_VALUES else "float32"
    estimator = _estimator(grid, levels, run.estimator)
    return batch_chains(
        grid.chains,
        grid.writes,
        levels,
        run.ages,
        synapses,
        run.steps,
        run.groups,
        seed,
        0 if estimator == "exact" else run.max_burn_in,
        run.writes,
        COUPLED_STRIDE if estimator == "coupled" else STRIDE,
        dtype,
        grid.ranged,
        estimator,
    )


def _estimator(grid: Grid, levels: int | None, asked: str) -> str:
    """A batch's estimator: ``auto`` is exact for one-level synapses whose chain
    :mod:`.markov` has (no Monte Carlo, no burn-in), coupled for the rest."""
    if asked != "auto":
        return asked
    one_level = all(c[0] == 1 for c in grid.chains)
    return "exact" if one_level and markov.exact(grid_of(levels)) else "coupled"


def _assemble(batches: list[Batch], curves: list, groups: int, answers: list[int]) -> Part:
    """A simulation's signal, power and settings from its batches' curves."""
    signal = np.concatenate([c.signal.reshape(groups, -1, c.signal.shape[-1]) for c in curves], 1)
    power = np.concatenate([c.power.reshape(-1) for c in curves])
    settings = [(chain, w, b.levels) for b in batches for chain in b.chains for w in b.writes]
    return Part(signal, power, settings, answers, max(b.burn for b in batches))


def plans(grid: Grid, ns: np.ndarray, run: Run, values: list) -> list[tuple[list[Batch], list[int]]]:
    """The batches of each of a model's simulations (see :func:`simulations`) and the N
    each answers."""
    out = []
    if run.writes == "random":
        for k, v in enumerate(dict.fromkeys(values)):
            answers = [j for j in range(len(ns)) if values[j] == v]
            out.append((_plan(grid, v, run, None, run.seed + 31 * k), answers))
    else:
        for j, n in enumerate(ns):
            out.append((_plan(grid, values[j], run, int(n), run.seed + 104729 * j), [j]))
    return out


def simulations(grid: Grid, ns: np.ndarray, run: Run, values: list[int | None]) -> list[Part]:
    """The simulations of a model: with random writes one per number of values (a
    model has one, simple-bits one per chain length), answering every N that uses it;
    with perceptron writes one per N. ``values[j]``: the values per level at N j. Every
    batch of every simulation runs in one pool of ``run.jobs`` workers."""
    planned = plans(grid, ns, run, values)
    every = [b for batches, _ in planned for b in batches]
    curves = run_batches(every, run.jobs, run.tick, run.cache, run.reuse)
    parts, start = [], 0
    for batches, answers in planned:
        parts.append(_assemble(batches, curves[start : start + len(batches)], run.groups, answers))
        start += len(batches)
    return parts


def simulate_part(grid: Grid, ns: np.ndarray, run: Run, values: list, answers: list[int]) -> Part:
    """One simulation of ``grid`` (seeded ``run.seed``) for the N of ``answers``, which
    share their values per level (with perceptron writes: one N)."""
    j = answers[0]
    per_group = None if run.writes == "random" else int(ns[j])
    batches = _plan(grid, values[j], run, per_group, run.seed)
    curves = run_batches(batches, run.jobs, run.tick, run.cache, run.reuse)
    return _assemble(batches, curves, run.groups, list(answers))


def evaluate(
    parts: list[Part], ns: np.ndarray, ages: np.ndarray, selection: str, draws=None, threshold: float = 1.0
) -> tuple[np.ndarray, list, np.ndarray]:
    """Best lifetime (SNR above ``threshold``) and setting at every N, from every group or
    from the groups drawn, chosen and credited by ``selection`` (:mod:`.selection`); and
    each N's SNR at age 0 for the setting chosen: what the chain buys at the start of a
    memory's life, beside how long it lasts."""
    life, chosen, snr0 = np.zeros(len(ns)), [None] * len(ns), np.zeros(len(ns))
    for k, part in enumerate(parts):
        signal = part.signal if draws is None else part.signal[draws[k]]
        here = ns[part.answers]
        best, index = choose_best(signal, part.power, ages, here, selection, threshold, part.allowed)
        snr0[part.answers] = initial_snr(signal, part.power, ns[part.answers], index)
        for i, j in enumerate(part.answers):
            life[j], chosen[j] = best[i], part.settings[index[i]]
    return life, chosen, snr0


def monte_carlo(parts: list[Part], grids: list[Grid], ns: np.ndarray, run: Run, selection: str) -> dict:
    """A Monte Carlo model's result from its simulations ``parts`` (each with the grid it
    ran, ``grids``): each N's lifetime chosen and credited by ``selection``, the
    bootstrap, both thresholds, the initial SNR, bits, and the grid's edges the choices
    sit on."""
    life, chosen, snr0 = evaluate(parts, ns, run.ages, selection)
    out = bootstrap(
        [p.signal.shape[0] for p in parts],
        lambda d: evaluate(parts, ns, run.ages, selection, d)[0],
        ns,
        run.seed,
        draw=lambda rng, g: resample(rng, g, selection),
        point=life,
    )
    out["selection"] = run.selection
    out["lifetime"] = life.tolist()
    # the lifetime at the second threshold, chosen and credited alike (its own best setting)
    out["thresholds"] = list(THRESHOLDS)
    at = {t: life if t == 1 else evaluate(parts, ns, run.ages, selection, threshold=t)[0] for t in THRESHOLDS}
    out["lifetime_at"] = {f"{t:g}": lives.tolist() for t, lives in at.items()}
    out["initial_snr"] = snr0.tolist()
    out["best"] = [
        {"n_beakers": c[0], "alpha": c[1], "beta": c[2], "write": w, "values": v} for c, w, v in chosen
    ]
    out["bits"] = [c[0] * (32.0 if v is None else math.log2(v)) for c, _, v in chosen]
    out["edges"] = [[] for _ in ns]
    for part, grid in zip(parts, grids, strict=True):
        for j, here in zip(part.answers, edges(grid, [chosen[j] for j in part.answers]), strict=True):
            out["edges"][j] = here
    out["cut_off"] = [float(n) for n, x in zip(ns, life, strict=True) if math.isinf(x)]
    out["burn_in"] = max(p.burn_in for p in parts)
    out["levels"] = grids[0].levels
    out["grid"] = {"chains": [list(c) for c in grids[0].chains], "writes": list(grids[0].writes)}
    return out


def edges(grid: Grid, chosen: list) -> list[list[str]]:
    """For each N, the grid's axes on whose first or last value the best setting sits
    (axes of one value left out): e.g. ``["beta 10000 (last)"]``."""
    axes = {
        "n": [c[0] for c in grid.chains],
        "alpha": [c[1] for c in grid.chains],
        "beta": [c[2] for c in grid.chains],
        "write": list(grid.writes),
    }
    out = []
    for chain, write, _ in chosen:
        value = {"n": chain[0], "alpha": chain[1], "beta": chain[2], "write": write}
        here = []
        for axis, options in axes.items():
            if len(set(options)) > 1 and value[axis] in (min(options), max(options)):
                here.append(f"{axis} {value[axis]:g} ({'last' if value[axis] == max(options) else 'first'})")
        out.append(here)
    return out
