"""A first look at the low-precision regime (issue 23), untuned: the binarized network of
the positive control on permuted Fashion-MNIST (Domain-IL, 6 tasks of 5 epochs) with
``none`` (Adam), ``meta`` (m 1.35), the chain on the hidden weights (``cs``, first-level
readout) and the chain read out by capacity (``cs --readout mean``), 5 seeds each. It
tells the study what to tune; it is no test of whether anything helps.

Runs (about 3 minutes a run on one core):

    common="--experiment permMNIST --dataset fashion-mnist --scenario domain --tasks 6 \\
      --iters 3000 --batch 100 --fc-units 512 --weight-bits 1 --lr 0.005 --decay 1e-7 \\
      --eval-log 3000 --results-dir DIR"
    chain="--method cs --beakers 5 --alpha 600 --beta 18000"
    for seed in 0 1 2 3 4; do
      complex-synapses run $common --method none --seed $seed
      complex-synapses run $common --method meta --meta-m 1.35 --seed $seed
      complex-synapses run $common $chain --seed $seed
      complex-synapses run $common $chain --readout mean --seed $seed
    done
    python studies/first_look.py DIR --out docs/results

Writes ``first-look.csv`` (per method: every task's accuracy after the last task, the
average, learning accuracy and forgetting, each mean and 95% t interval over seeds) and
``first-look.png``, and prints the table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from positive_control import figure, interval

from complex_synapses.files import csv_text, read_json, write_text


def label(settings: dict) -> str:
    """A run's method, as the table names it."""
    options = settings["method_options"]
    if settings["method"] == "meta":
        return f"meta (m {options.get('meta_m', 1.35):g})"
    if settings["method"] == "cs":
        readout = options.get("readout", "first")
        return f"cs, {readout} readout"
    return settings["method"]


def load(results: Path) -> dict[str, np.ndarray]:
    """The accuracy matrices (seed, after task i, of task j), in %, of the 1-bit runs."""
    groups: dict[str, list] = {}
    for path in sorted(results.glob("*.json")):
        r = read_json(path)
        if r["settings"].get("weight_bits") == 1:
            groups.setdefault(label(r["settings"]), []).append(r["accuracy"]["matrix"])
    if not groups:
        raise SystemExit(f"first_look: no 1-bit results in {results}")
    order = ["none", "meta (m 1.35)", "cs, first readout", "cs, mean readout"]
    keys = sorted(groups, key=lambda k: order.index(k) if k in order else len(order))
    return {k: 100 * np.array(groups[k]) for k in keys}


def summary(acc: np.ndarray) -> dict[str, tuple[float, float]]:
    """Average after the last task, learning accuracy (each task right after it was
    trained) and forgetting (learning accuracy less the final, tasks 1..T-1): mean and
    95% half-width over seeds."""
    diag = np.diagonal(acc, axis1=1, axis2=2)
    final = acc[:, -1, :]
    per_seed = {
        "average": final.mean(1),
        "learning": diag.mean(1),
        "forgetting": (diag[:, :-1] - final[:, :-1]).mean(1),
    }
    out = {}
    for key, x in per_seed.items():
        mean, half = interval(x[:, None])
        out[key] = (float(mean[0]), float(half[0]))
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("results", type=Path, help="the folder of the runs' result files")
    p.add_argument("--out", type=Path, default=Path("."), help="where the CSV and the figure go")
    args = p.parse_args(argv)
    groups = load(args.results)
    tasks = next(iter(groups.values())).shape[1]
    header = ["method", "seeds", *[f"task{j + 1}" for j in range(tasks)], "average", "learning", "forgetting"]
    rows, lines = [], []
    lines.append("| method | seeds | " + " | ".join(f"task {j + 1}" for j in range(tasks)))
    lines[-1] += " | average | learning | forgetting |"
    lines.append("|---|---:|" + "---:|" * (tasks + 3))
    for name, acc in groups.items():
        mean, half = interval(acc[:, -1, :])
        s = summary(acc)
        cells = [f"{mean[j]:.1f} ± {half[j]:.1f}" for j in range(tasks)]
        cells += [f"{s[k][0]:.1f} ± {s[k][1]:.1f}" for k in ("average", "learning", "forgetting")]
        lines.append(f"| {name} | {len(acc)} | " + " | ".join(cells) + " |")
        rows.append([name, len(acc), *cells])
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "first-look.csv", csv_text(header, rows, digits=4))
    figure(groups, args.out / "first-look")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
