r"""The two paths of a step, as functions of the parameters that step now.

- :func:`fused_step`: for a base optimizer whose arithmetic the fused kernel implements
  (:mod:`.bases`), chain and base update in one pass: every buffer read and written once.
- :func:`generic_step`: for any other base optimizer, the chain's kernels before
  (:math:`u \leftarrow P(\Delta t)\, u`, or Euler's coupling of u_1 to u_2) and after
  (Euler's sweep over u_2..u_n, the bound) the base optimizer's own ``step``.

How each stage runs (C library, compiled, eager, CUDA graph) is the
:class:`.dispatch.Dispatcher`'s to decide.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable

import torch
from torch import Tensor
from torch.optim import Optimizer

from .bounds import bound_tensor
from .calls import KernelCall, Stepping, chain_calls, fused_calls
from .dispatch import Dispatcher, Plan
from .groups import chain_of
from .state16 import has_16bit, run_in_pieces, step_native

__all__ = ["fused_step", "generic_step", "chainless_bound", "needs_closure"]


def needs_closure(base: Optimizer) -> bool:
    """True for a base optimizer whose ``step`` must be given the closure (LBFGS)."""
    closure = inspect.signature(base.step).parameters.get("closure")
    return closure is not None and closure.default is inspect.Parameter.empty


def fused_step(
    dispatcher: Dispatcher,
    plan: Plan,
    base: Optimizer,
    stepping: list[Stepping],
    moments_dtype: torch.dtype | None = None,
) -> None:
    """Chain and base update in one kernel call per :class:`.KernelCall`; the base's step
    counters and the rounding streams' counters advance first. ``moments_dtype``: the
    base's moments kept in it (:mod:`.state16`)."""
    calls, counters = fused_calls(plan.fused, base, stepping, moments_dtype)
    if counters:
        torch._foreach_add_(counters, 1)
    round_steps = [t for b in calls for t in b.round_steps]
    if round_steps:
        torch._foreach_add_(round_steps, 1)
    _run(dispatcher, "step", calls, plan)


def _run(dispatcher: Dispatcher, stage: str, calls: list[KernelCall], plan: Plan) -> None:
    """``stage`` over ``calls``; a call with 16-bit levels by the C library's bfloat16
    step where it takes it, else in pieces (see :mod:`.state16`)."""
    sixteen = [has_16bit(b) for b in calls]
    plain = [b for b, half in zip(calls, sixteen) if not half]
    if plain or not calls:
        dispatcher.run(stage, plain, plan)
    for call in (b for b, half in zip(calls, sixteen) if half):
        if stage == "step" and plan.library is not None and step_native(call, plan.library):
            dispatcher.ran.add("native")
            continue
        run_in_pieces(lambda pieces: dispatcher.run(stage, pieces, plan), call)


def generic_step(
    dispatcher: Dispatcher,
    plan: Plan,
    base: Optimizer,
    stepping: list[Stepping],
    closure: Callable | None = None,
) -> float | None:
    """The chain (stage "pre"), the base optimizer's own step (given ``closure`` where
    its step needs one), then the Euler sweep and the bound (stage "post"). The base
    steps a 16-bit parameter's float32 master copy (see :func:`on_masters`). Returns
    what the base's step returns."""
    masters = [(s.p, s.weight) for s in stepping if s.weight is not s.p]
    if masters and closure is not None:
        raise NotImplementedError(
            f"16-bit parameters with {type(base).__name__}, whose step needs the closure, "
            "are not supported: use float32 parameters"
        )
    calls = chain_calls(stepping)
    _run(dispatcher, "pre", calls, plan)
    with on_masters(masters):
        loss = base.step(closure) if closure is not None else base.step()
    after = [b for b in calls if b.integrator == "euler" or b.bound is not None]
    round_steps = [t for b in after for t in b.round_steps]
    if round_steps:
        torch._foreach_add_(round_steps, 1)
    if after:
        _run(dispatcher, "post", after, plan)
    if masters:
        torch._foreach_copy_([p for p, _ in masters], [m for _, m in masters])
    return loss


@contextlib.contextmanager
def on_masters(masters: list[tuple[Tensor, Tensor]]):
    """Within the block, each 16-bit parameter holds its float32 master copy and a
    float32 copy of its gradient, so that a base optimizer steps the master (its
    moments then made in float32), as mixed-precision training steps master weights:
    an update below the 16-bit resolution is kept, not rounded away."""
    saved = [(p.data, p.grad) for p, _ in masters]
    for p, m in masters:
        grad = p.grad.to(m.dtype)
        p.data, p.grad = m, grad
    try:
        yield
    finally:
        for (p, _), (data, grad) in zip(masters, saved):
            p.data, p.grad = data, grad


def chainless_bound(dispatcher: Dispatcher, groups: list[dict], init_state: Callable) -> None:
    """Groups with no chain but a bound (a simple synapse of limited precision): after
    the base's step, their weights into [-B, B], and onto the grid from each weight's
    rounding stream (``init_state(p, group)`` makes its key and counter)."""
    for group in groups:
        c = chain_of(group)
        if c.n_beakers or c.bound is None:
            continue
        for p in group["params"]:
            if p.grad is None:
                continue
            state = init_state(p, group)
            limit = bound_tensor(c.bound, c.grid_values, p.device, p.dtype)
            keys, steps = [], []
            if "round_key" in state:
                state["round_step"] += 1
                keys, steps = [state["round_key"]], [state["round_step"]]
            dispatcher.bound([p], limit, keys, steps)
