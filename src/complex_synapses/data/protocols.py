"""Continual-learning protocols built from an image data set, as in the original project
(and van de Ven & Tolias 2019, "Three scenarios for continual learning").

- split: the classes in groups of ``n_classes // n_tasks`` (pairs for 5 tasks), one group
  per task; for seeds below 10 the class order is not shuffled.
- permuted: every task holds all classes, its images (padded by 2 pixels on each side,
  MNIST's 28x28 to 32x32) under a fixed pixel permutation of its own; for seeds below 10
  the first task's permutation is the identity. Feature vectors (a data set of one's own)
  are permuted as they are, without padding.

Scenarios: ``task`` (Task-IL: the task is known; one output head per task, only that
task's outputs active), ``domain`` (Domain-IL: one set of outputs shared by all tasks,
labels within the task) and ``class`` (Class-IL: one output per class of all tasks;
while training on task t only the classes seen so far are active).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .datasets import Dataset

__all__ = [
    "Task",
    "Protocol",
    "build_protocol",
    "carve_validation",
    "EXPERIMENTS",
    "SCENARIOS",
    "TASK_ORDERS",
]

EXPERIMENTS = ("splitMNIST", "permMNIST")
SCENARIOS = ("task", "domain", "class")
TASK_ORDERS = ("original", "random")  # seeds below 10 keep the original's order, or every seed draws


@dataclass
class Task:
    """One task: rows of the shared image tensors, their labels under the scenario,
    and the task's pixel permutation (None: none)."""

    train_rows: Tensor
    train_y: Tensor
    test_rows: Tensor
    test_y: Tensor
    permutation: Tensor | None
    classes: list[int]  # the task's classes, in the output numbering of Class-IL
    val_rows: Tensor | None = None  # rows of the training images held out for validation
    val_y: Tensor | None = None


@dataclass
class Protocol:
    experiment: str
    scenario: str
    tasks: list[Task]
    classes_per_task: int
    n_outputs: int
    multi_head: bool
    train_images: Tensor  # (N, input_size), float32, shared by all tasks
    test_images: Tensor

    @property
    def n_tasks(self) -> int:
        return len(self.tasks)

    @property
    def input_size(self) -> int:
        return self.train_images.shape[1]

    def images(self, task: int, rows: Tensor, test: bool = False) -> Tensor:
        x = (self.test_images if test else self.train_images).index_select(0, rows)
        perm = self.tasks[task].permutation
        return x if perm is None else x.index_select(1, perm)  # 3x faster than x[:, perm] on a CPU

    def head(self, task: int) -> slice | None:
        """The output units of ``task`` in Task-IL with one head per task, else None."""
        if not self.multi_head:
            return None
        return slice(task * self.classes_per_task, (task + 1) * self.classes_per_task)

    def active_outputs(self, task: int) -> int | None:
        """Class-IL, training on ``task``: the number of classes seen so far."""
        return (task + 1) * self.classes_per_task if self.scenario == "class" else None

    def to(self, device: torch.device | str) -> Protocol:
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        tasks = [
            Task(
                move(t.train_rows),
                move(t.train_y),
                move(t.test_rows),
                move(t.test_y),
                move(t.permutation),
                t.classes,
                move(t.val_rows),
                move(t.val_y),
            )
            for t in self.tasks
        ]
        return Protocol(
            self.experiment,
            self.scenario,
            tasks,
            self.classes_per_task,
            self.n_outputs,
            self.multi_head,
            self.train_images.to(device),
            self.test_images.to(device),
        )


def _check(experiment: str, scenario: str, n_tasks: int, n_classes: int) -> None:
    if experiment not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {', '.join(EXPERIMENTS)}, got {experiment!r}")
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {', '.join(SCENARIOS)}, got {scenario!r}")
    if isinstance(n_tasks, bool) or not isinstance(n_tasks, int) or n_tasks < 1:
        raise ValueError(f"tasks must be an int >= 1, got {n_tasks!r}")
    if experiment == "splitMNIST" and n_tasks > n_classes:
        raise ValueError(f"splitMNIST cannot have more tasks than classes ({n_classes}), got tasks={n_tasks}")


