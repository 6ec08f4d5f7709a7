r"""The one-level synapse on m values, exactly: a Markov chain on its values.

A level on the m values :math:`v_i = -1 + 2i/(m-1)` written with strength w in direction
d moves v to :math:`y = \mathrm{clip}(v + d w, -1, 1)`, rounded up to the next value with
probability :math:`(y - v_{\lfloor y \rfloor}) / \Delta` and down otherwise (unbiased,
:math:`\Delta = 2/(m-1)`): a transition matrix :math:`T_d`. Under random writes
:math:`T = (T_+ + T_-)/2`, with stationary law :math:`\pi`; a memory written at age 0
(its write included) has

.. math:: s(a) = E[d_0 w_a] = \tfrac12 (\pi T_+ - \pi T_-)\, T^a \cdot v,

and the power is :math:`E[w^2] = \pi \cdot v^2`. This is what the Monte Carlo of
:mod:`.writes` and :mod:`.coupled` estimate for ``simple-m`` (and, with m = 2, the binary
synapse): their tests' oracle.
"""

from __future__ import annotations

import numpy as np

__all__ = ["one_level_moves", "one_level_signal"]


def one_level_moves(m: int, write: float) -> tuple[np.ndarray, np.ndarray]:
    """:math:`(T_+, T_-)`, each (m, m): a write of ``write`` up and down, clipped to
    [-1, 1] and rounded without bias onto the m values."""
    v = np.linspace(-1.0, 1.0, m)
    h = 2.0 / (m - 1)
    moves = []
    for d in (1.0, -1.0):
        t = np.zeros((m, m))
        for i, x in enumerate(v):
            y = min(max(x + d * write, -1.0), 1.0)
            lo = min(int(np.floor((y + 1.0) / h + 1e-9)), m - 1)
            up = (y - v[lo]) / h if lo < m - 1 else 0.0
            t[i, lo] += 1.0 - up
            if up > 0:
                t[i, lo + 1] += up
        moves.append(t)
    return moves[0], moves[1]


def one_level_signal(m: int, write: float, ages: np.ndarray) -> tuple[np.ndarray, float]:
    """The signal :math:`s(a)` at ``ages`` (increasing whole steps) and the power
    :math:`E[w^2]`, exactly."""
    up, down = one_level_moves(m, write)
    step = 0.5 * (up + down)
    values, vectors = np.linalg.eig(step.T)
    pi = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
    pi /= pi.sum()
    v = np.linspace(-1.0, 1.0, m)
    diff, out, age = 0.5 * (pi @ up - pi @ down), np.zeros(len(ages)), 0
    for k, a in enumerate(ages):
        for _ in range(int(a) - age):
            diff = diff @ step
        age = int(a)
        out[k] = diff @ v
    return out, float(pi @ v**2)
