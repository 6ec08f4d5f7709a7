"""The settings of one experiment, their checks, and the parameter stamp that names its
result (and finds it again in the cache).

A run is its data, model and training fields below, and a method spec (``l2+ema``)
with the methods' own options in ``method_options`` (``ewc_lambda``, ``alpha``: each
declared by its method, see :mod:`.methods`). ``make`` and ``replace`` take either by
name, and a method's boolean flag (``FLAG=True`` adds the method that declares it).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from ..errors import OptionError
from .checks import SEED_MAX, check_settings
from .optimizers import fused_names, has_fused, optimizer_class, optimizer_names

__all__ = ["RunSettings", "OptionError", "optimizer_class", "OUTPUT_ONLY", "optimizer_names", "SEED_MAX"]
__all__ += ["has_fused", "fused_names"]


# Settings that change where things go or what is shown, not the numbers.
OUTPUT_ONLY = ("data_dir", "plot_dir", "results_dir", "time", "pdf", "visdom", "tensorboard", "json")
# Fields added after 0.1, left out of stamps at these defaults so that older stamps stay.
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
}


@dataclass
class RunSettings:
    """Every option of one run. The defaults are the original project's."""

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
    weight_bits: int = 32  # below 32: a network that computes with quantized hidden weights (model.py)
    float_activations: bool = False  # a 1-bit network with ReLU units instead of sign units
    lr: float = 0.001
    optimizer: str = "adam"
    decay: float = 0.0
    compile: bool = False  # the training step compiled, the base optimizer fused (see train.py)
    fused: bool = False  # the base optimizer's fused kernel, the model eager (see train.py)
    method: str = "none"  # a method plug-in, or several joined by "+" (see experiments/methods)
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
    def make(cls, **values: Any) -> RunSettings:
        """Settings from run fields and method options by name (``alpha=100``); a
        method's flag set True adds that method, as the original project's flag did."""
        return cls().replace(**values)

    def replace(self, **changes: Any) -> RunSettings:
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

    def check(self) -> None:
        """Raise OptionError naming the first setting that is not allowed."""
        check_settings(self)

    def result_settings(self) -> dict[str, Any]:
        """The settings that determine the numbers of a run (not where they go)."""
        d = dataclasses.asdict(self)
        for key in (*OUTPUT_ONLY, "method", "method_options"):
            d.pop(key)
        d["method"] = self.method_spec
        d["method_options"] = self.counted_options()
        for key, default in ADDED_FIELDS.items():  # left out at their defaults: older stamps stay
            if d[key] == default:
                d.pop(key)
        return d

    def as_dict(self) -> dict[str, Any]:
        """The settings as a result file keeps them: every field, and (as release 0.1
        wrote them) each method's flag and the options it declares as ``result_keys``
        at the top level."""
        from .methods import flags, registry

        d = dataclasses.asdict(self)
        for flag, method in flags().items():
            d[flag] = self.uses(method)
        for cls in registry().values():
            for key in cls.result_keys:
                d[key] = self.option(key)
        return d

    def run_args(self) -> list[str]:
        """The ``complex-synapses run`` options that make these settings, every run field
        that counts and the running methods' options in full, without ``--seed`` (so
        that the same setting can be run on other seeds) and without output options."""
        out = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in (*OUTPUT_ONLY, "seed", "method", "method_options"):
                continue
            if f.name in ADDED_FIELDS and value == ADDED_FIELDS[f.name]:
                continue
            out += _flag(f.name, value)
        out += ["--method", self.method_spec]
        for name, value in self.counted_options().items():
            out += _flag(name, value)
        return out

    def counted_options(self) -> dict[str, Any]:
        """The resolved method options less those added after release 0.1 and left at
        their defaults (see :class:`.methods.Option`): what stamps and args count."""
        from .methods import all_options

        options = all_options()
        return {
            k: v
            for k, v in self.resolved_options().items()
            if not (options[k].added and v == options[k].default_for(self.scenario))
        }

    def stamp(self) -> str:
        """A readable name of the run, with a hash of every setting that matters."""
        from .methods import get_method, shared_values

        digest = hashlib.sha256(json.dumps(self.result_settings(), sort_keys=True).encode()).hexdigest()[:10]
        task = f"{self.experiment}-{self.dataset}-{self.stream}-{self.scenario}IL"
        task += f"-t{self.tasks}-i{self.iters}-b{self.batch}"
        task += ("-random-order" if self.task_order == "random" else "") + (
            f"-rounds{self.rounds}" if self.rounds > 1 else ""
        )
        model = f"fc{self.fc_layers}x{self.fc_units}{'-single' if self.singlehead else ''}"
        if self.weight_bits != 32:
            model += f"-w{self.weight_bits}" + ("-floatact" if self.float_activations else "")
        train = f"lr{self.lr:g}-{self.optimizer}" + (f"-decay{self.decay:g}" if self.decay else "")
        values = self.resolved_options()
        tags = [get_method(p).tag(values) for p in self.method_spec.split("+") if p != "none"]
        tags += [f"{k}{v:g}" for k, v in shared_values(self.method_spec, values).items()]
        train += "".join(f"-{t}" for t in tags) + ("-compile" if self.compile else "")
        train += "-fused" if self.fused else ""
        return f"{task}--{model}--{train}--s{self.seed}--{digest}"


def _flag(name: str, value: Any) -> list[str]:
    """``--name value`` as the command line takes it: a flag alone for True, nothing
    for False or None, floats as the shortest text that reads back exactly."""
    if value is None or value is False:
        return []
    flag = "--" + name.replace("_", "-")
    return [flag] if value is True else [flag, repr(value) if isinstance(value, float) else str(value)]