def _split(
    data: Dataset, scenario: str, n_tasks: int, rng: np.random.Generator, keep_order: bool
) -> list[Task]:
    cpt = data.n_classes // n_tasks
    order = np.arange(data.n_classes) if keep_order else rng.permutation(data.n_classes)
    relabel = torch.as_tensor(order)  # original class y becomes class relabel[y]
    ytr, yte = relabel[data.train_y], relabel[data.test_y]
    tasks = []
    for t in range(n_tasks):
        lo = t * cpt
        rows_tr = torch.nonzero((ytr >= lo) & (ytr < lo + cpt)).flatten()
        rows_te = torch.nonzero((yte >= lo) & (yte < lo + cpt)).flatten()
        shift = 0 if scenario == "class" else lo
        tasks.append(
            Task(
                rows_tr, ytr[rows_tr] - shift, rows_te, yte[rows_te] - shift, None, list(range(lo, lo + cpt))
            )
        )
    return tasks


def _padded(x: Tensor, images: bool) -> Tensor:
    """The permuted protocols' inputs: images padded by 2 pixels on each side, flattened;
    feature vectors as they are."""
    return torch.nn.functional.pad(x, (2, 2, 2, 2)).flatten(1) if images else x.flatten(1)


def _permuted(
    data: Dataset, scenario: str, n_tasks: int, rng: np.random.Generator, keep_first: bool
) -> list[Task]:
    n_pixels = _padded(data.train_x[:1], data.images).shape[1]
    cpt = data.n_classes
    all_tr, all_te = torch.arange(len(data.train_y)), torch.arange(len(data.test_y))
    tasks = []
    for t in range(n_tasks):
        perm = None if (t == 0 and keep_first) else torch.as_tensor(rng.permutation(n_pixels))
        shift = t * cpt if scenario == "class" else 0
        classes = list(range(t * cpt, (t + 1) * cpt))
        tasks.append(Task(all_tr, data.train_y + shift, all_te, data.test_y + shift, perm, classes))
    return tasks


def build_protocol(
    data: Dataset,
    experiment: str,
    scenario: str,
    n_tasks: int,
    seed: int,
    singlehead: bool = False,
    task_order: str = "original",
) -> Protocol:
    """The tasks of ``experiment`` ("splitMNIST" or "permMNIST", on any data set) in
    ``scenario``; ``seed`` draws the class order or the permutations, except that with
    ``task_order="original"`` seeds below 10 keep the class order and an unpermuted first
    task, as the original project did (``"random"``: every seed draws them)."""
    _check(experiment, scenario, n_tasks, data.n_classes)
    if task_order not in TASK_ORDERS:
        raise ValueError(f"task_order must be one of {', '.join(TASK_ORDERS)}, got {task_order!r}")
    rng = np.random.default_rng(seed)
    keep = task_order == "original" and seed < 10
    if experiment == "splitMNIST":
        tasks = _split(data, scenario, n_tasks, rng, keep_order=keep)
        cpt = data.n_classes // n_tasks
        train_images, test_images = data.train_x.flatten(1), data.test_x.flatten(1)
    else:
        tasks = _permuted(data, scenario, n_tasks, rng, keep_first=keep)
        cpt = data.n_classes
        train_images, test_images = _padded(data.train_x, data.images), _padded(data.test_x, data.images)
    multi_head = scenario == "task" and not singlehead
    n_outputs = n_tasks * cpt if (scenario == "class" or multi_head) else cpt
    return Protocol(experiment, scenario, tasks, cpt, n_outputs, multi_head, train_images, test_images)


def carve_validation(protocol: Protocol, fraction: float, seed: int) -> Protocol:
    """The protocol with ``fraction`` of each task's training rows held out as its
    validation set (drawn by ``seed``, a stream of its own: the task sequence does not
    change): the model never trains on them, and they are no test rows. For tuning, so
    that no choice is made on test accuracy."""
    if not 0 < fraction < 0.5:
        raise ValueError(f"validation must be a fraction in (0, 0.5), got {fraction!r}")
    gen = torch.Generator().manual_seed(seed + 0x5EED)
    tasks = []
    for t in protocol.tasks:
        order = torch.randperm(len(t.train_rows), generator=gen).to(t.train_rows.device)
        k = max(1, int(round(fraction * len(order))))
        held, kept = order[:k].sort().values, order[k:].sort().values
        tasks.append(
            Task(
                t.train_rows[kept],
                t.train_y[kept],
                t.test_rows,
                t.test_y,
                t.permutation,
                t.classes,
                t.train_rows[held],
                t.train_y[held],
            )
        )
    return dataclasses.replace(protocol, tasks=tasks)
