"""The ``complex-synapses`` command line: ``run``, ``compare`` and ``demo``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from .experiments.settings import OptionError, RunSettings

__all__ = ["main", "build_parser"]

D = RunSettings()  # the defaults, shown in --help


class _Parser(argparse.ArgumentParser):
    """Bad options: one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _device_default() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _add_run_options(p: argparse.ArgumentParser, compare: bool = False) -> None:
    p.add_argument("--get-stamp", action="store_true", help="print the parameter stamp of the run and exit")
    p.add_argument(
        "--seed",
        type=int,
        default=D.seed,
        help="random seed of everything (default %(default)s); "
        "seeds below 10 keep the class order / an identity first permutation",
    )
    p.add_argument("--no-gpus", action="store_true", help="run on the CPU even if a GPU is there")
    p.add_argument(
        "--device", default=None, help="torch device, e.g. cpu, cuda, cuda:1 (default: cuda if available)"
    )
    p.add_argument(
        "--data-dir",
        default=D.data_dir,
        help="where data sets are looked for / downloaded (default %(default)s)",
    )
    p.add_argument("--plot-dir", default=D.plot_dir, help="where plots go (default %(default)s)")
    p.add_argument(
        "--results-dir", default=D.results_dir, help="where result JSON files go (default %(default)s)"
    )

    g = p.add_argument_group("data stream")
    g.add_argument(
        "--experiment",
        choices=["splitMNIST", "permMNIST"],
        default=D.experiment,
        help="split: classes in pairs over the tasks; perm: a pixel permutation per task "
        "(default %(default)s)",
    )
    g.add_argument(
        "--dataset",
        choices=["mnist", "fashion-mnist", "digits"],
        default=D.dataset,
        help="images to build the protocol from; digits is scikit-learn's bundled 8x8 set "
        "(default %(default)s)",
    )
    g.add_argument(
        "--scenario",
        choices=["task", "domain", "class"],
        default=D.scenario,
        help="Task-, Domain- or Class-incremental learning (default %(default)s)",
    )
    g.add_argument(
        "--stream",
        choices=["task-based", "random"],
        default=D.stream,
        help="tasks one after another, or batches drawn at random from all tasks (default %(default)s)",
    )
    g.add_argument("--tasks", type=int, default=D.tasks, help="number of tasks (default %(default)s)")
    g.add_argument("--iters", type=int, default=D.iters, help="batches per task (default %(default)s)")
    g.add_argument("--batch", type=int, default=D.batch, help="batch size (default %(default)s)")

    g = p.add_argument_group("model")
    g.add_argument(
        "--fc-layers", type=int, default=D.fc_layers, help="fully connected layers (default %(default)s)"
    )
    g.add_argument(
        "--fc-units", type=int, default=D.fc_units, help="units per hidden layer (default %(default)s)"
    )
    g.add_argument(
        "--singlehead",
        action="store_true",
        help="Task-IL with one shared output layer instead of a head per task",
    )

    g = p.add_argument_group("training")
    g.add_argument("--lr", type=float, default=D.lr, help="learning rate (default %(default)s)")
    g.add_argument(
        "--optimizer",
        default=D.optimizer,
        help="base optimizer: adam, sgd, or any torch.optim name (adamw, rmsprop, ...) (default %(default)s)",
    )
    g.add_argument(
        "--decay",
        type=float,
        default=D.decay,
        help="weight decay of the base optimizer (default %(default)s)",
    )

    _add_method_options(p, compare)

    g = p.add_argument_group("complex synapse (Benna & Fusi 2016)")
    if not compare:
        g.add_argument("--cs", action="store_true", help="wrap the optimizer in the complex synapse")
    g.add_argument("--beakers", type=int, default=D.beakers, help="beakers per weight (default %(default)s)")
    g.add_argument("--alpha", type=float, default=D.alpha, help="shortest timescale (default %(default)s)")
    g.add_argument("--beta", type=float, default=D.beta, help="longest timescale (default %(default)s)")
    units = ["iteration", "lr", "both"] if compare else ["iteration", "lr"]
    g.add_argument(
        "--time-unit",
        choices=units,
        default=D.time_unit,
        help="what alpha and beta count: iterations, or learning-rate time as the original implemented"
        + (" ('both' compares the two)" if compare else "")
        + " (default %(default)s)",
    )
    g.add_argument(
        "--integrator",
        choices=["exact", "euler"],
        default=D.integrator,
        help="exact propagator, or the original's forward Euler (default %(default)s)",
    )

    g = p.add_argument_group("evaluation and output")
    g.add_argument("--time", action="store_true", help="print the training time")
    if not compare:
        g.add_argument(
            "--plot", action="store_true", help="draw the accuracy and loss curves (PNG in --plot-dir)"
        )
    g.add_argument(
        "--pdf",
        action="store_true",
        help="write the plots as PDF too" + ("" if compare else " (implies --plot)"),
    )
    g.add_argument(
        "--visdom",
        action="store_true",
        help="live plots in visdom (needs `pip install visdom` and `python -m visdom.server`)",
    )
    g.add_argument("--tensorboard", metavar="DIR", default=None, help="write TensorBoard logs to DIR")
    g.add_argument(
        "--loss-log",
        type=int,
        default=D.loss_log,
        metavar="N",
        help="log the loss every N iterations (default %(default)s)",
    )
    g.add_argument(
        "--eval-log",
        type=int,
        default=D.eval_log,
        metavar="N",
        help="test accuracy every N iterations (default %(default)s)",
    )
    g.add_argument(
        "--eval-n",
        type=int,
        default=D.eval_n,
        metavar="N",
        help="test samples per task for those (default %(default)s)",
    )
    g.add_argument("--json", action="store_true", help="print the result as one JSON object on the last line")


