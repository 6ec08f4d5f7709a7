r"""A variance-reduced estimator of the signal under random writes: coupled copies.

A memory written at step :math:`t_0` has direction :math:`\xi` (random :math:`\pm 1` per
synapse), independent of the synapses' state before it and of every later write, so its
signal at age a is

.. math:: s(a) = E[\xi\, w(t_0 + a)] = E[(w^+(t_0 + a) - w^-(t_0 + a)) / 2],

with :math:`w^\pm` the synapse after writing :math:`\pm \xi` into the same state, every
later pattern and every later rounding number shared. The plain estimator
(:func:`.writes.signal_curves`) averages :math:`\xi w`, whose spread is the whole
:math:`\sqrt{E[w^2]}`, for a mean that at the ages where a lifetime is read is a few
thousandths of it. Here a synapse's copy :math:`w^-` is followed beside it: where the
two hold the same value in every level they stay together from then on (the same
inputs, the same numbers), contribute nothing more and are dropped; the difference
:math:`(w^+ - w^-)/2` is zero on most synapses and small on the rest, and its variance
is hundreds of times below the plain estimator's at those ages. The work per memory is
the number of steps its copies live; for the same standard error at the lifetimes of
N = 10^3 to 3 x 10^4 it is 18 to 104 times less work in all
(``benchmarks/capacity_estimator.py``, docs/lab.md). Memories written a few steps apart
on one synapse have correlated differences, so one in ``stride`` is followed (16 in a
capacity study); once the last is written and every copy is back with its synapse, the
signal is zero at every older age and the run stops.

The population is stepped as :class:`~complex_synapses.ComplexSynapse` steps it with SGD
(:func:`step_levels`): the exact propagator, the write into the first level, every
level clipped to its range and, on a grid, rounded without bias from the optimizer's
own counter-based stream, drawn at each synapse's own index
(:func:`complex_synapses.step.kernels.bits_at`); a copy draws the numbers of the synapse
it follows. The population's levels equal the optimizer's bit for bit (tested), so the
estimate is of the real optimizer's synapses. Levels are float32 or float64, as the
plain estimator's.

Random writes only: with perceptron writes a write depends on every synapse's state,
and a copy of one synapse would need copies of all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..chain import propagator
from ..step import chosen, native
from ..step.bounds import round_key
from ..step.kernels import bits_at, bits_from, element_hash, round_onto_grid, to_uniform
from .writes import Curves, burn_in, grid_of, level_ranges, start_values

__all__ = ["Dynamics", "dynamics", "settle_", "propagated", "step_levels", "uniforms_at", "coupled_curves"]

TICK = 500  # steps between progress reports


@dataclass(frozen=True)
class Dynamics:
    """One chain's step on columns of levels: the propagator ``P`` (n, n), each level's
    range ``bound`` (n, 1), its grid's ``spacing`` (n, 1; None for continuous levels),
    all in the levels' dtype, and the rounding stream's ``key``."""

    P: Tensor
    bound: Tensor
    spacing: Tensor | None
    key: int


def dynamics(
    chain: tuple[int, float, float], levels: int | None, ranged: bool, key: int, dtype: torch.dtype
) -> Dynamics:
    """The step of ``chain`` (n, alpha, beta) with levels on ``levels`` values (None:
    continuous) of [-1, 1], or of each level's own range where ``ranged``
    (:func:`.writes.level_ranges`), rounded from the stream keyed ``key``; levels of
    ``dtype``."""
    n, alpha, beta = chain
    P = torch.from_numpy(propagator(n, alpha, beta, 1.0)).to(dtype)
    ranges = level_ranges(chain) if ranged else (1.0,) * n
    bound = torch.tensor([[float(b)] for b in ranges], dtype=dtype)
    m = grid_of(levels)
    # 2 B / (m - 1) in the optimizer's own operations, so that the values agree bit for bit
    spacing = None if m is None else 2 * bound / (torch.tensor(float(m), dtype=dtype) - 1)
    return Dynamics(P, bound, spacing, key)


def settle_(x: Tensor, dyn: Dynamics, uniforms: Tensor | None) -> Tensor:
    r"""Levels ``x`` (n, k), in place, clipped to their ranges and, on a grid, rounded
    without bias from each column's uniform numbers (``uniforms`` (n, k), float32):
    ``kernels.bound_``'s operations in its order (:func:`~complex_synapses.step.kernels.round_onto_grid`)."""
    torch.clamp(x, -dyn.bound, dyn.bound, out=x)
    if dyn.spacing is None:
        return x
    return x.copy_(round_onto_grid(x, dyn.bound, dyn.spacing, uniforms.to(x.dtype)))


