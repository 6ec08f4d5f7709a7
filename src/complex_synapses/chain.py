r"""The beaker chain of the Benna-Fusi complex synapse, as pure functions.

Every trainable scalar :math:`w` is the first of a chain of ``n`` beakers
:math:`u_1 = w, u_2, \dots, u_n`, with a reservoir :math:`u_{n+1} = 0`:

.. math::

    C_k \frac{du_k}{dt} = g_{k-1,k} (u_{k-1} - u_k) + g_{k,k+1} (u_{k+1} - u_k),
    \qquad g_{0,1} = 0.

With ``x = (beta / alpha) ** (1 / (2n - 2))`` the capacities are ``C_k = x**(k-1)`` and
the tube widths ``g_{k,k+1} = x**(-(k-1)) / alpha``, so that the timescale of beaker
``k``, ``C_k / g_{k,k+1} = alpha * x**(2(k-1))``, runs from ``alpha`` to ``beta``.
``n == 1`` is plain exponential decay (``C_1 = 1``, ``g_{1,2} = 1 / beta``).

Time ``t`` here is in whatever unit ``alpha`` and ``beta`` are in (iterations by
default in the optimizer). The chain is linear, ``du/dt = -A u``, so it has an exact
propagator ``P(dt) = expm(-A dt)``. ``A = C^{-1} L`` with ``L`` symmetric positive
definite (the leak into the reservoir makes it definite), so ``A`` is diagonalised
stably through the symmetric matrix ``C^{-1/2} L C^{-1/2}``.

Everything here is float64 NumPy on the host: these are n x n matrices computed
once per setting; the per-element work lives in :mod:`complex_synapses.step.kernels`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

__all__ = [
    "ChainConstants",
    "chain_constants",
    "generator",
    "propagator",
    "euler_coefficients",
    "impulse_response",
    "weight_response",
    "response_energy",
    "max_rate",
    "validate_chain",
    "MAX_TIMESCALE_RATIO",
    "ChainSetting",
    "check_bound",
    "level_energies",
    "TIME_UNITS",
    "INTEGRATORS",
    "INITS",
]


@dataclass(frozen=True)
class ChainConstants:
    """The constants of one chain: capacities ``C`` (n,), tubes ``g`` (n,) with
    ``g[k] = g_{k+1,k+2}`` (``g[n-1]`` is the leak into the reservoir), and the
    timescales ``tau = C / g`` (n,), all in the time unit of alpha and beta."""

    n_beakers: int
    alpha: float
    beta: float
    C: np.ndarray
    g: np.ndarray

    @property
    def timescales(self) -> np.ndarray:
        return self.C / self.g


# Beyond this ratio of timescales the chain's float64 eigendecomposition loses its
# accuracy (at 1e20 the propagator's entries exceed 1) or fails outright.
MAX_TIMESCALE_RATIO = 1e12


def validate_chain(n_beakers: object, alpha: object, beta: object) -> None:
    """Raise TypeError / ValueError naming the argument if the chain is not valid or
    cannot be computed in float64 (``beta / alpha`` above ``MAX_TIMESCALE_RATIO``)."""
    _check_arguments(n_beakers, alpha, beta)
    if n_beakers >= 2 and beta / alpha > MAX_TIMESCALE_RATIO:
        raise ValueError(
            f"beta / alpha must be <= {MAX_TIMESCALE_RATIO:g} (the chain is not computable in float64 "
            f"beyond), got alpha={alpha!r}, beta={beta!r}"
        )
    if n_beakers >= 1:
        _eigen(n_beakers, float(alpha), float(beta))


def _check_arguments(n_beakers: object, alpha: object, beta: object) -> None:
    if isinstance(n_beakers, bool) or not isinstance(n_beakers, int):
        raise TypeError(f"n_beakers must be an int >= 0, got {n_beakers!r}")
    if n_beakers < 0:
        raise ValueError(f"n_beakers must be an int >= 0, got {n_beakers}")
    for name, value in (("alpha", alpha), ("beta", beta)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a finite number > 0, got {value!r}")
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    if n_beakers >= 2 and alpha > beta:
        raise ValueError(
            f"alpha (the shortest timescale) must be <= beta (the longest) when "
            f"n_beakers >= 2, got alpha={alpha!r}, beta={beta!r}"
        )


TIME_UNITS = ("iteration", "lr")  # what alpha and beta count: steps, or the base's step size
INTEGRATORS = ("exact", "euler")  # the exact propagator P(dt), or the original's forward Euler
INITS = ("same", "zero")  # hidden levels start as copies of the weight, or at 0
# The most values a grid may have: beyond 2^53 values on [-B, B] the spacing is below
# float64's resolution at B, and the C step's int64 index of a value overflows at 2^63.
MAX_GRID_VALUES = 2**53


def check_bound(bound: Any, grid_values: Any, grid_name: str = "grid_values") -> None:
    """Raise TypeError / ValueError naming ``bound`` or the grid's option (``grid_name``:
    ``grid_values`` here, ``--grid-values`` on the command line) if not allowed."""
    if bound is not None:
        each = bound if isinstance(bound, tuple) and bound else (bound,)
        if any(isinstance(b, bool) or not isinstance(b, (int, float)) for b in each):
            raise TypeError(f"bound must be a finite number > 0 or None, got {bound!r} (or a tuple of them)")
        if any(not math.isfinite(b) or b <= 0 for b in each):
            raise ValueError(f"bound must be a finite number > 0 or None, got {bound!r} (or a tuple of them)")
    if grid_values is not None:
        if isinstance(grid_values, bool) or not isinstance(grid_values, int):
            raise TypeError(f"{grid_name} must be an integer >= 2 or None, got {grid_values!r}")
        if grid_values < 2:
            raise ValueError(f"{grid_name} must be an integer >= 2 or None, got {grid_values!r}")
        if grid_values > MAX_GRID_VALUES:
            raise ValueError(
                f"{grid_name} must be at most 2^53 (a finer grid is below float64's resolution: "
                f"leave it None for continuous levels), got {grid_values!r}"
            )
        if bound is None:
            raise ValueError(f"{grid_name} needs a bound: the values are evenly spaced in [-bound, bound]")


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")


@dataclass(frozen=True)
class ChainSetting:
    """The chain of one parameter group, as a value: ``n_beakers`` levels with timescales
    from ``alpha`` to ``beta`` (in ``time_unit``: iterations, or the base optimizer's step
    size), integrated by ``integrator``, hidden levels started by ``init``, and every level
    kept in [-``bound``, ``bound``], on ``grid_values`` evenly spaced values where given;
    ``bound`` a tuple gives each level a range of its own, the weight's first (one value
    for each of the ``max(n_beakers, 1)`` levels).

    :meth:`validate` raises TypeError / ValueError naming the first field that is not
    allowed; whether ``time_unit="lr"`` suits a base optimizer is the step's to say
    (:func:`complex_synapses.step.bases.check_time_unit`)."""

    n_beakers: int
    alpha: float
    beta: float
    init: str = "same"
    time_unit: str = "iteration"
    integrator: str = "exact"
    bound: float | tuple[float, ...] | None = None
    grid_values: int | None = None

    def validate(self, grid_name: str = "grid_values") -> ChainSetting:
        """This setting, checked (``grid_name``: the grid's name in the message, e.g. the
        command line's ``levels``)."""
        validate_chain(self.n_beakers, self.alpha, self.beta)
        _check_choice("init", self.init, INITS)
        _check_choice("time_unit", self.time_unit, TIME_UNITS)
        _check_choice("integrator", self.integrator, INTEGRATORS)
        check_bound(self.bound, self.grid_values, grid_name)
        levels = max(self.n_beakers, 1)
        if isinstance(self.bound, tuple) and len(self.bound) != levels:
            raise ValueError(
                f"bound as a tuple needs one range per level, {levels} for n_beakers={self.n_beakers}, "
                f"got {len(self.bound)}"
            )
        return self

    def constants(self) -> ChainConstants:
        """Its capacities, tubes and timescales (:func:`chain_constants`)."""
        return chain_constants(self.n_beakers, self.alpha, self.beta)


@lru_cache(maxsize=256)
def chain_constants(n_beakers: int, alpha: float, beta: float) -> ChainConstants:
    """Capacities and tube widths of the chain (see the module docstring)."""
    _check_arguments(n_beakers, alpha, beta)
    n, alpha, beta = n_beakers, float(alpha), float(beta)
    if n == 0:
        return ChainConstants(0, alpha, beta, np.zeros(0), np.zeros(0))
    if n == 1:
        return ChainConstants(1, alpha, beta, np.ones(1), np.array([1.0 / beta]))
    x = (beta / alpha) ** (1.0 / (2 * n - 2))
    k = np.arange(n, dtype=np.float64)
    return ChainConstants(n, alpha, beta, x**k, x ** (-k) / alpha)


def generator(n_beakers: int, alpha: float, beta: float, leak: bool = True) -> np.ndarray:
    """The n x n matrix ``A`` with ``du/dt = -A u``. ``leak=False`` closes the tube
    from the last beaker to the reservoir (then equal beakers stay equal)."""
    c = chain_constants(n_beakers, alpha, beta)
    n = c.n_beakers
    g_in = np.concatenate([[0.0], c.g[:-1]]) if n else np.zeros(0)  # g_{k-1,k}
    g_out = c.g.copy()
    if n and not leak:
        g_out[-1] = 0.0
    A = np.diag((g_in + g_out) / c.C) if n else np.zeros((0, 0))
    for k in range(n - 1):
        A[k, k + 1] = -c.g[k] / c.C[k]
        A[k + 1, k] = -c.g[k] / c.C[k + 1]
    return A


@dataclass(frozen=True)
class _Eigen:
    rates: np.ndarray  # (n,) eigenvalues of A, all > 0
    right: np.ndarray  # (n, n) A = right @ diag(rates) @ left
    left: np.ndarray


@lru_cache(maxsize=256)
def _eigen(n_beakers: int, alpha: float, beta: float) -> _Eigen:
    c = chain_constants(n_beakers, alpha, beta)
    s = np.sqrt(c.C)
    # C^{1/2} A C^{-1/2} = C^{-1/2} L C^{-1/2} is symmetric.
    sym = generator(n_beakers, alpha, beta) * s[:, None] / s[None, :]
    try:
        rates, q = np.linalg.eigh(0.5 * (sym + sym.T))
    except np.linalg.LinAlgError:
        rates = np.full(n_beakers, np.nan)
    if not (np.all(np.isfinite(rates)) and np.all(rates > 0)):
        raise ValueError(
            f"the chain with n_beakers={n_beakers}, alpha={alpha!r}, beta={beta!r} is not computable in "
            "float64 (its rates overflow): choose alpha and beta nearer to 1"
        )
    return _Eigen(rates, q / s[:, None], q.T * s[None, :])


def max_rate(n_beakers: int, alpha: float, beta: float) -> float:
    """The largest rate of the chain, ``lambda_max`` (forward Euler with step dt
    overshoots once ``dt * lambda_max > 1`` and diverges once it exceeds 2)."""
    rates = _eigen(n_beakers, alpha, beta).rates
    return float(rates.max()) if rates.size else 0.0


def propagator(n_beakers: int, alpha: float, beta: float, dt: float) -> np.ndarray:
    """The exact propagator ``P = expm(-A dt)`` (n x n, float64): ``u(t+dt) = P u(t)``
    when no learning signal arrives. Stable for every dt >= 0."""
    if not math.isfinite(dt) or dt < 0:
        raise ValueError(f"dt must be a finite number >= 0, got {dt!r}")
    e = _eigen(n_beakers, alpha, beta)
    return (e.right * np.exp(-e.rates * dt)[None, :]) @ e.left


def euler_coefficients(n_beakers: int, alpha: float, beta: float, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Forward-Euler coefficients ``(a, b)``, each (n,): one Euler update of beaker k
    is ``u_k += a[k] * (u_{k-1} - u_k) + b[k] * (u_{k+1} - u_k)`` with
    ``a[k] = dt g_{k-1,k} / C_k`` and ``b[k] = dt g_{k,k+1} / C_k``."""
    c = chain_constants(n_beakers, alpha, beta)
    g_in = np.concatenate([[0.0], c.g[:-1]]) if c.n_beakers else np.zeros(0)
    return dt * g_in / c.C, dt * c.g / c.C


def impulse_response(n_beakers: int, alpha: float, beta: float, t: np.ndarray | float) -> np.ndarray:
    """Every beaker's level at times ``t`` after a unit kick to ``u_1`` at t=0, with
    the chain at rest (all zeros) before: ``expm(-A t) e_1``. Shape ``(len(t), n)``.
    Exact for any t, computed without stepping."""
    t = np.atleast_1d(np.asarray(t, dtype=np.float64))
    if np.any(~np.isfinite(t)) or np.any(t < 0):
        raise ValueError("t must hold finite times >= 0")
    e = _eigen(n_beakers, alpha, beta)
    # u(t) = right @ (exp(-rates t) * left[:, 0])
    return (np.exp(-np.outer(t, e.rates)) * e.left[:, 0][None, :]) @ e.right.T


def _weight_modes(n_beakers: int, alpha: float, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """``(rates, weights)`` with ``w(t) = sum_k weights_k exp(-rates_k t)`` after a unit
    kick; the weights are positive (``e_1^T expm(-A t) e_1`` of a symmetrisable A)."""
    e = _eigen(n_beakers, alpha, beta)
    return e.rates, e.right[0, :] * e.left[:, 0]


def weight_response(n_beakers: int, alpha: float, beta: float, t: np.ndarray | float) -> np.ndarray:
    """The first beaker (the weight) alone at times ``t`` after a unit kick: the first
    column of :func:`impulse_response`, n times cheaper. Shape ``(len(t),)``."""
    t = np.atleast_1d(np.asarray(t, dtype=np.float64))
    if np.any(~np.isfinite(t)) or np.any(t < 0):
        raise ValueError("t must hold finite times >= 0")
    rates, weights = _weight_modes(n_beakers, alpha, beta)
    out = np.empty(len(t))
    for start in range(0, len(t), 1 << 15):  # bounded memory for any number of times
        out[start : start + (1 << 15)] = np.exp(-np.outer(t[start : start + (1 << 15)], rates)) @ weights
    return out


def response_energy(n_beakers: int, alpha: float, beta: float, dt: float = 1.0) -> float:
    """``sum_{a >= 0} w(a dt)^2``, exactly: w(t)^2 is a sum of exponentials over pairs of
    modes, so the sum over a is a geometric series per pair. It is the noise variance
    (times N) that all memories ever stored leave on a tracked one."""
    rates, weights = _weight_modes(n_beakers, alpha, beta)
    pair = rates[:, None] + rates[None, :]
    return float(weights @ (1.0 / -np.expm1(-pair * dt)) @ weights)


def level_energies(n_beakers: int, alpha: float, beta: float, dt: float = 1.0) -> np.ndarray:
    """``sum_{a >= 0} u_k(a dt)^2`` for every level k after a unit kick to ``u_1``,
    exactly, as :func:`response_energy` for the first (each level is a sum of the same
    exponentials, ``u_k(t) = sum_i R_ki L_i1 exp(-r_i t)``). Under a stream of independent
    unit kicks into ``u_1``, one every ``dt``, level k's stationary variance: the ranges
    of a chain whose levels each span the same multiple of their own spread."""
    e = _eigen(n_beakers, alpha, beta)
    weights = e.right * e.left[:, 0][None, :]  # (levels, modes)
    pair = 1.0 / -np.expm1(-(e.rates[:, None] + e.rates[None, :]) * dt)
    return np.einsum("ki,ij,kj->k", weights, pair, weights)
