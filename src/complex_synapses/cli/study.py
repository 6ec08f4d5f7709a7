"""``complex-synapses study``: every method tuned alike in every cell, tested on other seeds."""

from __future__ import annotations

import argparse
import time

from ..experiments.execution.cache import to_json
from ..experiments.run.checks import check_writable
from ..experiments.run.settings import OptionError
from .common import add_cluster_options, execution

__all__ = ["add_parser", "command"]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "study",
        help="tune every method the same way (Optuna) in every cell, test on other seeds, compare",
        description="Run the study in CONFIG.toml (format: "
        "complex_synapses/experiments/designs/study/load.py). For each cell and method: tune the "
        "method's search space with Optuna (multivariate TPE, median pruning, stored in SQLite) on "
        "the tuning seeds, scoring the validation split, with trials in "
        "proportion to its tuned options where the file says so; widen a range whose best value lies "
        "within 5% of an end and tune again (widen_rounds), keeping the best of every round; with "
        "start_from_baseline, also score the method's off point and keep the better; then run the "
        "chosen setting on the evaluation seeds, which no tuning saw. Compare each method with its "
        "baseline and with the best method without a method under test (chosen by tuning score): "
        "paired t-tests over the evaluation seeds, Holm within the primary family (each method under "
        "test against both) and apart within the secondary one, 95% intervals (not adjusted), "
        "learning accuracy and forgetting. Resumable: run the same command again after any stop.",
    )
    p.add_argument("config", help="the study's TOML file, e.g. studies/where-it-helps.toml")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="local backend: (cell, method) units in parallel (default %(default)s)",
    )
    add_cluster_options(p)
    p.add_argument(
        "--results-dir", default=None, help="override the config's results_dir (cache, tuner storage, units)"
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="run nothing: print the table of the cells whose every unit has finished, and name the others",
    )
    p.add_argument("--json", action="store_true", help="print the table as one JSON object on the last line")


def command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..experiments.designs.study import analyse, load_study, run_study, search_lines, write_outputs
    from ..experiments.reports.figures import convergence_figure
    from ..experiments.reports.tables import study_table

    how = execution(args)
    if args.report_only and args.backend != "local":
        raise OptionError("--report-only runs nothing: --backend does not apply")
    config = load_study(args.config)
    if args.results_dir is not None:
        config.results_dir = Path(args.results_dir)
    args.results_dir = str(config.results_dir)  # named in the message after Ctrl-C
    check_writable(config.results_dir, "results_dir")
    for path in (config.csv, config.figure):
        if path is not None:
            check_writable(path.parent, str(path))
    if args.report_only:
        return _report(config, args.json)
    start = time.perf_counter()
    units = run_study(config, how)
    rows = analyse(units, config.smallest_gain)
    written = write_outputs(config, rows)
    if config.figure is not None:
        written += convergence_figure(units, config.figure.with_name(config.figure.name + "-convergence"))
    print(study_table(rows))
    print("\nsearches (final ranges, tuned values):\n  " + "\n  ".join(search_lines(units)))
    work = sum(u["wall_time_s"] for u in units)
    print(f"\n{len(units)} units; {time.perf_counter() - start:.0f} s now, {work:.0f} s of unit time in all")
    print("written: " + ", ".join(map(str, written)))
    if args.json:
        print(to_json({"rows": rows, "units": units}))
    return 0


def _report(config, as_json: bool) -> int:
    from ..experiments.designs.study import analyse, finished_units, search_lines
    from ..experiments.reports.tables import study_table

    units, missing = finished_units(config)
    rows = analyse(units, config.smallest_gain) if units else []
    if rows:
        print(study_table(rows))
        print("\n(Holm-corrected over the finished cells only)")
        print("\nsearches (final ranges, tuned values):\n  " + "\n  ".join(search_lines(units)))
    for cell, n in missing.items():
        print(f"cell {cell}: {n} of {sum(c == cell for c, _ in config.units())} units still to run")
    if as_json:
        print(to_json({"rows": rows, "missing": missing}))
    return 0
