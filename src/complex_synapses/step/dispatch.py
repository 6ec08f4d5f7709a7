"""How each stage of a step runs: the only place that decides it.

A step has one stage on the fused path (``"step"``: chain and base update in one kernel
call per :class:`.KernelCall`) and two on the generic path (``"pre"``: the chain before
the base optimizer's own step; ``"post"``: the Euler sweep and the bound after it). Each
stage runs in one of four ways, decided here and nowhere else:

- **the C library** (:mod:`.native`): on the CPU, for ``kernel="native"`` and ``"auto"``,
  where the library builds here and a call's tensors suit it (float32 or float64,
  contiguous, at most 32 levels); no tracing or compiling in a new process;
- **compiled** (:func:`.compiling.compiled`): torch.compile's kernels, for
  ``kernel="compiled"``, and for ``"auto"`` / ``"native"`` where the C library does not
  serve, from :data:`AUTO_COMPILE_MIN_ELEMENTS` parameter elements up;
- **eager**: the same kernels as plain torch code (``kernel="eager"``, small models);
- **a CUDA graph** (:mod:`.graphs`) of the compiled kernels' launches, on a CUDA device
  with ``cuda_graph=True``: recorded on the second step in a row with the same layout
  (the first compiles the kernels), replayed while the layout stays, dropped otherwise.

The decision is one pure function, :func:`choose`, of what a step has (the ``kernel``
asked for, the device, whether the C library builds, the model's size, whether the base
and its options are on the fused kernel's allow-list of :func:`.bases.fused_base`, whether
its step needs the closure); :meth:`Dispatcher.plan` gathers those facts and asks it.
"""

from __future__ import annotations

import ctypes
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from . import compiling, graphs, kernels, native
from .bases import Base, fused_base
from .calls import KernelCall

__all__ = [
    "KERNELS",
    "AUTO_COMPILE_MIN_ELEMENTS",
    "Choice",
    "choose",
    "Plan",
    "Dispatcher",
    "launch",
    "launch_chain",
    "flat",
]

KERNELS = ("auto", "compiled", "eager", "native")

# Where the C library does not serve a step (no C compiler, CUDA, 16-bit gradients on
# the fused path), "auto" runs the eager kernels below this many parameter elements and
# the compiled ones from it up: compiling costs seconds to minutes once per process and
# per chain length (about 3 s with torch's on-disk cache warm, 20 s cold on 2 cores,
# minutes with bound and levels on a busy machine), which a small model does not win
# back: the study's MLP of 114K parameters gains ~3 ms a step, so thousands of steps per
# chain length. A 480K-parameter MLP wins it back within a few hundred steps (eager
# chain: +10.7 ms/step there, compiled: +0.3).
AUTO_COMPILE_MIN_ELEMENTS = 1 << 18


@dataclass(frozen=True)
class Plan:
    """How this step runs: ``fused`` the base's record where the fused path serves (else
    the generic path), ``library`` the C library where it may serve (a call still takes
    torch's kernels where its tensors do not suit it), ``compiled`` torch's kernels
    compiled (else eager)."""

    fused: Base | None
    library: ctypes.CDLL | None
    compiled: bool


@dataclass(frozen=True)
class Choice:
    """How a step runs, as :func:`choose` decides it: the fused path or the generic one,
    with the C library where it may serve, and torch's kernels compiled or eager."""

    fused: bool
    library: bool
    compiled: bool


def choose(
    kernel: str,
    *,
    on_cpu: bool,
    library_built: bool,
    elements: int,
    fusable: bool,
    needs_closure: bool,
    must_fuse: bool = False,
) -> Choice:
    """How a step runs, from what it has; a pure function (the table of its cases is in
    ``tests/test_dispatch.py``).

    Args:
        kernel: the optimizer's ``kernel``: "auto", "native", "compiled" or "eager".
        on_cpu: every parameter is on the CPU (the C library serves the CPU alone).
        library_built: the C library builds and loads on this machine.
        elements: parameter elements in all (``"auto"`` compiles from
            :data:`AUTO_COMPILE_MIN_ELEMENTS` up).
        fusable: the base optimizer and every group's options are on the fused kernel's
            allow-list (:func:`.bases.fused_base`).
        needs_closure: the base's step must be given the closure (LBFGS): the generic path,
            which gives it.
        must_fuse: the state is one that only the fused kernels keep (Adam's moments in
            bfloat16): the fused path wherever the base allows it, on the eager kernels
            where neither the library nor compiling serves (where it does not allow it,
            :meth:`Dispatcher.plan` refuses the step).
    """
    library = kernel in ("auto", "native") and on_cpu and library_built
    if kernel in ("compiled", "eager"):
        compiled = kernel == "compiled"
    else:
        compiled = elements >= AUTO_COMPILE_MIN_ELEMENTS
    fused = fusable and not needs_closure and (compiled or library or must_fuse)
    return Choice(fused, library, compiled)


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