def _add_method_options(p: argparse.ArgumentParser, compare: bool) -> None:
    from .experiments.methods import registry

    known = registry()
    listing = "; ".join(f"{name}: {cls.summary}" for name, cls in known.items())
    g = p.add_argument_group(
        "continual-learning method (see experiments/methods; combine with +, e.g. cs+ewc)"
    )
    if compare:
        g.add_argument(
            "--methods",
            default=None,
            metavar="A,B,...",
            help=f"methods to compare, comma-separated (default: standard vs cs). Known: {listing}",
        )
    else:
        g.add_argument("--method", default="none", help=f"the method (default %(default)s). Known: {listing}")
    seen = set()
    for cls in known.values():
        for key, opt in cls.options.items():
            if key in seen:
                continue
            seen.add(key)
            default = (
                opt.default
                if not isinstance(opt.default, dict)
                else ", ".join(f"{k} {v:g}" for k, v in opt.default.items())
            )
            g.add_argument(
                f"--{key.replace('_', '-')}",
                type=opt.type,
                default=None,
                dest=key,
                help=f"{opt.help} [{cls.name}; default: {default}]",
            )


def _method_options(args: argparse.Namespace) -> dict:
    from .experiments.methods import registry

    keys = {key for cls in registry().values() for key in cls.options}
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="complex-synapses",
        description="The Benna-Fusi complex synapse as a PyTorch optimizer: continual-learning experiments.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = sub.add_parser(
        "run",
        help="one experiment",
        description="Train and test an MLP on a continual-learning "
        "protocol, with or without complex synapses; write a JSON result file.",
    )
    _add_run_options(run)
    cmp_ = sub.add_parser(
        "compare",
        help="standard vs complex synapse over seeds",
        description="Run the standard optimizer and the complex synapse for several seeds "
        "(cached by parameter stamp); print mean +- SEM, the paired difference and a paired "
        "t-test; draw a bar plot.",
    )
    _add_run_options(cmp_, compare=True)
    cmp_.add_argument("--n-seeds", type=int, default=1, help="seeds seed..seed+N-1 (default %(default)s)")
    cmp_.add_argument("--jobs", type=int, default=1, help="runs in parallel processes (default %(default)s)")
    mat = sub.add_parser(
        "matrix",
        help="methods x {split, permuted} x {task, domain, class}",
        description="Run every method on every protocol and scenario over seeds (cached and "
        "resumable); write one table (Markdown, CSV) and one figure, mean +- SEM per cell.",
    )
    _add_run_options(mat, compare=True)
    mat.add_argument("--experiments", default="splitMNIST,permMNIST", help="(default %(default)s)")
    mat.add_argument("--scenarios", default="task,domain,class", help="(default %(default)s)")
    mat.add_argument("--n-seeds", type=int, default=5, help="(default %(default)s)")
    mat.add_argument("--jobs", type=int, default=1, help="runs in parallel processes (default %(default)s)")
    _add_simulate(sub)
    sw = sub.add_parser(
        "sweep",
        help="a grid / random search over run options, locally or on a Ray cluster",
        description="Run every combination in CONFIG.toml (see complex_synapses/experiments/"
        "sweep.py for the format) through the result cache; retry failed runs; print a summary "
        "table and draw a heat map over two settings.",
    )
    sw.add_argument("config", help="the sweep's TOML file")
    sw.add_argument(
        "--backend",
        choices=["local", "ray"],
        default="local",
        help="processes on this machine, or Ray tasks (default %(default)s)",
    )
    sw.add_argument(
        "--address",
        default=None,
        help=(
            "Ray cluster to join, e.g. 10.0.0.1:6379 or auto (default: start a local Ray). Ray 2.5x "
            "needs RAY_AUTH_MODE=token and the cluster's token (~/.ray/auth_token or "
            "RAY_AUTH_TOKEN_PATH); for a head on 127.0.0.1 set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 "
            "for head and driver"
        ),
    )
    sw.add_argument(
        "--jobs", type=int, default=1, help="local backend: parallel processes (default %(default)s)"
    )
    sw.add_argument(
        "--retries", type=int, default=None, help="attempts after a failure (default: the config's, 2)"
    )
    sw.add_argument("--results-dir", default=D.results_dir, help="(default %(default)s)")
    sw.add_argument("--plot-dir", default=D.plot_dir, help="(default %(default)s)")
    sw.add_argument("--data-dir", default=D.data_dir, help="(default %(default)s)")
    sw.add_argument("--no-gpus", action="store_true", help="run on the CPU even if a GPU is there")
    sw.add_argument("--pdf", action="store_true", help="write the heat map as PDF too")
    sw.add_argument(
        "--json", action="store_true", help="print the summary as one JSON object on the last line"
    )
    demo = sub.add_parser(
        "demo",
        help="the headline comparison on the embedded digits data set (a few minutes)",
        description="compare on split digits (scikit-learn's bundled 8x8 images), Task-IL, "
        "standard Adam vs the complex synapse, 5 seeds.",
    )
    demo.add_argument("--n-seeds", type=int, default=5, help="(default %(default)s)")
    demo.add_argument("--jobs", type=int, default=1, help="(default %(default)s)")
    demo.add_argument("--plot-dir", default=D.plot_dir)
    demo.add_argument("--results-dir", default=D.results_dir)
    demo.add_argument("--pdf", action="store_true")
    demo.add_argument("--json", action="store_true")
    return parser


