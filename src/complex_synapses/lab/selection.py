r"""Each N's best setting, chosen from Monte Carlo signal curves, and the lifetime it is
credited with.

A setting's SNR at age :math:`a` for N synapses is :math:`\sqrt{N}\, s(a) / \sqrt{P}` (its
mean signal curve :math:`s` over the groups of synapses, its power :math:`P`), its
lifetime the age at which that falls below 1 (:func:`.fits.crossings`). Two ways to
credit each N with its best setting:

- ``in-sample``: the setting with the longest lifetime on every group, credited with that
  lifetime. The maximum of noisy estimates is biased upward, the more the more settings
  compete and the noisier each is (large N, where lifetimes are long and few groups cross).
- ``cross-fit``: the groups split into halves A and B; the setting chosen on A is
  credited with its lifetime measured on B, the one chosen on B with its lifetime on A,
  and N with the mean of the two. No lifetime is measured on the groups that chose it,
  so the choice's luck does not enter the estimate (each half's estimate is noisier).

Either way a lifetime is cut off (inf) where some setting's SNR is still above 1 at the
oldest age followed (on any of the groups used). A bootstrap of the cross-fitted
estimate resamples within each half (:func:`resample`), so that the halves stay apart.
"""

from __future__ import annotations

import math

import numpy as np

from .fits import crossings

__all__ = ["SELECTIONS", "THRESHOLDS", "lifetimes", "initial_snr", "best", "resample"]

# The SNR thresholds a lifetime is read at: 1 (the headline, Benna & Fusi's) and 3 (a
# memory still recalled reliably), so that a model whose SNR starts high but falls fast
# is told from one that starts low and lasts.
THRESHOLDS = (1.0, 3.0)

# two-stage: lab/two_stage.py, which chooses among each N's candidates by cross-fit
SELECTIONS = ("in-sample", "cross-fit", "two-stage")


def lifetimes(
    signal: np.ndarray, power: np.ndarray, ages: np.ndarray, ns, threshold: float = 1.0
) -> np.ndarray:
    """Lifetime of every setting at every N, ``(N, settings)``, from the mean signal
    curves ``signal`` ``(settings, ages)`` and powers ``power`` ``(settings,)``: the age at
    which the SNR falls below ``threshold``."""
    scale = np.sqrt(power)[:, None] * threshold
    return np.stack([crossings(ages, math.sqrt(n) * signal / scale) for n in ns])


def initial_snr(signal: np.ndarray, power: np.ndarray, ns, chosen: np.ndarray) -> np.ndarray:
    r"""Each N's SNR at age 0 (the memory just written) of its chosen setting, from the
    groups' signal curves ``signal`` ``(groups, settings, ages)``: :math:`\sqrt{N}\,
    s(0) / \sqrt{P}`."""
    s0 = signal[:, chosen, 0].mean(0)  # age 0 of the chosen settings alone
    return np.sqrt(np.asarray(ns, dtype=float)) * s0 / np.sqrt(power[chosen])


def _in_sample(lives: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    index = np.argmax(np.where(np.isfinite(lives), lives, -1), -1)
    chosen = lives[np.arange(len(lives)), index]
    return np.where(np.isinf(lives).any(-1), np.inf, chosen), index


def best(
    signal: np.ndarray,
    power: np.ndarray,
    ages: np.ndarray,
    ns,
    selection: str = "in-sample",
    threshold: float = 1.0,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each N's credited lifetime (SNR above ``threshold``) and chosen setting (its index)
    from the groups' signal curves ``signal`` ``(groups, settings, ages)``, among the
    settings ``allowed`` ``(N, settings)`` at each N (all by default). Under ``cross-fit``
    the first half of the groups is A, the rest B, and the setting reported is the one
    chosen on all."""
    if selection not in SELECTIONS or selection == "two-stage":
        raise ValueError(f"selection must be in-sample or cross-fit here, got {selection!r}")

    def lives(groups: slice) -> np.ndarray:
        got = lifetimes(signal[groups].mean(0), power, ages, ns, threshold)
        return got if allowed is None else np.where(allowed, got, -1.0)  # never chosen, never cut off

    whole, index = _in_sample(lives(slice(None)))
    if selection == "in-sample":
        return whole, index
    h = signal.shape[0] // 2
    on_a, on_b = lives(slice(None, h)), lives(slice(h, None))
    rows = np.arange(len(on_a))
    _, chosen_a = _in_sample(on_a)
    _, chosen_b = _in_sample(on_b)
    credited = 0.5 * (on_b[rows, chosen_a] + on_a[rows, chosen_b])
    cut = np.isinf(on_a).any(-1) | np.isinf(on_b).any(-1)
    return np.where(cut, np.inf, credited), index


def resample(rng: np.random.Generator, groups: int, selection: str = "in-sample") -> np.ndarray:
    """Group indices drawn with replacement for one bootstrap resample: from all groups
    (``in-sample``), or within each half, A's first (``cross-fit``)."""
    if selection == "in-sample":
        return rng.integers(0, groups, groups)
    h = groups // 2
    return np.concatenate([rng.integers(0, h, h), h + rng.integers(0, groups - h, groups - h)])
