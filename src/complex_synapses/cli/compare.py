"""``compare``, ``matrix`` and ``demo``: methods over seeds, through the result cache."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

from ..data import EXPERIMENTS, SCENARIOS
from ..experiments.designs.toml_files import presets
from ..experiments.execution.cache import to_json
from ..experiments.run.checks import check_seed
from ..experiments.run.settings import OptionError, RunSettings
from .common import add_output_options, add_run_options, method_list, name_list, settings

__all__ = ["add_parsers", "compare", "matrix", "demo"]


def __getattr__(name: str):
    # The defaults, read from experiments/presets.toml.
    if name == "MATRIX_METHODS":
        return presets()["matrix"]["methods"]
    if name == "DEMO":
        return dict(presets()["demo"]["settings"])
    raise AttributeError(name)


def _seeds_and_jobs(p: argparse.ArgumentParser, n_seeds: int) -> None:
    p.add_argument("--n-seeds", type=int, default=n_seeds, help="seeds seed..seed+N-1 (default %(default)s)")
    p.add_argument("--jobs", type=int, default=1, help="runs in parallel processes (default %(default)s)")


def add_parsers(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="methods over seeds (default: none vs the methods under test)",
        description="Run fine-tuning and the methods under test (or --methods) for several seeds (cached "
        "by parameter stamp); print mean +- SEM, the paired difference and a paired t-test; draw a bar plot.",
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


def _both(args: argparse.Namespace) -> dict[str, str | None]:
    """The options that compare and matrix can split into their choices, as given."""
    from ..experiments.run.methods import all_options

    return {k: getattr(args, k, None) for k, opt in all_options().items() if opt.both}


def _base(args: argparse.Namespace) -> RunSettings:
    """The settings every variant starts from (an option given as ``both``: its default)."""
    s = settings(args, method="none")
    given = {k: v for k, v in s.method_options.items() if s.method_options[k] != "both"}
    s = s.replace(method_options=given)
    return s.replace(**{k: s.option(k) for k, v in _both(args).items() if v in (None, "both")})


def _split(args: argparse.Namespace, base: RunSettings) -> tuple[dict[str, str], str]:
    """The ``both`` options' values (given, else the base's) and their part of file names."""
    values = {k: v or base.option(k) for k, v in _both(args).items()}
    return values, "-".join(map(str, values.values()))


def _describe(base: RunSettings) -> str:
    """The methods under test in words, as the base's options set them."""
    from ..experiments.run.methods import treatments

    values = {k: base.option(k) for cls in treatments() for k in cls.options}
    return "; ".join(cls.describe(values) for cls in treatments())


def _check(base: RunSettings, n_seeds: int, jobs: int) -> list[int]:
    if n_seeds < 1:
        raise OptionError(f"--n-seeds must be >= 1, got {n_seeds}")
    if jobs < 1:
        raise OptionError(f"--jobs must be >= 1, got {jobs}")
    check_seed(base.seed)
    check_seed(base.seed + n_seeds - 1, "--seed + --n-seeds - 1")
    return list(range(base.seed, base.seed + n_seeds))


def _runs_digest(stamps: object) -> str:
    """A short hash of every run's stamp: two comparisons of the same base and seeds whose
    methods differ in a setting (the chain's alpha) write files of their own."""
    return hashlib.sha256(json.dumps(stamps, sort_keys=True).encode()).hexdigest()[:8]


def run_compare(
    base: RunSettings,
    split: dict[str, str] | str,
    n_seeds: int,
    jobs: int,
    title: str,
    names: list[str] | None = None,
) -> dict:
    """Every method of ``names`` (default: none and the methods under test) over the
    seeds, split over the ``both`` options of ``split``; the table, the summary file and
    the bar plot. (A ``split`` given as a string is the time unit alone.)"""
    from ..experiments.designs.compare import both_splits, collect, variants
    from ..experiments.execution.cache import write_json
    from ..experiments.reports.figures import compare_figure
    from ..experiments.reports.stats import summarize
    from ..experiments.reports.tables import compare_table

    if isinstance(split, str):
        split = {"time_unit": split}
    seeds = _check(base, n_seeds, jobs)
    methods = variants(names, both_splits(split))
    for m in methods:
        base.replace(**m.changes).check()
    base.check_outputs()
    results, n_run = collect(base, methods, seeds, jobs=jobs)
    summary = summarize(results, seeds)
    summary["title"] = title
    summary["runs_made"] = n_run
    summary["stamps"] = {m: [r["stamp"] for r in rs] for m, rs in results.items()}
    summary["wall_time_s"] = {m: [r["wall_time_s"] for r in rs] for m, rs in results.items()}
    suffix = "-".join(map(str, split.values()))
    name = f"compare--{base.replace(seed=seeds[0]).stamp()}--n{n_seeds}" + (f"-{suffix}" if suffix else "")
    name += f"--{_runs_digest(summary['stamps'])}"  # the methods' settings: another --alpha, another file
    summary["plots"] = [
        str(p) for p in compare_figure(summary, title, Path(base.plot_dir) / name, pdf=base.pdf)
    ]
    summary["summary_file"] = str(write_json(Path(base.results_dir) / f"{name}.json", summary))
    print("\n" + compare_table(summary, title))
    print(f"({n_run} runs made, {n_seeds * len(methods) - n_run} taken from the cache in {base.results_dir})")
    print(f"plot: {', '.join(summary['plots'])}")
    return summary