def _add_simulate(sub) -> None:
    sim = sub.add_parser(
        "simulate",
        help="the synapse model: impulse response, memory SNR, beakers",
        description="What a complex synapse remembers, computed from the same chain code as the "
        "optimizer (exactly, and by stepping the optimizer).",
    )
    kinds = sim.add_subparsers(dest="kind", required=True, parser_class=_Parser)
    helps = {
        "impulse": "the response of the weight and of every beaker to a single kick; fitted log-log slope",
        "memory": "SNR of a tracked memory in a stream of random memories; lifetime against N",
        "beakers": "frames (PNG strip and GIF) of the beaker levels after a kick",
    }
    for kind, text in helps.items():
        k = kinds.add_parser(kind, help=text, description=text)
        k.add_argument("--beakers", type=int, default=10, help="beakers (default %(default)s)")
        k.add_argument("--alpha", type=float, default=1.0, help="shortest timescale (default %(default)s)")
        k.add_argument("--beta", type=float, default=1e4, help="longest timescale (default %(default)s)")
        k.add_argument(
            "--time-unit",
            choices=["iteration", "lr"],
            default="iteration",
            help="chain time per optimizer step: 1, or the learning rate --lr (default %(default)s)",
        )
        k.add_argument(
            "--lr", type=float, default=1.0, help="SGD learning rate of the stepped optimizer (default 1)"
        )
        k.add_argument(
            "--integrator",
            choices=["exact", "euler"],
            default="exact",
            help="integrator of the stepped optimizer (default %(default)s)",
        )
        k.add_argument("--plot-dir", default="./store/plots", help="(default %(default)s)")
        k.add_argument(
            "--results-dir", default="./store/results", help="CSV and JSON go here (default %(default)s)"
        )
        k.add_argument("--pdf", action="store_true", help="write the figures as PDF too")
        k.add_argument(
            "--json", action="store_true", help="print the numbers as one JSON object on the last line"
        )
        if kind == "impulse":
            k.add_argument("--steps", type=int, default=None, help="steps to compute (default: 10 beta)")
            k.add_argument(
                "--stepped",
                type=int,
                default=20000,
                help="steps of the real optimizer to compare with the exact response (default %(default)s)",
            )
        if kind == "memory":
            k.add_argument(
                "--synapses", type=int, default=1000, help="N for the SNR curve (default %(default)s)"
            )
            k.add_argument(
                "--trials", type=int, default=200, help="Monte Carlo repetitions (default %(default)s)"
            )
            k.add_argument(
                "--burn-in",
                type=int,
                default=None,
                help="memories stored before the tracked one (default: 3 beta, at most 30000)",
            )
            k.add_argument(
                "--n-list", default="1,2,4,8", help="beakers for the lifetime curves (default %(default)s)"
            )
            k.add_argument(
                "--synapses-list",
                default="100,1000,10000,100000",
                help="N for the lifetime curves (default %(default)s)",
            )
        if kind == "beakers":
            k.add_argument(
                "--frames", type=int, default=8, help="frames, log-spaced in time (default %(default)s)"
            )


