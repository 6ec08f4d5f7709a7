"""The positive control in the paper's protocol, its two effects separated (issue 38):
Laborieux et al.'s metaplastic rule (m = 1.35) against the same optimizer without it
(m = 0), each with Adam's state started afresh at every task (their code) or kept, and
the old tasks tested with one shared batch normalisation (Domain-IL) or each with its
own (``--bn-per-task``, their code's default). Read from the result files of
``studies/positive-control-protocol.toml``'s sweep:

    PYTHONPATH=<worktree>/src python -m complex_synapses.cli sweep \\
        studies/positive-control-protocol.toml --jobs 2 --results-dir store/positive-control-protocol
    python studies/positive_control_arms.py store/positive-control-protocol --out docs/results

Writes ``positive-control-protocol.csv`` (one row per run: its arm, seed, ``args`` that
rerun it with ``complex-synapses run <args> --seed S --threads 1``, final average
accuracy, each task's final accuracy, learning, forgetting, bwt, max_forgetting) and
``positive-control-protocol.png`` (the final average of every arm, each seed a dot), and
prints the arms' table and the paired contrasts (the rule within each protocol, Holm over
the four; the reset's cost at m = 0; the batch-norm protocol's effect).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
from scipy import stats

from complex_synapses.experiments.reports.stats import holm
from complex_synapses.experiments.run.settings import RunSettings
from complex_synapses.figures import pyplot, save_figure
from complex_synapses.files import csv_text, read_json, write_text

FIELDS = {f.name for f in dataclasses.fields(RunSettings)}


def arm_of(settings: dict) -> tuple[float, bool, bool]:
    """(m, Adam's state kept, per-task batch norm) of a run's settings."""
    options = settings["method_options"]
    return (
        float(options.get("meta_m", 1.35)),
        bool(options.get("meta_keep_state", False)),
        bool(settings.get("bn_per_task", False)),
    )


def label(arm: tuple[float, bool, bool]) -> str:
    m, kept, own = arm
    return f"m {m:g}, Adam {'kept' if kept else 'reset'}, {'per-task' if own else 'shared'} BN"


def load(results: Path) -> dict[tuple[float, bool, bool], dict[int, dict]]:
    """Each arm's results by seed (1-bit meta runs only)."""
    arms: dict[tuple[float, bool, bool], dict[int, dict]] = {}
    for path in sorted(results.glob("*.json")):
        r = read_json(path)
        s = r.get("settings", {})
        if s.get("weight_bits") != 1 or s.get("method") != "meta":
            continue
        arms.setdefault(arm_of(s), {})[s["seed"]] = r
    if not arms:
        raise SystemExit(f"positive_control_arms: no 1-bit meta results in {results}")
    return dict(sorted(arms.items()))


def load_beakers(results: Path) -> dict[tuple[float, bool], dict[int, dict]]:
    """The beaker rule's results (their Adam_bk, kept across tasks) by (m, per-task batch
    norm) and seed."""
    out: dict[tuple[float, bool], dict[int, dict]] = {}
    for path in sorted(results.glob("*.json")):
        r = read_json(path)
        s = r.get("settings", {})
        if s.get("weight_bits") == 1 and s.get("method") == "beaker":
            key = (float(s["method_options"].get("beaker_m", 0.0)), bool(s.get("bn_per_task", False)))
            out.setdefault(key, {})[s["seed"]] = r
    return dict(sorted(out.items()))


def args_of(settings: dict) -> str:
    """The ``complex-synapses run`` options of a run, less its seed."""
    return " ".join(RunSettings(**{k: v for k, v in settings.items() if k in FIELDS}).run_args())


def ci(x: np.ndarray) -> tuple[float, float]:
    """Mean and the half-width of its 95% t interval."""
    n = len(x)
    half = stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / np.sqrt(n) if n > 1 else float("nan")
    return float(x.mean()), float(half)


def paired(a: dict[int, dict], b: dict[int, dict]) -> tuple[float, float, float, int]:
    """a - b in final average accuracy (points) over their common seeds: mean, 95% half
    width, paired t-test p, n."""
    seeds = sorted(set(a) & set(b))
    d = np.array([100 * (a[s]["accuracy"]["average"] - b[s]["accuracy"]["average"]) for s in seeds])
    mean, half = ci(d)
    p = float(stats.ttest_rel(d, np.zeros_like(d)).pvalue) if len(d) > 1 else float("nan")
    return mean, half, p, len(d)


def rows_of(arms, beakers=None) -> tuple[list[str], list[list]]:
    """One row per run: the eight arms' (method meta), then the beaker rule's."""
    tasks = len(next(iter(next(iter(arms.values())).values()))["accuracy"]["per_task"])
    header = ["method", "m", "adam_state", "batch_norm", "seed", "args", "average"]
    header += [f"task_{j + 1}" for j in range(tasks)] + ["learning", "forgetting", "bwt", "max_forgetting"]
    rows = []
    runs = [(("meta", *arm), by) for arm, by in arms.items()]
    runs += [(("beaker", m, True, own), by) for (m, own), by in (beakers or {}).items()]
    for (method, m, kept, own), by_seed in runs:
        for seed, r in sorted(by_seed.items()):
            a = r["accuracy"]
            rows.append(
                [
                    method,
                    m,
                    "kept" if kept else "reset",
                    "per-task" if own else "shared",
                    seed,
                    args_of(r["settings"]),
                ]
                + [a["average"], *a["per_task"], a.get("learning"), a.get("forgetting")]
                + [a.get("bwt"), a.get("max_forgetting")]
            )
    return header, rows


def figure(arms, path: Path) -> list[Path]:
    """Final average accuracy of each arm, one panel per batch-norm protocol; each seed a
    dot, the mean and its 95% interval a bar."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, own in zip(axes, (False, True)):
        chosen = [(arm, by) for arm, by in arms.items() if arm[2] == own]
        for x, (arm, by) in enumerate(chosen):
            acc = 100 * np.array([r["accuracy"]["average"] for r in by.values()])
            mean, half = ci(acc)
            color = "tab:orange" if arm[0] > 0 else "tab:gray"
            ax.bar(x, mean, yerr=half, color=color, alpha=0.6, capsize=4)
            ax.plot([x] * len(acc), acc, "k.", alpha=0.7)
        ax.set_xticks(range(len(chosen)), [label(a).rsplit(",", 1)[0] for a, _ in chosen], rotation=20)
        ax.set_title(f"{'per-task' if own else 'shared'} batch norm")
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("final average test accuracy (%)")
    fig.suptitle("permuted Fashion-MNIST, 6 tasks x 5 epochs, 2 x 512 binarized network")
    fig.tight_layout()
    return save_figure(fig, path)


def table_row(name: str, by_seed: dict[int, dict]) -> str:
    """A Markdown row: the arm, its seeds, and the mean ± 95% half-width of its final
    average, first task's final accuracy and forgetting (%)."""
    runs = [r["accuracy"] for r in by_seed.values()]
    acc = 100 * np.array([a["average"] for a in runs])
    first = 100 * np.array([a["per_task"][0] for a in runs])
    forget = 100 * np.array([a.get("forgetting", np.nan) for a in runs])
    cells = [f"{m:.1f} ± {h:.1f}" for m, h in (ci(acc), ci(first), ci(forget))]
    return f"| {name} | {len(runs)} | " + " | ".join(cells) + " |"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", type=Path, help="the folder of the sweep's result files")
    p.add_argument("--out", type=Path, default=Path("."), help="where the CSV and the figure go")
    args = p.parse_args(argv)
    arms, beakers = load(args.results), load_beakers(args.results)
    header, rows = rows_of(arms, beakers)
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "positive-control-protocol.csv", csv_text(header, rows, digits=5))
    figure(arms, args.out / "positive-control-protocol")
    print("| arm | seeds | average (%) | task 1 (%) | forgetting (pp) |\n|---|---:|---:|---:|---:|")
    for arm, by in arms.items():
        print(table_row(label(arm), by))
    for (m, own), by in beakers.items():
        print(table_row(f"beaker rule, m {m:g}, kept, {'per-task' if own else 'shared'} BN", by))
    print("\ncontrasts in final average accuracy (points, paired by seed, 95% CI, t-test p):")
    family = []
    for kept in (False, True):
        for own in (False, True):
            if (1.35, kept, own) in arms and (0.0, kept, own) in arms:
                family.append(
                    (
                        f"rule: m 1.35 - m 0, {label((0, kept, own)).split(', ', 1)[1]}",
                        paired(arms[(1.35, kept, own)], arms[(0.0, kept, own)]),
                    )
                )
    adjusted = holm([c[1][2] for c in family]) if family else []
    for (name, (mean, half, p, n)), p_holm in zip(family, adjusted):
        print(f"  {name}: {mean:+.2f} ± {half:.2f} (n {n}), p {p:.2g}, Holm p {p_holm:.2g}")
    for own in (False, True):
        if (0.0, True, own) in arms and (0.0, False, own) in arms:
            mean, half, p, n = paired(arms[(0.0, True, own)], arms[(0.0, False, own)])
            print(
                f"  Adam kept - reset at m 0, {'per-task' if own else 'shared'} BN: {mean:+.2f} ± {half:.2f}"
                f" (n {n}), p {p:.2g}"
            )
    for (m, own), by in beakers.items():
        for ref_m, ref_kept in ((0.0, True), (1.35, False)):
            if (ref_m, ref_kept, own) in arms:
                mean, half, p, n = paired(by, arms[(ref_m, ref_kept, own)])
                print(
                    f"  beaker rule m {m:g} - meta m {ref_m:g} Adam {'kept' if ref_kept else 'reset'}, "
                    f"{'per-task' if own else 'shared'} BN: {mean:+.2f} ± {half:.2f} (n {n}), p {p:.2g}"
                )
    for m in (0.0, 1.35):
        for kept in (False, True):
            if (m, kept, True) in arms and (m, kept, False) in arms:
                mean, half, p, n = paired(arms[(m, kept, True)], arms[(m, kept, False)])
                print(
                    f"  per-task - shared BN, m {m:g}, Adam {'kept' if kept else 'reset'}: "
                    f"{mean:+.2f} ± {half:.2f} (n {n}), p {p:.2g}"
                )


if __name__ == "__main__":
    main()
