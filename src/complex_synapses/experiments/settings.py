"""The settings of one experiment, their checks, and the parameter stamp that names its
result (and finds it again in the cache)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import torch

from ..chain import validate_chain
from ..data import DATASETS, EXPERIMENTS, SCENARIOS, STREAMS
from ..optimizer import INTEGRATORS, TIME_UNITS

__all__ = ["RunSettings", "OptionError", "optimizer_class", "OUTPUT_ONLY"]


class OptionError(ValueError):
    """A setting that is not allowed; the message names the option."""


# Settings that change where things go or what is shown, not the numbers.
OUTPUT_ONLY = ("data_dir", "plot_dir", "results_dir", "time", "pdf", "visdom", "tensorboard", "json")


def optimizer_class(name: str) -> type[torch.optim.Optimizer]:
    """A torch.optim optimizer by name, case-insensitively ("adam", "sgd", "adamw", ...)."""
    known = {
        k.lower(): v
        for k, v in vars(torch.optim).items()
        if isinstance(v, type) and issubclass(v, torch.optim.Optimizer) and v is not torch.optim.Optimizer
    }
    if name.lower() not in known:
        raise OptionError(
            f"--optimizer must be a torch.optim name ({', '.join(sorted(known))}), got {name!r}"
        )
    return known[name.lower()]


@dataclass
class RunSettings:
    """Every option of one run. The defaults are the original project's."""

    experiment: str = "splitMNIST"
    scenario: str = "task"
    stream: str = "task-based"
    tasks: int = 5
    iters: int = 500
    batch: int = 128
    dataset: str = "mnist"
    fc_layers: int = 3
    fc_units: int = 400
    singlehead: bool = False
    lr: float = 0.001
    optimizer: str = "adam"
    decay: float = 0.0
    cs: bool = False  # the original's flag: adds the "cs" method
    method: str = "none"  # a method plug-in, or several joined by "+" (see experiments/methods)
    method_options: dict[str, Any] = field(default_factory=dict)  # their hyperparameters, as given
    beakers: int = 5
    alpha: float = 500.0
    beta: float = 2500.0
    time_unit: str = "iteration"
    integrator: str = "exact"
    seed: int = 0
    device: str = "cpu"
    loss_log: int = 100
    eval_log: int = 100
    eval_n: int = 1024
    data_dir: str = "./store/datasets"
    plot_dir: str = "./store/plots"
    results_dir: str = "./store/results"
    time: bool = False
    pdf: bool = False
    visdom: bool = False
    tensorboard: str | None = None
    json: bool = False

    @property
    def method_spec(self) -> str:
        """The methods that run, "+"-joined: ``method`` with "cs" added by ``cs``."""
        parts = [p for p in self.method.split("+") if p != "none"]
        if self.cs and "cs" not in parts:
            parts.append("cs")
        return "+".join(parts) or "none"

    @property
    def uses_cs(self) -> bool:
        return "cs" in self.method_spec.split("+")

    def resolved_options(self) -> dict[str, Any]:
        """The hyperparameters of the methods that run, defaults for the scenario filled in."""
        from .methods import resolve_options

        return resolve_options(self.method_spec, self.scenario, self.method_options)

    def check(self) -> None:
        """Raise ValueError naming the first setting that is not allowed."""
        choices = {
            "experiment": EXPERIMENTS,
            "scenario": SCENARIOS,
            "stream": STREAMS,
            "dataset": DATASETS,
            "time_unit": TIME_UNITS,
            "integrator": INTEGRATORS,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                option, value = "--" + name.replace("_", "-"), getattr(self, name)
                raise OptionError(f"{option} must be one of {', '.join(allowed)}, got {value!r}")
        for name in ("tasks", "iters", "batch", "fc_layers", "fc_units", "loss_log", "eval_log", "eval_n"):
            if getattr(self, name) < 1:
                raise OptionError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.experiment == "splitMNIST" and self.tasks > 10:
            raise OptionError(f"--tasks: splitMNIST has 10 classes, so at most 10 tasks, got {self.tasks}")
        if not self.lr > 0:
            raise OptionError(f"--lr must be > 0, got {self.lr}")
        if self.decay < 0:
            raise OptionError(f"--decay must be >= 0, got {self.decay}")
        optimizer_class(self.optimizer)
        from .methods import check_spec

        try:
            check_spec(self.method_spec)
        except ValueError as exc:
            raise OptionError(f"--method: {exc}") from None
        if self.uses_cs:
            try:
                validate_chain(self.beakers, self.alpha, self.beta)
            except (TypeError, ValueError) as exc:
                raise OptionError(str(exc).replace("n_beakers", "--beakers")) from None

    def result_settings(self) -> dict[str, Any]:
        """The settings that determine the numbers of a run (not where they go)."""
        d = dataclasses.asdict(self)
        for key in (*OUTPUT_ONLY, "cs", "method", "method_options"):
            d.pop(key)
        d["method"] = self.method_spec
        d["method_options"] = self.resolved_options()
        if not self.uses_cs:  # chain settings do not matter without a chain
            for key in ("beakers", "alpha", "beta", "time_unit", "integrator"):
                d.pop(key)
        return d

    def stamp(self) -> str:
        """A readable name of the run, with a hash of every setting that matters."""
        digest = hashlib.sha256(json.dumps(self.result_settings(), sort_keys=True).encode()).hexdigest()[:10]
        task = f"{self.experiment}-{self.dataset}-{self.stream}-{self.scenario}IL"
        task += f"-t{self.tasks}-i{self.iters}-b{self.batch}"
        model = f"fc{self.fc_layers}x{self.fc_units}{'-single' if self.singlehead else ''}"
        train = f"lr{self.lr:g}-{self.optimizer}" + (f"-decay{self.decay:g}" if self.decay else "")
        spec = [p for p in self.method_spec.split("+") if p != "cs"]
        if spec and spec != ["none"]:
            train += "-" + "+".join(spec)
        if self.uses_cs:
            train += f"-cs{self.beakers}-a{self.alpha:g}-b{self.beta:g}-{self.time_unit}-{self.integrator}"
        return f"{task}--{model}--{train}--s{self.seed}--{digest}"

    def replace(self, **changes: Any) -> RunSettings:
        return dataclasses.replace(self, **changes)
