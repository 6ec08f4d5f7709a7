"""The settings of one run: its fields (:mod:`.fields`), their checks (:mod:`.checks`),
and the parameter stamp that names its result (and finds it again in the cache)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from ...data.npz import is_npz, npz_info
from ...errors import OptionError
from .checks import SEED_MAX, check_settings, check_writable
from .fields import ADDED_FIELDS, OUTPUT_ONLY, RunFields
from .optimizers import fused_names, has_fused, optimizer_class, optimizer_names

__all__ = ["RunSettings", "OptionError", "optimizer_class", "OUTPUT_ONLY", "optimizer_names", "SEED_MAX"]
__all__ += ["has_fused", "fused_names", "ADDED_FIELDS"]


class RunSettings(RunFields):
    """Every option of one run (:class:`.fields.RunFields`), checked and named."""

    def check(self) -> None:
        """Raise OptionError naming the first setting that is not allowed."""
        check_settings(self)

    def output_dirs(self) -> dict[str, str]:
        """The folders the run writes to, by option."""
        dirs = {"--results-dir": self.results_dir, "--plot-dir": self.plot_dir}
        if self.tensorboard:
            dirs["--tensorboard"] = self.tensorboard
        return dirs

    def check_outputs(self, plots: bool = True) -> None:
        """Every folder the run will write to can be written, before it starts."""
        for option, path in self.output_dirs().items():
            if plots or option != "--plot-dir":
                check_writable(path, option)

    def result_settings(self) -> dict[str, Any]:
        """The settings that determine the numbers of a run (not where they go)."""
        d = dataclasses.asdict(self)
        for key in (*OUTPUT_ONLY, "method", "method_options"):
            d.pop(key)
        d["method"] = self.method_spec
        d["method_options"] = self.counted_options()
        if is_npz(self.dataset):  # a file of one's own counts by its contents, not its path
            d["dataset"] = f"npz:{npz_info(self.dataset).sha256}"
        for key, default in ADDED_FIELDS.items():  # left out at their defaults: older stamps stay
            if d[key] == default:
                d.pop(key)
        return d

    def as_dict(self) -> dict[str, Any]:
        """The settings as a result file keeps them: every field, and (as the first result
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
        """The resolved method options less those added after the first result files and left at
        their defaults (see :class:`.methods.Option`): what stamps and args count."""
        from .methods import all_options

        options = all_options()
        return {
            k: v
            for k, v in self.resolved_options().items()
            if not (options[k].added and v == options[k].default_for(self.scenario))
        }

    @property
    def dataset_label(self) -> str:
        """The data set's name in file names: a built-in set's name, or ``npz-<stem>`` for
        a file of one's own."""
        if is_npz(self.dataset):
            return "npz-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(self.dataset).stem)
        return self.dataset

    def stamp(self) -> str:
        """A readable name of the run, with a hash of every setting that matters."""
        from .methods import get_method, shared_values

        digest = hashlib.sha256(json.dumps(self.result_settings(), sort_keys=True).encode()).hexdigest()[:10]
        task = f"{self.experiment}-{self.dataset_label}-{self.stream}-{self.scenario}IL"
        task += f"-t{self.tasks}-i{self.iters}-b{self.batch}"
        task += ("-random-order" if self.task_order == "random" else "") + (
            f"-rounds{self.rounds}" if self.rounds > 1 else ""
        )
        model = f"fc{self.fc_layers}x{self.fc_units}{'-single' if self.singlehead else ''}"
        if self.weight_bits != 32:
            model += f"-w{self.weight_bits}" + ("-floatact" if self.float_activations else "")
            model += "-bnpertask" if self.bn_per_task else ""
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