def _settings(args: argparse.Namespace, **overrides) -> RunSettings:
    fields = {f.name for f in dataclasses.fields(RunSettings)}
    values = {k: v for k, v in vars(args).items() if k in fields}
    values["device"] = "cpu" if getattr(args, "no_gpus", False) else (args.device or _device_default())
    values["method_options"] = _method_options(args)
    values.update(overrides)
    s = RunSettings(**values)
    return s


def _loggers(args: argparse.Namespace, s: RunSettings):
    loggers = []
    if args.tensorboard:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise SystemExit(
                f"complex-synapses: --tensorboard needs the tensorboard package ({exc})"
            ) from None
        writer = SummaryWriter(log_dir=args.tensorboard)
        loggers.append(lambda name, value, it: writer.add_scalar(name, value, it))
    if args.visdom:
        try:
            import visdom
        except ImportError:
            print(
                "complex-synapses: error: --visdom needs `pip install visdom` and a running "
                "`python -m visdom.server`",
                file=sys.stderr,
            )
            raise SystemExit(2) from None
        vis = visdom.Visdom(env=f"{s.experiment}-{s.scenario}", raise_exceptions=True)
        graph = s.method_spec
        loggers.append(
            lambda name, value, it: vis.line(
                X=[it], Y=[value], win=f"{graph}-{name}", update="append", opts={"title": f"{graph}: {name}"}
            )
        )
    return loggers


def _cmd_run(args: argparse.Namespace) -> int:
    from .experiments.compare import result_path
    from .experiments.plots import plot_curves
    from .experiments.results import write_json
    from .experiments.train import run_experiment

    s = _settings(args)
    if args.get_stamp:
        print(s.stamp())
        return 0
    s.check()
    result = run_experiment(s, progress=True, loggers=_loggers(args, s))
    path = write_json(result_path(s), result)
    plots = plot_curves(result, Path(s.plot_dir) / s.stamp(), pdf=s.pdf) if (args.plot or s.pdf) else []
    word = {"task": "task", "domain": "domain", "class": "task (classes)"}[s.scenario]
    print(
        f"\nTest accuracy, {s.experiment} on {s.dataset}, {s.scenario}-incremental, "
        f"method {s.method_spec}, {s.optimizer}:"
    )
    for t, a in enumerate(result["accuracy"]["per_task"], 1):
        print(f"  {word} {t}: {100 * a:.2f}%")
    print(f"  average: {100 * result['accuracy']['average']:.2f}%")
    if s.time:
        print(f"training time: {result['train_time_s']:.1f} s (wall {result['wall_time_s']:.1f} s)")
    print(f"result: {path}" + (f"\nplot: {', '.join(map(str, plots))}" if plots else ""))
    if s.json:
        print(json.dumps(result))
    return 0


def _method_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [m.strip() for m in text.split(",") if m.strip()]
    if not names:
        raise OptionError("--methods needs at least one method")
    return names


