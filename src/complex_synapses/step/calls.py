"""The kernel calls of one step: the parameters that step now, grouped into calls.

Every parameter with a gradient is a :class:`Stepping` (its levels, its step ``t`` and
the constants of its step). Parameters that share those constants go in one
:class:`KernelCall` (at most :data:`PARAMS_PER_CALL` of them), which one call of a
kernel steps: the fused kernel (chain and base update in one pass), or on the generic
path the chain's kernels around the base optimizer's own step.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Hashable, Iterable
from typing import Any, TypeVar

import numpy as np
import torch
from torch import Tensor
from torch.optim import Optimizer

from ..chain import ChainSetting, euler_coefficients, propagator
from . import bounds
from .bases import Base, step_size_rule
from .groups import chain_of
from .kernels import compute_dtype

__all__ = [
    "KernelCall",
    "Stepping",
    "PARAMS_PER_CALL",
    "batched",
    "coefficients",
    "fused_calls",
    "chain_calls",
    "stepping",
]

# Parameters per call of a multi-tensor kernel. The compiler unrolls the loop over the
# list and specialises on its length, so an unbounded list would make a model of 160
# tensors compile a kernel 160 bodies long (minutes, cold); in calls of at most 16 a
# model compiles at most two lengths: 16 and its remainder.
PARAMS_PER_CALL = 16

T = TypeVar("T")


@dataclasses.dataclass
class KernelCall:
    """The parameters that one kernel call steps: they share ``coef``, ``hyper``, the
    base step (``"adam"`` or ``"sgd"``; ``"chain"`` for the chain's own kernels on the
    generic path, which read no ``hyper`` and no gradients), the integrator and
    ``maximize``. ``ms`` and ``vs`` (the base's moments, Adam's) are empty for SGD. For a
    16-bit parameter ``ws`` holds its float32 master copy, and ``rounded`` the pair
    ``(parameter, master)`` that the parameter is rounded from after the kernel."""

    coef: Tensor
    hyper: Tensor | None
    base: str
    integrator: str
    maximize: bool
    ws: list[Tensor] = dataclasses.field(default_factory=list)
    gs: list[Tensor] = dataclasses.field(default_factory=list)
    hiddens: list[list[Tensor]] = dataclasses.field(default_factory=list)
    ms: list[Tensor] = dataclasses.field(default_factory=list)
    vs: list[Tensor] = dataclasses.field(default_factory=list)
    rounded: list[tuple[Tensor, Tensor]] = dataclasses.field(default_factory=list)
    bound: Tensor | None = None  # [B, m] where the levels are bounded (see bounds.py)
    round_keys: list[Tensor] = dataclasses.field(default_factory=list)
    round_steps: list[Tensor] = dataclasses.field(default_factory=list)
    # (key, counter) of each parameter's stream for 16-bit hidden levels (None: float32)
    state_streams: list[tuple[Tensor, Tensor] | None] = dataclasses.field(default_factory=list)
    offsets: list[int] = dataclasses.field(default_factory=list)  # of a piece's elements (state16)

    def add_levels(self, weight: Tensor, state: dict[str, Any]) -> None:
        """A parameter's levels (its weight and hidden levels) and rounding streams."""
        self.ws.append(weight)
        self.hiddens.append(state["hidden"])
        stream = (state["state_key"], state["state_step"]) if "state_key" in state else None
        self.state_streams.append(stream)
        self.offsets.append(0)
        if "round_key" in state:
            self.round_keys.append(state["round_key"])
            self.round_steps.append(state["round_step"])


@dataclasses.dataclass
class Stepping:
    """A parameter that steps now: ``t`` counts its steps from 1; ``weight`` is the level
    u_1 (``p``, or a 16-bit parameter's float32 master copy); ``coef`` the chain's
    coefficients and ``bound`` its ``[B, m]`` (None: unbounded) for this step; ``chain``
    its group's setting."""

    p: Tensor
    group: dict[str, Any]
    chain: ChainSetting
    state: dict[str, Any]
    t: int
    weight: Tensor
    coef: Tensor
    bound: Tensor | None


def batched(items: Iterable[tuple[Hashable, T]], size: int | None = None) -> list[list[T]]:
    """The values of ``(key, value)`` pairs grouped by key (in order of first
    appearance), each group cut into chunks of at most ``size`` (PARAMS_PER_CALL)."""
    size = size or PARAMS_PER_CALL
    groups: dict[Hashable, list[list[T]]] = {}
    for key, value in items:
        chunks = groups.setdefault(key, [])
        if not chunks or len(chunks[-1]) == size:
            chunks.append([])
        chunks[-1].append(value)
    return [chunk for chunks in groups.values() for chunk in chunks]


