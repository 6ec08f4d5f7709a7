"""What the commands share: the parser that fails in one line, the run options built
from :class:`RunSettings` and the methods' declared options, and the output options."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from ..data import DATASETS, EXPERIMENTS, SCENARIOS, STREAMS, TASK_ORDERS
from ..experiments.execution.where import Execution
from ..experiments.run.network import WEIGHT_BITS
from ..experiments.run.settings import OptionError, RunSettings, optimizer_names

__all__ = ["Parser", "add_run_options", "add_output_options", "settings", "method_list", "int_list", "D"]

D = RunSettings()  # the defaults, shown in --help


class Parser(argparse.ArgumentParser):
    """Bad options: one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def device_default() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# The run's own options, by group: (field of RunSettings, help, choices). Type and
# default come from RunSettings.
RUN_OPTIONS: dict[str, list[tuple[str, str, Any]]] = {
    "data stream": [
        (
            "experiment",
            "split: classes in pairs over the tasks; perm: a pixel permutation per task",
            EXPERIMENTS,
        ),
        (
            "dataset",
            f"images to build the protocol from ({', '.join(DATASETS)}; digits is scikit-learn's bundled "
            "8x8 set), or a file of your own, PATH.npz, with arrays x_train, y_train, x_test, y_test "
            "(images (N, H, W) or feature vectors (N, D); integer labels 0..C-1)",
            None,
        ),
        ("scenario", "Task-, Domain- or Class-incremental learning", SCENARIOS),
        (
            "stream",
            "tasks one after another; batches drawn at random from all tasks; or gradual: task-free "
            "drift from each task to the next over --drift-window iterations, no boundary given",
            STREAMS,
        ),
        (
            "drift_window",
            "gradual stream: iterations, centred on each change of task, over which "
            "the share of the next task's samples rises from 0 to 1 (0: --iters)",
            None,
        ),
        ("tasks", "number of tasks (split: at most 10; permuted: at most 100)", None),
        (
            "task_order",
            "original: seeds below 10 keep the class order (split) and an unpermuted first task "
            "(permuted), as the original project did; random: every seed draws them, so that any two "
            "seeds see the same kind of task sequence (what a study's tuning and test seeds need)",
            TASK_ORDERS,
        ),
        (
            "validation",
            "hold out this fraction of each task's training data (0 to 0.5; 0: none) and report the "
            "final accuracy on it beside the test accuracy: what a tuner scores, never the test set",
            None,
        ),
        ("iters", "batches per task", None),
        (
            "rounds",
            "task-based stream: go through the tasks this many times, round robin, so that earlier tasks "
            "come back; results then hold the steps each return took to regain 90%% of the task's first "
            "accuracy (read at every --eval-log iterations)",
            None,
        ),
        ("batch", "batch size", None),
    ],
    "model": [
        ("fc_layers", "fully connected layers", None),
        ("fc_units", "units per hidden layer", None),
        ("singlehead", "Task-IL with one shared output layer instead of a head per task", None),
        (
            "weight_bits",
            "bits of the weights the network computes with: 32, or a low-precision network of hidden "
            "weights (1: the binarized network of Laborieux et al. 2021, sign units and batch norm; "
            f"2-8: values in [-bound, bound], needs --bound); one of {', '.join(map(str, WEIGHT_BITS))}",
            None,
        ),
        ("float_activations", "a 1-bit network with ReLU units instead of sign units", None),
        (
            "bn_per_task",
            "test each task with the batch normalisation parameters saved at the end of that task, as "
            "Laborieux et al.'s code does: the test then uses the task's identity, a protocol of its own "
            "beside Domain-IL (networks below 32 bits, a task-based stream)",
            None,
        ),
    ],
    "training": [
        ("lr", "learning rate", None),
        ("optimizer", "base optimizer, any usable torch.optim name", tuple(optimizer_names())),
        ("decay", "weight decay of the base optimizer", None),
        (
            "compile",
            "a training step meant for a GPU: the model's forward and backward under torch.compile (with "
            "CUDA graphs there) and the base optimizer's fused kernel where torch has one; on the CPU it "
            "is slower than --fused (seconds to load the compiled code in every process, no faster "
            "step); the same numbers within float rounding, a result of its own (the stamp says compile)",
            None,
        ),
        (
            "fused",
            "the base optimizer's fused kernel (torch's Adam, AdamW, SGD, Adagrad), the model eager: the "
            "fast choice on the CPU; the same numbers within float rounding, a result of its own (the "
            "stamp says fused)",
            None,
        ),
    ],
}
LOG_OPTIONS = [
    ("loss_log", "log the loss every N iterations"),
    ("eval_log", "test accuracy every N iterations"),
    ("eval_n", "test samples per task for those"),
    (
        "matrix_n",
        "test samples per task for the accuracy matrix after each task (0: all; the final "
        "accuracy always uses all)",
    ),
]