def compare(args: argparse.Namespace) -> int:
    base = _base(args)
    if args.get_stamp:
        print(base.stamp())
        return 0
    split, _ = _split(args, base)
    title = (
        f"{base.experiment} on {base.dataset}, {base.scenario}-incremental, {base.stream} stream: "
        f"{base.optimizer} lr {base.lr:g}; {_describe(base)}"
    )
    summary = run_compare(base, split, args.n_seeds, args.jobs, title, method_list(args.methods))
    if args.json:
        print(to_json(summary))
    return 0


def matrix(args: argparse.Namespace) -> int:
    from ..experiments.designs.compare import both_splits
    from ..experiments.designs.compare import variants as variants_of
    from ..experiments.designs.matrix import run_matrix
    from ..experiments.execution.cache import write_json, write_text
    from ..experiments.reports.figures import matrix_figure
    from ..experiments.reports.tables import matrix_csv, matrix_table

    base = _base(args)
    split, unit = _split(args, base)
    experiments = name_list(args.experiments, "--experiments", EXPERIMENTS)
    scenarios = name_list(args.scenarios, "--scenarios", SCENARIOS)
    seeds = _check(base, args.n_seeds, args.jobs)
    variants = variants_of(method_list(args.methods or presets()["matrix"]["methods"]), both_splits(split))
    for e in experiments:
        for sc in scenarios:
            for v in variants:
                base.replace(experiment=e, scenario=sc, **v.changes).check()
    base.check_outputs()
    result = run_matrix(base, variants, experiments, scenarios, seeds, jobs=args.jobs)
    tag = base.replace(experiment="matrix", scenario="all", seed=seeds[0]).stamp().split("--")[-1]
    tag += f"-{_runs_digest(result['stamps'])}"
    name = (
        f"matrix--{base.dataset_label}-i{base.iters}-n{args.n_seeds}"
        + (f"-{unit}" if unit else "")
        + f"--{tag}"
    )
    title = (
        f"{base.dataset}: {base.tasks} tasks x {base.iters} iterations, {base.optimizer} lr {base.lr:g}, "
        f"{len(seeds)} seeds; {_describe(base)}"
    )
    table = matrix_table(result)
    out = Path(base.results_dir)
    result["files"] = [
        str(write_text(out / f"{name}.md", f"{title}\n\n{table}\n")),
        str(write_text(out / f"{name}.csv", matrix_csv(result))),
    ]
    result["plots"] = [str(p) for p in matrix_figure(result, title, Path(base.plot_dir) / name, pdf=base.pdf)]
    result["files"].append(str(write_json(out / f"{name}.json", result)))
    print(f"\n{title}\naverage test accuracy (%), mean ± SEM over seeds\n\n{table}\n")
    print(f"({result['runs_made']} runs made, the rest from the cache in {base.results_dir})")
    print("files: " + ", ".join(result["files"] + result["plots"]))
    if args.json:
        print(to_json(result))
    return 0


def demo(args: argparse.Namespace) -> int:
    preset = presets()["demo"]
    base = RunSettings.make(
        **preset["settings"], device="cpu", plot_dir=args.plot_dir, results_dir=args.results_dir, pdf=args.pdf
    )
    print(preset["description"])
    split = {k: base.option(k) for k in _both(args)}
    summary = run_compare(base, split, args.n_seeds, args.jobs, preset["title"])
    if args.json:
        print(to_json(summary))
    return 0
