"""The synapse model itself: what a complex synapse remembers, computed from the chain.

- Impulse: the weight (and every beaker) after a single kick, exactly (from the chain's
  eigendecomposition, any time, no stepping) and by stepping the real optimizer.
- Memory: N synapses receive a stream of random, uncorrelated +-1 patterns, one per step
  into u_1 (the optimizer's learning signal); the signal-to-noise ratio of one tracked
  memory against its age. The chain is linear, so with h(a) the weight a steps after a
  unit kick, the tracked memory's overlap (1/N) sum_i xi_i w_i has mean h(a) and
  variance (1/N) sum_{other memories} h(age)^2: SNR = h(a) / sqrt(that). Checked by Monte
  Carlo with the optimizer on N synapses.
- Lifetime: the age at which the SNR falls below 1, against N.

Time is in the chain's unit: iterations, or with ``time_unit="lr"`` the learning rate
times the number of steps (each step then also kicks with the learning rate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..chain import impulse_response, response_energy, weight_response
from ..optimizer import ComplexSynapse

__all__ = [
    "Synapse",
    "fit_window",
    "fitted_slope",
    "impulse_exact",
    "impulse_stepped",
    "snr_closed_form",
    "snr_monte_carlo",
    "snr_steady_state",
    "lifetime",
    "best_lifetime",
]


@dataclass(frozen=True)
class Synapse:
    """One complex synapse of the lab: its chain (n beakers, alpha, beta) and how the
    optimizer steps it, ``dt`` chain-time units per step."""

    n_beakers: int
    alpha: float
    beta: float
    time_unit: str = "iteration"
    integrator: str = "exact"
    lr: float = 1.0

    @property
    def dt(self) -> float:
        return 1.0 if self.time_unit == "iteration" else self.lr

    @property
    def kick(self) -> float:
        """The size of one learning signal: SGD's lr times a unit gradient."""
        return self.lr

    def optimizer(self, params) -> ComplexSynapse:
        return ComplexSynapse(
            params,
            torch.optim.SGD,
            lr=self.lr,
            n_beakers=self.n_beakers,
            alpha=self.alpha,
            beta=self.beta,
            init="zero",
            time_unit=self.time_unit,
            integrator=self.integrator,
        )

    def h(self, steps: np.ndarray) -> np.ndarray:
        """The weight ``steps`` steps after a kick (a kick of the optimizer's size)."""
        return self.kick * weight_response(self.n_beakers, self.alpha, self.beta, np.asarray(steps) * self.dt)


def fit_window(alpha: float, beta: float) -> tuple[float, float]:
    """The middle half of [alpha, beta] on a log scale: where the power law holds."""
    r = beta / alpha
    return alpha * r**0.25, alpha * r**0.75


def fitted_slope(t: np.ndarray, w: np.ndarray, alpha: float, beta: float) -> float:
    """Least-squares slope of log w against log t over :func:`fit_window`."""
    lo, hi = fit_window(alpha, beta)
    sel = (t >= lo) & (t <= hi) & (w > 0)
    if sel.sum() < 3:
        raise ValueError(
            f"too few times in the fit window [{lo:g}, {hi:g}]; step further or use beta >> alpha"
        )
    return float(np.polyfit(np.log(t[sel]), np.log(w[sel]), 1)[0])


def impulse_exact(n_beakers: int, alpha: float, beta: float, t: np.ndarray) -> np.ndarray:
    """Every beaker at chain times ``t`` after a unit kick to the weight: (len(t), n)."""
    return impulse_response(n_beakers, alpha, beta, t)


@torch.no_grad()
def impulse_stepped(chain: Synapse, steps: int, progress: bool = False) -> np.ndarray:
    """Every beaker after each of ``steps`` optimizer steps, the weight kicked to 1 at the
    start and no learning signal after: (steps + 1, n), row 0 the kick."""
    from tqdm import tqdm

    w = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
    opt = chain.optimizer([w])
    w.grad = torch.zeros_like(w)
    out = np.empty((steps + 1, chain.n_beakers))
    out[0] = opt.levels(w)[:, 0].numpy()
    for k in tqdm(range(1, steps + 1), desc="stepping", unit="step", disable=not progress, mininterval=1):
        opt.step()
        out[k] = opt.levels(w)[:, 0].numpy()
    return out


def snr_closed_form(chain: Synapse, n_synapses: int, stored_at: int, read_at: np.ndarray) -> np.ndarray:
    """SNR of the memory stored at step ``stored_at`` (memories at steps 0, 1, 2, ...,
    the chain at rest before step 0), read after steps ``read_at``."""
    read_at = np.asarray(read_at)
    h2 = chain.h(np.arange(read_at.max() + 1)) ** 2
    cum = np.cumsum(h2)  # cum[k] = sum of h(a)^2 for a = 0..k
    signal = chain.h(read_at - stored_at)
    noise_var = (cum[read_at] - signal**2) / n_synapses
    return signal / np.sqrt(noise_var)