def _add_field(g, name: str, text: str, choices=None, metavar: str | None = None) -> None:
    default = getattr(D, name)
    flag = "--" + name.replace("_", "-")
    if isinstance(default, bool):
        g.add_argument(flag, action="store_true", help=text)
        return
    kind = str.lower if name == "optimizer" else type(default)
    g.add_argument(
        flag,
        type=kind,
        choices=choices,
        default=default,
        metavar=metavar,
        help=f"{text} (default %(default)s)",
    )


def add_output_options(p: argparse.ArgumentParser, plots: bool = True, results: bool = True) -> None:
    """--results-dir, --plot-dir, --pdf and --json, the same for every command."""
    if results:
        p.add_argument(
            "--results-dir", default=D.results_dir, help="where result files go (default %(default)s)"
        )
    if plots:
        p.add_argument("--plot-dir", default=D.plot_dir, help="where plots go (default %(default)s)")
        p.add_argument("--pdf", action="store_true", help="write the figures as PDF too")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object on the last line")


def add_run_options(p: argparse.ArgumentParser, compare: bool = False) -> None:
    """Every option of a run; ``compare``: for commands that run several methods."""
    p.add_argument("--get-stamp", action="store_true", help="print the parameter stamp of the run and exit")
    p.add_argument(
        "--seed",
        type=int,
        default=D.seed,
        help=f"random seed of everything, 0..2^32-1 (default {D.seed}); seeds below 10 keep the class "
        "order / an identity first permutation",
    )
    p.add_argument("--no-gpus", action="store_true", help="run on the CPU even if a GPU is there")
    p.add_argument(
        "--device", default=None, help="torch device, e.g. cpu, cuda, cuda:1 (default: cuda if available)"
    )
    p.add_argument(
        "--data-dir", default=D.data_dir, help="where data sets are looked for (default %(default)s)"
    )
    for title, options in RUN_OPTIONS.items():
        g = p.add_argument_group(title)
        for name, text, choices in options:
            _add_field(g, name, text, choices)
    _add_method_options(p, compare)
    g = p.add_argument_group("evaluation and output")
    g.add_argument("--time", action="store_true", help="print the training time")
    if not compare:
        g.add_argument(
            "--plot", action="store_true", help="draw the accuracy and loss curves (PNG in --plot-dir)"
        )
    g.add_argument(
        "--visdom",
        action="store_true",
        help="live plots in visdom (needs `pip install visdom` and `python -m visdom.server`)",
    )
    g.add_argument("--tensorboard", metavar="DIR", default=None, help="write TensorBoard logs to DIR")
    for name, text in LOG_OPTIONS:
        _add_field(g, name, text, metavar="N")
    add_output_options(g)


