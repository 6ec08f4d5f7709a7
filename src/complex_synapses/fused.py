"""The fused step: the chain and the base optimizer's update in one compiled kernel.

For the base optimizers whose arithmetic :mod:`complex_synapses.kernels` implements
(``torch.optim.Adam``, ``AdamW``, ``SGD`` without momentum) the whole step reads and
writes every buffer once, instead of the chain's pass and then the base's own step.
Fusion is decided from an allow-list: every option the base optimizer declares in its
``defaults`` must be one the kernel implements, with a value it implements. An option
a newer torch adds is not on the list, so such a base takes the generic path (the
base's own step) rather than having the option silently ignored.

Parameters that share their coefficients go in one kernel call (:func:`batched`), and
on CUDA the launches of a step are recorded once and replayed (:mod:`.graphs`); so are
the chain's kernels around the base optimizer's own step on the generic path
(:func:`launch_chain`).
"""

from __future__ import annotations

import ctypes
import functools
import math
import warnings
from collections.abc import Callable, Hashable, Iterable
from typing import Any, TypeVar

import torch
from torch import Tensor
from torch.optim import SGD, Adam, AdamW, Optimizer

from . import graphs, kernels, native

__all__ = [
    "FUSED_BASES",
    "PARAMS_PER_CALL",
    "batched",
    "fused_kind",
    "FusedStep",
    "flat",
    "bound_levels",
    "launch",
    "launch_chain",
]

# Parameters per call of a multi-tensor kernel. The compiler unrolls the loop over the
# list and specialises on its length, so an unbounded list would make a model of 160
# tensors compile a kernel 160 bodies long (minutes, cold); in calls of at most 16 a
# model compiles at most two lengths: 16 and its remainder.
PARAMS_PER_CALL = 16

T = TypeVar("T")


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _any(v: Any) -> bool:  # options that choose torch's implementation, not the math
    return True


def _off(v: Any) -> bool:
    return not v


def _flag(v: Any) -> bool:
    return isinstance(v, bool)


ADAM_OPTIONS: dict[str, Callable[[Any], bool]] = {
    "lr": _number,
    "betas": lambda b: len(b) == 2 and all(map(_number, b)),
    "eps": _number,
    "weight_decay": _number,
    "amsgrad": _off,
    "maximize": _flag,
    "foreach": _any,
    "capturable": _off,
    "differentiable": _off,
    "fused": _any,
    "decoupled_weight_decay": _flag,
}
SGD_OPTIONS: dict[str, Callable[[Any], bool]] = {
    "lr": _number,
    "momentum": lambda m: m == 0,
    "dampening": _any,  # unused without momentum
    "weight_decay": _number,
    "nesterov": _off,
    "maximize": _flag,
    "foreach": _any,
    "differentiable": _off,
    "fused": _any,
}
# Exact classes (a subclass may change the arithmetic): the kernel's base and its options.
FUSED_BASES: dict[type, tuple[str, dict[str, Callable[[Any], bool]]]] = {
    Adam: ("adam", ADAM_OPTIONS),
    AdamW: ("adam", ADAM_OPTIONS),
    SGD: ("sgd", SGD_OPTIONS),
}


def fused_kind(base: Optimizer, groups: list[dict[str, Any]], chain_key: str) -> str | None:
    """ "adam" or "sgd" where every group's step can run in the fused kernel, else None.

    Keys of a group that the base optimizer does not declare (a scheduler's
    ``initial_lr``, a user's ``name``) are ignored, as the base itself ignores them."""
    entry = FUSED_BASES.get(type(base))
    if entry is None:
        return None
    kind, allowed = entry
    for g in groups:
        if g[chain_key]["n_beakers"] == 0:  # must be the base optimizer, bit for bit
            return None
        if any(key not in allowed or not allowed[key](g.get(key)) for key in base.defaults):
            return None
    return kind


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


def flat(tensors: list[Tensor]) -> list[Tensor]:
    """1-D tensors over the same memory when every tensor is contiguous, so that one
    compiled kernel serves every parameter shape; the tensors themselves otherwise.

    They alias the storage rather than being ``view(-1)`` views: the compiler guards
    on a view's base, and a 2-D weight's base then fails the guard for a 1-D bias,
    which would compile the kernel twice."""
    if not all(t.is_contiguous() for t in tensors):
        return list(tensors)
    return [
        torch.empty(0, dtype=t.dtype, device=t.device).set_(
            t.untyped_storage(), t.storage_offset(), (t.numel(),), (1,)
        )
        for t in tensors
    ]