def _host_tensor(values: np.ndarray | list[float], device: torch.device, dtype: torch.dtype) -> Tensor:
    """A small tensor of step constants on ``device`` without a host synchronisation."""
    t = torch.tensor(values, dtype=dtype)
    if device.type == "cpu":
        return t
    return t.pin_memory().to(device, non_blocking=True)


@functools.lru_cache(maxsize=128)
def coefficients(
    integrator: str, n: int, alpha: float, beta: float, dt: float, device: torch.device, dtype: torch.dtype
) -> Tensor:
    """The chain's coefficients for a step of ``dt``: the exact propagator ``P(dt)``
    (n, n), or Euler's rows ``a, b`` (2, n); one tensor per setting."""
    if integrator == "exact":
        values = propagator(n, alpha, beta, dt)
    else:
        values = np.stack(euler_coefficients(n, alpha, beta, dt))
    return _host_tensor(values, device, dtype)


@functools.lru_cache(maxsize=64)
def _hyper_tensor(values: tuple[float, ...], device: torch.device, dtype: torch.dtype) -> Tensor:
    return _host_tensor(list(values), device, dtype)


def fused_calls(
    record: Base, base: Optimizer, stepping: list[Stepping], moments_dtype: torch.dtype | None = None
) -> tuple[list[KernelCall], list[Tensor]]:
    """The fused kernel's calls, parameters that share every constant in one call, and
    the base's step counters (for the caller to advance): each parameter's base state
    made (torch's format; its moments in ``moments_dtype`` where given) and the numbers
    ``hyper`` it reads from ``record``."""
    items, counters = [], []
    for s in stepping:
        counter, moments = record.state(base, s.p, s.group, moments_dtype)
        if counter is not None:
            counters.append(counter)
        dtype = compute_dtype(s.p.dtype)
        hyper = _hyper_tensor(record.hyper(base, s.group, s.t), s.p.device, dtype)
        flags = (record.kernel, s.chain.integrator, s.group["maximize"])
        items.append(((id(s.coef), id(hyper), id(s.bound), *flags), (s, hyper, flags, moments)))
    calls = []
    for chunk in batched(items):
        first, hyper, flags, _ = chunk[0]
        call = KernelCall(first.coef, hyper, *flags, bound=first.bound)
        for s, _, _, moments in chunk:
            call.add_levels(s.weight, s.state)
            call.gs.append(s.p.grad)
            if moments:
                call.ms.append(moments[0])
                call.vs.append(moments[1])
            if s.weight is not s.p:
                call.rounded.append((s.p, s.weight))
        calls.append(call)
    return calls, counters


def chain_calls(stepping: list[Stepping]) -> list[KernelCall]:
    """The generic path's calls of the chain's own kernels (base "chain")."""
    items = []
    for s in stepping:
        integrator = s.chain.integrator
        items.append(((id(s.coef), integrator, id(s.bound)), (s, integrator)))
    calls = []
    for chunk in batched(items):
        first, integrator = chunk[0]
        call = KernelCall(first.coef, None, "chain", integrator, False, bound=first.bound)
        for s, _ in chunk:
            call.add_levels(s.weight, s.state)
        calls.append(call)
    return calls


def stepping(
    groups: list[dict[str, Any]],
    base: type[Optimizer],
    init_state: Callable[[Tensor, dict[str, Any]], dict[str, Any]],
    weight: Callable[[Tensor, dict[str, Any]], Tensor],
) -> list[Stepping]:
    """Every parameter that steps now, with a gradient and a chain (:func:`.chain_of`):
    its state (``init_state`` makes it on the first step), the level u_1 that steps
    (``weight``: the parameter, or a 16-bit one's float32 master copy), the chain's
    coefficients for this step's dt (1, or ``base``'s step size in learning-rate time)
    and its bound."""
    out = []
    for group in groups:
        c = chain_of(group)
        if c.n_beakers == 0:
            continue
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError("ComplexSynapse does not support sparse gradients")
            state = init_state(p, group)
            t = state["chain_step"] + 1
            dt = 1.0 if c.time_unit == "iteration" else step_size_rule(base)(group, t)
            dtype = compute_dtype(p.dtype)
            coef = coefficients(c.integrator, c.n_beakers, float(c.alpha), float(c.beta), dt, p.device, dtype)
            bound = None
            if c.bound is not None:
                bound = bounds.bound_tensor(c.bound, c.grid_values, p.device, dtype)
            out.append(Stepping(p, group, c, state, t, weight(p, state), coef, bound))
    return out
