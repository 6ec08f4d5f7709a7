"""The bound-only path: a network's weights kept in [-bound, bound], and on a grid of
evenly spaced values where asked, for any method, without a chain.

It is the chain's own bounded step with no hidden level (``n_beakers=0``), so a bounded
network steps the same way whether or not a chain sits behind its weights; the bound and
the grid are the options ``--bound`` and ``--grid-values`` (stored as ``levels``) that every method shares."""

from __future__ import annotations

from typing import Any

import torch

from ...optimizer import ComplexSynapse
from .network import precision_groups

__all__ = ["bounded_optimizer"]


def bounded_optimizer(
    params,
    base: type[torch.optim.Optimizer],
    base_kwargs: dict[str, Any],
    bound: float | None,
    grid_values: int | None,
    weight_bits: int,
    seed: int,
) -> torch.optim.Optimizer:
    """``base`` whose every step is followed by the bound (and the stochastic rounding onto
    ``grid_values`` values, a counter-based stream from ``seed``); a low-precision
    network's normalisation layers are left unbounded (:func:`.network.precision_groups`)."""
    groups = precision_groups(params, weight_bits)
    return ComplexSynapse(
        groups,
        base,
        n_beakers=0,
        alpha=1.0,
        beta=1.0,
        bound=bound,
        grid_values=grid_values,
        seed=seed,
        **base_kwargs,
    )
