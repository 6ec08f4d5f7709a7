r"""The one-level synapse, exactly: a Markov chain on the values it takes.

A level on the m values :math:`v_i = -1 + 2i/(m-1)` written with strength w in direction
d moves v to :math:`y = \mathrm{clip}(v + d w, -1, 1)`, rounded up to the next value with
probability :math:`(y - v_{\lfloor y \rfloor}) / \Delta` and down otherwise (unbiased,
:math:`\Delta = 2/(m-1)`): a transition matrix :math:`T_d`. Under random writes
:math:`T = (T_+ + T_-)/2`, with stationary law :math:`\pi`; a memory written at age 0
(its write included) has

.. math:: s(a) = E[d_0 w_a] = \tfrac12 (\pi T_+ - \pi T_-)\, T^a \cdot v,

and the power is :math:`E[w^2] = \pi \cdot v^2`. A continuous level (no grid) is the
same chain on the values it takes once it has been at a bound: :math:`1 - k w` and
:math:`-1 + k w` in [-1, 1] (a step of w from one of them lands on another, or is
clipped to a bound), where every start ends up. A grid of more than
:data:`EXACT_VALUES` values is taken as continuous from :data:`CONTINUOUS_VALUES` on
(its rounding, of variance at most :math:`\Delta^2/4` a step, is then under 10^-4 of a
write of 1/64 of a 16-value spacing, the smallest of the grids) and has no exact chain
between the two.

This is what the Monte Carlo of :mod:`.writes` and :mod:`.coupled` estimate for
``simple``, ``simple-m`` and ``simple-bits`` (their tests' oracle), and what the
``exact`` estimator gives them (:func:`exact_curves`); the one-level chain's leak of
10^-12 a step is left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .writes import Curves

if TYPE_CHECKING:  # scipy is imported where a chain is built: every command's parser imports this module
    import scipy.sparse as sp

__all__ = [
    "EXACT_VALUES",
    "CONTINUOUS_VALUES",
    "exact",
    "one_level_moves",
    "one_level_signal",
    "exact_curves",
]

EXACT_VALUES = 4096  # a grid of at most this many values: the chain on its values
CONTINUOUS_VALUES = 2**16  # a grid of at least this many: the continuous level's chain


def exact(levels: int | None) -> bool:
    """Whether a one-level synapse on ``levels`` values (None: continuous) has an exact
    chain here."""
    return levels is None or levels <= EXACT_VALUES or levels >= CONTINUOUS_VALUES


def _values(levels: int | None, write: float) -> np.ndarray:
    """The values the level takes: its grid, or the continuous level's two lattices."""
    if levels is not None and levels <= EXACT_VALUES:
        return np.linspace(-1.0, 1.0, levels)
    k = np.arange(int(np.floor(2.0 / write + 1e-9)) + 1)
    both = np.concatenate([1.0 - k * write, -1.0 + k * write, [-1.0, 1.0]])
    both = np.sort(both[(both >= -1.0 - 1e-12) & (both <= 1.0 + 1e-12)].clip(-1.0, 1.0))
    return both[np.concatenate([[True], np.diff(both) > 1e-12])]


def one_level_moves(levels: int | None, write: float) -> tuple[np.ndarray, sp.csr_matrix, sp.csr_matrix]:
    """The values v and :math:`(T_+, T_-)` (sparse, rows summing to 1): a write of
    ``write`` up and down, clipped to [-1, 1] and, on a grid, rounded without bias."""
    import scipy.sparse as sp

    v = _values(levels, write)
    rows = np.arange(len(v))
    moves = []
    for d in (1.0, -1.0):
        y = np.clip(v + d * write, -1.0, 1.0)
        if levels is not None and levels <= EXACT_VALUES:
            h = 2.0 / (levels - 1)
            lo = np.minimum(np.floor((y + 1.0) / h + 1e-9).astype(int), levels - 1)
            up = np.where(lo < levels - 1, (y - v[lo]) / h, 0.0).clip(0.0, 1.0)
            hi = np.minimum(lo + 1, levels - 1)
            where = (np.tile(rows, 2), np.concatenate([lo, hi]))
            t = sp.csr_matrix((np.concatenate([1 - up, up]), where), shape=(len(v), len(v)))
        else:  # every target is one of the values, up to rounding of the arithmetic
            to = np.clip(np.searchsorted(v, y - 1e-9), 0, len(v) - 1)
            t = sp.csr_matrix((np.ones(len(v)), (rows, to)), shape=(len(v), len(v)))
        moves.append(t.tocsr())
    return v, moves[0], moves[1]


def _stationary(step: sp.csr_matrix) -> np.ndarray:
    """The law pi with pi T = pi, sum 1 (the chain is irreducible: a bound is reached)."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import spsolve

    k = step.shape[0]
    a = (step.T - sp.identity(k)).tolil()
    a[k - 1, :] = np.ones(k)
    b = np.zeros(k)
    b[k - 1] = 1.0
    return np.asarray(spsolve(a.tocsc(), b)).ravel()


def one_level_signal(levels: int | None, write: float, ages: np.ndarray) -> tuple[np.ndarray, float]:
    """The signal :math:`s(a)` at ``ages`` (increasing whole steps) and the power
    :math:`E[w^2]` of one level on ``levels`` values (None: continuous), exactly."""
    if not exact(levels):
        raise ValueError(
            f"no exact chain for a grid of {levels} values ({EXACT_VALUES + 1} to {CONTINUOUS_VALUES - 1})"
        )
    v, up, down = one_level_moves(levels, write)
    step = (0.5 * (up + down)).tocsr()
    pi = _stationary(step)
    back = step.T.tocsr()
    diff, out, age = 0.5 * (up.T @ pi - down.T @ pi), np.zeros(len(ages)), 0
    for k, a in enumerate(ages):
        for _ in range(int(a) - age):
            diff = back @ diff
        age = int(a)
        out[k] = diff @ v
    return out, float(pi @ v**2)


def exact_curves(
    chains: list[tuple[int, float, float]], writes: tuple[float, ...], levels: int | None, ages, groups: int
) -> Curves:
    """:class:`.writes.Curves` of one-level ``chains`` from the exact chain: every group
    holds the same curve (no Monte Carlo error), and no burn-in is needed."""
    if any(c[0] != 1 for c in chains):
        raise ValueError(f"the exact chain is for one-level synapses, got chains {chains}")
    signal = np.zeros((groups, len(chains), len(writes), len(ages)))
    power = np.zeros((len(chains), len(writes)))
    for k, write in enumerate(writes):
        curve, power[:, k] = one_level_signal(levels, write, np.asarray(ages))
        signal[:, :, k, :] = curve
    return Curves(np.asarray(ages), signal, power, 0)
