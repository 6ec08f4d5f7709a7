r"""The Monte Carlo behind ``simulate capacity``: synapses that store one memory per step,
stepped by the real :class:`~complex_synapses.ComplexSynapse`, and the signal of each
memory as it ages.

Memory :math:`\mu` has a direction :math:`d^\mu \in \{\pm 1\}^N` and is written into the
first level by one SGD step on the gradient :math:`-s\, d^\mu` (``write`` strength s):

- ``random`` writes: :math:`d^\mu = \xi^\mu`, a random pattern, written at every step
  whatever the synapses hold (Benna & Fusi's setting; synapses are then independent);
- ``perceptron`` writes: N synapses are one perceptron; memory :math:`\mu` is a random
  pattern :math:`\xi^\mu` with a random label :math:`y^\mu = \pm 1`, :math:`d^\mu =
  y^\mu \xi^\mu`, written only where the perceptron gets it wrong,
  :math:`y^\mu \sum_i w_i \xi^\mu_i \le 0` (the perceptron's error-driven rule). Writes
  then depend on the synapses' state and are correlated across them.

The signal of a memory at age a (memories written since) is the per-synapse overlap
:math:`E[d^\mu_i w_i]`, averaged over ``steps`` memories; ages are followed on
probes, one memory in ``stride`` kept, so memory grows with the oldest age over the
stride, not with the oldest age. Every level starts at an equilibrium guess (uniform
over its values) and the synapses store memories for a burn-in of three times the
slowest mode of the setting (:func:`slowest_mode`) before any is followed. Several
chains run at once as parameter groups of one optimizer, on the same patterns (common
random numbers: their differences are measured more precisely than their levels).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..chain import MAX_GRID_VALUES, generator, level_energies
from ..optimizer import ComplexSynapse

__all__ = ["WRITES", "NO_LEAK", "Curves", "slowest_mode", "burn_in", "signal_curves", "level_ranges"]

WRITES = ("random", "perceptron")
NO_LEAK = 1e12  # a one-level chain's leak timescale: none worth the name
BURN_IN_MODES = 3  # burn-in, in slowest modes of the setting


@dataclass
class Curves:
    """The signal of each (chain, write) setting: ``signal`` (groups, chains, writes,
    ages) per-synapse overlaps, ``power`` (chains, writes) the mean of w^2, and the
    ``burn_in`` that ran (steps)."""

    ages: np.ndarray
    signal: np.ndarray
    power: np.ndarray
    burn_in: int


def slowest_mode(chain: tuple[int, float, float], write: float, levels: int | None) -> float:
    """The slowest relaxation time (steps) of a setting: the chain's slowest linear mode,
    or for one level without a leak the random walk in [-1, 1], :math:`L^2 / (\\pi^2
    \\sigma^2)` with :math:`\\sigma^2` the variance of one write (``write`` times the
    larger of ``write`` and the grid's spacing: a write below the spacing moves one
    spacing with probability write / spacing)."""
    n, alpha, beta = chain
    if n == 1 and beta >= NO_LEAK:
        spacing = 0.0 if levels is None else 2.0 / (levels - 1)
        return 4.0 / (math.pi**2 * write * max(write, spacing))
    return float(1.0 / np.min(np.abs(np.linalg.eigvals(generator(n, alpha, beta)).real)))


def burn_in(chains, writes, levels, cap: int | None = None) -> int:
    """Steps stored before any memory is followed: ``BURN_IN_MODES`` slowest modes of the
    slowest setting (at most ``cap``)."""
    need = BURN_IN_MODES * max(slowest_mode(c, w, levels) for c in chains for w in writes)
    return int(math.ceil(need if cap is None else min(need, cap)))


def level_ranges(chain: tuple[int, float, float]) -> tuple[float, ...]:
    r"""A range per level, the same multiple of each level's stationary spread under random
    writes (:func:`complex_synapses.chain.level_energies`), the weight's 1:
    :math:`B_k = \sigma_k / \sigma_1`, so that a slow level's grid is as coarse, for how
    it moves, as the weight's."""
    energies = level_energies(*chain)
    return tuple(float(x) for x in np.sqrt(energies / energies[0]))


def grid_of(levels: int | None) -> int | None:
    """The optimizer's ``grid_values`` for a level on ``levels`` values: None (continuous)
    where the grid is finer than float64 resolves (:data:`complex_synapses.chain.MAX_GRID_VALUES`;
    simple-bits of a 16-level chain on 16 values has 16^16)."""
    return None if levels is None or levels > MAX_GRID_VALUES else levels


def _optimizer(chains, writes, levels, synapses, dtype, seed, ranged=False) -> tuple[list, ComplexSynapse]:
    ws = [torch.nn.Parameter(torch.zeros(len(writes), synapses, dtype=dtype)) for _ in chains]
    groups = [{"params": [w], "n_beakers": n, "alpha": a, "beta": b} for w, (n, a, b) in zip(ws, chains)]
    for group, chain in zip(groups, chains):
        if ranged:
            group["bound"] = level_ranges(chain)
    opt = ComplexSynapse(
        groups,
        torch.optim.SGD,
        lr=1.0,
        n_beakers=1,
        alpha=1.0,
        beta=NO_LEAK,
        bound=1.0,
        grid_values=grid_of(levels),
        init="zero",
        seed=seed,
        kernel="auto",
    )
    return ws, opt


