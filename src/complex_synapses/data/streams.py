"""Streams of training batches over a protocol's tasks, made by indexing tensors that are
already in memory (no DataLoader).

- ``task-based``: the tasks one after the other, ``iters`` batches each; within a task
  the data is gone through in a random order, reshuffled each epoch (the last partial
  batch of an epoch is dropped; a task smaller than a batch is sampled with replacement).
- ``random``: every sample of every batch from a task drawn uniformly, and uniformly
  within it: all tasks' data mixed from the start (the original's random stream crashed).
  It has as many batches as the task-based stream, ``iters * n_tasks``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from .protocols import Protocol

__all__ = ["Batch", "STREAMS", "stream", "n_batches"]

STREAMS = ("task-based", "random")


@dataclass
class Batch:
    x: Tensor
    y: Tensor
    task: int | Tensor  # the task of the whole batch, or of each sample (random stream)
    active: int | None  # Class-IL: the number of outputs active now; else None
    rows: Tensor  # the samples' rows in protocol.train_images


def _task_based(protocol: Protocol, iters: int, batch: int, gen: torch.Generator) -> Iterator[Batch]:
    for t, task in enumerate(protocol.tasks):
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


def _random(protocol: Protocol, iters: int, batch: int, gen: torch.Generator) -> Iterator[Batch]:
    tasks = protocol.tasks
    device = protocol.train_images.device
    sizes = torch.tensor([len(t.train_rows) for t in tasks])
    offsets = torch.cumsum(sizes, 0) - sizes
    rows = torch.cat([t.train_rows for t in tasks])
    labels = torch.cat([t.train_y for t in tasks])
    permuted = any(t.permutation is not None for t in tasks)
    if permuted:
        ident = torch.arange(protocol.input_size, device=device)
        perms = torch.stack([ident if t.permutation is None else t.permutation for t in tasks])
    for _ in range(iters * len(tasks)):
        tid = torch.randint(len(tasks), (batch,), generator=gen)
        within = (torch.rand(batch, generator=gen) * sizes[tid]).long()
        at = (offsets[tid] + within).to(device)
        tid = tid.to(device)
        x = protocol.train_images[rows[at]]
        if permuted:
            x = x.gather(1, perms[tid])
        yield Batch(x, labels[at], tid, None, rows[at])


def stream(protocol: Protocol, kind: str, iters: int, batch: int, seed: int) -> Iterator[Batch]:
    """The batches of a ``kind`` stream ("task-based" or "random"), ``iters`` per task."""
    if kind not in STREAMS:
        raise ValueError(f"stream must be one of {', '.join(STREAMS)}, got {kind!r}")
    gen = torch.Generator().manual_seed(seed)
    return (_task_based if kind == "task-based" else _random)(protocol, iters, batch, gen)


def n_batches(protocol: Protocol, iters: int) -> int:
    return iters * protocol.n_tasks
