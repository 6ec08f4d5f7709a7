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
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .capacity_checks import check_memory, check_study
from .fits import bootstrap, fit_exponent, local_slopes
from .memory import BETA_GRID, Synapse, best_lifetime, snr_steady_state
from .selection import THRESHOLDS, initial_snr, resample
from .selection import best as choose_best
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
    selection: str = "in-sample"


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


def _evaluate(
    parts: list[Part], ns: np.ndarray, ages: np.ndarray, selection: str, draws=None, threshold: float = 1.0
) -> tuple[np.ndarray, list, np.ndarray]:
    """Best lifetime (SNR above ``threshold``) and setting at every N, from every group or
    from the groups drawn, chosen and credited by ``selection`` (:mod:`.selection`); and
    each N's SNR at age 0 for the setting chosen: what the chain buys at the start of a
    memory's life, beside how long it lasts."""
    life, chosen, snr0 = np.zeros(len(ns)), [None] * len(ns), np.zeros(len(ns))
    for k, part in enumerate(parts):
        signal = part.signal if draws is None else part.signal[draws[k]]
        best, index = choose_best(signal, part.power, ages, ns[part.answers], selection, threshold)
        snr0[part.answers] = initial_snr(signal, part.power, ns[part.answers], index)
        for i, j in enumerate(part.answers):
            life[j], chosen[j] = best[i], part.settings[index[i]]
    return life, chosen, snr0


def _monte_carlo(grid: Grid, ns: np.ndarray, run: Run, values: list[int | None]) -> dict:
    parts = _parts(grid, ns, run, values)
    life, chosen, snr0 = _evaluate(parts, ns, run.ages, run.selection)
    out = bootstrap(
        [p.signal.shape[0] for p in parts],
        lambda d: _evaluate(parts, ns, run.ages, run.selection, d)[0],
        ns,
        run.seed,
        draw=lambda rng, g: resample(rng, g, run.selection),
        point=life,
    )
    out["selection"] = run.selection
    out["lifetime"] = life.tolist()
    # the lifetime at the second threshold, chosen and credited alike (its own best setting)
    out["thresholds"] = list(THRESHOLDS)
    at = {
        t: life if t == 1 else _evaluate(parts, ns, run.ages, run.selection, threshold=t)[0]
        for t in THRESHOLDS
    }
    out["lifetime_at"] = {f"{t:g}": lives.tolist() for t, lives in at.items()}
    out["initial_snr"] = snr0.tolist()
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
    selection: str = "in-sample",
) -> dict:
    """Lifetime against N for each of ``models`` (see :data:`MODELS`), each N at its
    best setting, with fitted exponents and their bootstrap intervals; ``{"models":
    {name: {"N", "lifetime", "se", "exponent", "exponent_se", "exponent_ci",
    "local_slopes", "local_slopes_ci", "best", "bits", "edges", "cut_off", ...}}, ...}``.
    ``max_age`` None: ``DEFAULT_MAX_AGE`` of the writes; ``chains``: the chain models'
    (n, alpha, beta) instead of the stated grid's; ``selection``: how each N's best
    setting is chosen and credited (:mod:`.selection`; its result's ``selection``, and
    ``exponent_ci_basic`` beside the percentile ``exponent_ci``)."""
    from tqdm import tqdm

    max_age = DEFAULT_MAX_AGE.get(writes, 1) if max_age is None else max_age
    check_study(MODELS, models, ns, levels, synapses, steps, groups, max_age, writes, max_burn_in, selection)
    ages = np.unique(np.concatenate([[0], np.geomspace(1, max_age, 48).astype(int)]))
    grids = default_grids(levels, writes)
    if chains is not None:
        for name in ("complex", "complex-bounded"):
            grids[name] = Grid(tuple(chains), grids[name].writes, grids[name].levels)
    per_setting = synapses if writes == "random" else int(max(ns)) * groups
    check_memory([grids[m] for m in models if m in grids], per_setting, max_age // STRIDE + 2)
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
        run = Run(ages, synapses, steps, groups, writes, seed, max_burn_in, bar.update, selection)
        for name in order:
            best = out["models"].get("complex", {}).get("best")
            values = _values(name, grids, ns, best, levels) if name in grids else []
            out["models"][name] = _model(name, grids, ns, run, values)
    out["models"] = {m: out["models"][m] for m in models}
    return out


def _model(name: str, grids: dict[str, Grid], ns: np.ndarray, run: Run, values: list) -> dict:
    """One model's result: by Monte Carlo on its grid, or its closed form; its fit."""
    r = _monte_carlo(grids[name], ns, run, values) if name in grids else _closed_form(name, ns)
    if name == "simple" and run.writes == "random":
        r["closed_form"] = _closed_form("simple", ns)
    r["N"] = ns.tolist()
    r["exponent"], r["exponent_se"] = fit_exponent(ns, np.array(r["lifetime"]))
    r["local_slopes"] = local_slopes(ns, np.array(r["lifetime"])).tolist()
    return r


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