def _add_method_options(p: argparse.ArgumentParser, compare: bool) -> None:
    """--method (or --methods) and every option a method declares (see experiments/run/methods)."""
    from ..experiments.run.methods import registry, treatments

    known = registry()
    listing = "; ".join(f"{name}: {cls.summary}" for name, cls in known.items())
    title = "continual-learning method (see experiments/run/methods; combine with +, e.g. l2+ema)"
    g = p.add_argument_group(title)
    if compare:
        default = " vs ".join(["none", *(cls.name for cls in treatments())])
        g.add_argument(
            "--methods",
            default=None,
            metavar="A,B,...",
            help=f"methods to compare, comma-separated (default: {default}). Known: {listing}",
        )
    else:
        g.add_argument("--method", default="none", help=f"the method (default %(default)s). Known: {listing}")
        for cls in known.values():
            if cls.flag:
                g.add_argument(
                    f"--{cls.flag}",
                    action="store_true",
                    help=f"the same as adding {cls.name} to --method (the original's flag)",
                )
    seen = set()
    for cls in known.values():
        for key, opt in cls.options.items():
            if key in seen:
                continue
            seen.add(key)
            default = opt.default
            if isinstance(default, dict):
                default = ", ".join(f"{k} {v:g}" for k, v in default.items())
            if opt.type is bool:
                g.add_argument(
                    f"--{key.replace('_', '-')}",
                    action="store_const",
                    const=True,
                    default=None,
                    dest=key,
                    help=f"{opt.help} [{cls.name}]",
                )
                continue
            choices = opt.choices
            if compare and opt.both:
                choices = (*choices, "both")  # compare and matrix run one variant per choice
            alias = f" ({opt.flags(key)[1]}: its stored name)" if opt.flag else ""
            g.add_argument(
                *opt.flags(key),
                metavar=opt.flag.upper().replace("-", "_") if opt.flag else None,
                type=opt.type,
                choices=choices,
                default=None,
                dest=key,
                help=f"{opt.help}{' (both: compare the two)' if choices != opt.choices else ''}{alias} "
                f"[{cls.name}; default: {default}]",
            )


def settings(args: argparse.Namespace, **overrides: Any) -> RunSettings:
    """The run's settings from parsed options (method options into method_options)."""
    from ..experiments.run.methods import all_options, flags

    fields = {f.name for f in dataclasses.fields(RunSettings)}
    values = {k: v for k, v in vars(args).items() if k in fields and k != "method_options"}
    values["device"] = "cpu" if getattr(args, "no_gpus", False) else (args.device or device_default())
    options = {k: getattr(args, k) for k in all_options() if getattr(args, k, None) is not None}
    values["method_options"] = {**options, **overrides.pop("method_options", {})}
    s = RunSettings(**values).replace(**overrides)
    flagged = {flag: True for flag in flags() if getattr(args, flag, False)}
    return s.replace(**flagged) if flagged else s


def method_list(text: str | None) -> list[str] | None:
    """``--methods a,b``: the names, at least one, none twice."""
    if text is None:
        return None
    names = [m.strip() for m in text.split(",") if m.strip()]
    if not names:
        raise OptionError(f"--methods needs at least one method, got {text!r}")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise OptionError(f"--methods names {twice[0]!r} twice: each method is compared once")
    return names


def name_list(text: str, option: str, allowed: tuple[str, ...]) -> list[str]:
    """A comma-separated list of names from ``allowed``: at least one, none twice."""
    names = [x.strip() for x in text.split(",") if x.strip()]
    if not names:
        raise OptionError(f"{option} needs at least one of {', '.join(allowed)}, got {text!r}")
    for n in names:
        if n not in allowed:
            raise OptionError(f"{option} must name some of {', '.join(allowed)}, got {n!r}")
    if len(set(names)) != len(names):
        raise OptionError(f"{option} names one twice: {text!r}")
    return names


def int_list(text: str, option: str) -> list[int]:
    """A comma-separated list of integers >= 1 (OptionError naming ``option`` otherwise)."""
    from ..lab.commands.chain_options import int_list as parse

    try:
        return parse(text, option)
    except ValueError as exc:
        raise OptionError(str(exc)) from None


__all__ += ["name_list", "device_default"]


def add_cluster_options(p: argparse.ArgumentParser) -> None:
    """--backend and --address: where the runner sends its units."""
    p.add_argument(
        "--backend",
        choices=["local", "ray"],
        default="local",
        help="processes here, or Ray tasks (default %(default)s)",
    )
    p.add_argument(
        "--address",
        default=None,
        help=(
            "Ray cluster to join, e.g. 10.0.0.1:6379 or auto (default: start a local Ray). Ray 2.5x "
            "needs RAY_AUTH_MODE=token and the cluster's token (~/.ray/auth_token or "
            "RAY_AUTH_TOKEN_PATH); for a head on 127.0.0.1 set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 "
            "for head and driver"
        ),
    )


def execution(args: argparse.Namespace, **more: Any) -> Execution:
    """Where the runner sends its units, from ``--jobs``, ``--backend`` and ``--address``
    (``more``: a file's resources and retries), checked: one line naming what is wrong."""
    return Execution(jobs=args.jobs, backend=args.backend, address=args.address, **more).check()


__all__ += ["add_cluster_options", "execution"]
