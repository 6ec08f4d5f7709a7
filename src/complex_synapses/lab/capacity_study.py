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
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .fits import bootstrap, crossings, fit_exponent, local_slopes
from .memory import BETA_GRID, best_lifetime
from .writes import NO_LEAK, WRITES, burn_in, signal_curves

__all__ = ["MODELS", "WRITES", "Grid", "default_grids", "binary_lifetime", "capacity_study", "fit_exponent"]

STRIDE = 4  # one memory in STRIDE followed: a quarter of the cost, the error set by the groups
FLOAT32_VALUES = 2**20  # above this many values a level is kept in float64

MODELS = {
    "simple": "binary synapse, a memory sets it with probability q (q tuned)",
    "simple-m": "one level on m values, write strength tuned",
    "simple-bits": "one level on m^n values: the bits of the best chain at that N (write tuned)",
    "complex": "the chain, every level on m values (n, alpha, beta, write tuned)",
    "simple-bounded": "one continuous level in [-1, 1], write strength tuned",
    "complex-bounded": "the chain, continuous levels in [-1, 1] (n, alpha, beta, write tuned)",
    "simple-unbounded": "unbounded decaying synapse, beta tuned (closed form)",
    "complex-unbounded": "unbounded chain, alpha = 1, n and beta tuned (closed form)",
}
DEFAULT_COUNTS = {"random": "100,178,316,562,1000,1778,3162,5623,10000", "perceptron": "32,64,128,256,512"}
DEFAULT_MAX_AGE = {"random": 6000, "perceptron": 1000}


@dataclass(frozen=True)
class Grid:
    """The settings a Monte Carlo model is tuned over: chains (n, alpha, beta) and
    write strengths; ``levels`` None for continuous levels."""

    chains: tuple[tuple[int, float, float], ...]
    writes: tuple[float, ...]
    levels: int | None


def default_grids(m: int, writes: str = "random") -> dict[str, Grid]:
    """The stated grids. Random writes (N up to 10^4): chains of n in 2, 4, 8, 12 levels,
    alpha 1, 4 and 16, beta 30 to 10,000 (6 values, a factor of about 3 apart), writes of
    1/8 to 4 level spacings; one level: writes of 1/64 to 8 spacings. Perceptron writes
    (N up to 512: each N is a simulation of its own, and lifetimes are short): n in 2, 4,
    8, alpha 1, 4 and 16, beta 10 to 1,000, writes of 1/4 to 2 spacings, one level's of
    1/8 to 4. The binary synapse's q: 0.002 to
    0.5 (10 values, geometric). A first run with alpha 1 and 4, beta from 100 and n up to
    8 found the best chains at alpha 4 and beta 100 at most N: the grid's edges, so the
    grid was widened there."""
    spacing = 2.0 / (m - 1)
    alphas = (1.0, 4.0, 16.0)
    if writes == "random":
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


@dataclass
class Run:
    """What a capacity study holds fixed: the ages followed, synapses, memories and
    groups per setting, the kind of writes, the seed and the burn-in's cap."""

    ages: np.ndarray
    synapses: int
    steps: int
    groups: int
    writes: str
    seed: int
    max_burn_in: int | None
    tick: Callable[[int], None] | None = None


@dataclass
class Part:
    """One simulation: ``signal`` (groups, settings, ages), ``power`` (settings,), its
    ``settings`` ((n, alpha, beta), write, values), and the indices of the N it answers."""

    signal: np.ndarray
    power: np.ndarray
    settings: list
    answers: list[int]
    burn_in: int


def _simulate(grid: Grid, levels: int | None, run: Run, per_group: int | None, seed: int) -> tuple:
    """Signal, power, settings and burn-in of a grid on ``levels`` values; the chains
    run together in batches of one beta, each batch with the burn-in it needs.
    ``per_group``: synapses of one perceptron (perceptron writes)."""
    signals, powers, settings, burns = [], [], [], []
    synapses = run.synapses if per_group is None else per_group * run.groups
    dtype = torch.float64 if levels is not None and levels > FLOAT32_VALUES else torch.float32
    for i, beta in enumerate(sorted({c[2] for c in grid.chains})):
        chains = [c for c in grid.chains if c[2] == beta]
        burn = burn_in(chains, grid.writes, levels, run.max_burn_in)
        c = signal_curves(
            chains,
            grid.writes,
            levels,
            run.ages,
            synapses,
            run.steps,
            run.groups,
            seed + 7919 * i,
            run.tick,
            burn,
            run.writes,
            STRIDE,
            dtype,
        )
        signals.append(c.signal.reshape(run.groups, -1, len(run.ages)))
        powers.append(c.power.reshape(-1))
        settings += [(chain, w, levels) for chain in chains for w in grid.writes]
        burns.append(burn)
    return np.concatenate(signals, 1), np.concatenate(powers), settings, max(burns)


