"""Replaying the fused optimizer step as a CUDA graph.

On a GPU the fused step's arithmetic is quick (for 10M parameters and 5 beakers it
reads and writes about 0.6 GB: a fifth of a millisecond on an H200), but launching it
from Python is not: the compiled kernel's guards over every tensor, an aliased view
of each buffer, a launch per kernel. That host work, about a millisecond per step,
made the step 14x fused Adam there. A CUDA graph records the launches of one step
once and replays them with one call, so the host work per step is only what changes
between steps:

- ``coef`` and ``hyper`` (the propagator and the base optimizer's numbers, which
  change with the learning rate and Adam's bias correction) are copied into the
  tensors the graph reads, on the device, when they changed;
- a gradient that is a new tensor (``zero_grad(set_to_none=True)`` makes one at every
  backward pass) is copied into the gradient the graph was recorded with, which this
  module keeps alive for that purpose (one parameter-sized buffer, only in that case).

A graph is valid only while every parameter, beaker and buffer it was recorded with
still lives at the same address, in the same calls: :func:`layout` is that
signature, checked at every step. The optimizer records a graph on the second step in
a row with the same layout (the first one compiles the kernels) and drops it when the
layout changes.

The generic path (a base optimizer the fused kernel does not implement) records its
chain's kernels the same way, as two graphs around the base optimizer's own step, which
runs as it is: the chain before it, and after it the Euler sweep and the bound. Their
calls have ``base`` "chain", no ``hyper`` and no gradients.

Whether a stage is recorded, replayed or launched is decided in :mod:`.dispatch`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .calls import KernelCall

__all__ = ["StepGraph", "layout", "capturable", "Recording", "CudaRecording", "Rerun"]


def _address(t: Tensor) -> tuple[int, torch.Size, tuple[int, ...], torch.dtype]:
    return (t.data_ptr(), t.shape, t.stride(), t.dtype)  # a Size is a tuple: no copy needed


def layout(calls: list[KernelCall]) -> tuple[Any, ...]:
    """What a recorded graph depends on: every tensor's address, shape, strides and
    dtype (the gradients' shapes only: a new gradient tensor is copied in), and each
    call's flags and constant shapes."""
    return tuple(
        (
            b.base,
            b.integrator,
            b.maximize,
            tuple(b.coef.shape),
            None if b.hyper is None else tuple(b.hyper.shape),
            b.coef.dtype,
            tuple(_address(t) for t in b.ws + b.ms + b.vs),
            tuple(_address(t) for hidden in b.hiddens for t in hidden),
            tuple(_address(p) for p, _ in b.rounded),
            None if b.bound is None else _address(b.bound),
            tuple(_address(t) for t in b.round_keys + b.round_steps),
            tuple((tuple(g.shape), g.dtype) for g in b.gs),
        )
        for b in calls
    )


def capturable(calls: list[KernelCall]) -> bool:
    """True where a CUDA graph can be recorded here: every tensor on one CUDA device,
    and no graph being recorded already (inside a user's capture of a whole training
    step, the kernels are simply launched, and become part of that graph)."""
    if not calls or calls[0].coef.device.type != "cuda":  # the CPU's answer, at every step
        return False
    device = calls[0].coef.device
    one_device = all(t.device == device for b in calls for t in (b.coef, *b.ws))
    return one_device and not torch.cuda.is_current_stream_capturing()


class CudaRecording:
    """A CUDA graph of ``fn``'s launches; recording launches nothing."""

    def __init__(self, fn: Callable[[], None]) -> None:
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            fn()

    def replay(self) -> None:
        self.graph.replay()


class Rerun:
    """The same protocol on any device, without the speed: ``replay`` calls ``fn``
    again on the tensors it was given. Tests use it where there is no GPU, to check
    that what a replay reads is refreshed as it must be."""

    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn = fn

    def replay(self) -> None:
        self.fn()


Recording = CudaRecording


class StepGraph:
    """The fused kernels of one step, recorded once over ``calls`` by ``run`` and
    replayed for every later step whose calls have the same :func:`layout`."""

    def __init__(self, calls: list[KernelCall], run: Callable[[list[KernelCall]], None]) -> None:
        self.layout = layout(calls)
        self.last = [(b.coef, b.hyper) for b in calls]  # what the statics hold now
        # The gradients are kept alive here: the graph reads them.
        self.static = [
            dataclasses.replace(b, coef=b.coef.clone(), hyper=_clone(b.hyper), gs=list(b.gs)) for b in calls
        ]
        self.recording = Recording(lambda: run(self.static))

    def matches(self, calls: list[KernelCall]) -> bool:
        return layout(calls) == self.layout

    def replay(self, calls: list[KernelCall]) -> None:
        """One step: refresh what changed since the last one, then replay."""
        for i, (b, static) in enumerate(zip(calls, self.static)):
            coef, hyper = self.last[i]
            if b.coef is not coef:
                static.coef.copy_(b.coef, non_blocking=True)
            if b.hyper is not hyper and b.hyper is not None:
                static.hyper.copy_(b.hyper, non_blocking=True)
            self.last[i] = (b.coef, b.hyper)
        targets, sources = [], []
        for static, b in zip(self.static, calls):
            for kept, g in zip(static.gs, b.gs):
                if g.data_ptr() != kept.data_ptr():
                    targets.append(kept)
                    sources.append(g)
        if targets:
            torch._foreach_copy_(targets, sources)
        self.recording.replay()


def _clone(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.clone()
