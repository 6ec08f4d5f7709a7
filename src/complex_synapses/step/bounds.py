r"""Bounded and limited-precision synapses: every level of the chain kept in
:math:`[-B, B]` (``bound``), and optionally on a grid of ``m = grid_values`` evenly
spaced values of it (both ends included), rounded stochastically and without bias
(:func:`.kernels.bound_`).

The paper's capacity result (Benna & Fusi 2016) is about such synapses: a level of
bounded range and limited precision. Unbounded (``bound=None``) the chain is today's,
bit for bit; a bound that is never reached changes nothing.

The rounding draws from a counter-based stream: each parameter has a 32-bit key (from
the optimizer's ``seed`` and the parameter's place in it) and a step counter, both in
its state, so ``state_dict`` covers the stream and a resumed run continues it exactly.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import Tensor

__all__ = ["bound_tensor", "round_key", "init_rounding"]


@functools.lru_cache(maxsize=64)
def bound_tensor(
    bound: float | tuple[float, ...], grid_values: int | None, device: torch.device, dtype: torch.dtype
) -> Tensor:
    """``[B, m]`` on ``device`` (m = 0 without a grid), one tensor per setting; with a
    range per level (``bound`` a tuple), one row ``[B_k, m]`` per level, the weight's
    first."""
    m = float(grid_values or 0)
    if isinstance(bound, tuple):
        return torch.tensor([[float(b), m] for b in bound], dtype=dtype).to(device)
    return torch.tensor([float(bound), m], dtype=dtype).to(device)


def round_key(seed: int, index: int) -> int:
    """The 32-bit key of the parameter at ``index`` of an optimizer seeded ``seed``."""
    return (seed * 0x9E3779B1 + index * 0x85EBCA77 + 0x165667B1) & 0xFFFFFFFF


def init_rounding(state: dict[str, Any], p: Tensor, seed: int, index: int) -> None:
    """The rounding stream's key and counter of a new parameter, on its device."""
    state["round_key"] = torch.tensor(round_key(seed, index), dtype=torch.int64, device=p.device)
    state["round_step"] = torch.zeros((), dtype=torch.int64, device=p.device)