def _best(signal: np.ndarray, power: np.ndarray, ages: np.ndarray, ns) -> tuple[np.ndarray, np.ndarray]:
    """Lifetime of the best setting at each N (inf where any setting is cut off: its
    SNR still above 1 at the oldest age) and its index; ``signal`` (settings, ages)."""
    lives = np.stack([crossings(ages, math.sqrt(n) * signal / np.sqrt(power)[:, None]) for n in ns])
    index = np.argmax(np.where(np.isfinite(lives), lives, -1), -1)
    best = lives[np.arange(len(ns)), index]
    return np.where(np.isinf(lives).any(-1), np.inf, best), index


def _parts(grid: Grid, ns: np.ndarray, run: Run, values: list[int | None]) -> list[Part]:
    """The simulations of a model: with random writes one per number of values (a
    model has one, simple-bits one per chain length), answering every N that uses it;
    with perceptron writes one per N. ``values[j]``: the values per level at N j."""
    parts = []
    if run.writes == "random":
        for k, v in enumerate(dict.fromkeys(values)):
            signal, power, settings, burn = _simulate(grid, v, run, None, run.seed + 31 * k)
            parts.append(Part(signal, power, settings, [j for j in range(len(ns)) if values[j] == v], burn))
    else:
        for j, n in enumerate(ns):
            signal, power, settings, burn = _simulate(grid, values[j], run, int(n), run.seed + 104729 * j)
            parts.append(Part(signal, power, settings, [j], burn))
    return parts


def _evaluate(parts: list[Part], ns: np.ndarray, ages: np.ndarray, draws=None) -> tuple[np.ndarray, list]:
    """Best lifetime and setting at every N, from every group or from the groups drawn."""
    life, chosen = np.zeros(len(ns)), [None] * len(ns)
    for k, part in enumerate(parts):
        signal = part.signal if draws is None else part.signal[draws[k]]
        best, index = _best(signal.mean(0), part.power, ages, ns[part.answers])
        for i, j in enumerate(part.answers):
            life[j], chosen[j] = best[i], part.settings[index[i]]
    return life, chosen


def _monte_carlo(grid: Grid, ns: np.ndarray, run: Run, values: list[int | None]) -> dict:
    parts = _parts(grid, ns, run, values)
    life, chosen = _evaluate(parts, ns, run.ages)
    out = bootstrap(
        [p.signal.shape[0] for p in parts], lambda d: _evaluate(parts, ns, run.ages, d)[0], ns, run.seed
    )
    out["lifetime"] = life.tolist()
    out["best"] = [
        {"n_beakers": c[0], "alpha": c[1], "beta": c[2], "write": w, "values": v} for c, w, v in chosen
    ]
    out["bits"] = [c[0] * (32.0 if v is None else math.log2(v)) for c, _, v in chosen]
    out["edges"] = _edges(grid, chosen)
    out["cut_off"] = [float(n) for n, x in zip(ns, life, strict=True) if math.isinf(x)]
    out["burn_in"] = max(p.burn_in for p in parts)
    out["levels"] = grid.levels
    out["grid"] = {"chains": [list(c) for c in grid.chains], "writes": list(grid.writes)}
    return out


