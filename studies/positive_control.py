"""The positive control of the low-precision regime (issue 23): Laborieux et al.'s (2021)
metaplastic binarized network against the same network without metaplasticity, on
permuted Fashion-MNIST in Domain-IL, read from the result files of ``complex-synapses run``.

Runs (5 seeds, each m; 5 epochs of 600 batches per task; about 4 minutes a run on one core):

    for seed in 0 1 2 3 4; do for m in 0 1.35; do
      complex-synapses run --experiment permMNIST --dataset fashion-mnist --scenario domain \\
        --tasks 6 --iters 3000 --batch 100 --fc-units 512 --weight-bits 1 --lr 0.005 \\
        --decay 1e-7 --method meta --meta-m $m --eval-log 3000 --seed $seed --results-dir DIR
    done; done
    python studies/positive_control.py DIR --out docs/results

Writes ``positive-control.csv`` (the accuracy of every task after each task, mean and 95%
t interval over seeds, per m) and ``positive-control.png``, and prints the final table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy import stats

from complex_synapses.figures import pyplot, save_figure
from complex_synapses.files import csv_text, read_json, write_text


def load(results: Path) -> dict[float, np.ndarray]:
    """The accuracy matrices (seed, after task i, of task j) of the 1-bit meta runs, by m."""
    by_m: dict[float, list] = {}
    for path in sorted(results.glob("*.json")):
        r = read_json(path)
        s = r["settings"]
        if s.get("weight_bits") != 1 or s["method"] != "meta":
            continue
        m = float(s["method_options"].get("meta_m", 1.35))
        by_m.setdefault(m, []).append(r["accuracy"]["matrix"])
    if not by_m:
        raise SystemExit(f"positive_control: no 1-bit meta results in {results}")
    return {m: 100 * np.array(v) for m, v in sorted(by_m.items())}


def interval(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over seeds (axis 0) and the half-width of the 95% t interval."""
    n = len(x)
    half = stats.t.ppf(0.975, n - 1) * x.std(0, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(x.shape[1:])
    return x.mean(0), half


def figure(groups: dict[str, np.ndarray], path: Path) -> list[Path]:
    """One panel per group of runs: every task's accuracy after each task, mean and 95%
    interval over seeds."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 3.8), sharey=True)
    for ax, (title, acc) in zip(np.atleast_1d(axes), groups.items()):
        mean, half = interval(acc)
        after = np.arange(1, mean.shape[0] + 1)
        for j in range(mean.shape[1]):
            ax.plot(after[j:], mean[j:, j], marker="o", label=f"task {j + 1}")
            ax.fill_between(after[j:], mean[j:, j] - half[j:, j], mean[j:, j] + half[j:, j], alpha=0.2)
        ax.set_title(f"{title} ({len(acc)} seeds)")
        ax.set_xlabel("after training task")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("test accuracy (%)")
    np.atleast_1d(axes)[-1].legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", type=Path, help="the folder of the runs' result files")
    p.add_argument("--out", type=Path, default=Path("."), help="where the CSV and the figure go")
    args = p.parse_args(argv)
    by_m = load(args.results)
    rows = []
    for m, acc in by_m.items():
        mean, half = interval(acc)
        rows += [
            [m, len(acc), i + 1, j + 1, mean[i, j], half[i, j]]
            for i in range(mean.shape[0])
            for j in range(i + 1)
        ]
    header = ["meta_m", "seeds", "after_task", "task", "accuracy_mean", "ci95_half"]
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "positive-control.csv", csv_text(header, rows, digits=4))
    figure(
        {f"m = {m:g}": acc for m, acc in by_m.items()}, args.out / "positive-control"
    )  # save_figure adds .png
    tasks = next(iter(by_m.values())).shape[1]
    print("| m | seeds | " + " | ".join(f"task {j + 1}" for j in range(tasks)) + " | average |")
    print("|---:|---:|" + "---:|" * (tasks + 1))
    for m, acc in by_m.items():
        mean, half = interval(acc)
        avg_mean, avg_half = interval(acc[:, -1, :].mean(1, keepdims=True))
        cells = [f"{mean[-1, j]:.1f} ± {half[-1, j]:.1f}" for j in range(tasks)]
        print(f"| {m:g} | {len(acc)} | " + " | ".join(cells) + f" | {avg_mean[0]:.1f} ± {avg_half[0]:.1f} |")


if __name__ == "__main__":
    main()
