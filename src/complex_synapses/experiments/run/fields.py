"""The fields of one run: its data, model and training values, and a method spec
(``l2+ema``) with the methods' own options in ``method_options`` (``ewc_lambda``,
``alpha``: each declared by its method, see :mod:`.methods`). ``make`` and ``replace``
take either by name, and a method's boolean flag (``FLAG=True`` adds the method that
declares it). Their checks are :mod:`.checks`; :class:`.settings.RunSettings` is these
fields with their checks and their stamp.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["RunFields", "OUTPUT_ONLY", "ADDED_FIELDS"]

F = TypeVar("F", bound="RunFields")

# Settings that change where things go or what is shown, not the numbers.
OUTPUT_ONLY = ("data_dir", "plot_dir", "results_dir", "time", "pdf", "visdom", "tensorboard", "json")
# Fields added after the first result files, left out of stamps at these defaults so that older stamps stay.
ADDED_FIELDS = {
    "drift_window": 0,
    "matrix_n": 0,
    "compile": False,
    "fused": False,
    "weight_bits": 32,
    "float_activations": False,
    "task_order": "original",
    "validation": 0.0,
    "rounds": 1,
    "bn_per_task": False,
}


@dataclass
class RunFields:
    """Every option of one run, as values (the defaults are the original project's), and
    the methods' options read from them. :class:`.settings.RunSettings` adds their checks
    and their stamp."""

    experiment: str = "splitMNIST"
    scenario: str = "task"
    stream: str = "task-based"
    drift_window: int = 0  # gradual stream: iterations over which one task turns into the next (0: iters)
    tasks: int = 5
    task_order: str = "original"  # random: every seed draws its class order / permutations
    validation: float = 0.0  # fraction of each task's training data held out for tuning
    rounds: int = 1  # task-based stream: times the sequence of tasks comes (earlier tasks come back)
    iters: int = 500
    batch: int = 128
    dataset: str = "mnist"
    fc_layers: int = 3
    fc_units: int = 400
    singlehead: bool = False
    weight_bits: int = 32  # below 32: a network that computes with quantized hidden weights (network.py)
    float_activations: bool = False  # a 1-bit network with ReLU units instead of sign units
    bn_per_task: bool = False  # test each task with its own batch normalisation (Laborieux et al.'s protocol)
    lr: float = 0.001
    optimizer: str = "adam"
    decay: float = 0.0
    compile: bool = False  # the training step compiled, the base optimizer fused (see train.py)
    fused: bool = False  # the base optimizer's fused kernel, the model eager (see train.py)
    method: str = "none"  # a method plug-in, or several joined by "+" (see experiments/run/methods)
    method_options: dict[str, Any] = field(default_factory=dict)  # their hyperparameters, as given
    seed: int = 0
    device: str = "cpu"
    loss_log: int = 100
    eval_log: int = 100
    eval_n: int = 1024
    matrix_n: int = 0  # test samples per task for the accuracy matrix after each task (0: all)
    data_dir: str = "./store/datasets"
    plot_dir: str = "./store/plots"
    results_dir: str = "./store/results"
    time: bool = False
    pdf: bool = False
    visdom: bool = False
    tensorboard: str | None = None
    json: bool = False

    @classmethod
    def make(cls: type[F], **values: Any) -> F:
        """Settings from run fields and method options by name (``alpha=100``); a
        method's flag set True adds that method, as the original project's flag did."""
        return cls().replace(**values)

    def replace(self: F, **changes: Any) -> F:
        """A copy with ``changes``: run fields, method options (into ``method_options``)
        and methods' flags (True adds the method that declares the flag, False removes it)."""
        from .methods import flags

        flagged = {k: v for k, v in changes.items() if k in flags()}
        names = {f.name for f in dataclasses.fields(self)}
        fields = {k: v for k, v in changes.items() if k in names}
        options = {k: v for k, v in changes.items() if k not in names and k not in flagged}
        if options:
            fields["method_options"] = {**fields.get("method_options", self.method_options), **options}
        out = dataclasses.replace(self, **fields)
        for flag, on in flagged.items():
            method = flags()[flag]
            parts = [p for p in out.method.split("+") if p not in ("none", method)]
            out.method = "+".join(parts + [method] if on else parts) or "none"
        return out

    @property
    def method_spec(self) -> str:
        """The methods that run, "+"-joined ("none" where none does)."""
        parts = [p for p in self.method.split("+") if p != "none"]
        return "+".join(parts) or "none"

    def uses(self, method: str) -> bool:
        """Whether ``method`` is one of the methods that run."""
        return method in self.method_spec.split("+")

    def __getattr__(self, name: str) -> Any:
        # ``uses_FLAG`` for each method's flag: the old spelling of ``uses(method)``.
        if name.startswith("uses_"):
            from .methods import flags

            method = flags().get(name[len("uses_") :])
            if method is not None:
                return self.uses(method)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def resolved_options(self) -> dict[str, Any]:
        """The hyperparameters of the methods that run, defaults for the scenario filled in."""
        from .methods import resolve_options

        return resolve_options(self.method_spec, self.scenario, self.method_options)

    def option(self, name: str) -> Any:
        """A method option's value: as given, else its default (of whichever method
        declares it), whether or not that method runs."""
        from .methods import all_options

        value = self.method_options.get(name)
        return all_options()[name].default_for(self.scenario) if value is None else value