def snr_steady_state(chain: Synapse, n_synapses: int, ages: np.ndarray) -> np.ndarray:
    """SNR after a stream that has gone on for ever (all earlier memories present)."""
    signal = chain.h(np.asarray(ages))
    total = chain.kick**2 * response_energy(chain.n_beakers, chain.alpha, chain.beta, chain.dt)
    return signal / np.sqrt(np.maximum(total - signal**2, 1e-300) / n_synapses)


MC_METHODS = ("projected", "full")


@torch.no_grad()
def snr_monte_carlo(
    chain: Synapse,
    n_synapses: int,
    stored_at: int,
    read_at: np.ndarray,
    trials: int = 200,
    seed: int = 0,
    method: str = "projected",
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    r"""SNR (mean / std over ``trials``) of the tracked memory's overlap, from the real
    optimizer, and its standard error (delta method). Every step writes a new random
    +-1 pattern :math:`\xi^k` (SGD, gradient :math:`-\xi^k`).

    ``method="full"`` steps ``trials`` x ``n_synapses`` synapses. ``"projected"``
    (the default) steps one synapse per trial with the same law: the chain is linear,
    so the overlap :math:`\frac1N \sum_i \xi^{tr}_i w_i` is the weight of a single
    chain kicked by :math:`c_k = \frac1N \xi^{tr} \cdot \xi^k`, which is exactly 1 for
    the tracked memory and for every other one an independent
    :math:`(2\,\mathrm{Binomial}(N, 1/2) - N) / N` (the products
    :math:`\xi^{tr}_i \xi^k_i` are independent fair signs). Same distribution of the
    overlap, N times less work."""
    if method not in MC_METHODS:
        raise ValueError(f"method must be one of {', '.join(MC_METHODS)}, got {method!r}")
    from tqdm import tqdm

    gen = torch.Generator().manual_seed(seed)
    shape = (trials, n_synapses) if method == "full" else (trials,)
    w = torch.nn.Parameter(torch.zeros(shape, dtype=torch.float64))
    opt = chain.optimizer([w])
    read_at = np.asarray(read_at)
    overlaps = np.empty((len(read_at), trials))
    reads = {int(k): i for i, k in enumerate(read_at)}
    kicks = _projected_kicks(n_synapses, trials, gen) if method == "projected" else None
    tracked = torch.ones(trials, dtype=torch.float64)
    for k in tqdm(
        range(int(read_at.max()) + 1), desc="Monte Carlo", unit="step", disable=not progress, mininterval=1
    ):
        if method == "full":
            xi = torch.randint(0, 2, shape, generator=gen, dtype=torch.float64) * 2 - 1
            if k == stored_at:
                tracked = xi
        else:
            xi = tracked if k == stored_at else next(kicks)
        w.grad = -xi
        opt.step()
        if k in reads:
            overlaps[reads[k]] = ((tracked * w).sum(1) / n_synapses if method == "full" else w).numpy()
    mean, std = overlaps.mean(1), overlaps.std(1, ddof=1)
    snr = mean / std
    se = np.sqrt(1 / trials + snr**2 / (2 * (trials - 1)))
    return snr, se


def _projected_kicks(n_synapses: int, trials: int, gen: torch.Generator, chunk: int = 4096):
    """Endless (trials,) draws of (2 Binomial(N, 1/2) - N) / N, made ``chunk`` at a time."""
    counts = torch.full((chunk, trials), float(n_synapses), dtype=torch.float64)
    half = torch.full_like(counts, 0.5)
    while True:
        draws = (2 * torch.binomial(counts, half, generator=gen) - n_synapses) / n_synapses
        yield from draws.unbind(0)


def lifetime(chain: Synapse, n_synapses: int, max_steps: float = 1e12) -> float:
    """The age (in steps) at which the steady-state SNR falls below 1; 0 if it starts
    below 1. The weight's response decays monotonically, so bisection finds it."""

    def snr(a: float) -> float:
        return float(snr_steady_state(chain, n_synapses, np.array([a]))[0])

    if snr(0.0) < 1:
        return 0.0
    lo, hi = 0.0, 1.0
    while snr(hi) >= 1:
        lo, hi = hi, hi * 2
        if hi > max_steps:
            return math.inf
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if snr(mid) >= 1 else (lo, mid)
    return lo


def best_lifetime(n_beakers: int, alpha: float, n_synapses: int, betas: np.ndarray) -> tuple[float, float]:
    """The longest lifetime over ``betas`` (beta >= alpha): (lifetime, best beta)."""
    best = (0.0, float(betas[0]))
    for beta in betas:
        if n_beakers >= 2 and beta < alpha:
            continue
        life = lifetime(Synapse(n_beakers, alpha, float(beta)), n_synapses)
        if life > best[0]:
            best = (life, float(beta))
    return best


# Steps the impulse experiment may compute: its arrays hold one float per step, and
# at 10^7 steps they are already ~1 GB in all; lr time with a tiny lr asks for more.
MAX_STEPS = 10**7
# The betas searched for each chain's longest lifetime: 1 to 10^9 steps, 4 a decade.
BETA_GRID = np.logspace(0, 9, 37)


def default_burn_in(chain: Synapse) -> int:
    """Memories stored before the tracked one: 3 beta (the chain near its steady
    state), at most 30,000 steps (the Monte Carlo steps through every one)."""
    return int(min(3 * chain.beta / chain.dt, 30000))


def impulse_study(
    chain: Synapse, steps: int | None = None, stepped: int = 20000, progress: bool = False
) -> dict:
    """The weight's response to a kick: exact at every step (for the fitted slope) and
    on a log grid for every level; ``stepped`` steps of the real optimizer against it.
    ``steps`` defaults to 10 beta; ValueError over MAX_STEPS."""
    steps = steps if steps is not None else int(np.ceil(10 * chain.beta / chain.dt))
    if not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"--steps must be in 1..{MAX_STEPS:g}, got {steps} (10 beta / dt by default)")
    if stepped < 0:
        raise ValueError(f"--stepped must be >= 0, got {stepped}")
    every = np.arange(steps + 1)
    w_all = chain.h(every) / chain.kick  # exact, every step, unit kick
    t_all = every * chain.dt
    slope = fitted_slope(t_all[1:], w_all[1:], chain.alpha, chain.beta)
    sample = np.unique(np.concatenate([[0], np.geomspace(1, steps, 400).astype(int)]))
    t = sample * chain.dt
    n_stepped = min(stepped, steps)
    walked = impulse_stepped(chain, n_stepped, progress) if n_stepped else np.zeros((0, chain.n_beakers))
    ref = w_all[: n_stepped + 1]
    diff = float(np.max(np.abs(walked[:, 0] - ref) / np.abs(ref))) if n_stepped else float("nan")
    return {
        "t": t,
        "levels": impulse_exact(chain.n_beakers, chain.alpha, chain.beta, t),
        "slope": slope,
        "fit_window": fit_window(chain.alpha, chain.beta),
        "at": [float(np.interp(x, t_all, w_all)) for x in (chain.alpha, chain.beta)] + [float(w_all[-1])],
        "stepped_t": every[: n_stepped + 1] * chain.dt,
        "stepped_w": walked[:, 0],
        "stepped_steps": n_stepped,
        "max_rel_diff_stepped": diff,
    }


