"""Streams of training batches over a protocol's tasks, made by indexing tensors that are
already in memory (no DataLoader).

- ``task-based``: the tasks one after the other, ``iters`` batches each; within a task
  the data is gone through in a random order, reshuffled each epoch (the last partial
  batch of an epoch is dropped; a task smaller than a batch is sampled with replacement).
  With ``rounds`` R > 1 the sequence of tasks comes R times (round robin): earlier tasks
  come back, where a slow memory should speed up relearning.
- ``random``: every sample of every batch from a task drawn uniformly, and uniformly
  within it: all tasks' data mixed from the start (the original's random stream crashed).
  It has as many batches as the task-based stream, ``iters * n_tasks``.
- ``gradual``: task-free drift. Each sample comes from the task of its iteration, except
  around a change of task: over a window of ``window`` iterations centred on the change
  (``iters * t``) the chance that a sample comes from the new task rises linearly from
  0 to 1. The samples are drawn as in ``random``, with replacement; no method is told
  where a task ends (as in ``random``, no accuracy matrix is kept).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from .protocols import Protocol

__all__ = ["Batch", "STREAMS", "stream", "n_batches", "new_task_share"]

STREAMS = ("task-based", "random", "gradual")


@dataclass
class Batch:
    x: Tensor
    y: Tensor
    task: int | Tensor  # the task of the whole batch, or of each sample (random stream)
    active: int | None  # Class-IL: the number of outputs active now; else None
    rows: Tensor  # the samples' rows in protocol.train_images


def _task_based(
    protocol: Protocol, iters: int, batch: int, gen: torch.Generator, rounds: int = 1
) -> Iterator[Batch]:
    for visit in range(rounds * protocol.n_tasks):
        t = visit % protocol.n_tasks
        task = protocol.tasks[t]
        n = len(task.train_rows)
        order, pos = torch.randperm(n, generator=gen), 0
        for _ in range(iters):
            if n < batch:
                idx = torch.randint(n, (batch,), generator=gen)
            else:
                if pos + batch > n:
                    order, pos = torch.randperm(n, generator=gen), 0
                idx, pos = order[pos : pos + batch], pos + batch
            idx = idx.to(task.train_rows.device)
            rows = task.train_rows[idx]
            yield Batch(protocol.images(t, rows), task.train_y[idx], t, protocol.active_outputs(t), rows)


class _Sampler:
    """Samples of given tasks, each uniform within its task, as one batch."""

    def __init__(self, protocol: Protocol):
        tasks = protocol.tasks
        self.protocol, self.device = protocol, protocol.train_images.device
        self.sizes = torch.tensor([len(t.train_rows) for t in tasks])
        self.offsets = torch.cumsum(self.sizes, 0) - self.sizes
        self.rows = torch.cat([t.train_rows for t in tasks])
        self.labels = torch.cat([t.train_y for t in tasks])
        self.perms = None
        if any(t.permutation is not None for t in tasks):
            ident = torch.arange(protocol.input_size, device=self.device)
            self.perms = torch.stack([ident if t.permutation is None else t.permutation for t in tasks])

    def batch(self, tid: Tensor, gen: torch.Generator, active: int | None) -> Batch:
        within = (torch.rand(len(tid), generator=gen) * self.sizes[tid]).long()
        at = (self.offsets[tid] + within).to(self.device)
        tid = tid.to(self.device)
        x = self.protocol.train_images[self.rows[at]]
        if self.perms is not None:
            x = x.gather(1, self.perms[tid])
        return Batch(x, self.labels[at], tid, active, self.rows[at])


def _random(protocol: Protocol, iters: int, batch: int, gen: torch.Generator) -> Iterator[Batch]:
    sampler = _Sampler(protocol)
    for _ in range(iters * protocol.n_tasks):
        yield sampler.batch(torch.randint(protocol.n_tasks, (batch,), generator=gen), gen, None)


def new_task_share(it: int, iters: int, window: int, n_tasks: int) -> tuple[int, float]:
    """Gradual stream, iteration ``it`` (from 0): the task it belongs to, and the chance
    that a sample comes from the next one instead (the previous one where ``it`` lies in
    the first half of the window after a change, returned as that task and a share)."""
    task = min(it // iters, n_tasks - 1)
    change = round((it + 0.5) / iters)  # the nearest change of task, at iters * change
    if not 1 <= change < n_tasks:
        return task, 0.0
    share = min(max((it + 0.5 - change * iters) / window + 0.5, 0.0), 1.0)
    return change - 1, share


def _gradual(
    protocol: Protocol, iters: int, batch: int, gen: torch.Generator, window: int
) -> Iterator[Batch]:
    sampler = _Sampler(protocol)
    for it in range(iters * protocol.n_tasks):
        task, share = new_task_share(it, iters, window, protocol.n_tasks)
        tid = task + (torch.rand(batch, generator=gen) < share).long()
        yield sampler.batch(tid, gen, protocol.active_outputs(int(tid.max())))


def stream(
    protocol: Protocol, kind: str, iters: int, batch: int, seed: int, window: int = 0, rounds: int = 1
) -> Iterator[Batch]:
    """The batches of a ``kind`` stream ("task-based", "random" or "gradual"), ``iters``
    per task; ``window``: the gradual stream's drift window in iterations (0: ``iters``);
    ``rounds``: times the task-based stream goes through the tasks."""
    if kind not in STREAMS:
        raise ValueError(f"stream must be one of {', '.join(STREAMS)}, got {kind!r}")
    if isinstance(window, bool) or not isinstance(window, int) or not 0 <= window <= iters:
        raise ValueError(f"the drift window must be an int in 0..iters ({iters}), got {window!r}")
    if rounds != 1 and kind != "task-based":
        raise ValueError(f"rounds are for the task-based stream, got rounds={rounds!r} with {kind!r}")
    gen = torch.Generator().manual_seed(seed)
    if kind == "gradual":
        return _gradual(protocol, iters, batch, gen, window or iters)
    if kind == "task-based":
        return _task_based(protocol, iters, batch, gen, rounds)
    return _random(protocol, iters, batch, gen)


def n_batches(protocol: Protocol, iters: int, rounds: int = 1) -> int:
    return iters * protocol.n_tasks * rounds