def adam_state(base: Optimizer, p: Tensor, group: dict[str, Any]) -> dict[str, Any]:
    """The base Adam's state of ``p``, made as torch.optim.Adam makes it, except that a
    16-bit parameter's moments are float32 (as its chain is)."""
    st = base.state[p]
    if not st:
        device = p.device if group["fused"] else None
        dtype = kernels.compute_dtype(p.dtype)
        st["step"] = torch.zeros((), dtype=torch.float32, device=device)
        st["exp_avg"] = torch.zeros_like(p, dtype=dtype, memory_format=torch.preserve_format)
        st["exp_avg_sq"] = torch.zeros_like(p, dtype=dtype, memory_format=torch.preserve_format)
    return st


def hyper_values(kind: str, base: Optimizer, group: dict[str, Any], t: int) -> tuple[float, ...]:
    """The numbers the fused kernel reads at step ``t`` (see :mod:`.kernels`)."""
    lr, wd = float(group["lr"]), group["weight_decay"]
    if kind == "sgd":
        return (lr, wd)
    beta1, beta2 = group["betas"]
    decoupled = isinstance(base, AdamW) or group.get("decoupled_weight_decay", False)
    l2, dec = (0.0, wd) if decoupled else (wd, 0.0)
    return (lr, beta1, beta2, group["eps"], l2, dec, 1 - beta1**t, math.sqrt(1 - beta2**t))


def _native_fits(b: graphs.Batch) -> bool:
    """Whether the C library takes every tensor of ``b`` (a fused batch, or a "chain"
    batch of the generic path, which has no ``hyper`` and no gradients)."""
    tensors = [b.coef, *b.ws, *b.gs, *b.ms, *b.vs, *(h for hidden in b.hiddens for h in hidden)]
    tensors += [t for t in (b.hyper, b.bound) if t is not None]
    return native.supports(tensors, len(b.hiddens[0]) + 1)


def launch(batches: list[graphs.Batch], lib: ctypes.CDLL | None = None, compiled: bool = True) -> None:
    """One call of the fused kernel per batch: the C library ``lib`` (see
    :mod:`.native`) where given and the batch's tensors suit it, else the compiled
    kernel over flat aliases (the eager one where ``compiled`` is False); then the
    rounded copies of 16-bit parameters from their float32 masters."""
    fused_step_ = kernels.fused_step_multi_
    if compiled:
        fused_step_ = kernels.compiled("fused_step_multi_", fused_step_)
    prepare = flat if compiled else list  # eager kernels take any shape as it is
    for b in batches:
        if lib is not None and _native_fits(b):
            native.step_batch(b, lib)
            if b.bound is not None:
                levels = [[w, *h] for w, h in zip(b.ws, b.hiddens)]
                native.bound_batch(levels, b.bound, b.round_keys, b.round_steps, lib)
            continue
        ws, gs, hiddens, ms, vs = [], [], [], [], []
        for i in range(len(b.ws)):
            moments = [b.ms[i], b.vs[i]] if b.ms else []
            w, g, *rest = prepare([b.ws[i], b.gs[i], *moments, *b.hiddens[i]])
            ws.append(w)
            gs.append(g)
            hiddens.append(rest[len(moments) :])
            if moments:
                ms.append(rest[0])
                vs.append(rest[1])
        fused_step_(
            ws, gs, hiddens, b.coef, b.hyper, ms or None, vs or None, b.integrator, b.base, b.maximize
        )
        if b.bound is not None:
            bound_levels(
                [[w, *h] for w, h in zip(ws, hiddens)], b.bound, b.round_keys, b.round_steps, compiled
            )
        if b.rounded:
            torch._foreach_copy_([p for p, _ in b.rounded], [m for _, m in b.rounded])