def memory_study(
    chain: Synapse,
    n_synapses: int,
    trials: int,
    burn_in: int | None,
    n_list: list[int],
    synapses_list: list[int],
    method: str = "projected",
    progress: bool = False,
) -> dict:
    """The tracked memory's SNR against its age (closed form and Monte Carlo with the
    optimizer, see :func:`snr_monte_carlo` for ``method``), and the lifetime against N
    for chains of each length in ``n_list``, each at its best beta on BETA_GRID
    (alpha = 1 step)."""
    if n_synapses < 1 or trials < 2:
        raise ValueError(f"--synapses must be >= 1 and --trials >= 2, got {n_synapses} and {trials}")
    burn = default_burn_in(chain) if burn_in is None else burn_in
    if burn < 0:
        raise ValueError(f"--burn-in must be >= 0, got {burn}")
    horizon = max(2.0, 2 * chain.beta / chain.dt)
    if burn + horizon > MAX_STEPS:
        raise ValueError(
            f"--burn-in plus 2 beta / dt must be at most {MAX_STEPS:g} steps, got {burn + horizon:g}"
        )
    ages = np.unique(np.concatenate([[0, 1, 2], np.geomspace(3, horizon, 12).astype(int)]))
    mc, se = snr_monte_carlo(chain, n_synapses, burn, burn + ages, trials, method=method, progress=progress)
    lifetimes, best = {}, {}
    for n in n_list:
        key = f"n={n}" + (" (simple synapse)" if n == 1 else "")
        found = [best_lifetime(n, 1.0, N, BETA_GRID) for N in synapses_list]
        lifetimes[key] = [r[0] for r in found]
        best[key] = [r[1] for r in found]
    return {
        "burn_in": burn,
        "ages": ages,
        "snr_closed": snr_closed_form(chain, n_synapses, burn, burn + ages),
        "snr_mc": mc,
        "se_mc": se,
        "lifetimes": lifetimes,
        "best_beta": best,
    }


def beaker_frames(chain: Synapse, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Times (0, then log-spaced from alpha/4 to 3 beta) and every level there after a kick."""
    if frames < 1:
        raise ValueError(f"--frames must be >= 1, got {frames}")
    times = np.concatenate([[0.0], np.geomspace(chain.alpha / 4, 3 * chain.beta, frames - 1)])[:frames]
    return times, impulse_exact(chain.n_beakers, chain.alpha, chain.beta, times)


__all__ += [
    "impulse_study",
    "memory_study",
    "beaker_frames",
    "default_burn_in",
    "MAX_STEPS",
    "BETA_GRID",
    "MC_METHODS",
]