def _compare(
    base: RunSettings, time_unit: str, n_seeds: int, jobs: int, title: str, names: list[str] | None = None
) -> dict:
    from .experiments.compare import collect, format_table, methods_for, plot_summary, summarize
    from .experiments.results import write_json

    if n_seeds < 1:
        raise OptionError(f"--n-seeds must be >= 1, got {n_seeds}")
    if jobs < 1:
        raise OptionError(f"--jobs must be >= 1, got {jobs}")
    seeds = list(range(base.seed, base.seed + n_seeds))
    methods = methods_for(time_unit, names)
    for m in methods:
        base.replace(**m.changes).check()
    results, n_run = collect(base, methods, seeds, jobs=jobs)
    summary = summarize(results, seeds)
    summary["title"] = title
    summary["runs_made"] = n_run
    summary["stamps"] = {m: [r["stamp"] for r in rs] for m, rs in results.items()}
    summary["wall_time_s"] = {m: [r["wall_time_s"] for r in rs] for m, rs in results.items()}
    name = f"compare--{base.replace(seed=seeds[0]).stamp()}--n{n_seeds}-{time_unit}"
    summary["plots"] = [
        str(p) for p in plot_summary(summary, title, Path(base.plot_dir) / name, pdf=base.pdf)
    ]
    summary["summary_file"] = str(write_json(Path(base.results_dir) / f"{name}.json", summary))
    print("\n" + format_table(summary, title))
    print(f"({n_run} runs made, {n_seeds * len(methods) - n_run} taken from the cache in {base.results_dir})")
    print(f"plot: {', '.join(summary['plots'])}")
    return summary


def _cmd_compare(args: argparse.Namespace) -> int:
    base = _settings(args, cs=False, time_unit="iteration" if args.time_unit == "both" else args.time_unit)
    if args.get_stamp:
        print(base.stamp())
        return 0
    title = (
        f"{base.experiment} on {base.dataset}, {base.scenario}-incremental, {base.stream} stream: "
        f"{base.optimizer} lr {base.lr:g}; complex synapse n={base.beakers}, alpha={base.alpha:g}, "
        f"beta={base.beta:g}, {args.time_unit} time"
    )
    summary = _compare(base, args.time_unit, args.n_seeds, args.jobs, title, _method_list(args.methods))
    if args.json:
        print(json.dumps(summary))
    return 0


MATRIX_METHODS = "none,joint,l2,ewc,online-ewc,si,cs,cs+ewc"


