"""One continual-learning experiment: build the protocol, train on the stream, evaluate.

``run_experiment(settings)`` returns the result as a plain dict (see ``result`` below);
the command line writes it to JSON.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ...data import Protocol, build_protocol, carve_validation, load_dataset, stream
from ...errors import RunFailed
from . import methods
from .methods import Method
from .metrics import learning_and_forgetting, relearning, transfer
from .network import Classifier, TaskNorms, select_outputs, tested_as
from .optimizers import has_fused, optimizer_class
from .provenance import versions
from .settings import RunSettings

__all__ = ["run_experiment", "make_optimizer", "evaluate", "correct", "accuracy", "prepare", "versions"]


def make_optimizer(settings: RunSettings, params, method: Method | None = None) -> torch.optim.Optimizer:
    """The base optimizer of ``--optimizer`` (lr, weight decay), or the one the method
    makes of it (see experiments/run/methods)."""
    cls = optimizer_class(settings.optimizer)
    kwargs: dict[str, Any] = {"lr": settings.lr}
    if settings.decay:
        kwargs["weight_decay"] = settings.decay
    if (settings.compile or settings.fused) and has_fused(cls):
        kwargs["fused"] = True  # one kernel for the whole step (torch's Adam, AdamW, SGD, Adagrad)
    method = method or methods.build(settings)
    made = method.make_optimizer(params, cls, kwargs)
    if made is not None:
        return made
    shared = methods.shared_values(settings.method_spec, settings.resolved_options())
    if shared:  # a bound (and grid) on the weights alone: the same code as the chain's, without a chain
        from .bounded import bounded_optimizer

        bound, grid_values = shared.get("bound"), shared.get("levels")
        return bounded_optimizer(params, cls, kwargs, bound, grid_values, settings.weight_bits, settings.seed)
    return cls(params, **kwargs)


# Test samples per forward pass. Below 32 bits the network normalises each pass on its
# own statistics, so this is part of the test protocol: fixed, the same for every run.
TEST_CHUNK = 4096


def test_chunks(n: int, chunk: int = TEST_CHUNK) -> list[tuple[int, int]]:
    """(start, end) of each forward pass over ``n`` test samples: ``chunk`` at a time,
    except that a last chunk of one sample joins the one before (batch normalisation on
    batch statistics cannot normalise a single sample)."""
    bounds = [(s, min(s + chunk, n)) for s in range(0, n, chunk)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


@torch.no_grad()
def correct(
    model: torch.nn.Module,
    protocol: Protocol,
    task: int,
    rows: torch.Tensor | None = None,
    validation: bool = False,
    chunk: int = TEST_CHUNK,
) -> torch.Tensor:
    """Whether each test sample of ``task`` (its test rows, or the given subset ``rows``
    of them, in that order; ``validation``: its held-out training rows instead) is
    classified right: a bool tensor on the model's device. Task-IL uses the task's head,
    Domain- and Class-IL all outputs. The samples go through the model ``chunk`` at a
    time, in order: the same chunks for every method and run (below 32 bits they set
    the batch normalisation's statistics; see :func:`_test`)."""
    t = protocol.tasks[task]
    sel = slice(None) if rows is None else rows
    test_rows, labels = (t.val_rows, t.val_y) if validation else (t.test_rows, t.test_y)
    test_rows, labels = test_rows[sel], labels[sel]
    flags = []
    for start, end in test_chunks(len(test_rows), chunk):
        x = protocol.images(task, test_rows[start:end], test=not validation)
        logits = select_outputs(model(x), protocol, task)
        flags.append(logits.argmax(1) == labels[start:end])
    return torch.cat(flags) if flags else torch.zeros(0, dtype=torch.bool, device=labels.device)


def accuracy(flags: torch.Tensor, n: int = 0) -> float:
    """The fraction of the first ``n`` of ``flags`` (all where ``n`` is 0) that are true."""
    flags = flags[:n] if n else flags
    return float(flags.sum()) / max(1, len(flags))


def evaluate(
    model: torch.nn.Module, protocol: Protocol, task: int, rows: torch.Tensor | None = None
) -> float:
    """Test accuracy on ``task`` (its test rows, or the given subset ``rows`` of them);
    Task-IL uses the task's head, Domain- and Class-IL all outputs."""
    return accuracy(correct(model, protocol, task, rows))


def prepare(
    settings: RunSettings, device: torch.device
) -> tuple[Protocol, Classifier, torch.optim.Optimizer, Method]:
    """Seed everything, load the data, build the protocol, the model, the method and
    the optimizer."""
    random.seed(settings.seed)
    np.random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    data = load_dataset(settings.dataset, settings.data_dir)
    protocol = build_protocol(
        data,
        settings.experiment,
        settings.scenario,
        settings.tasks,
        settings.seed,
        settings.singlehead,
        settings.task_order,
    )
    if settings.validation:
        protocol = carve_validation(protocol, settings.validation, settings.seed)
    protocol = protocol.to(device)
    torch.manual_seed(settings.seed)  # the model's initial weights do not depend on the data
    model = Classifier(
        protocol.input_size,
        protocol.n_outputs,
        settings.fc_layers,
        settings.fc_units,
        settings.weight_bits,
        settings.float_activations,
        settings.option("bound"),
    ).to(device)
    method = methods.build(settings)
    return protocol, model, make_optimizer(settings, model.parameters(), method), method


class _Curves:
    """Loss and accuracy as training goes, for the result file, TensorBoard and visdom."""

    def __init__(
        self, protocol: Protocol, settings: RunSettings, loggers: list[Callable[[str, float, int], None]]
    ):
        gen = torch.Generator().manual_seed(settings.seed + 1)
        # Each task's test samples in a random order: the first eval_n for the curves,
        # the first matrix_n for the accuracy matrix.
        self.full_rows = [
            torch.randperm(len(t.test_rows), generator=gen).to(t.test_rows.device) for t in protocol.tasks
        ]
        self.eval_rows = [rows[: settings.eval_n] for rows in self.full_rows]
        self.data: dict[str, list] = {
            "eval_iters": [],
            "accuracy_per_task": [[] for _ in protocol.tasks],
            "accuracy_average": [],
            "accuracy_so_far": [],
            "loss_iters": [],
            "loss": [],
            "train_accuracy": [],
        }
        self.loggers = loggers

    def log(self, name: str, value: float, it: int) -> None:
        for logger in self.loggers:
            logger(name, value, it)

    def evaluate(self, model, protocol: Protocol, it: int, tasks_so_far: int) -> None:
        self.record(
            it, tasks_so_far, [evaluate(model, protocol, t, rows) for t, rows in enumerate(self.eval_rows)]
        )

    def record(self, it: int, tasks_so_far: int, accs: list[float]) -> None:
        d = self.data
        d["eval_iters"].append(it)
        for t, a in enumerate(accs):
            d["accuracy_per_task"][t].append(a)
            self.log(f"accuracy/task_{t + 1}", a, it)
        d["accuracy_average"].append(float(np.mean(accs)))
        d["accuracy_so_far"].append(float(np.mean(accs[:tasks_so_far])))
        self.log("accuracy/average", d["accuracy_average"][-1], it)

    def loss(self, it: int, loss: float, acc: float) -> None:
        self.data["loss_iters"].append(it)
        self.data["loss"].append(loss)
        self.data["train_accuracy"].append(acc)
        self.log("loss/train", loss, it)
        self.log("accuracy/train", acc, it)


def training_forward(model: torch.nn.Module, settings: RunSettings) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model's forward for training steps: ``torch.compile``'d with ``--compile``
    (on CUDA as CUDA graphs, "reduce-overhead"), the model itself otherwise. Evaluation
    runs the model itself, whose parameters the compiled forward shares."""
    if not settings.compile:
        return model
    cuda = next(model.parameters()).device.type == "cuda"
    return torch.compile(model, mode="reduce-overhead" if cuda else None)


def _needed(settings: RunSettings, eval_due: bool, matrix_due: bool) -> int:
    """How many of each task's test samples (in the curves' order) an evaluation needs: the
    curves read the first ``eval_n``, the accuracy matrix the first ``matrix_n`` (0: all)."""
    if matrix_due and not settings.matrix_n:
        return 0
    return max(settings.eval_n if eval_due else 0, settings.matrix_n if matrix_due else 0)


def _test(
    model,
    method: Method,
    full_rows: list[torch.Tensor | None],
    n: int,
    protocol: Protocol,
    norms: TaskNorms | None = None,
) -> list[torch.Tensor]:
    """Per-sample correctness on the first ``n`` (0: all) of each task's test samples in
    the order ``full_rows`` (None: the test set's own), as ``method`` evaluates (with
    ``norms``: each task with its own batch normalisation, ``--bn-per-task``). One pass
    serves the curves and the accuracy matrix where both fall on one step (both read
    prefixes of ``full_rows``). At full precision a sample's logits do not depend on which
    others share its batch (checked on CPU); below 32 bits they do: the network's batch
    normalisation uses the statistics of the batch it is given (as Laborieux et al.'s,
    ``track_running_stats=False``), here chunks of 4,096 test samples in this order, so
    the curves' first ``eval_n`` samples and the whole test set may classify a sample
    differently."""
    model.eval()
    with method.evaluating(model):
        flags = []
        for t, rows in enumerate(full_rows):
            with tested_as(norms, t):
                flags.append(correct(model, protocol, t, rows[:n] if n and rows is not None else rows))
    model.train()
    return flags


def _train(settings, protocol, model, optimizer, method, curves, bar, norms=None) -> list[list[float]]:
    """The training loop; returns the accuracy matrix after each task (task-based stream).
    ``norms``: each finished task's batch normalisation kept, and used to test it.
    RunFailed where the loss stops being finite."""
    device = next(model.parameters()).device
    forward = training_forward(model, settings)
    kind = method.stream(settings.stream)
    penalty, before, after = (method.uses(h) for h in ("penalty", "before_step", "after_step"))
    total = settings.iters * protocol.n_tasks * settings.rounds
    matrix: list[list[float]] = []
    running = _Running(device)
    model.train()
    batches = stream(
        protocol, kind, settings.iters, settings.batch, settings.seed, settings.drift_window, settings.rounds
    )
    graphs = settings.compile and device.type == "cuda"
    for it, batch in enumerate(batches, 1):
        if graphs:  # a new training step: the graphs' outputs of the last one may be overwritten
            torch.compiler.cudagraph_mark_step_begin()
        optimizer.zero_grad()
        logits = select_outputs(forward(batch.x), protocol, batch.task, batch.active)
        loss = F.cross_entropy(logits, batch.y)
        extra = method.penalty(model) if penalty else None
        (loss if extra is None else loss + extra).backward()
        if before:
            method.before_step(model)
        optimizer.step()
        if after:
            method.after_step(model)
        running.add(loss, logits, batch.y)
        visit = (it - 1) // settings.iters  # tasks trained so far, less one (rounds: they come back)
        current_task = visit % protocol.n_tasks if kind != "random" else protocol.n_tasks - 1
        seen_tasks = min(visit, protocol.n_tasks - 1) if kind != "random" else current_task
        if it % settings.loss_log == 0 or it == total:
            n_batches = settings.loss_log if it % settings.loss_log == 0 else total % settings.loss_log
            mean_loss, acc = running.take(n_batches, it, settings)
            curves.loss(it, mean_loss, acc)
            bar.set_postfix(loss=f"{mean_loss:.3f}", acc=f"{acc:.3f}", task=current_task + 1, refresh=False)
        eval_due = it % settings.eval_log == 0 or it == total
        matrix_due = kind == "task-based" and it % settings.iters == 0
        if eval_due or matrix_due:
            flags = _test(
                model, method, curves.full_rows, _needed(settings, eval_due, matrix_due), protocol, norms
            )
            if eval_due:
                curves.record(it, seen_tasks + 1, [accuracy(f, settings.eval_n) for f in flags])
            if matrix_due:
                matrix.append([accuracy(f, settings.matrix_n) for f in flags])
                _end_task(model, protocol, method, current_task, norms)
        bar.update()
    return matrix


class _Running:
    """The training loss and accuracy between two logs, summed on the device (no host
    synchronisation per step), read and reset at each log."""

    def __init__(self, device: torch.device) -> None:
        self.loss, self.correct, self.seen = torch.zeros((), device=device), torch.zeros((), device=device), 0

    def add(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        self.loss += loss.detach()
        self.correct += (logits.detach().argmax(1) == y).sum()
        self.seen += len(y)

    def take(self, n_batches: int, it: int, settings: RunSettings) -> tuple[float, float]:
        """The mean loss over ``n_batches`` and the accuracy since the last log, then reset;
        RunFailed where the loss is not finite."""
        mean_loss, acc = self.loss.item() / n_batches, self.correct.item() / self.seen
        if not math.isfinite(mean_loss):
            raise RunFailed(
                f"the training loss became {mean_loss} by iteration {it} ({settings.stamp()}): the run "
                "diverged; try a smaller --lr, or --integrator exact"
            )
        self.loss.zero_()
        self.correct.zero_()
        self.seen = 0
        return mean_loss, acc


def _end_task(model, protocol: Protocol, method: Method, task: int, norms: TaskNorms | None) -> None:
    """What follows the test at the end of a task: the method's own step (EWC's Fisher, a
    new anchor, Adam afresh) and, with ``--bn-per-task``, the task's batch norm kept."""
    method.after_task(model, protocol, task)
    if norms is not None:
        norms.save()