def uniforms_at(dyn: Dynamics, columns: Tensor, count: int) -> Tensor | None:
    """The rounding numbers (n, k) of the stream's elements ``columns`` at step ``count``
    (the optimizer's counter: 1 at its first step); None for continuous levels."""
    if dyn.spacing is None:
        return None
    level = torch.arange(dyn.P.shape[0], dtype=torch.int64)[:, None]
    return to_uniform(bits_at(columns[None, :], dyn.key, count, level))


def propagated(u: Tensor, kick: Tensor, dyn: Dynamics) -> Tensor:
    """One step of SGD under the chain before the levels are settled: ``P u``, ``kick``
    (k,) added to the first level (lr 1, gradient -kick). ``u`` (n, k) is left unchanged."""
    x = torch.mm(dyn.P, u)
    x[0] -= -kick  # the optimizer's w - lr * g with g = -kick, bit for bit
    return x


def step_levels(u: Tensor, kick: Tensor, dyn: Dynamics, uniforms: Tensor | None) -> Tensor:
    """One step of SGD under the chain: :func:`propagated`, then :func:`settle_`."""
    return settle_(propagated(u, kick, dyn), dyn, uniforms)


@dataclass
class _Copies:
    """The coupled copies alive, in the order they were written: levels (n, k), the
    column each follows, the step it was written, and the memory's direction there."""

    levels: Tensor
    column: Tensor
    born: Tensor
    sign: Tensor

    def keep(self, mask: Tensor) -> _Copies:
        return _Copies(self.levels[:, mask], self.column[mask], self.born[mask], self.sign[mask])

    def join(self, other: _Copies) -> _Copies:
        return _Copies(
            torch.cat([self.levels, other.levels], 1),
            torch.cat([self.column, other.column]),
            torch.cat([self.born, other.born]),
            torch.cat([self.sign, other.sign]),
        )


@torch.no_grad()
def coupled_curves(
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
    stride: int = 4,
    dtype: torch.dtype = torch.float32,
    ranged: bool = False,
) -> Curves:
    """The signal curves of :func:`.writes.signal_curves` (random writes), estimated from
    coupled copies: ``synapses`` synapses per (chain, write) setting store ``burn`` +
    ``steps`` + max(ages) memories; one memory in ``stride`` of ``steps`` is followed on
    every synapse by its copy written the other way. Every chain sees the same patterns
    (common random numbers). ``burn`` None: :func:`.writes.burn_in`."""
    if synapses % groups:
        raise ValueError(f"synapses ({synapses}) must be a multiple of groups ({groups})")
    burn = burn_in(chains, writes, levels) if burn is None else burn
    signal = np.zeros((groups, len(chains), len(writes), len(ages)))
    power = np.zeros((len(chains), len(writes)))
    for c, chain in enumerate(chains):
        gen = torch.Generator().manual_seed(seed)  # the same patterns for every chain
        dyn = dynamics(chain, levels, ranged, round_key(seed, c), dtype)
        run = _Run(dyn, writes, ages, synapses, groups, burn, steps, stride, levels)
        signal[:, c], power[c] = run.follow(levels, gen, _share(tick, len(chains)))
    return Curves(ages, signal, power, burn)