def _cmd_matrix(args: argparse.Namespace) -> int:
    from .experiments.compare import methods_for
    from .experiments.matrix import csv_text, markdown_table, plot_matrix, run_matrix
    from .experiments.results import write_json, write_text

    base = _settings(args, cs=False, time_unit="iteration" if args.time_unit == "both" else args.time_unit)
    experiments = [e.strip() for e in args.experiments.split(",") if e.strip()]
    scenarios = [sc.strip() for sc in args.scenarios.split(",") if sc.strip()]
    if args.n_seeds < 1 or args.jobs < 1:
        raise OptionError("--n-seeds and --jobs must be >= 1")
    variants = methods_for(args.time_unit, _method_list(args.methods or MATRIX_METHODS))
    for e in experiments:
        for sc in scenarios:
            for v in variants:
                base.replace(experiment=e, scenario=sc, **v.changes).check()
    seeds = list(range(base.seed, base.seed + args.n_seeds))
    matrix = run_matrix(base, variants, experiments, scenarios, seeds, jobs=args.jobs)
    tag = base.replace(experiment="matrix", scenario="all", seed=seeds[0]).stamp().split("--")[-1]
    name = f"matrix--{base.dataset}-i{base.iters}-n{args.n_seeds}-{args.time_unit}--{tag}"
    title = (
        f"{base.dataset}: {base.tasks} tasks x {base.iters} iterations, {base.optimizer} lr {base.lr:g}, "
        f"{len(seeds)} seeds; cs: {base.beakers} beakers, alpha {base.alpha:g}, beta {base.beta:g}"
    )
    table = markdown_table(matrix)
    out = Path(base.results_dir)
    matrix["files"] = [
        str(write_text(out / f"{name}.md", f"{title}\n\n{table}\n")),
        str(write_text(out / f"{name}.csv", csv_text(matrix))),
    ]
    matrix["plots"] = [str(p) for p in plot_matrix(matrix, title, Path(base.plot_dir) / name, pdf=base.pdf)]
    matrix["files"].append(str(write_json(out / f"{name}.json", matrix)))
    print(f"\n{title}\naverage test accuracy (%), mean ± SEM over seeds\n\n{table}\n")
    print(f"({matrix['runs_made']} runs made, the rest from the cache in {base.results_dir})")
    print("files: " + ", ".join(matrix["files"] + matrix["plots"]))
    if args.json:
        print(json.dumps(matrix))
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .experiments.sweep import expand, load_config, plot_heatmap, run_sweep, summary_rows

    config = load_config(args.config)
    if args.jobs < 1:
        raise OptionError(f"--jobs must be >= 1, got {args.jobs}")
    device = "cpu" if args.no_gpus else config.base.get("device", _device_default())
    defaults = RunSettings(
        device=device, results_dir=args.results_dir, plot_dir=args.plot_dir, data_dir=args.data_dir
    )
    runs = expand(config, defaults)
    retries = config.retries if args.retries is None else args.retries
    out = run_sweep(runs, args.backend, args.address, args.jobs, retries, config.resources)
    varying = [
        k for k in list(config.grid) + [k for k in config.random if k not in ("n", "seed")] if k != "seed"
    ]
    axes = list(config.heatmap or varying[:2]) or ["method"]
    rows = summary_rows(runs, out["results"], axes)
    print(
        f"\nsweep {args.config}: {len(runs)} runs, {out['runs_made']} made, "
        f"{out['from_cache']} from the cache, "
        f"{out['retried']} retried, {len(out['failed'])} failed; {out['wall_time_s']:.1f} s ({args.backend})"
    )
    print("  ".join(f"{a:>14s}" for a in axes) + f"  {'accuracy (%)':>16s}  n")
    for r in rows:
        sem = "" if np.isnan(r["sem"]) else f" +- {100 * r['sem']:.2f}"
        print("  ".join(f"{str(r[a]):>14s}" for a in axes) + f"  {100 * r['mean']:8.2f}{sem:>8s}  {r['n']}")
    for stamp, errs in out["failed"].items():
        print(f"FAILED {stamp}: {errs[-1].strip().splitlines()[-1]}")
    plots = []
    if len(axes) == 2 and rows:
        name = f"sweep--{Path(args.config).stem}--{axes[0]}-{axes[1]}"
        plots = plot_heatmap(
            rows,
            (axes[0], axes[1]),
            f"{Path(args.config).name}: mean over the other settings",
            Path(args.plot_dir) / name,
            args.pdf,
        )
        print(f"heat map: {', '.join(map(str, plots))}")
    if args.json:
        print(
            json.dumps(
                {
                    "runs": len(runs),
                    "runs_made": out["runs_made"],
                    "from_cache": out["from_cache"],
                    "retried": out["retried"],
                    "failed": out["failed"],
                    "wall_time_s": out["wall_time_s"],
                    "summary": rows,
                    "plots": [str(p) for p in plots],
                    "accuracy": {k: r["accuracy"]["average"] for k, r in out["results"].items()},
                },
                default=str,
            )
        )
    return 1 if out["failed"] else 0


def _chain_of(args: argparse.Namespace):
    from .chain import validate_chain
    from .simulate import Chain

    try:
        validate_chain(args.beakers, args.alpha, args.beta)
    except (TypeError, ValueError) as exc:
        raise OptionError(str(exc).replace("n_beakers", "--beakers")) from None
    if args.beakers < 1:
        raise OptionError("--beakers must be >= 1 for simulate")
    if not args.lr > 0:
        raise OptionError(f"--lr must be > 0, got {args.lr}")
    return Chain(args.beakers, args.alpha, args.beta, args.time_unit, args.integrator, args.lr)


def _csv(path: Path, header: list[str], rows) -> Path:
    from .experiments.results import write_text

    lines = [",".join(header)] + [
        ",".join(f"{v:.10g}" if isinstance(v, float) else str(v) for v in r) for r in rows
    ]
    return write_text(path, "\n".join(lines) + "\n")


def _cmd_simulate(args: argparse.Namespace) -> int:
    chain = _chain_of(args)
    name = f"simulate-{args.kind}--n{chain.n_beakers}-a{chain.alpha:g}-b{chain.beta:g}-{chain.time_unit}"
    out = {"impulse": _sim_impulse, "memory": _sim_memory, "beakers": _sim_beakers}[args.kind](
        args, chain, name
    )
    if args.json:
        print(json.dumps(out))
    return 0


