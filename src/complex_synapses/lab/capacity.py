r"""The paper's capacity result: how long a memory lasts against the number of synapses N.

N synapses store a stream of random, uncorrelated :math:`\pm 1` patterns, one per step,
each written into the first level with strength ``write`` (SGD on the gradient
:math:`-\xi`, learning rate ``write``). A memory's signal at age ``a`` (later memories
stored since) is the per-synapse overlap :math:`s(a) = E[\xi_i w_i]`, its noise the
spread of the overlap of N synapses, :math:`\sqrt{E[w^2] / N}`; so

.. math:: \mathrm{SNR}(a) = \sqrt{N}\, s(a) / \sqrt{E[w^2]},

and the lifetime is the age at which the SNR falls below 1. Synapses are independent,
so one curve :math:`s(a)` of a setting gives its lifetime at every N; each N then takes
the best setting of the model's grid (its write strength and chain), as the theory does.

Models (``MODELS``), all levels in [-1, 1] where bounded:

- ``simple``: the textbook binary synapse: a memory sets it with probability q. Closed
  form :math:`s(a) = q (1-q)^a`, best q about :math:`e / \sqrt{N}`, lifetime about
  :math:`\sqrt{N} / e` (Amit & Fusi 1994; Fusi, Drew & Abbott 2005); also by Monte
  Carlo with the optimizer (one level, 2 values, write 2q), a check of the simulator.
- ``simple-m``: one level on m values, stochastic rounding, write strength tuned.
- ``complex``: the chain (n, alpha, beta tuned) with every level on m values.
- ``simple-bounded`` / ``complex-bounded``: the same, continuous (no rounding).
- ``simple-unbounded`` / ``complex-unbounded``: unbounded, continuous: the closed forms
  of :mod:`.model` (a decaying synapse with its best beta; chains of n levels).

Every Monte Carlo steps the real :class:`ComplexSynapse` (``bound``, ``grid_values``) on
``synapses`` synapses per write strength, from an equilibrium start (levels uniform over
their values) and a burn-in of 2 beta (at most ``MAX_BURN_IN``); the signal is averaged
over every stored memory of ``steps`` steps, and its standard error, and the lifetime's
(jackknife), come from ``groups`` disjoint groups of synapses.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..optimizer import ComplexSynapse
from .model import BETA_GRID, best_lifetime

__all__ = [
    "MODELS",
    "Grid",
    "default_grids",
    "binary_lifetime",
    "signal_curves",
    "crossing",
    "capacity_study",
    "fit_exponent",
]

MAX_BURN_IN = 6000
STRIDE = 2  # memories tracked every other step: half the cost, nearly the same error
NO_LEAK = 1e12  # a one-level chain's leak timescale: none worth the name

MODELS = {
    "simple": "binary synapse, a memory sets it with probability q (q tuned)",
    "simple-m": "one level on m values, write strength tuned",
    "complex": "the chain, every level on m values (n, alpha, beta, write tuned)",
    "simple-bounded": "one continuous level in [-1, 1], write strength tuned",
    "complex-bounded": "the chain, continuous levels in [-1, 1] (n, alpha, beta, write tuned)",
    "simple-unbounded": "unbounded decaying synapse, beta tuned (closed form)",
    "complex-unbounded": "unbounded chain, alpha = 1, n and beta tuned (closed form)",
}


@dataclass(frozen=True)
class Grid:
    """The settings a Monte Carlo model is tuned over: chains (n, alpha, beta) and
    write strengths; ``levels`` None for continuous levels."""

    chains: tuple[tuple[int, float, float], ...]
    writes: tuple[float, ...]
    levels: int | None


def default_grids(m: int) -> dict[str, Grid]:
    """The stated grids: writes of 1/8 to 4 level spacings for the chain, 1/64 to 8
    for one level (whose best write shrinks as 1/sqrt(N)); chains (n, alpha, beta) of
    (4, 1, 500), (4, 1, 3000), (6, 1, 3000) and (6, 4, 3000) steps; the binary synapse's
    q from 0.002 to 0.5 (10 values, geometric)."""
    spacing = 2.0 / (m - 1)
    chains = ((4, 1.0, 500.0), (4, 1.0, 3000.0), (6, 1.0, 3000.0), (6, 4.0, 3000.0))
    single = ((1, 1.0, NO_LEAK),)
    one = tuple(spacing * 2.0**k for k in range(-6, 4))
    many = tuple(spacing * 2.0**k for k in range(-3, 3))
    return {
        "simple": Grid(single, tuple(2 * q for q in np.geomspace(0.002, 0.5, 10)), 2),
        "simple-m": Grid(single, one, m),
        "complex": Grid(chains, many, m),
        "simple-bounded": Grid(single, one, None),
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
class Curves:
    """The signal of one chain for each write strength: ``signal`` (groups, writes,
    ages) per-synapse overlaps, ``power`` (writes,) the mean of w^2."""

    ages: np.ndarray
    signal: np.ndarray
    power: np.ndarray


def _equilibrium_start(levels: list[torch.Tensor], m: int | None, gen: torch.Generator) -> None:
    for u in levels:
        if m is None:
            u.copy_(torch.rand(u.shape, generator=gen, dtype=u.dtype) * 2 - 1)
        else:
            u.copy_(torch.randint(0, m, u.shape, generator=gen).to(u.dtype) * (2.0 / (m - 1)) - 1)


@torch.no_grad()
def signal_curves(
    chain: tuple[int, float, float],
    writes: tuple[float, ...],
    levels: int | None,
    ages: np.ndarray,
    synapses: int,
    steps: int,
    groups: int,
    seed: int = 0,
    tick: Callable[[int], None] | None = None,
    max_burn_in: int = MAX_BURN_IN,
) -> Curves:
    """Step the optimizer (SGD, bound 1, ``levels``) on ``synapses`` synapses per write
    strength; average :math:`\\xi_{t-a} w_t` over ``steps`` steps after the burn-in."""
    n, alpha, beta = chain
    gen = torch.Generator().manual_seed(seed)
    w = torch.nn.Parameter(torch.zeros(len(writes), synapses))
    opt = ComplexSynapse(
        [w], torch.optim.SGD, lr=1.0, n_beakers=n, alpha=alpha, beta=beta, bound=1.0, grid_values=levels,
        init="zero", seed=seed, kernel="auto",
    )  # fmt: skip
    w.grad = torch.zeros_like(w)
    opt.step()  # makes the state: every level is then set to an equilibrium start
    _equilibrium_start([w.data, *opt.state[w]["hidden"]], levels, gen)
    strength = torch.tensor(writes, dtype=torch.float32)[:, None]
    burn = 0 if beta >= NO_LEAK else int(min(2 * beta, max_burn_in))
    span = int(ages.max()) + 1
    past = torch.zeros(span, len(writes), synapses, dtype=torch.int8)  # the last patterns, a ring
    index = torch.as_tensor(ages)
    total = torch.zeros(len(ages), len(writes), groups, dtype=torch.float64)
    power = torch.zeros(len(writes), dtype=torch.float64)
    counted = 0
    for t in range(burn + steps):
        xi = torch.randint(0, 2, (len(writes), synapses), generator=gen, dtype=torch.int8) * 2 - 1
        past[t % span] = xi
        w.grad = -strength * xi
        opt.step()
        if t >= burn + span and t % STRIDE == 0:  # every age's memory exists
            stored = past[(t - index) % span].float()  # (ages, writes, synapses)
            total += (stored * w).view(len(ages), len(writes), groups, -1).sum(-1).double()
            power += (w.double() ** 2).sum(1)
            counted += 1
        if tick is not None and t % 500 == 0:
            tick(min(500, burn + steps - t))
    counted = max(counted, 1)
    per_group = synapses // groups
    signal = (total / (counted * per_group)).permute(2, 1, 0).numpy()
    return Curves(ages, signal, (power / (counted * synapses)).numpy())


def crossing(ages: np.ndarray, snr: np.ndarray) -> float:
    """The age at which ``snr`` first falls below 1, linear between the sampled ages;
    0 where it starts below 1, inf where it never does within the ages."""
    below = np.flatnonzero(snr < 1)
    if len(below) == 0:
        return math.inf
    k = below[0]
    if k == 0:
        return 0.0
    a0, a1, s0, s1 = ages[k - 1], ages[k], snr[k - 1], snr[k]
    return float(a0 + (a1 - a0) * (s0 - 1) / (s0 - s1))


def _lifetimes(c: Curves, n_synapses: float) -> tuple[np.ndarray, np.ndarray]:
    """Each write's lifetime at N, and its jackknife standard error over the groups."""
    scale = math.sqrt(n_synapses) / np.sqrt(c.power)[:, None]
    full = np.array([crossing(c.ages, scale[r] * c.signal.mean(0)[r]) for r in range(len(c.power))])
    g = c.signal.shape[0]
    rest = (c.signal.sum(0, keepdims=True) - c.signal) / (g - 1)  # leave one group out
    jack = np.array(
        [[crossing(c.ages, scale[r] * rest[i, r]) for r in range(len(c.power))] for i in range(g)]
    )
    with np.errstate(invalid="ignore"):
        se = np.sqrt((g - 1) / g * ((jack - jack.mean(0)) ** 2).sum(0))
    return full, se