def _native_fits(b: KernelCall) -> bool:
    """Whether the C library takes every tensor of ``b`` (a fused call, or a "chain"
    call of the generic path, which has no ``hyper`` and no gradients)."""
    if b.base not in (*native.BASE_KERNELS, "chain"):
        return False
    tensors = [b.coef, *b.ws, *b.gs, *b.ms, *b.vs, *(h for hidden in b.hiddens for h in hidden)]
    tensors += [t for t in (b.hyper, b.bound) if t is not None]
    return native.supports(tensors, len(b.hiddens[0]) + 1)


def bound_levels(
    levels: list[list[Tensor]], limit: Tensor, keys: list[Tensor], steps: list[Tensor], compiled: bool
) -> None:
    """Every level of each parameter into [-B, B]; where ``keys`` are given (one per
    parameter: the group has a grid), also onto the grid, rounded from each parameter's
    stream at its ``steps`` counter (advanced by the caller)."""
    quantize = bool(keys)
    if not quantize:
        keys = steps = [None] * len(levels)
    run = compiling.compiled("bound_multi_", kernels.bound_multi_) if compiled else kernels.bound_multi_
    run(levels, limit, keys, steps, quantize)


def launch(calls: list[KernelCall], lib: ctypes.CDLL | None = None, compiled: bool = True) -> set[str]:
    """Stage "step": one call of the fused kernel per call, in the C library ``lib``
    where given and the call's tensors suit it, else the compiled kernel over flat
    aliases (the eager one where ``compiled`` is False); then the rounded copies of
    16-bit parameters from their float32 masters. Returns the kernels that ran
    ("native", "compiled", "eager"), for a result's provenance."""
    fused_step_ = kernels.fused_step_multi_
    if compiled:
        fused_step_ = compiling.compiled("fused_step_multi_", fused_step_)
    prepare = flat if compiled else list  # eager kernels take any shape as it is
    ran = set()
    for b in calls:
        if lib is not None and _native_fits(b):
            ran.add("native")
            native.step_call(b, lib)
            if b.bound is not None:
                levels = [[w, *h] for w, h in zip(b.ws, b.hiddens)]
                native.bound_call(levels, b.bound, b.round_keys, b.round_steps, lib)
            continue
        ran.add("compiled" if compiled else "eager")
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
    return ran


def launch_chain(
    stage: str, calls: list[KernelCall], lib: ctypes.CDLL | None = None, compiled: bool = True
) -> set[str]:
    """Stages "pre" (the chain before the base optimizer's step) and "post" (the Euler
    sweep after it, for Euler calls, and the bound, for bounded ones) of the generic
    path: the C library ``lib`` where given and the call's tensors suit it, else the
    compiled kernels over flat aliases (the eager ones where ``compiled`` is False)."""
    kernel = kernels.chain_pre_multi_ if stage == "pre" else kernels.chain_post_multi_
    if compiled:
        kernel = compiling.compiled(f"chain_{stage}_multi_", kernel)
    prepare = flat if compiled else list  # eager kernels take any shape as it is
    ran = set()
    for b in calls:
        in_c = lib is not None and _native_fits(b)
        ran.add("native" if in_c else "compiled" if compiled else "eager")
        if in_c:
            ws, hiddens = b.ws, b.hiddens
        else:
            aliases = [prepare([w, *hidden]) for w, hidden in zip(b.ws, b.hiddens)]
            ws, hiddens = [a[0] for a in aliases], [a[1:] for a in aliases]
        if stage == "pre" or b.integrator == "euler":
            if in_c:
                native.chain_call(stage, ws, hiddens, b.coef, b.integrator, lib)
            else:
                kernel(ws, hiddens, b.coef, b.integrator)
        if stage == "post" and b.bound is not None:
            levels = [[w, *h] for w, h in zip(ws, hiddens)]
            if in_c:
                native.bound_call(levels, b.bound, b.round_keys, b.round_steps, lib)
            else:
                bound_levels(levels, b.bound, b.round_keys, b.round_steps, compiled)
    return ran


STAGES: dict[str, Callable[..., set[str]]] = {
    "step": launch,
    "pre": lambda calls, lib=None, compiled=True: launch_chain("pre", calls, lib, compiled),
    "post": lambda calls, lib=None, compiled=True: launch_chain("post", calls, lib, compiled),
}


