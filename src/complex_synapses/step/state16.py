r"""The chain's hidden levels in 16 bits (``ComplexSynapse(..., state_dtype=torch.bfloat16)``):
u_2..u_n stored in bfloat16, stepped in float32, stored back rounded stochastically.

Why stochastic: a slow level moves by about :math:`(u_{k-1} - u_k)\,\Delta t / \tau_k`
per step, far below bfloat16's spacing (:math:`2^{-8}` of the value), so rounding to the
nearest value would leave it where it is for good. Rounded stochastically without bias
(:func:`.kernels.round_bfloat16_`), a level stored as bfloat16 is on average where the
float32 level would be, with an error of at most one spacing at any step.

The stored levels take half the bytes: a parameter's chain of n levels costs
4 + 2(n - 1) bytes besides its base optimizer's state, against 4n in float32. The step
itself reads them into float32 copies one kernel call at a time (at most
``PARAMS_PER_CALL`` parameters), so the float32 copies never exist for the whole model.

The random numbers come from a counter-based stream of each parameter (a key from the
optimizer's ``seed`` and the parameter's place, a counter advanced at each store, both
in its state): ``state_dict`` carries them and a resumed run continues bit for bit.
"""

from __future__ import annotations

import contextlib
from typing import Any

import torch
from torch import Tensor

from .bounds import round_key
from .calls import KernelCall
from .kernels import compute_dtype, round_bfloat16_

__all__ = ["STATE_DTYPES", "check_state_dtype", "init_stream", "in_float32", "has_16bit"]
__all__ += ["initial_hidden", "conform"]

STATE_DTYPES = (torch.float32, torch.bfloat16)
STREAM_OFFSET = 0x5BD1E995  # keeps this stream apart from the grid's rounding stream of the same key


def check_state_dtype(state_dtype: Any, grid_values: Any) -> None:
    """Raise TypeError / ValueError where ``state_dtype`` is not allowed."""
    if state_dtype not in STATE_DTYPES:
        raise TypeError(f"state_dtype must be torch.float32 or torch.bfloat16, got {state_dtype!r}")
    if state_dtype != torch.float32 and grid_values is not None:
        raise ValueError(
            "state_dtype=torch.bfloat16 is for levels of any value: levels on a grid (grid_values) "
            "would leave it in bfloat16's rounding; keep state_dtype=torch.float32 with a grid"
        )


def init_stream(state: dict[str, Any], p: Tensor, seed: int, index: int) -> None:
    """The 16-bit levels' rounding stream (key and counter) of a new parameter."""
    key = (round_key(seed, index) ^ STREAM_OFFSET) & 0xFFFFFFFF
    state["state_key"] = torch.tensor(key, dtype=torch.int64, device=p.device)
    state["state_step"] = torch.zeros((), dtype=torch.int64, device=p.device)


def has_16bit(call: KernelCall) -> bool:
    """Whether ``call`` steps hidden levels stored in 16 bits."""
    return any(h.dtype == torch.bfloat16 for hidden in call.hiddens for h in hidden)


@contextlib.contextmanager
def in_float32(calls: list[KernelCall]):
    """Within the block, the 16-bit hidden levels of ``calls`` are float32 copies; on
    leaving it, each is stored back rounded stochastically (its parameter's stream
    advanced by one)."""
    stored = [call.hiddens for call in calls]
    for call in calls:
        call.hiddens = [[h.to(torch.float32) for h in hidden] for hidden in call.hiddens]
    try:
        yield
    finally:
        for call, kept in zip(calls, stored):
            copies, call.hiddens = call.hiddens, kept
            for i, (hidden, work) in enumerate(zip(kept, copies)):
                _store(hidden, work, call.state_streams[i])


def _store(hidden: list[Tensor], work: list[Tensor], stream: tuple[Tensor, Tensor] | None) -> None:
    if stream is None:  # levels already float32 (a state loaded from float32): plain copies
        for h, w in zip(hidden, work):
            if h is not w:
                h.copy_(w)
        return
    key, step = stream
    step += 1
    for k, (h, w) in enumerate(zip(hidden, work), start=1):
        if h.dtype == torch.bfloat16:
            round_bfloat16_(h, w, key, step, k)
        elif h is not w:
            h.copy_(w)


def initial_hidden(p: Tensor, chain_settings: dict[str, Any], state_dtype: torch.dtype) -> list[Tensor]:
    """The hidden levels u_2..u_n of a new parameter: in the chain's compute dtype, or in
    bfloat16 (rounded to nearest from the weight: the first rounding has no history to
    be unbiased about)."""
    dtype = compute_dtype(p.dtype)
    if state_dtype != torch.float32:
        if dtype != torch.float32:
            raise ValueError(f"state_dtype={state_dtype} is for float32 chains, not {p.dtype} parameters")
        dtype = state_dtype
    w = p.detach()
    if chain_settings["init"] == "same":
        return [w.to(dtype, copy=True) for _ in range(chain_settings["n_beakers"] - 1)]
    return [torch.zeros_like(w, dtype=dtype) for _ in range(chain_settings["n_beakers"] - 1)]


def conform(state: dict[str, Any], p: Tensor, state_dtype: torch.dtype, seed: int, index: int) -> None:
    """A loaded parameter state's hidden levels into ``state_dtype`` (float32 to
    bfloat16 rounded to nearest, once), with the rounding stream it then needs."""
    hidden = state["hidden"]
    if state_dtype == torch.float32:
        state["hidden"] = [h.to(compute_dtype(p.dtype)) for h in hidden]
        return
    if compute_dtype(p.dtype) != torch.float32:
        raise ValueError(f"state_dtype={state_dtype} is for float32 chains, not {p.dtype} parameters")
    state["hidden"] = [h.to(state_dtype) for h in hidden]
    if "state_key" not in state:
        init_stream(state, p, seed, index)