def _sim_impulse(args, chain, name: str) -> dict:
    import numpy as np

    from .simulate import fit_window, fitted_slope, impulse_exact, impulse_stepped
    from .simulate_plots import plot_impulse

    steps = args.steps or int(np.ceil(10 * chain.beta / chain.dt))
    if steps < 1 or args.stepped < 0:
        raise OptionError("--steps must be >= 1 and --stepped >= 0")
    every = np.arange(steps + 1)
    w_all = chain.h(every) / chain.kick  # exact, every step, unit kick
    t_all = every * chain.dt
    slope = fitted_slope(t_all[1:], w_all[1:], chain.alpha, chain.beta)
    sample = np.unique(np.concatenate([[0], np.geomspace(1, steps, 400).astype(int)]))
    t = sample * chain.dt
    u = impulse_exact(chain.n_beakers, chain.alpha, chain.beta, t)
    n_stepped = min(args.stepped, steps)
    stepped = impulse_stepped(chain, n_stepped) if n_stepped else np.zeros((0, chain.n_beakers))
    ref = w_all[: n_stepped + 1]
    diff = float(np.max(np.abs(stepped[:, 0] - ref) / np.abs(ref))) if n_stepped else float("nan")
    plots = plot_impulse(
        t,
        u,
        every[: n_stepped + 1] * chain.dt,
        stepped[:, 0],
        chain.alpha,
        chain.beta,
        slope,
        Path(args.plot_dir) / name,
        args.pdf,
    )
    csv = _csv(
        Path(args.results_dir) / f"{name}.csv",
        ["t"] + [f"u{k + 1}" for k in range(chain.n_beakers)],
        ([float(a), *map(float, row)] for a, row in zip(t, u)),
    )
    lo, hi = fit_window(chain.alpha, chain.beta)
    print(
        f"impulse response: {chain.n_beakers} beakers, alpha {chain.alpha:g}, beta {chain.beta:g} "
        f"({chain.time_unit} time, dt {chain.dt:g} per step)"
    )
    print(f"  fitted log-log slope of w over t in [{lo:.3g}, {hi:.3g}]: {slope:.4f} (power law t^-1/2: -0.5)")
    print(
        f"  w at alpha, beta, 10 beta: {np.interp(chain.alpha, t_all, w_all):.4g}, "
        f"{np.interp(chain.beta, t_all, w_all):.4g}, {w_all[-1]:.4g}"
    )
    if n_stepped:
        print(
            f"  {chain.integrator} optimizer stepped {n_stepped} times: max relative difference from the "
            f"exact response {diff:.2e}"
        )
    print(f"  plot: {', '.join(map(str, plots))}\n  data: {csv}")
    return {
        "slope": slope,
        "fit_window": [lo, hi],
        "t": t.tolist(),
        "w": u[:, 0].tolist(),
        "stepped_steps": n_stepped,
        "max_rel_diff_stepped": diff,
        "plots": [str(p) for p in plots],
        "csv": str(csv),
    }


