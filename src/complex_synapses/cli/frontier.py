"""``complex-synapses frontier``: every method over a fixed grid, no tuner; the
stability-plasticity plane per cell."""

from __future__ import annotations

import argparse
import time

from ..experiments.execution.cache import to_json
from ..experiments.run.checks import check_writable
from .common import add_cluster_options, execution

__all__ = ["add_parser", "command", "COLUMNS"]

COLUMNS = [
    "cell",
    "method",
    "args",
    "n_seeds",
    "learning",
    "learning_sem",
    "retention",
    "retention_sem",
    "retention_auc",
    "retention_auc_sem",
    "average",
    "average_sem",
    "on_frontier",
    "seeds",
    "per_seed_average",
    "per_seed_retention",
]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "frontier",
        help="every method over a fixed grid of its settings, no tuner: learning against retention",
        description="Run every setting of every method in every cell of FILE.toml (format: "
        "complex_synapses/experiments/designs/frontier.py) on the file's seeds, through the result cache, "
        "and report for each setting its learning accuracy (each task right after its training), its "
        "retention (the old tasks' final accuracy) and the area under its retention curve, with SEMs over "
        "seeds; mark each method's non-dominated settings; write the file's CSV and one panel per cell of "
        "the stability-plasticity plane. Resumable: run the same command again after any stop.",
    )
    p.add_argument("config", help="the frontier's TOML file")
    p.add_argument(
        "--jobs", type=int, default=1, help="local backend: runs in parallel (default %(default)s)"
    )
    add_cluster_options(p)
    p.add_argument("--results-dir", default=None, help="override the file's results_dir (the runs' cache)")
    p.add_argument("--json", action="store_true", help="print the rows as one JSON object on the last line")


def command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..experiments.designs.frontier import load_frontier, run_frontier
    from ..experiments.execution.cache import write_text
    from ..experiments.reports.figures import frontier_figure
    from ..files import csv_text

    how = execution(args)
    config = load_frontier(args.config)
    if args.results_dir is not None:
        config.results_dir = Path(args.results_dir)  # the runs are made with it (frontier_runs)
    args.results_dir = str(config.results_dir)  # named in the message after Ctrl-C
    check_writable(config.results_dir, "results_dir")
    for path in (config.csv, config.figure):
        if path is not None:
            check_writable(path.parent, str(path))
    start = time.perf_counter()
    rows = run_frontier(config, how)
    written = []
    if config.csv is not None:
        written.append(
            write_text(config.csv, csv_text(COLUMNS, [[r[c] for c in COLUMNS] for r in rows], digits=6))
        )
    if config.figure is not None:
        title = f"{config.path.stem}: learning against retention, seeds {config.seeds}"
        written += frontier_figure(rows, config.figure, title)
    print(f"{'cell':<14} {'method':<10} {'learning':>9} {'retention':>10} {'average':>8}  front  args")
    for r in rows:
        print(
            f"{r['cell']:<14} {r['method']:<10} {100 * r['learning']:>9.2f} {100 * r['retention']:>10.2f} "
            f"{100 * r['average']:>8.2f}  {'*' if r['on_frontier'] else ' ':^5}  {r['args'][-60:]}"
        )
    print(f"\n{len(rows)} settings; {time.perf_counter() - start:.0f} s")
    if written:
        print("written: " + ", ".join(map(str, written)))
    if args.json:
        print(to_json({"rows": rows}))
    return 0