def fit_exponent(ns: np.ndarray, lifetimes: np.ndarray) -> tuple[float, float]:
    """Slope of log lifetime against log N (least squares over finite, positive
    lifetimes) and its standard error."""
    ok = np.isfinite(lifetimes) & (lifetimes > 0)
    if ok.sum() < 3:
        return float("nan"), float("nan")
    coef, cov = np.polyfit(np.log(ns[ok]), np.log(lifetimes[ok]), 1, cov=True)
    return float(coef[0]), float(np.sqrt(cov[0, 0]))


def _monte_carlo(grid, ns, ages, synapses, steps, groups, seed, tick, max_burn_in) -> dict:
    best = [(-1.0, 0.0, None) for _ in ns]  # (lifetime, se, setting) per N
    for i, chain in enumerate(grid.chains):
        c = signal_curves(
            chain, grid.writes, grid.levels, ages, synapses, steps, groups, seed + i, tick, max_burn_in
        )
        for j, n_syn in enumerate(ns):
            life, se = _lifetimes(c, n_syn)
            r = int(np.argmax(np.where(np.isfinite(life), life, -1)))
            if life[r] > best[j][0]:
                setting = {
                    "n_beakers": chain[0],
                    "alpha": chain[1],
                    "beta": chain[2],
                    "write": grid.writes[r],
                }
                best[j] = (float(life[r]), float(se[r]), setting)
    return {
        "lifetime": [b[0] for b in best],
        "se": [b[1] for b in best],
        "best": [b[2] for b in best],
        "levels": grid.levels,
        "grid": {"chains": [list(c) for c in grid.chains], "writes": list(grid.writes)},
    }