def _share(tick: Callable[[int], None] | None, parts: int) -> Callable[[int], None] | None:
    """A tick that reports 1/``parts`` of the memories it is given (whole numbers, none
    lost): the chains run one after another, and a batch reports its memories once."""
    if tick is None:
        return None
    owed = [0]

    def share(k: int) -> None:
        owed[0] += k
        tick(owed[0] // parts)
        owed[0] %= parts

    return share


class _Run:
    """One chain's population of ``synapses`` columns per write, its copies, and the
    sums of their differences at the ages followed."""

    def __init__(self, dyn, writes, ages, synapses, groups, burn, steps, stride, levels) -> None:
        self.dyn, self.S, self.groups = dyn, synapses, groups
        self.burn, self.steps, self.stride = burn, steps, stride
        W, dtype, n = len(writes), dyn.P.dtype, dyn.P.shape[0]
        self.columns = torch.arange(W * synapses, dtype=torch.int64)
        # [B, m] of each level for the C kernel, where this machine has it (m unread when continuous)
        m = float(grid_of(levels) or 2)
        self.limit = torch.cat([dyn.bound, torch.full_like(dyn.bound, m)], 1)
        self.lib = native.library() if native.supports([self.limit], n) else None
        # torch's path: the rounding stream's part that is the same at every step, drawn once
        # (kernels.bits_from); the C kernel draws the whole stream itself
        level = torch.arange(n, dtype=torch.int64)[:, None]
        torch_rounds = dyn.spacing is not None and self.lib is None
        self.first = element_hash(self.columns[None, :], dyn.key, level) if torch_rounds else None
        self.strength = torch.tensor(writes, dtype=dtype).repeat_interleave(synapses)
        self.group = (self.columns % synapses) // (synapses // groups) + groups * (self.columns // synapses)
        self.ages = [int(a) for a in ages]
        self.total = torch.zeros(W * groups * len(ages), dtype=torch.float64)
        self.power = torch.zeros(W, dtype=torch.float64)
        self.births = 0

    def birth(self, t: int) -> bool:
        return self.burn <= t < self.burn + self.steps and (t - self.burn) % self.stride == 0

    def follow(self, levels, gen, tick) -> tuple[np.ndarray, np.ndarray]:
        """Step the population and the copies to the end: the signal (groups, writes,
        ages) and the power (writes,)."""
        dyn, S = self.dyn, self.S
        u = start_values((dyn.P.shape[0], len(self.columns)), levels, gen, dyn.P.dtype) * dyn.bound
        copies = _Copies(u[:, :0], self.columns[:0], self.columns[:0], self.strength[:0])
        end = self.burn + self.steps + max(self.ages)
        told = 0  # memories reported to tick
        for t in range(end):
            xi = (torch.randint(0, 2, (S,), generator=gen) * 2 - 1).to(u.dtype).repeat(len(self.power))
            kick = self.strength * xi
            birth = self.birth(t)
            x = torch.mm(dyn.P, u)
            if copies.column.numel():  # step_levels, each copy drawing its synapse's numbers
                moved = propagated(copies.levels, kick[copies.column], dyn)
                copies.levels = self._settle(moved, copies.column, t)
            if birth:
                other = x.clone()
                other[0] -= kick  # the memory written the other way
                born = torch.full_like(self.columns, t)
                new = _Copies(self._settle(other, self.columns, t), self.columns, born, xi)
            x[0] -= -kick
            u = self._settle(x, self.columns, t)
            if birth:
                copies = self._compact(copies, u, t).join(new)
                self.power += (u[0].double() ** 2).view(-1, S).mean(1)
                self.births += 1
            elif t >= self.burn + self.steps and (t - self.burn) % self.stride == 0:
                copies = self._compact(copies, u, t)
                if not copies.column.numel():  # every copy back with its synapse: s = 0 from here on
                    break
            self._record(copies, u, t)
            if tick is not None and t - told >= TICK:
                tick(t - told)
                told = t
        if tick is not None:
            tick(end - told)  # the memories a stop left out count as done
        W, A = len(self.power), len(self.ages)
        per = max(self.births, 1) * (S // self.groups)
        signal = (self.total.view(W, self.groups, A) / per).permute(1, 0, 2).numpy()
        return signal, (self.power / max(self.births, 1)).numpy()

    def _draw(self, columns: Tensor, t: int) -> Tensor | None:
        """The rounding numbers (n, k) of ``columns`` at step ``t`` (counter t + 1)."""
        return (
            None if self.first is None else to_uniform(bits_from(self.first.index_select(1, columns), t + 1))
        )

    def _settle(self, x: Tensor, columns: Tensor, t: int) -> Tensor:
        """:func:`settle_` at step ``t`` on levels ``x`` (n, k), in place, column c drawing
        the numbers of synapse ``columns[c]``: with the optimizer's C kernel where it is
        loaded (``step.chosen.bound_at_call``, bit for bit), else in torch."""
        if self.lib is None:
            return settle_(x, self.dyn, self._draw(columns, t))
        key = None if self.dyn.spacing is None else self.dyn.key
        chosen.bound_at_call(x, columns, self.limit, key, t + 1, self.lib)
        return x

    def _compact(self, copies: _Copies, u: Tensor, t: int) -> _Copies:
        """Drop the copies that hold their synapse's values in every level (they stay
        equal from then on: the same writes, the same rounding numbers) or are as old as
        the oldest age followed."""
        if not copies.column.numel():
            return copies
        differs = u.index_select(1, copies.column).ne(copies.levels).any(0)
        return copies.keep(differs & (t - copies.born <= max(self.ages)))

    def _record(self, copies: _Copies, u: Tensor, t: int) -> None:
        """Add the half difference of each copy from its synapse, times the memory's
        direction, for the memories whose age is one of those followed (copies are in
        the order they were written: each such memory's are one slice)."""
        if not copies.column.numel():
            return
        A = len(self.ages)
        for i, a in enumerate(self.ages):
            if not self.birth(t - a):
                continue
            lo, hi = torch.searchsorted(copies.born, torch.tensor([t - a, t - a + 1])).tolist()
            if lo == hi:
                continue
            col = copies.column[lo:hi]
            diff = (u[0].index_select(0, col) - copies.levels[0, lo:hi]).double()
            self.total.index_add_(0, self.group[col] * A + i, copies.sign[lo:hi].double() * diff / 2)
