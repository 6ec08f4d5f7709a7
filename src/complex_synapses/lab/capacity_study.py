r"""The paper's capacity result: how long a memory lasts against the number of synapses N.

N synapses store a stream of memories, one per step (:mod:`.writes`: ``random``
patterns, Benna & Fusi's setting, or ``perceptron`` writes, error-driven and dependent
on the synapses' state). A memory's signal at age ``a`` is the per-synapse overlap
:math:`s(a) = E[d_i w_i]`, its noise the spread of the overlap of N synapses with a
random pattern, :math:`\sqrt{E[w^2] / N}`; so

.. math:: \mathrm{SNR}(a) = \sqrt{N}\, s(a) / \sqrt{E[w^2]},

and the lifetime is the age at which the SNR falls below 1. With random writes synapses
are independent, so one curve :math:`s(a)` of a setting gives its lifetime at every N;
with perceptron writes each N is a simulation of its own (``groups`` perceptrons of N
synapses). Each N then takes the best setting of the model's grid, as the theory does.

Models (``MODELS``), all levels in [-1, 1] where bounded:

- ``simple``: the textbook binary synapse: a memory sets it with probability q. Closed
  form :math:`s(a) = q (1-q)^a`, best q about :math:`e / \sqrt{N}`, lifetime about
  :math:`\sqrt{N} / e` (Amit & Fusi 1994; Fusi, Drew & Abbott 2005); also by Monte
  Carlo with the optimizer (one level, 2 values, write 2q), a check of the simulator.
- ``simple-m``: one level on m values, stochastic rounding, write strength tuned.
- ``simple-bits``: one level on :math:`m^n` values, as many bits as the chain of n
  levels on m values that is best at that N (the equal-resources control).
- ``complex``: the chain (n, alpha, beta tuned) with every level on m values.
- ``complex-ranged``: the chain with level k on m values of its own range
  :math:`[-B_k, B_k]`, :math:`B_k = \sigma_k / \sigma_1` the ratio of its stationary
  spread under random writes to the weight's (:func:`.writes.level_ranges`): every level
  spans the same multiple of how far it moves, as in Benna & Fusi, where the variables'
  ranges scale with their capacities; ``complex`` (one grid for all) is kept beside it.
- ``simple-bounded`` / ``complex-bounded``: the same, continuous (no rounding).
- ``simple-unbounded`` / ``complex-unbounded``: unbounded, continuous: the closed forms
  of :mod:`.model` (a decaying synapse with its best beta; chains of n levels).

Fits (:mod:`.fits`): the exponent of lifetime against N by least squares, with a
bootstrap 95% interval over the groups of synapses that redoes the choice of the best
setting at every N in each resample, and the local slopes between neighbouring N. A
lifetime is cut off where some setting's SNR is still above 1 at the oldest age
followed; such an N is left out of the fit and listed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .batches import is_cached
from .capacity_checks import check_estimator, check_memory, check_search, check_study, copy_bytes
from .cost import Estimate
from .cost import estimate as estimate_time
from .estimate import COUPLED_STRIDE, ESTIMATORS, STRIDE, Grid, Run, Stages, monte_carlo, simulations
from .estimate import plans as plans_of
from .fits import fit_exponent, local_slopes
from .memory import BETA_GRID, Synapse, best_lifetime, snr_steady_state
from .selection import THRESHOLDS
from .two_stage import coarse_run, fine_bound, two_stage
from .writes import NO_LEAK, WRITES

__all__ = ["MODELS", "WRITES", "Grid", "default_grids", "binary_lifetime", "capacity_study", "fit_exponent"]
__all__ += ["CHAIN_MODELS"]


MODELS = {
    "simple": "binary synapse, a memory sets it with probability q (q tuned)",
    "simple-m": "one level on m values, write strength tuned",
    "simple-bits": "one level on m^n values: the bits of the best chain at that N (write tuned)",
    "complex": "the chain, every level on m values (n, alpha, beta, write tuned)",
    "complex-ranged": "the chain, level k on m values of its own range, the same multiple of its "
    "stationary spread for every level (n, alpha, beta, write tuned)",
    "simple-bounded": "one continuous level in [-1, 1], write strength tuned",
    "complex-bounded": "the chain, continuous levels in [-1, 1] (n, alpha, beta, write tuned)",
    "simple-unbounded": "unbounded decaying synapse, beta tuned (closed form)",
    "complex-unbounded": "unbounded chain, alpha = 1, n and beta tuned (closed form)",
}
CHAIN_MODELS = ("complex", "complex-ranged", "complex-bounded")  # the models whose grid has chains
DEFAULT_COUNTS = {"random": "100,178,316,562,1000,1778,3162,5623,10000", "perceptron": "32,64,128,256,512"}
DEFAULT_MAX_AGE = {"random": 6000, "perceptron": 1000}


GRIDS = ("stated", "fair")


def default_grids(m: int, writes: str = "random", kind: str = "stated") -> dict[str, Grid]:
    """The grids of the Monte Carlo models, ``kind`` "stated" or "fair".

    Stated (the first studies'). Random writes (N up to 10^4): chains of n in 2, 4, 8, 12
    levels, alpha 1, 4 and 16, beta 30 to 10,000 (6 values, a factor of about 3 apart),
    writes of 1/8 to 4 level spacings; one level: writes of 1/64 to 8 spacings. Perceptron
    writes (N up to 512: each N is a simulation of its own, and lifetimes are short): n in
    2, 4, 8, alpha 1, 4 and 16, beta 10 to 1,000, writes of 1/4 to 2 spacings, one level's
    of 1/8 to 4. A first run with alpha 1 and 4, beta from 100 and n up to 8 found the best
    chains at alpha 4 and beta 100 at most N: the grid's edges, so the grid was widened
    there.

    Fair (the same for both kinds of writes): every model whose write is a step has the
    same 10 writes, 1/64 to 8 of its spacing (2/(m-1); the continuous models that of m
    values); chains of n in 2, 4, 8, 12, 16, alpha 1, 4 and 16, beta from alpha (4^k, 1
    to 16,384). Either way the binary synapse's q: 0.002 to 0.5 (10 values, geometric)."""
    spacing = 2.0 / (m - 1)
    alphas = (1.0, 4.0, 16.0)
    if kind == "fair":
        ns, betas, one, many = (2, 4, 8, 12, 16), tuple(4.0**k for k in range(8)), range(-6, 4), range(-6, 4)
    elif writes == "random":
        ns, betas, one = (2, 4, 8, 12), (30.0, 100.0, 300.0, 1000.0, 3000.0, 10000.0), range(-6, 4)
        many = range(-3, 3)
    else:
        ns, betas, one, many = (2, 4, 8), (10.0, 30.0, 100.0, 300.0, 1000.0), range(-3, 3), range(-2, 2)
    chains = tuple((n, a, b) for n in ns for a in alphas for b in betas if a <= b)
    single = ((1, 1.0, NO_LEAK),)
    one_level = tuple(spacing * 2.0**k for k in one)
    many = tuple(spacing * 2.0**k for k in many)
    return {
        "simple": Grid(single, tuple(2 * q for q in np.geomspace(0.002, 0.5, 10)), 2),
        "simple-m": Grid(single, one_level, m),
        "simple-bits": Grid(single, one_level, m),  # its values: m^n for each n of the chains
        "complex": Grid(chains, many, m),
        "complex-ranged": Grid(chains, many, m, ranged=True),
        "simple-bounded": Grid(single, one_level, None),
        "complex-bounded": Grid(chains, many, None),
    }


def binary_lifetime(n_synapses: float, q: float) -> float:
    """The binary synapse's lifetime in closed form: the age at which
    :math:`\\sqrt{N} q (1-q)^a` falls to 1 (0 where it starts below 1)."""
    start = math.sqrt(n_synapses) * q
    if start <= 1:
        return 0.0
    return math.inf if q >= 1 else math.log(start) / -math.log1p(-q)


def best_binary(n_synapses: float) -> tuple[float, float]:
    """(lifetime, q) of the binary synapse at its best q, searched on a fine grid."""
    qs = np.geomspace(1e-5, 0.99, 2000)
    lives = [binary_lifetime(n_synapses, q) for q in qs]
    i = int(np.argmax(lives))
    return lives[i], float(qs[i])


def _values(name: str, grids: dict[str, Grid], ns: np.ndarray, complex_best: list | None, m: int) -> list:
    """Values per level of a model at each N: simple-bits takes m^n, n the length of
    the chain that is best at that N (the longest of the grid without the complex model)."""
    if name != "simple-bits":
        return [grids[name].levels] * len(ns)
    longest = max(c[0] for c in grids["complex"].chains)
    return [m ** (b["n_beakers"] if complex_best else longest) for b in (complex_best or [None] * len(ns))]


def capacity_study(
    models: list[str],
    ns: np.ndarray,
    levels: int = 16,
    synapses: int = 1024,
    steps: int = 2000,
    groups: int = 16,
    max_age: int | None = None,
    seed: int = 0,
    progress: bool = True,
    max_burn_in: int | None = None,
    writes: str = "random",
    chains: tuple[tuple[int, float, float], ...] | None = None,
    selection: str = "in-sample",
    jobs: int = 1,
    grid: str = "stated",
    stages: Stages | None = None,
    announce: Callable[[Estimate], None] | None = None,
    cache: Path | None = None,
    reuse: bool = True,
    estimator: str = "plain",
) -> dict:
    """Lifetime against N for each of ``models`` (see :data:`MODELS`), each N at its
    best setting, with fitted exponents and their bootstrap intervals; ``{"models":
    {name: {"N", "lifetime", "se", "exponent", "exponent_se", "exponent_ci",
    "local_slopes", "local_slopes_ci", "best", "bits", "edges", "cut_off", ...}}, ...}``.
    ``max_age`` None: ``DEFAULT_MAX_AGE`` of the writes; ``chains``: the chain models'
    (n, alpha, beta) instead of the stated grid's; ``selection``: how each N's best
    setting is chosen and credited (:mod:`.selection`; its result's ``selection``, and
    ``exponent_ci_basic`` beside the percentile ``exponent_ci``); ``jobs``: worker
    processes for the Monte Carlo's batches (:mod:`.batches`; the result is the same
    for any number); ``grid``: the stated grids or the fair ones (:func:`default_grids`);
    ``stages``: the two-stage selection's settings (defaults where None); ``announce``
    is given the study's :class:`.cost.Estimate` before any work (a short batch timed);
    ``cache``: a folder where each batch's curves are kept and from which a study run
    again takes them (``reuse`` False: run anew); ``estimator``: the Monte Carlo's signal
    from the population alone ("plain", :mod:`.writes`) or from coupled copies
    ("coupled", :mod:`.coupled`: the same curves with far less variance at old ages), or
    "auto": the one-level models exact (:mod:`.markov`), the chains coupled (random
    writes for both)."""
    max_age = DEFAULT_MAX_AGE.get(writes, 1) if max_age is None else max_age
    check_study(MODELS, models, ns, levels, synapses, steps, groups, max_age, writes, max_burn_in, selection)
    ages = np.unique(np.concatenate([[0], np.geomspace(1, max_age, 48).astype(int)]))
    run = Run(
        ages,
        synapses,
        steps,
        groups,
        writes,
        seed,
        max_burn_in,
        selection=selection,
        jobs=jobs,
        stages=Stages() if stages is None else stages,
        cache=cache,
        reuse=reuse,
        estimator=estimator,
    )
    grids = _searched(models, ns, levels, grid, chains, run)
    return _study(models, ns, grids, run, levels, max_age, grid, announce, progress)


def _searched(
    models: list[str], ns: np.ndarray, levels: int, grid: str, chains: tuple | None, run: Run
) -> dict[str, Grid]:
    """The models' grids of ``grid`` once the search's settings and the memory they take
    are checked (before any work: one clear line where one is wrong)."""
    writes = run.writes
    check_search(run.jobs, grid, GRIDS, run.selection, run.stages, run.groups if writes == "random" else None)
    check_estimator(run.estimator, ESTIMATORS, writes)
    grids = _grids(levels, writes, grid, chains)
    simulated = [grids[m] for m in models if m in grids]
    passes = [(simulated, run, "", "--synapses")]  # (grids, run, the pass's name, its option)
    if run.selection == "two-stage":  # the whole grid on the coarse pass, the candidates on the fine
        fine = [fine_bound(g, ns, run.stages) for g in simulated]
        passes = [
            (simulated, coarse_run(run), "the coarse pass: ", "--coarse-synapses"),
            (fine, run, "the fine pass: ", "--synapses"),
        ]
    for checked, on, stage, option in passes:
        per = on.synapses_per_setting(ns)
        what, fewer = f"{stage}{option} {per}", option
        if writes == "perceptron":
            what = f"{stage}{on.groups} perceptrons of N = {int(max(ns))} ({per} synapses a setting)"
            fewer = "--groups, smaller --synapse-counts"
        oldest = int(run.ages[-1])
        if run.estimator == "plain":  # probes kept, one byte a synapse each
            probes, copies = oldest // STRIDE + 2, 0
        else:  # coupled copies (auto: the chains' batches), counted as if every grid had them
            probes, copies = 0, copy_bytes(checked, oldest // COUPLED_STRIDE + 2)
        check_memory(checked, per, probes, run.jobs, what, fewer, copies)
    return grids


def _study(
    models: list[str],
    ns: np.ndarray,
    grids: dict[str, Grid],
    run: Run,
    levels: int,
    max_age: int,
    grid: str,
    announce: Callable[[Estimate], None] | None,
    progress: bool = True,
) -> dict:
    """:func:`capacity_study` once its input is checked: each model in turn (the chain
    first, whose best lengths ``simple-bits`` takes) under a progress bar (``progress``),
    with what the run held fixed."""
    from tqdm import tqdm

    order = sorted(models, key=lambda m: m != "complex")
    out: dict = {
        "models": {},
        "ages": run.ages.tolist(),
        "synapses_per_write": run.synapses_per_setting(ns),
        "steps": run.steps,
        "max_burn_in": run.max_burn_in,
        "levels": levels,
        "writes": run.writes,
        "max_age": max_age,
        "grid": grid,
        "estimator": run.estimator,
    }
    if announce is not None:
        announce(_estimate(grids, [m for m in order if m in grids], ns, run, levels))
    total = _memories_to_run(grids, [m for m in order if m in grids], ns, run, levels)
    with tqdm(desc="capacity", unit="memory", total=total, disable=not progress, mininterval=1) as bar:
        run.tick = bar.update
        for name in order:
            best = out["models"].get("complex", {}).get("best")
            values = _values(name, grids, ns, best, levels) if name in grids else []
            out["models"][name] = _model(name, grids, ns, run, values)
        if total is not None and bar.n != total:  # simple-bits' simulations follow the chain's best n
            bar.total = bar.n
    out["models"] = {m: out["models"][m] for m in models}
    return out


def _memories_to_run(
    grids: dict[str, Grid], names: list[str], ns: np.ndarray, run: Run, levels: int
) -> int | None:
    """The progress bar's total: the memories of every batch not already kept (each counted
    as done as it ends), simple-bits as if each N chose another chain length (at most
    that); None for the two-stage selection, whose fine pass follows from its coarse one."""
    if run.selection == "two-stage":
        return None
    lengths = sorted({c[0] for c in grids["complex"].chains})
    batches = []
    for name in names:
        values = _values(name, grids, ns, None, levels)
        if name == "simple-bits":  # one simulation per chain length chosen, at most one per N
            values = [levels ** lengths[min(j, len(lengths) - 1)] for j in range(len(ns))]
        batches += [b for bs, _ in plans_of(grids[name], ns, run, values) for b in bs]
    return sum(b.length for b in batches if not (run.reuse and is_cached(run.cache, b)))


def _estimate(grids: dict[str, Grid], names: list[str], ns: np.ndarray, run: Run, levels: int) -> Estimate:
    """The work of the Monte Carlo models' (coarse) passes, simple-bits on the longest
    chain's values, and a two-stage fine pass's bound: each N's candidates."""
    first = coarse_run(run) if run.selection == "two-stage" else run
    plans, fine = [], []
    for name in names:
        planned = plans_of(grids[name], ns, first, _values(name, grids, ns, None, levels))
        plans.append([b for batches, _ in planned for b in batches])
        n = max(c[0] for c in grids[name].chains)
        fine.append((run.stages.candidates * len(ns) if run.selection == "two-stage" else 0, n))
    per = run.synapses_per_setting(ns)
    return estimate_time(plans, fine, per, run.jobs)


def _grids(levels: int, writes: str, kind: str, chains: tuple | None) -> dict[str, Grid]:
    """The models' grids of ``kind``, the chain models' chains ``chains`` where given."""
    grids = default_grids(levels, writes, kind)
    if chains is not None:
        for name in CHAIN_MODELS:
            grids[name] = Grid(tuple(chains), grids[name].writes, grids[name].levels, grids[name].ranged)
    return grids


def _model(name: str, grids: dict[str, Grid], ns: np.ndarray, run: Run, values: list) -> dict:
    """One model's result: by Monte Carlo on its grid, or its closed form; its fit."""
    r = _simulated(grids[name], ns, run, values) if name in grids else _closed_form(name, ns)
    if name == "simple" and run.writes == "random":
        r["closed_form"] = _closed_form("simple", ns)
    r["N"] = ns.tolist()
    r["exponent"], r["exponent_se"] = fit_exponent(ns, np.array(r["lifetime"]))
    r["local_slopes"] = local_slopes(ns, np.array(r["lifetime"])).tolist()
    return r


def _simulated(grid: Grid, ns: np.ndarray, run: Run, values: list) -> dict:
    """A Monte Carlo model's result: its grid simulated once and each N's setting chosen
    on it (in-sample or cross-fit), or chosen on a coarse pass and measured on a fine
    one (two-stage, :mod:`.two_stage`: its edges those of the widened grid)."""
    if run.selection != "two-stage":
        parts = simulations(grid, ns, run, values)
        return monte_carlo(parts, [grid] * len(parts), ns, run, run.selection)
    parts, grids, added = two_stage(grid, ns, run, values)
    out = monte_carlo(parts, grids, ns, run, "cross-fit")
    out["widened"] = added
    out["candidates"] = run.stages.candidates
    out["coarse_synapses"] = run.stages.coarse_synapses
    return out


def _closed_form(name: str, ns: np.ndarray, thresholds: bool = True) -> dict:
    """A closed-form model's best lifetime at every N. With independent synapses the SNR
    grows as sqrt(N), so the SNR stays above t at N exactly where it stays above 1 at
    N / t^2: the lifetime at threshold t is the threshold-1 lifetime at N / t^2, each at
    its own best setting (``lifetime_at``). ``initial_snr``: the chosen setting's SNR at
    age 0."""
    if name == "simple":
        found = [best_binary(n) for n in ns]
        out = {
            "lifetime": [f[0] for f in found],
            "best": [{"q": f[1]} for f in found],
            "bits": [1.0] * len(ns),
            "initial_snr": [math.sqrt(n) * f[1] for n, f in zip(ns, found, strict=True)],
        }
    else:
        chains = (1,) if name == "simple-unbounded" else (2, 4, 6)
        best = []
        for n_syn in ns:
            found = [(best_lifetime(n, 1.0, int(n_syn), BETA_GRID), n) for n in chains]
            (life, beta), n = max(found, key=lambda f: f[0][0])
            best.append((life, {"n_beakers": n, "alpha": 1.0, "beta": beta}))
        chosen = [Synapse(b[1]["n_beakers"], 1.0, b[1]["beta"]) for b in best]
        out = {
            "lifetime": [b[0] for b in best],
            "best": [b[1] for b in best],
            "bits": [32.0 * b[1]["n_beakers"] for b in best],
            "initial_snr": [
                float(snr_steady_state(c, int(n), np.array([0.0]))[0]) for c, n in zip(chosen, ns)
            ],
        }
    if thresholds:
        out["thresholds"] = list(THRESHOLDS)
        out["lifetime_at"] = {
            f"{t:g}": out["lifetime"] if t == 1 else _closed_form(name, ns / t**2, False)["lifetime"]
            for t in THRESHOLDS
        }
    return out