def _closed_form(name: str, ns: np.ndarray) -> dict:
    if name == "simple":
        found = [best_binary(n) for n in ns]
        return {"lifetime": [f[0] for f in found], "best": [{"q": f[1]} for f in found]}
    chains = (1,) if name == "simple-unbounded" else (2, 4, 6)
    best = []
    for n_syn in ns:
        found = [(best_lifetime(n, 1.0, int(n_syn), BETA_GRID), n) for n in chains]
        (life, beta), n = max(found, key=lambda f: f[0][0])
        best.append((life, {"n_beakers": n, "alpha": 1.0, "beta": beta}))
    return {"lifetime": [b[0] for b in best], "best": [b[1] for b in best]}


def capacity_study(
    models: list[str],
    ns: np.ndarray,
    levels: int = 16,
    synapses: int = 1024,
    steps: int = 2000,
    groups: int = 16,
    max_age: int = 2000,
    seed: int = 0,
    progress: bool = True,
    max_burn_in: int = MAX_BURN_IN,
) -> dict:
    """Lifetime against N for each of ``models`` (see :data:`MODELS`), each N at its
    best setting, with fitted exponents; ``{"models": {name: {"N", "lifetime", "se",
    "exponent", "exponent_se", "best", ...}}, ...}``."""
    from tqdm import tqdm

    _check(models, ns, levels, synapses, steps, groups, max_age)
    if max_burn_in < 0:
        raise ValueError(f"--max-burn-in must be >= 0, got {max_burn_in}")
    ages = np.unique(np.concatenate([[0], np.geomspace(1, max_age, 40).astype(int)]))
    grids = default_grids(levels)
    _check_memory([grids[m] for m in models if m in grids], synapses, len(ages), max_age + 1)
    work = sum(
        len(grids[m].chains) * (steps + max_age + _burn(grids[m], max_burn_in)) for m in models if m in grids
    )
    out: dict = {"models": {}, "ages": ages.tolist(), "synapses_per_write": synapses, "steps": steps,
                 "max_burn_in": max_burn_in, "levels": levels}  # fmt: skip
    with tqdm(total=work, desc="capacity", unit="step", disable=not progress, mininterval=1) as bar:
        for name in models:
            if name in grids:
                r = _monte_carlo(
                    grids[name], ns, ages, synapses, steps + max_age, groups, seed, bar.update, max_burn_in
                )
            else:
                r = _closed_form(name, ns)
            if name == "simple":
                r["closed_form"] = _closed_form("simple", ns)
            r["N"] = ns.tolist()
            r["exponent"], r["exponent_se"] = fit_exponent(ns, np.array(r["lifetime"]))
            out["models"][name] = r
    return out