class Dispatcher:
    """One optimizer's decisions: its :class:`Plan` at each step, and the stages run as
    planned, on CUDA as recorded graphs (one per stage)."""

    def __init__(self, kernel: str, cuda_graph: bool) -> None:
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {', '.join(map(repr, KERNELS))}, got {kernel!r}")
        if not isinstance(cuda_graph, bool):
            raise TypeError(f"cuda_graph must be True or False, got {cuda_graph!r}")
        self.kernel = kernel
        self.cuda_graph = cuda_graph
        self.graphs: dict[str, graphs.StepGraph] = {}
        self.last_layouts: dict[str, tuple] = {}
        self.warned_native = False
        self.ran: set[str] = set()  # the kernels that ran, for a result's provenance

    def plan(
        self, base: Optimizer, groups: list[dict[str, Any]], pass_closure: bool, must_fuse: bool = False
    ) -> Plan:
        """This step's plan: :func:`choose` asked with what this step has. ``must_fuse``:
        the optimizer keeps Adam's moments in bfloat16, which only the fused path steps;
        ValueError where this step cannot take it."""
        params = [p for g in groups for p in g["params"]]
        on_cpu = all(p.device.type == "cpu" for p in params)
        library = self._library() if self.kernel in ("auto", "native") and on_cpu else None
        record = fused_base(base, groups)
        choice = choose(
            self.kernel,
            on_cpu=on_cpu,
            library_built=library is not None,
            elements=sum(p.numel() for p in params),
            fusable=record is not None,
            needs_closure=pass_closure,
            must_fuse=must_fuse,
        )
        if must_fuse and not choice.fused:
            why = (
                "its base's step needs the closure"
                if pass_closure
                else "a group has no chain (n_beakers=0) or an option the fused Adam does not implement "
                "(amsgrad, capturable, differentiable, ...), so that the base steps itself"
            )
            raise ValueError(
                f"moments_dtype=torch.bfloat16 needs the fused step, which this step cannot take: {why}; "
                "leave moments_dtype at torch.float32 here"
            )
        return Plan(record if choice.fused else None, library if choice.library else None, choice.compiled)

    def _library(self) -> ctypes.CDLL | None:
        """The C library, built (once per machine) and loaded; None where it cannot be."""
        lib = native.library()
        if lib is None and self.kernel == "native" and not self.warned_native:
            self.warned_native = True
            warnings.warn(
                "complex_synapses: the C library of the fused step could not be built here (no C "
                "compiler found, or its build failed); using torch's kernels. See "
                "complex_synapses.step.native.",
                RuntimeWarning,
                stacklevel=4,
            )
        return lib

    @property
    def graph(self) -> graphs.StepGraph | None:
        """The recorded graph of the fused step, or of the generic path's chain."""
        return next(iter(self.graphs.values()), None)

    def forget(self) -> None:
        """Drop the recorded steps: new tensors or new groups need new recordings."""
        self.graphs, self.last_layouts = {}, {}

    def bound(self, weights: list[Tensor], limit: Tensor, keys: list[Tensor], steps: list[Tensor]) -> None:
        """The weights of chainless groups (``n_beakers=0`` with a bound) into [-B, B], and
        onto the grid where ``keys`` are given: torch's kernels, compiled as the step's are."""
        self.ran.add("compiled" if self.kernel == "compiled" else "eager")
        bound_levels([[w] for w in weights], limit, keys, steps, compiled=self.kernel == "compiled")

    def run(self, stage: str, calls: list[KernelCall], plan: Plan) -> None:
        """Run ``stage`` over ``calls`` as ``plan`` says: with the C library where it may
        serve (the CPU: no graphs there), else torch's kernels, on CUDA replayed from a
        recorded graph where one matches."""
        launch_stage = STAGES[stage]
        if plan.library is not None or not plan.compiled:
            self.ran |= launch_stage(calls, plan.library, plan.compiled)  # what each call ran on
            return
        graph = self.graphs.get(stage)
        if graph is not None and graph.matches(calls):
            self.ran.add("cuda-graph")
            graph.replay(calls)
            return
        self.ran.add("compiled")
        self.graphs.pop(stage, None)
        if self.cuda_graph and graphs.capturable(calls):
            seen = graphs.layout(calls)
            if seen == self.last_layouts.get(stage) and self._record(stage, calls, launch_stage):
                return
            self.last_layouts[stage] = seen
        launch_stage(calls)

    def _record(self, stage: str, calls: list[KernelCall], launch_stage: Callable[..., None]) -> bool:
        """Record this stage as a CUDA graph and replay it; False (after one warning, and
        with graphs off from then on) where recording fails."""
        try:
            graph = graphs.StepGraph(calls, launch_stage)
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
        graph.replay(calls)
        return True