def _int_list(text: str, option: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise OptionError(f"{option} must be integers separated by commas, got {text!r}") from None
    if not values or min(values) < 1:
        raise OptionError(f"{option} must be integers >= 1, got {text!r}")
    return values


def _sim_memory(args, chain, name: str) -> dict:
    import numpy as np

    from .simulate import best_lifetime, snr_closed_form, snr_monte_carlo
    from .simulate_plots import plot_lifetimes, plot_memory

    ns = _int_list(args.n_list, "--n-list")
    synapses = _int_list(args.synapses_list, "--synapses-list")
    if args.synapses < 1 or args.trials < 2:
        raise OptionError("--synapses must be >= 1 and --trials >= 2")
    burn = args.burn_in if args.burn_in is not None else int(min(3 * chain.beta / chain.dt, 30000))
    horizon = max(2.0, 2 * chain.beta / chain.dt)
    ages = np.unique(np.concatenate([[0, 1, 2], np.geomspace(3, horizon, 12).astype(int)]))
    closed = snr_closed_form(chain, args.synapses, burn, burn + ages)
    mc, se = snr_monte_carlo(chain, args.synapses, burn, burn + ages, trials=args.trials)
    label = f"{chain.n_beakers} beakers, alpha {chain.alpha:g}, beta {chain.beta:g}"
    plots = plot_memory(ages, closed, mc, se, args.synapses, label, Path(args.plot_dir) / name, args.pdf)
    print(
        f"memory SNR: {label}, N = {args.synapses}, {args.trials} trials, tracked memory after {burn} others"
    )
    print(f"  {'age':>8s} {'closed form':>12s} {'Monte Carlo':>12s} {'SE':>8s} {'z':>6s}")
    for a, c, m, e in zip(ages, closed, mc, se):
        print(f"  {a:8d} {c:12.4g} {m:12.4g} {e:8.3g} {(m - c) / e:6.2f}")
    betas = np.logspace(0, 9, 37)
    lifetimes, best = {}, {}
    for n in ns:
        key = f"n={n}" + (" (simple synapse)" if n == 1 else "")
        results = [best_lifetime(n, 1.0, N, betas) for N in synapses]
        lifetimes[key] = [r[0] for r in results]
        best[key] = [r[1] for r in results]
    plots += plot_lifetimes(synapses, lifetimes, Path(args.plot_dir) / f"{name}-lifetimes", args.pdf)
    print("  lifetime (steps until SNR < 1), best beta for each N, alpha = 1 step:")
    print("  " + f"{'N':>8s} " + " ".join(f"{k:>22s}" for k in lifetimes))
    for i, N in enumerate(synapses):
        cells = [f"{lifetimes[k][i]:10.4g} (beta {best[k][i]:8.3g})" for k in lifetimes]
        print("  " + f"{N:8d} " + " ".join(cells))
    rows = [[int(a), float(c), float(m), float(e)] for a, c, m, e in zip(ages, closed, mc, se)]
    csv = _csv(Path(args.results_dir) / f"{name}.csv", ["age", "snr_closed", "snr_mc", "se_mc"], rows)
    csv2 = _csv(
        Path(args.results_dir) / f"{name}-lifetimes.csv",
        ["n_beakers", "synapses", "lifetime", "best_beta"],
        (
            [k, N, float(lifetimes[k][i]), float(best[k][i])]
            for k in lifetimes
            for i, N in enumerate(synapses)
        ),
    )
    print(f"  plots: {', '.join(map(str, plots))}\n  data: {csv}, {csv2}")
    return {
        "ages": ages.tolist(),
        "snr_closed": closed.tolist(),
        "snr_mc": mc.tolist(),
        "se_mc": se.tolist(),
        "lifetimes": {k: dict(zip(map(str, synapses), v)) for k, v in lifetimes.items()},
        "best_beta": {k: dict(zip(map(str, synapses), v)) for k, v in best.items()},
        "plots": [str(p) for p in plots],
    }


def _sim_beakers(args, chain, name: str) -> dict:
    import numpy as np

    from .simulate import impulse_exact
    from .simulate_plots import plot_beakers

    if args.frames < 1:
        raise OptionError("--frames must be >= 1")
    times = np.concatenate([[0.0], np.geomspace(chain.alpha / 4, 3 * chain.beta, args.frames - 1)])[
        : args.frames
    ]
    levels = impulse_exact(chain.n_beakers, chain.alpha, chain.beta, times)
    plots = plot_beakers(
        times, levels, chain.n_beakers, chain.alpha, chain.beta, Path(args.plot_dir) / name, args.pdf
    )
    print(f"beaker levels after a kick: {', '.join(map(str, plots))}")
    return {"t": times.tolist(), "levels": levels.tolist(), "plots": [str(p) for p in plots]}


DEMO = dict(
    dataset="digits",
    experiment="splitMNIST",
    scenario="task",
    iters=500,
    optimizer="adam",
    lr=0.001,
    beakers=5,
    alpha=500.0,
    beta=2500.0,
)


def _cmd_demo(args: argparse.Namespace) -> int:
    base = RunSettings(
        **DEMO, device="cpu", plot_dir=args.plot_dir, results_dir=args.results_dir, pdf=args.pdf
    )
    print(
        "Demo: split digits (scikit-learn's 8x8 images, 5 tasks of 2 classes), Task-IL, an MLP with 2 hidden "
        "layers of 400 units, Adam lr 1e-3, 500 iterations per task; standard vs the complex synapse "
        "(5 beakers, alpha 500, beta 2500 iterations)."
    )
    title = "split digits, Task-IL: Adam vs complex synapse (5 beakers, alpha 500, beta 2500 iterations)"
    summary = _compare(base, "iteration", args.n_seeds, args.jobs, title)
    if args.json:
        print(json.dumps(summary))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from .data import DataError

    try:
        commands = {
            "run": _cmd_run,
            "compare": _cmd_compare,
            "matrix": _cmd_matrix,
            "demo": _cmd_demo,
            "simulate": _cmd_simulate,
            "sweep": _cmd_sweep,
        }
        return commands[args.command](args)
    except DataError as exc:
        print(f"complex-synapses: {exc}", file=sys.stderr)
        return 1
    except OptionError as exc:
        print(f"complex-synapses {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