def _equilibrium_start(ws, opt, levels, gen, ranges=None) -> None:
    """Every level uniform over its values (over [-1, 1] for continuous levels, :func:`grid_of`; over its
    own range where each chain's ``ranges`` are given)."""
    for w in ws:
        w.grad = torch.zeros_like(w)
    opt.step()  # makes the state
    for i, w in enumerate(ws):
        for j, u in enumerate([w.data, *opt.state[w]["hidden"]]):
            B = 1.0 if ranges is None else ranges[i][j]
            u.copy_(start_values(u.shape, levels, gen, u.dtype) * B)


def start_values(shape, levels: int | None, gen: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
    """Levels uniform over the ``levels`` values of [-1, 1] (uniform over [-1, 1] for
    continuous ones, :func:`grid_of`): the equilibrium guess a simulation starts from."""
    if grid_of(levels) is None:
        return torch.rand(shape, generator=gen, dtype=dtype) * 2 - 1
    k = torch.randint(0, levels, shape, generator=gen).to(dtype)
    return k * (2.0 / (levels - 1)) - 1


def _memory(synapses: int, groups: int, kind: str, gen: torch.Generator) -> torch.Tensor:
    """The next memory's direction (int8, +-1): a random pattern, times its label for
    each perceptron (group)."""
    xi = torch.randint(0, 2, (synapses,), generator=gen, dtype=torch.int8) * 2 - 1
    if kind == "perceptron":
        label = torch.randint(0, 2, (groups, 1), generator=gen, dtype=torch.int8) * 2 - 1
        xi = (xi.view(groups, -1) * label).view(-1)
    return xi


def _write(ws: list[torch.Tensor], d: torch.Tensor, strength: torch.Tensor, groups: int, kind: str) -> None:
    """The gradients that write direction ``d``: everywhere (random), or in the
    perceptrons whose output has the wrong sign, y h <= 0 (perceptron)."""
    for w in ws:
        grad = -strength * d
        if kind == "perceptron":
            per = w.view(w.shape[0], groups, -1)
            wrong = (per * d.view(groups, -1)).sum(-1) <= 0
            grad = (grad.view_as(per) * wrong[..., None]).view_as(w)
        w.grad = grad


def _overlaps(w: torch.Tensor, probe: torch.Tensor) -> np.ndarray:
    """sum over each group's synapses of probe * w: (groups, writes)."""
    return (w.view(w.shape[0], *probe.shape) * probe).sum(-1).T.double().numpy()


@torch.no_grad()
def signal_curves(
    chains: list[tuple[int, float, float]],
    writes: tuple[float, ...],
    levels: int | None,
    ages: np.ndarray,
    synapses: int,
    steps: int,
    groups: int,
    seed: int = 0,
    tick: Callable[[int], None] | None = None,
    burn: int | None = None,
    kind: str = "random",
    stride: int = 4,
    dtype: torch.dtype = torch.float32,
    ranged: bool = False,
) -> Curves:
    """Store ``burn`` + ``steps`` + max(ages) memories in ``synapses`` synapses per
    (chain, write) setting and average the signal of one memory in ``stride`` of
    ``steps`` at every age. ``kind="perceptron"``: ``groups`` perceptrons of
    ``synapses // groups`` synapses each. ``burn`` None: :func:`burn_in`. ``ranged``:
    each level on its own range (:func:`level_ranges`), else every level on [-1, 1]."""
    if kind not in WRITES:
        raise ValueError(f"writes must be one of {', '.join(WRITES)}, got {kind!r}")
    gen = torch.Generator().manual_seed(seed)
    ws, opt = _optimizer(chains, writes, levels, synapses, dtype, seed, ranged)
    _equilibrium_start(ws, opt, levels, gen, [level_ranges(c) for c in chains] if ranged else None)
    burn = burn_in(chains, writes, levels) if burn is None else burn
    strength = torch.tensor(writes, dtype=dtype)[:, None]
    kept = int(ages.max()) // stride + 2  # probes alive at once
    probes = torch.zeros(kept, synapses, dtype=torch.int8)
    total = np.zeros((len(ages), groups, len(chains), len(writes)))
    power = np.zeros((len(chains), len(writes)))
    counted = 0
    for t in range(burn + steps + int(ages.max())):
        xi = _memory(synapses, groups, kind, gen)
        _write(ws, xi.to(dtype), strength, groups, kind)
        opt.step()
        start = t - burn
        if 0 <= start < steps and start % stride == 0:
            probes[(start // stride) % kept] = xi
            power += np.array([(w.double() ** 2).mean(1).numpy() for w in ws])
            counted += 1
        for i, a in enumerate(ages):  # the probes whose age is one of the ages followed
            s = start - int(a)
            if 0 <= s < steps and s % stride == 0:
                p = probes[(s // stride) % kept].to(dtype).view(groups, -1)
                total[i] += np.stack([_overlaps(w, p) for w in ws], axis=1)
        if tick is not None and t % 500 == 0:
            tick(min(500, burn + steps + int(ages.max()) - t))
    probes_followed = max(len(range(0, steps, stride)), 1)
    signal = total.transpose(1, 2, 3, 0) / (probes_followed * (synapses // groups))
    return Curves(ages, signal, power / max(counted, 1), burn)