def run_experiment(
    settings: RunSettings,
    progress: bool = True,
    loggers: list[Callable[[str, float, int], None]] | None = None,
) -> dict[str, Any]:
    """Train and test one model as ``settings`` say; return the result dict with
    ``settings``, ``stamp``, ``accuracy`` (``per_task``, ``average``, ``matrix``, and
    with a task-based stream ``learning``, ``forgetting``, ``bwt`` and ``max_forgetting``,
    see :mod:`.metrics`),
    ``curves``, ``wall_time_s``, ``train_time_s`` and ``versions``. RunFailed where the
    run diverges (its loss becomes NaN or infinite)."""
    from tqdm import tqdm

    settings.check()
    start = time.perf_counter()
    protocol, model, optimizer, method = prepare(settings, torch.device(settings.device))
    curves = _Curves(protocol, settings, loggers or [])
    curves.evaluate(model, protocol, 0, 1)
    train_start = time.perf_counter()
    total = settings.iters * protocol.n_tasks * settings.rounds
    # Closed before an error or Ctrl-C goes on up: no bar is drawn after the message.
    norms = TaskNorms(model) if settings.bn_per_task else None
    with tqdm(total=total, disable=not progress, desc=settings.experiment, unit="it", mininterval=0.5) as bar:
        matrix = _train(settings, protocol, model, optimizer, method, curves, bar, norms)
    train_time = time.perf_counter() - train_start
    if len(matrix) == protocol.n_tasks and not settings.matrix_n:
        per_task = matrix[-1]  # every test sample, with the final weights: the same counts
    else:
        per_task = [accuracy(f) for f in _test(model, method, [None] * protocol.n_tasks, 0, protocol, norms)]
    result = {
        "stamp": settings.stamp(),
        "settings": settings.as_dict(),
        "accuracy": {
            "per_task": per_task,
            "average": float(np.mean(per_task)),
            "matrix": matrix,
            **learning_and_forgetting(matrix),
            **transfer(matrix),
        },
        "curves": curves.data,
        "wall_time_s": time.perf_counter() - start,
        "train_time_s": train_time,
        "versions": versions(optimizer),
    }
    if settings.validation:
        result["validation"] = _validation(model, method, protocol, norms)
    if settings.rounds > 1:
        d = curves.data
        result["relearning"] = relearning(matrix, d["eval_iters"], d["accuracy_per_task"], settings.iters)
    return result


def _validation(model, method: Method, protocol: Protocol, norms: TaskNorms | None = None) -> dict[str, Any]:
    """The final accuracy on each task's held-out training rows, as ``method`` evaluates
    (with ``norms``: each task with its own batch normalisation)."""
    model.eval()
    per_task = []
    with method.evaluating(model):
        for t in range(protocol.n_tasks):
            with tested_as(norms, t):
                per_task.append(accuracy(correct(model, protocol, t, validation=True)))
    model.train()
    return {"per_task": per_task, "average": float(np.mean(per_task))}