def _check_memory(grids: list[Grid], synapses: int, n_ages: int, span: int) -> None:
    """Refuse, before any work, a setting whose tensors would not fit in half of this
    machine's memory: per write strength and synapse, the ring of the last ``span``
    patterns (1 byte each), the stored patterns at every age and their products with the
    weights (4 + 4 bytes each) and the chain's levels (4 bytes each)."""
    if not grids:
        return
    per_synapse = max(
        len(g.writes) * (span + 8 * n_ages + 4 * (max(c[0] for c in g.chains) + 2)) for g in grids
    )
    need = synapses * per_synapse
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if need > total / 2:
        raise ValueError(
            f"--synapses {synapses} needs about {need / 1e9:,.1f} GB for one setting, more than half of "
            f"this machine's {total / 1e9:,.0f} GB: use fewer --synapses (or a smaller --max-age)"
        )


def _burn(grid: Grid, max_burn_in: int) -> int:
    return int(np.mean([0 if b >= NO_LEAK else min(2 * b, max_burn_in) for _, _, b in grid.chains]))


def _check(models, ns, levels, synapses, steps, groups, max_age) -> None:
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise ValueError(
            f"--models must name some of {', '.join(MODELS)}, got {', '.join(unknown) or 'none'}"
        )
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
        raise ValueError(f"--levels must be an integer >= 2, got {levels!r}")
    if len(ns) < 3 or np.any(np.asarray(ns) < 1):
        raise ValueError(f"--synapse-counts needs at least 3 values >= 1, got {list(ns)}")
    if groups < 2 or synapses < groups or synapses % groups:
        raise ValueError(f"--synapses must be a multiple of --groups (>= 2), got {synapses} and {groups}")
    if steps < 1 or max_age < 1 or steps + max_age > 10**6:
        raise ValueError(
            f"--steps and --max-age must be >= 1 and at most 10^6 together, got {steps}, {max_age}"
        )