def launch_chain(
    stage: str, batches: list[graphs.Batch], lib: ctypes.CDLL | None = None, compiled: bool = True
) -> None:
    """The generic path's chain kernels over ``batches`` (base "chain"): for ``stage``
    "pre" the chain before the base optimizer's step; for "post" the Euler sweep after
    it (Euler batches) and the bound (bounded ones). The C library ``lib`` where given
    and the batch's tensors suit it, else the compiled kernels over flat aliases (the
    eager ones where ``compiled`` is False)."""
    kernel = kernels.chain_pre_multi_ if stage == "pre" else kernels.chain_post_multi_
    if compiled:
        kernel = kernels.compiled(f"chain_{stage}_multi_", kernel)
    prepare = flat if compiled else list  # eager kernels take any shape as it is
    for b in batches:
        in_c = lib is not None and _native_fits(b)
        if in_c:
            ws, hiddens = b.ws, b.hiddens
        else:
            aliases = [prepare([w, *hidden]) for w, hidden in zip(b.ws, b.hiddens)]
            ws, hiddens = [a[0] for a in aliases], [a[1:] for a in aliases]
        if stage == "pre" or b.integrator == "euler":
            if in_c:
                native.chain_batch(stage, ws, hiddens, b.coef, b.integrator, lib)
            else:
                kernel(ws, hiddens, b.coef, b.integrator)
        if stage == "post" and b.bound is not None:
            levels = [[w, *h] for w, h in zip(ws, hiddens)]
            if in_c:
                native.bound_batch(levels, b.bound, b.round_keys, b.round_steps, lib)
            else:
                bound_levels(levels, b.bound, b.round_keys, b.round_steps, compiled)


def bound_levels(
    levels: list[list[Tensor]], limit: Tensor, keys: list[Tensor], steps: list[Tensor], compiled: bool
) -> None:
    """Every level of each parameter into [-B, B]; where ``keys`` are given (one per
    parameter: the group has ``levels``), also onto the grid, rounded from each
    parameter's stream at its ``steps`` counter (advanced by the caller)."""
    quantize = bool(keys)
    if not quantize:
        keys = steps = [None] * len(levels)
    run = kernels.compiled("bound_multi_", kernels.bound_multi_) if compiled else kernels.bound_multi_
    run(levels, limit, keys, steps, quantize)


class FusedStep:
    """Runs batches of the fused kernel (and, on the generic path, of the chain's kernels
    before and after the base step), on CUDA as recorded graphs (see :mod:`.graphs`), one
    per stage: recorded on the second step in a row with the same layout (the first
    compiles the kernels), replayed while the layout stays, dropped otherwise."""

    STAGES: dict[str, Callable[..., None]] = {
        "step": launch,
        "pre": functools.partial(launch_chain, "pre"),
        "post": functools.partial(launch_chain, "post"),
    }

    def __init__(self, cuda_graph: bool) -> None:
        if not isinstance(cuda_graph, bool):
            raise TypeError(f"cuda_graph must be True or False, got {cuda_graph!r}")
        self.cuda_graph = cuda_graph
        self.graphs: dict[str, graphs.StepGraph] = {}
        self.last_layouts: dict[str, tuple] = {}

    @property
    def graph(self) -> graphs.StepGraph | None:
        """The recorded graph of the fused step, or of the generic path's chain."""
        return next(iter(self.graphs.values()), None)

    def forget(self) -> None:
        """Drop the recorded steps: new tensors or new groups need new recordings."""
        self.graphs, self.last_layouts = {}, {}

    def __call__(
        self,
        batches: list[graphs.Batch],
        lib: ctypes.CDLL | None = None,
        compiled: bool = True,
        stage: str = "step",
    ) -> None:
        """Run ``stage`` ("step": the fused step; "pre", "post": the generic path's chain)
        over ``batches``: with the C library ``lib`` where given (the CPU: no graphs
        there), and where it does not apply with the compiled kernels, or the eager
        ones where ``compiled`` is False."""
        run = self.STAGES[stage]
        if lib is not None or not compiled:
            run(batches, lib, compiled)
            return
        graph = self.graphs.get(stage)
        if graph is not None and graph.matches(batches):
            graph.replay(batches)
            return
        self.graphs.pop(stage, None)
        if self.cuda_graph and graphs.capturable(batches):
            seen = graphs.layout(batches)
            if seen == self.last_layouts.get(stage) and self._record(stage, batches, run):
                return
            self.last_layouts[stage] = seen
        run(batches)

    def _record(self, stage: str, batches: list[graphs.Batch], run: Callable[..., None]) -> bool:
        """Record this stage as a CUDA graph and replay it; False (after one warning, and
        with graphs off from then on) where recording fails."""
        try:
            graph = graphs.StepGraph(batches, run)
        except Exception as exc:  # noqa: BLE001 - any failure to record: launch as before
            self.cuda_graph = False
            warnings.warn(
                f"complex_synapses: recording the step as a CUDA graph failed ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}); launching its kernels one by one "
                "from now on. Pass cuda_graph=False to silence this.",
                RuntimeWarning,
                stacklevel=5,
            )
            return False
        self.graphs[stage] = graph
        graph.replay(batches)
        return True
