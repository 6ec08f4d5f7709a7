"""The network's forgetting signature (issue 38): each task's accuracy against its age,
pooled over tasks and seeds, per method and cell, fitted with a power law and an
exponential (``complex_synapses.experiments.reports.retention``). Does a chain make the
network forget as a power law, as the model lab shows for one synapse, where the plain
network forgets exponentially?

Runs: the frontier file ``studies/retention-2026-12.toml`` (long streams, evaluated every
quarter task), then

    PYTHONPATH=<worktree>/src python -m complex_synapses.cli frontier \\
        studies/retention-2026-12.toml --jobs 2
    python studies/retention_curves.py studies/retention-2026-12.toml --out docs/results

Writes ``retention-<file>.csv`` (every point: cell, method, seed, task, age, accuracy),
``retention-<file>-fits.csv`` (per cell and method: the power law's exponent and its
bootstrap interval over tasks, the exponential's timescale, each form's held-out error,
which fits better, points and tasks used) and ``retention-<file>.png`` (accuracy above
chance against age, log-log, one panel per cell).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from complex_synapses.experiments.designs.frontier import frontier_runs, load_frontier
from complex_synapses.experiments.execution.runner import run_many
from complex_synapses.experiments.reports.retention import fit_retention
from complex_synapses.experiments.run.metrics import retention_points
from complex_synapses.figures import pyplot, save_figure
from complex_synapses.files import csv_text, write_text

CHANCE = {"domain": 0.1}  # ten classes in every task


def points_of(config) -> list[tuple[str, str, int, int, int, float]]:
    """(cell, method, seed, task, age, accuracy) of every finished run of the file, read
    from the result cache (a run not yet made is made: run the frontier first)."""
    runs = frontier_runs(config)
    settings = [s for _, _, s in runs]
    results = run_many(settings, progress=False).ordered(settings)
    out = []
    for (cell, method, s), r in zip(runs, results):
        curves = r["curves"]
        for task, age, acc in retention_points(curves["eval_iters"], curves["accuracy_per_task"], s.iters):
            # a task of one seed is one group of the bootstrap: its points share its noise
            out.append((cell, method, s.seed, task + 1000 * s.seed, age, acc))
    return out


def fits_of(points, chance: float, n_boot: int) -> list[list]:
    rows = []
    for cell, method in dict.fromkeys((p[0], p[1]) for p in points):
        mine = [p for p in points if p[0] == cell and p[1] == method]
        tasks, ages, acc = (np.array([p[i] for p in mine]) for i in (3, 4, 5))
        try:
            fit = fit_retention(tasks, ages, acc, chance, n_boot=n_boot)
        except ValueError as e:
            print(f"{cell} {method}: no fit ({e})")
            continue
        rows.append(
            [cell, method, fit.exponent, *fit.exponent_ci, fit.timescale, fit.held_out_power]
            + [fit.held_out_exponential, fit.better, fit.n_points, fit.n_tasks]
        )
    return rows


def figure(points, chance: float, path: Path, title: str) -> list[Path]:
    plt = pyplot()
    cells = list(dict.fromkeys(p[0] for p in points))
    fig, axes = plt.subplots(1, len(cells), figsize=(5 * len(cells), 4), squeeze=False)
    for ax, cell in zip(axes[0], cells):
        for i, method in enumerate(dict.fromkeys(p[1] for p in points if p[0] == cell)):
            mine = [p for p in points if p[0] == cell and p[1] == method and p[5] > chance]
            ages = np.array([p[4] for p in mine])
            excess = np.array([p[5] for p in mine]) - chance
            edges = np.unique(np.geomspace(ages.min(), ages.max() + 1, 12).astype(int))
            which = np.digitize(ages, edges)
            centers = [ages[which == k].mean() for k in np.unique(which)]
            means = [excess[which == k].mean() for k in np.unique(which)]
            ax.loglog(ages, excess, ".", color=f"C{i}", alpha=0.15, ms=3)
            ax.loglog(centers, means, "o-", color=f"C{i}", label=method)
        ax.set_title(cell)
        ax.set_xlabel("age (iterations since the task's training ended)")
        ax.set_ylabel("test accuracy above chance")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config", type=Path, help="the frontier file whose runs give the curves")
    p.add_argument("--out", type=Path, default=Path("."), help="where the CSVs and the figure go")
    p.add_argument("--boot", type=int, default=2000, help="bootstrap resamples of the tasks (default 2000)")
    args = p.parse_args(argv)
    config = load_frontier(args.config)
    scenario = config.base.get("scenario", "task")
    if scenario not in CHANCE:
        raise SystemExit(f"retention_curves: chance level known for {', '.join(CHANCE)} only, got {scenario}")
    chance = CHANCE[scenario]
    points = points_of(config)
    name = f"retention-{args.config.stem}"
    args.out.mkdir(parents=True, exist_ok=True)
    header = ["cell", "method", "seed", "task", "age", "accuracy"]
    rows = [[c, m, s, t % 1000 + 1, a, acc] for c, m, s, t, a, acc in points]
    write_text(args.out / f"{name}.csv", csv_text(header, rows, digits=6))
    fit_header = ["cell", "method", "exponent", "exponent_low", "exponent_high", "timescale"]
    fit_header += ["held_out_power", "held_out_exponential", "better", "n_points", "n_tasks"]
    fits = fits_of(points, chance, args.boot)
    write_text(args.out / f"{name}-fits.csv", csv_text(fit_header, fits, digits=5))
    figure(points, chance, args.out / name, f"{args.config.stem}: retention curves, seeds {config.seeds}")
    for row in fits:
        cell, method, b, lo, hi, tau, e_pow, e_exp, better, n, k = row
        print(
            f"{cell:<10} {method:<8} exponent {b:.3f} [{lo:.3f}, {hi:.3f}]  tau {tau:.0f}  "
            f"held-out power {e_pow:.3f} exp {e_exp:.3f}: {better} ({n} points, {k} tasks)"
        )


if __name__ == "__main__":
    main()
