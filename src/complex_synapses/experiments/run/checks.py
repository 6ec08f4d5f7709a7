"""Every check of a run's settings, made before its first step: each failure is one
:class:`OptionError` naming the option, the value and what is allowed."""

from __future__ import annotations

import dataclasses
import math
import tempfile
from pathlib import Path
from typing import Any

import torch

from ...data import DATASETS, EXPERIMENTS, SCENARIOS, STREAMS, TASK_ORDERS
from ...data.npz import is_npz, npz_info
from ...errors import DataError, OptionError
from .fields import RunFields
from .optimizers import fused_names, has_fused, optimizer_class

__all__ = ["check_settings", "check_device", "check_writable", "check_seed"]

CHOICES = {
    "experiment": EXPERIMENTS,
    "scenario": SCENARIOS,
    "stream": STREAMS,
    "task_order": TASK_ORDERS,
}
MAX_TASKS = 100  # permuted protocols: each task is evaluated after each task, tasks^2 evaluations
SEED_MAX = 2**32 - 1  # numpy's seeds
POSITIVE = ("tasks", "iters", "batch", "fc_layers", "fc_units", "loss_log", "eval_log", "eval_n", "rounds")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _check_types(s: RunFields) -> None:
    """Each field holds a value of its default's type (an int where a float is wanted)."""
    for f in dataclasses.fields(s):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        value = getattr(s, f.name)
        if default is None:
            if value is not None and not isinstance(value, str):
                raise OptionError(f"{_flag(f.name)} must be a path, got {value!r}")
            continue
        kind = type(default)
        ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            name = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(
                kind, kind.__name__
            )
            raise OptionError(f"{_flag(f.name)} must be {name}, got {value!r}")


def check_seed(seed: int, option: str = "--seed") -> None:
    if not 0 <= seed <= SEED_MAX:
        raise OptionError(f"{option} must be in 0..{SEED_MAX} (2^32 - 1), got {seed}")


def check_device(name: str) -> None:
    """A torch device that exists here."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise OptionError(
            f"--device must be a torch device such as cpu, cuda or cuda:1, got {name!r}"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise OptionError(f"--device {name}: torch {torch.__version__} sees no CUDA device here; use cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise OptionError(f"--device {name}: there are {torch.cuda.device_count()} CUDA devices")
    elif device.type != "cpu" and not getattr(torch, device.type).is_available():
        raise OptionError(f"--device {name}: no {device.type} device here")


def check_writable(path: str | Path, option: str) -> None:
    """The folder ``path`` exists or can be made, and a file can be written in it."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise OptionError(f"{option} {path}: cannot write there ({exc.strerror or exc})") from None


def _check_methods(s: RunFields) -> None:
    from .methods import all_options, check_spec, get_method

    try:
        check_spec(s.method_spec)
    except ValueError as exc:
        raise OptionError(f"--method: {exc}") from None
    known = all_options()
    unknown = sorted(set(s.method_options) - set(known))
    if unknown:
        raise OptionError(f"unknown method option {_flag(unknown[0])}; known: {', '.join(map(_flag, known))}")
    try:
        for key, value in s.method_options.items():  # also those of methods that do not run
            if value is not None:
                known[key].check(key, value)
        values = s.resolved_options()
        context = {**values, "weight_bits": s.weight_bits}  # what a method may check against
        for part in s.method_spec.split("+"):
            get_method(part).check(context, optimizer_class(s.optimizer))
        _check_shared(s, values)
    except OptionError:
        raise
    except (TypeError, ValueError) as exc:
        raise OptionError(str(exc).replace("n_beakers", "--beakers")) from None


def _check_shared(s: RunFields, values: dict[str, Any]) -> None:
    """Shared options (the weights' bound and grid) set for methods that do not declare
    them: checked by the method that does, refused where a running method brings an
    optimizer of its own that would not honour them."""
    from .methods import get_method, resolve_options, shared_owners, shared_values

    shared = shared_values(s.method_spec, values)
    if not shared:
        return
    own = [p for p in s.method_spec.split("+") if get_method(p).uses("make_optimizer")]
    if own:
        names = ", ".join(_flag(k) for k in shared)
        raise OptionError(f"{names}: not with --method {own[0]}, whose optimizer does not bound the weights")
    for owner in shared_owners():
        owner_values = resolve_options(owner.name, s.scenario, {})
        owner.check({**owner_values, **shared}, optimizer_class(s.optimizer))


