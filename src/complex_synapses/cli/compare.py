"""``compare``, ``matrix`` and ``demo``: methods over seeds, through the result cache."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..data import EXPERIMENTS, SCENARIOS
from ..experiments.checks import check_outputs, check_seed
from ..experiments.results import to_json
from ..experiments.settings import OptionError, RunSettings
from .common import add_output_options, add_run_options, method_list, name_list, settings

__all__ = ["add_parsers", "compare", "matrix", "demo", "MATRIX_METHODS", "DEMO"]

MATRIX_METHODS = "none,joint,l2,ewc,online-ewc,si,cs,cs+ewc"
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


def _seeds_and_jobs(p: argparse.ArgumentParser, n_seeds: int) -> None:
    p.add_argument("--n-seeds", type=int, default=n_seeds, help="seeds seed..seed+N-1 (default %(default)s)")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel processes (default %(default)s)")


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="standard vs complex synapse over seeds",
        description="Run the standard optimizer and the complex synapse for several seeds (cached by "
        "parameter stamp); print mean +- SEM, the paired difference and a paired t-test; draw a bar plot.",
    )
    add_run_options(p, compare=True)
    _seeds_and_jobs(p, 1)
    p = sub.add_parser(
        "matrix",
        help="methods x {split, permuted} x {task, domain, class}",
        description="Run every method on every protocol and scenario over seeds (cached and resumable); "
        "write one table (Markdown, CSV) and one figure, mean +- SEM per cell.",
    )
    add_run_options(p, compare=True)
    p.add_argument("--experiments", default=",".join(EXPERIMENTS), help="(default %(default)s)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="(default %(default)s)")
    _seeds_and_jobs(p, 5)
    p = sub.add_parser(
        "demo",
        help="the headline comparison on the embedded digits data set (a few minutes)",
        description="compare on split digits (scikit-learn's bundled 8x8 images), Task-IL, standard Adam vs "
        "the complex synapse, 5 seeds.",
    )
    _seeds_and_jobs(p, 5)
    add_output_options(p)


def _base(args: argparse.Namespace) -> RunSettings:
    unit = "iteration" if args.time_unit in (None, "both") else args.time_unit
    return settings(args, method="none", time_unit=unit)


def _check(base: RunSettings, n_seeds: int, jobs: int) -> list[int]:
    if n_seeds < 1:
        raise OptionError(f"--n-seeds must be >= 1, got {n_seeds}")
    if jobs < 1:
        raise OptionError(f"--jobs must be >= 1, got {jobs}")
    check_seed(base.seed)
    check_seed(base.seed + n_seeds - 1, "--seed + --n-seeds - 1")
    return list(range(base.seed, base.seed + n_seeds))


def run_compare(
    base: RunSettings, time_unit: str, n_seeds: int, jobs: int, title: str, names: list[str] | None = None
) -> dict:
    """Every method of ``names`` (default: standard vs cs) over the seeds; the table,
    the summary file and the bar plot."""
    from ..experiments.compare import collect, format_table, methods_for, plot_summary, summarize
    from ..experiments.results import write_json

    seeds = _check(base, n_seeds, jobs)
    methods = methods_for(time_unit, names)
    for m in methods:
        base.replace(**m.changes).check()
    check_outputs(base)
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


def _chain_words(base: RunSettings) -> str:
    o = base.option
    return f"{o('beakers')} beakers, alpha {o('alpha'):g}, beta {o('beta'):g}"


def compare(args: argparse.Namespace) -> int:
    base = _base(args)
    if args.get_stamp:
        print(base.stamp())
        return 0
    unit = args.time_unit or base.option("time_unit")
    title = (
        f"{base.experiment} on {base.dataset}, {base.scenario}-incremental, {base.stream} stream: "
        f"{base.optimizer} lr {base.lr:g}; complex synapse {_chain_words(base)}, {unit} time"
    )
    summary = run_compare(base, unit, args.n_seeds, args.jobs, title, method_list(args.methods))
    if args.json:
        print(to_json(summary))
    return 0


def matrix(args: argparse.Namespace) -> int:
    from ..experiments.compare import methods_for
    from ..experiments.matrix import csv_text, markdown_table, plot_matrix, run_matrix
    from ..experiments.results import write_json, write_text

    base = _base(args)
    unit = args.time_unit or base.option("time_unit")
    experiments = name_list(args.experiments, "--experiments", EXPERIMENTS)
    scenarios = name_list(args.scenarios, "--scenarios", SCENARIOS)
    seeds = _check(base, args.n_seeds, args.jobs)
    variants = methods_for(unit, method_list(args.methods or MATRIX_METHODS))
    for e in experiments:
        for sc in scenarios:
            for v in variants:
                base.replace(experiment=e, scenario=sc, **v.changes).check()
    check_outputs(base)
    result = run_matrix(base, variants, experiments, scenarios, seeds, jobs=args.jobs)
    tag = base.replace(experiment="matrix", scenario="all", seed=seeds[0]).stamp().split("--")[-1]
    name = f"matrix--{base.dataset}-i{base.iters}-n{args.n_seeds}-{unit}--{tag}"
    title = (
        f"{base.dataset}: {base.tasks} tasks x {base.iters} iterations, {base.optimizer} lr {base.lr:g}, "
        f"{len(seeds)} seeds; cs: {_chain_words(base)}"
    )
    table = markdown_table(result)
    out = Path(base.results_dir)
    result["files"] = [
        str(write_text(out / f"{name}.md", f"{title}\n\n{table}\n")),
        str(write_text(out / f"{name}.csv", csv_text(result))),
    ]
    result["plots"] = [str(p) for p in plot_matrix(result, title, Path(base.plot_dir) / name, pdf=base.pdf)]
    result["files"].append(str(write_json(out / f"{name}.json", result)))
    print(f"\n{title}\naverage test accuracy (%), mean ± SEM over seeds\n\n{table}\n")
    print(f"({result['runs_made']} runs made, the rest from the cache in {base.results_dir})")
    print("files: " + ", ".join(result["files"] + result["plots"]))
    if args.json:
        print(to_json(result))
    return 0


def demo(args: argparse.Namespace) -> int:
    base = RunSettings.make(
        **DEMO, device="cpu", plot_dir=args.plot_dir, results_dir=args.results_dir, pdf=args.pdf
    )
    print(
        "Demo: split digits (scikit-learn's 8x8 images, 5 tasks of 2 classes), Task-IL, an MLP with 2 hidden "
        "layers of 400 units, Adam lr 1e-3, 500 iterations per task; standard vs the complex synapse "
        "(5 beakers, alpha 500, beta 2500 iterations)."
    )
    title = "split digits, Task-IL: Adam vs complex synapse (5 beakers, alpha 500, beta 2500 iterations)"
    summary = run_compare(base, "iteration", args.n_seeds, args.jobs, title)
    if args.json:
        print(to_json(summary))
    return 0
