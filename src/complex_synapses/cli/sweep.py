"""``complex-synapses sweep``: a grid / random search from a TOML file, locally or on Ray."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..experiments.execution.cache import to_json
from ..experiments.run.checks import check_device, check_writable
from ..experiments.run.settings import RunSettings
from .common import D, add_cluster_options, add_output_options, device_default, execution

__all__ = ["add_parser", "command"]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "sweep",
        help="a grid / random search over run options, locally or on a Ray cluster",
        description="Run every combination in CONFIG.toml (see complex_synapses/experiments/designs/sweep.py "
        "for the format) through the result cache; retry failed runs; print a summary table and draw a heat "
        "map over two settings.",
    )
    p.add_argument("config", help="the sweep's TOML file")
    add_cluster_options(p)
    p.add_argument(
        "--jobs", type=int, default=1, help="local backend: parallel processes (default %(default)s)"
    )
    p.add_argument(
        "--retries", type=int, default=None, help="attempts after a failure (default: the config's, 2)"
    )
    p.add_argument("--data-dir", default=D.data_dir, help="(default %(default)s)")
    p.add_argument("--no-gpus", action="store_true", help="run on the CPU even if a GPU is there")
    add_output_options(p)


def _print_summary(args, runs, out, axes, rows) -> None:
    print(
        f"\nsweep {args.config}: {len(runs)} runs, {out['runs_made']} made, "
        f"{out['from_cache']} from the cache, {out['retried']} retried, {len(out['failed'])} failed; "
        f"{out['wall_time_s']:.1f} s ({args.backend})"
    )
    print("  ".join(f"{a:>14s}" for a in axes) + f"  {'accuracy (%)':>16s}  n")
    for r in rows:
        sem = "" if np.isnan(r["sem"]) else f" +- {100 * r['sem']:.2f}"
        print("  ".join(f"{str(r[a]):>14s}" for a in axes) + f"  {100 * r['mean']:8.2f}{sem:>8s}  {r['n']}")
    for stamp, errs in out["failed"].items():
        print(f"FAILED {stamp}: {errs[-1].strip().splitlines()[-1]}")


def command(args: argparse.Namespace) -> int:
    from ..experiments.designs.sweep import expand, load_config, run_sweep, summary_rows
    from ..experiments.reports.figures import heatmap

    execution(args, retries=args.retries or 0)  # the command line's options, before the file is read
    config = load_config(args.config)
    device = "cpu" if args.no_gpus else config.base.get("device", device_default())
    check_device(device)
    defaults = RunSettings(
        device=device, results_dir=args.results_dir, plot_dir=args.plot_dir, data_dir=args.data_dir
    )
    runs = expand(config, defaults)
    check_writable(args.results_dir, "--results-dir")
    check_writable(args.plot_dir, "--plot-dir")
    retries = config.retries if args.retries is None else args.retries
    out = run_sweep(runs, execution(args, resources=config.resources, retries=retries))
    varying = [
        k for k in list(config.grid) + [k for k in config.random if k not in ("n", "seed")] if k != "seed"
    ]
    axes = list(config.heatmap or varying[:2]) or ["method"]
    rows = summary_rows(runs, out["results"], axes)
    _print_summary(args, runs, out, axes, rows)
    plots = []
    if len(axes) == 2 and rows:
        name = f"sweep--{Path(args.config).stem}--{axes[0]}-{axes[1]}"
        title = f"{Path(args.config).name}: mean over the other settings"
        plots = heatmap(rows, (axes[0], axes[1]), title, Path(args.plot_dir) / name, args.pdf)
        print(f"heat map: {', '.join(map(str, plots))}")
    if args.json:
        summary = {
            **{k: out[k] for k in ("runs_made", "from_cache", "retried", "failed", "wall_time_s")},
            "runs": len(runs),
            "summary": rows,
            "plots": [str(p) for p in plots],
            "accuracy": {k: r["accuracy"]["average"] for k, r in out["results"].items()},
        }
        print(to_json(summary))
    return 1 if out["failed"] else 0