def _check_precision(s: RunFields) -> None:
    from .network import WEIGHT_BITS

    if s.weight_bits not in WEIGHT_BITS:
        allowed = ", ".join(map(str, WEIGHT_BITS))
        raise OptionError(f"--weight-bits must be one of {allowed}, got {s.weight_bits}")
    if s.float_activations and s.weight_bits != 1:
        raise OptionError("--float-activations is for 1-bit networks (sign units): add --weight-bits 1")
    if s.bn_per_task and (s.weight_bits == 32 or s.stream != "task-based" or s.rounds > 1):
        raise OptionError(
            "--bn-per-task keeps each task's batch normalisation: it needs a network that has one "
            "(--weight-bits below 32) and tasks that each come once (--stream task-based, --rounds 1)"
        )
    for name in ("eval_n", "matrix_n"):
        if s.weight_bits != 32 and getattr(s, name) == 1:
            raise OptionError(
                f"{_flag(name)} 1: below 32 bits the network is tested on the statistics of its test "
                "batch, which one sample does not have; use 2 or more"
            )
    if 1 < s.weight_bits < 32 and s.option("bound") is None:
        raise OptionError(f"--weight-bits {s.weight_bits} needs --bound: the weights lie in [-bound, bound]")


def _number(name: str, value: Any, positive: bool) -> None:
    if not math.isfinite(value) or (value <= 0 if positive else value < 0):
        raise OptionError(
            f"{_flag(name)} must be a finite number {'> 0' if positive else '>= 0'}, got {value}"
        )


def _check_dataset(s: RunFields) -> None:
    """A built-in data set, or a file of one's own that reads and checks (its faults named
    before any work), with classes enough for a split protocol's tasks."""
    if is_npz(s.dataset):
        try:
            n_classes = npz_info(s.dataset).n_classes
        except DataError as exc:
            raise OptionError(f"--dataset {exc}") from None
        where = f"{s.dataset} has {n_classes} classes"
    elif s.dataset in DATASETS:
        n_classes, where = 10, f"{s.dataset} has 10 classes"
    else:
        raise OptionError(
            f"--dataset must be one of {', '.join(DATASETS)} or a file PATH.npz, got {s.dataset!r}"
        )
    if s.experiment == "splitMNIST" and s.tasks > n_classes:
        raise OptionError(
            f"--tasks: splitMNIST needs a class per task at least; {where}, got {s.tasks} tasks"
        )


def check_settings(s: RunFields) -> None:
    """Raise OptionError naming the first setting of ``s`` that is not allowed."""
    _check_types(s)
    for name, allowed in CHOICES.items():
        if getattr(s, name) not in allowed:
            raise OptionError(f"{_flag(name)} must be one of {', '.join(allowed)}, got {getattr(s, name)!r}")
    for name in POSITIVE:
        if getattr(s, name) < 1:
            raise OptionError(f"{_flag(name)} must be >= 1, got {getattr(s, name)}")
    _check_dataset(s)
    if s.tasks > MAX_TASKS:
        raise OptionError(f"--tasks must be at most {MAX_TASKS}, got {s.tasks}")
    if s.matrix_n < 0:
        raise OptionError(f"--matrix-n must be >= 0 (0: the whole test set), got {s.matrix_n}")
    if s.rounds != 1 and (s.stream != "task-based" or s.scenario == "class"):
        raise OptionError("--rounds is for the task-based stream in Task- or Domain-IL: leave it out here")
    if not 0 <= s.validation < 0.5:
        raise OptionError(f"--validation must be a fraction in [0, 0.5) (0: none), got {s.validation}")
    if s.drift_window and s.stream != "gradual":
        raise OptionError("--drift-window is the gradual stream's: add --stream gradual, or leave it out")
    if not 0 <= s.drift_window <= s.iters:
        raise OptionError(f"--drift-window must be in 0..--iters ({s.iters}; 0: iters), got {s.drift_window}")
    _number("lr", s.lr, positive=True)
    _number("decay", s.decay, positive=False)
    base = optimizer_class(s.optimizer)
    if s.fused and not has_fused(base):
        have = ", ".join(fused_names())
        raise OptionError(f"--fused: torch's {s.optimizer} has no fused kernel; those that have one: {have}")
    check_seed(s.seed)
    check_device(s.device)
    _check_precision(s)
    _check_methods(s)