def _edges(grid: Grid, chosen: list) -> list[list[str]]:
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
) -> dict:
    """Lifetime against N for each of ``models`` (see :data:`MODELS`), each N at its
    best setting, with fitted exponents and their bootstrap intervals; ``{"models":
    {name: {"N", "lifetime", "se", "exponent", "exponent_se", "exponent_ci",
    "local_slopes", "local_slopes_ci", "best", "bits", "edges", "cut_off", ...}}, ...}``.
    ``max_age`` None: ``DEFAULT_MAX_AGE`` of the writes; ``chains``: the chain models'
    (n, alpha, beta) instead of the stated grid's."""
    from tqdm import tqdm

    max_age = DEFAULT_MAX_AGE.get(writes, 1) if max_age is None else max_age
    _check(models, ns, levels, synapses, steps, groups, max_age, writes, max_burn_in)
    ages = np.unique(np.concatenate([[0], np.geomspace(1, max_age, 48).astype(int)]))
    grids = default_grids(levels, writes)
    if chains is not None:
        for name in ("complex", "complex-bounded"):
            grids[name] = Grid(tuple(chains), grids[name].writes, grids[name].levels)
    per_setting = synapses if writes == "random" else int(max(ns)) * groups
    _check_memory([grids[m] for m in models if m in grids], per_setting, max_age // STRIDE + 2)
    order = sorted(models, key=lambda m: m != "complex")  # simple-bits takes the chain's lengths
    out: dict = {
        "models": {},
        "ages": ages.tolist(),
        "synapses_per_write": per_setting,
        "steps": steps,
        "max_burn_in": max_burn_in,
        "levels": levels,
        "writes": writes,
        "max_age": max_age,
    }
    with tqdm(desc="capacity", unit="step", disable=not progress, mininterval=1) as bar:
        run = Run(ages, synapses, steps, groups, writes, seed, max_burn_in, bar.update)
        for name in order:
            if name in grids:
                best = out["models"].get("complex", {}).get("best")
                r = _monte_carlo(grids[name], ns, run, _values(name, grids, ns, best, levels))
            else:
                r = _closed_form(name, ns)
            if name == "simple" and writes == "random":
                r["closed_form"] = _closed_form("simple", ns)
            r["N"] = ns.tolist()
            r["exponent"], r["exponent_se"] = fit_exponent(ns, np.array(r["lifetime"]))
            r["local_slopes"] = local_slopes(ns, np.array(r["lifetime"])).tolist()
            out["models"][name] = r
    out["models"] = {m: out["models"][m] for m in models}
    return out


def _closed_form(name: str, ns: np.ndarray) -> dict:
    if name == "simple":
        found = [best_binary(n) for n in ns]
        return {
            "lifetime": [f[0] for f in found],
            "best": [{"q": f[1]} for f in found],
            "bits": [1.0] * len(ns),
        }
    chains = (1,) if name == "simple-unbounded" else (2, 4, 6)
    best = []
    for n_syn in ns:
        found = [(best_lifetime(n, 1.0, int(n_syn), BETA_GRID), n) for n in chains]
        (life, beta), n = max(found, key=lambda f: f[0][0])
        best.append((life, {"n_beakers": n, "alpha": 1.0, "beta": beta}))
    return {
        "lifetime": [b[0] for b in best],
        "best": [b[1] for b in best],
        "bits": [32.0 * b[1]["n_beakers"] for b in best],
    }


def _check_memory(grids: list[Grid], synapses: int, kept: int) -> None:
    """Refuse, before any work, a setting whose tensors would not fit in half of this
    machine's memory: per synapse, the probes kept (1 byte each), and for each chain of
    the largest batch of one beta and each write, its levels, gradient and rounding
    (8 bytes each, float64 at most)."""
    if not grids:
        return
    batch = max(
        len(g.writes) * sum(c[0] + 3 for c in g.chains if c[2] == beta)
        for g in grids
        for beta in {c[2] for c in g.chains}
    )
    need = synapses * (kept + 8 * batch)
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if need > total / 2:
        raise ValueError(
            f"--synapses {synapses} needs about {need / 1e9:,.1f} GB for one setting, more than half of "
            f"this machine's {total / 1e9:,.0f} GB: use fewer --synapses (or a smaller --max-age)"
        )


def _check(models, ns, levels, synapses, steps, groups, max_age, writes, max_burn_in) -> None:
    if writes not in WRITES:
        raise ValueError(f"--writes must be one of {', '.join(WRITES)}, got {writes!r}")
    closed = [m for m in models if m.endswith("-unbounded")]
    if writes == "perceptron" and closed:
        raise ValueError(f"--writes perceptron: {closed[0]} is a closed form for random writes; leave it out")
    if max_burn_in is not None and max_burn_in < 0:
        raise ValueError(f"--max-burn-in must be >= 0, got {max_burn_in}")
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise ValueError(
            f"--models must name some of {', '.join(MODELS)}, got {', '.join(unknown) or 'none'}"
        )
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
        raise ValueError(f"--grid-values must be an integer >= 2, got {levels!r}")
    if len(ns) < 3 or np.any(np.asarray(ns) < 1):
        raise ValueError(f"--synapse-counts needs at least 3 values >= 1, got {list(ns)}")
    if groups < 2 or synapses < groups or synapses % groups:
        raise ValueError(f"--synapses must be a multiple of --groups (>= 2), got {synapses} and {groups}")
    if steps < 1 or max_age < 1 or steps + max_age > 10**6:
        raise ValueError(
            f"--steps and --max-age must be >= 1 and at most 10^6 together, got {steps}, {max_age}"
        )
