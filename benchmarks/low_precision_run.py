"""Wall time of ``complex-synapses run --weight-bits 1`` against a bare PyTorch loop of the
same binarized network on the same batches.

    python benchmarks/low_precision_run.py [--iters 1000] [--repeats 3]

The run: the positive control's shape (Laborieux et al.'s binarized network, 2 x 512 sign
units with batch normalisation on batch statistics, Adam at 0.005, batches of 100,
permuted Fashion-MNIST, Domain-IL), 2 tasks of ``--iters`` batches, as
``complex-synapses run`` in a process of its own, with the default evaluation (each
task's curve every ``--iters`` iterations, the accuracy matrix, the result file). The bare
loop: a plain PyTorch script, a process of its own, that builds the same network in the
same order (so the same initial weights), takes the same batches (their rows drawn from
the run's stream beforehand) and makes the same Adam steps, and nothing else. It writes
its final weights, and the run's result is checked to come from the same steps: the
bare loop's weights must equal those of an in-process copy of the run's training.

Both are timed as whole processes in ``--repeats`` rounds, the commands' order rotated
each round; the headline is the median over rounds of each round's own ratio (the paired
ratio), with glibc's malloc thresholds fixed as in ``benchmarks/experiment.py``. Target
(issue 41): run / bare at most 1.1. Beside it, the run with its learning curves tested
once, at its end (``--eval-log`` its total steps; the accuracy matrix still after each
task), against the default's test every 100 steps: how much of the difference from the
bare loop is the curves' test passes, which the bare loop does not make; and the bare
loop making the run's test passes too ("bare, tested": its curves before the first step
and every 100 steps on each task's first 1,024 test images in the run's order, its
accuracy matrix after each task, in the run's chunks of 4,096, which set the batch
normalisation's statistics), checked every round to find the run's accuracies exactly:
what the run's own machinery costs beyond the work it reports. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from experiment import FIXED_MALLOC, measure, report, with_test_schedule  # noqa: E402

BARE = r"""
import json, sys, time, numpy, torch
import torch.nn.functional as F
d = torch.load(sys.argv[1], weights_only=True)
images = torch.from_numpy(numpy.load(sys.argv[2]))

class SignWeight(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w):
        return w.sign()
    @staticmethod
    def backward(ctx, g):
        return g

class SignAct(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.sign()
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x.abs() <= 1).to(g.dtype)

class Binary(torch.nn.Linear):
    def __init__(self, a, b):
        super().__init__(a, b, bias=False)
        torch.nn.init.uniform_(self.weight, -0.05, 0.05)
    def forward(self, x):
        return F.linear(x, SignWeight.apply(self.weight))

class Act(torch.nn.Module):
    def forward(self, x):
        return SignAct.apply(x)

torch.manual_seed(d["seed"])
w, out = d["fc_units"], d["n_outputs"]
model = torch.nn.Sequential(
    Binary(images.shape[1], w), torch.nn.BatchNorm1d(w, track_running_stats=False), Act(),
    Binary(w, w), torch.nn.BatchNorm1d(w, track_running_stats=False), Act(),
    Binary(w, out), torch.nn.BatchNorm1d(out, track_running_stats=False))
opt = torch.optim.Adam(model.parameters(), lr=d["lr"])
rows, labels, perms, tasks = d["rows"], d["labels"], d["perms"], d["tasks"].tolist()
tested = len(sys.argv) > 4  # the run's test passes too: curves every eval_log steps, matrix per task
if tested:
    test_images = torch.from_numpy(numpy.load(sys.argv[4]))
    test_rows, test_labels = d["test_rows"], d["test_labels"]  # each task's, in the run's order
    curves, matrix = [], []

def chunks(n):  # the run's test chunks: 4,096 samples, a last chunk of one joins the one before
    b = [(s, min(s + 4096, n)) for s in range(0, n, 4096)]
    return b[:-2] + [(b[-2][0], n)] if len(b) > 1 and b[-1][1] - b[-1][0] == 1 else b

def test(n):  # per task, whether each of its first n test samples (0: all) is classified right
    model.eval()
    flags = []
    with torch.no_grad():
        for t, (r, y) in enumerate(zip(test_rows, test_labels)):
            r, y = (r[:n], y[:n]) if n else (r, y)
            f = []
            for a, b in chunks(len(r)):
                x = test_images.index_select(0, r[a:b])
                x = x if perms[t].numel() == 0 else x.index_select(1, perms[t])
                f.append(model(x).argmax(1) == y[a:b])
            flags.append(torch.cat(f))
    model.train()
    return flags

total, iters, eval_log, eval_n = len(rows), d["iters"], d["eval_log"], d["eval_n"]
if tested:  # the run's curves start before the first step
    curves.append([float(f.sum()) / len(f) for f in test(eval_n)])
t1 = time.perf_counter()
for i in range(total):
    x = images.index_select(0, rows[i])
    p = perms[tasks[i]]
    x = x if p.numel() == 0 else x.index_select(1, p)
    opt.zero_grad()
    F.cross_entropy(model(x), labels[i]).backward()
    opt.step()
    # TEST_SCHEDULE: the run's test passes after this step (experiment.TEST_SCHEDULE)
seconds = time.perf_counter() - t1
if tested:
    print(json.dumps({"matrix": matrix, "curves": curves}))
print(seconds)
torch.save({k: v for k, v in model.state_dict().items()}, sys.argv[3])
"""

SETTINGS = dict(
    experiment="permMNIST",
    scenario="domain",
    tasks=2,
    batch=100,
    fc_units=512,
    weight_bits=1,
    lr=0.005,
)


def prepare(args, folder: Path) -> tuple[Path, list[str]]:
    """The batches (rows, labels, each task's permutation) for the bare loop, and the
    run's command line."""
    from complex_synapses.data import build_protocol, load_dataset, stream
    from complex_synapses.experiments import RunSettings

    s = RunSettings.make(**SETTINGS, iters=args.iters, dataset=args.dataset, data_dir=args.data_dir)
    p = build_protocol(load_dataset(s.dataset, s.data_dir), s.experiment, s.scenario, s.tasks, s.seed)
    batches = list(stream(p, s.stream, s.iters, s.batch, s.seed))
    np.save(folder / "images.npy", p.train_images.numpy())
    np.save(folder / "test_images.npy", p.test_images.numpy())
    # the run's test order (train._Curves): each task's test samples permuted by seed + 1
    gen = torch.Generator().manual_seed(s.seed + 1)
    order = [torch.randperm(len(t.test_rows), generator=gen) for t in p.tasks]
    perms = [
        t.permutation if t.permutation is not None else torch.zeros(0, dtype=torch.long) for t in p.tasks
    ]
    path = folder / "batches.pt"
    torch.save(
        {
            "rows": torch.stack([b.rows for b in batches]),
            "labels": torch.stack([b.y for b in batches]),
            "tasks": torch.tensor([b.task for b in batches]),
            "perms": perms,
            "n_outputs": p.n_outputs,
            "fc_units": s.fc_units,
            "lr": s.lr,
            "seed": s.seed,
            "iters": s.iters,
            "eval_log": s.eval_log,
            "eval_n": s.eval_n,
            "test_rows": [t.test_rows[q] for t, q in zip(p.tasks, order, strict=True)],
            "test_labels": [t.test_y[q] for t, q in zip(p.tasks, order, strict=True)],
        },
        path,
    )
    cli = [sys.executable, "-m", "complex_synapses.cli", "run", *s.run_args(), "--results-dir"]
    cli += [str(folder / "r"), "--plot-dir", str(folder / "p"), "--json", "--fresh"]
    return path, cli


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--data-dir", default="./store/datasets")
    ap.add_argument("--iters", type=int, default=1000, help="batches per task (default %(default)s)")
    ap.add_argument("--repeats", type=int, default=3, help="rounds (default %(default)s)")
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.iters < 1:
        ap.error(f"--repeats and --iters must be >= 1, got {args.repeats}, {args.iters}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data, cli = prepare(args, tmp)
        (tmp / "bare.py").write_text(with_test_schedule(BARE))
        bare = [sys.executable, str(tmp / "bare.py"), str(data), str(tmp / "images.npy"), str(tmp / "w.pt")]
        # beside it, the run with its learning curves tested once, at the end (the accuracy
        # matrix still after each task): what the curves' test passes cost
        once = cli + ["--eval-log", str(SETTINGS["tasks"] * args.iters)]
        # and the bare loop making the run's test passes too (checked: the same accuracies):
        # what the run's own machinery costs beyond the work it reports
        tested = [*bare, str(tmp / "test_images.npy")]
        cmds = {"bare": bare, "run --weight-bits 1": cli, "run, curves once": once, "bare, tested": tested}
        env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")} | FIXED_MALLOC
        walls, loops, ratios = measure(cmds, env, args.repeats, run="run --weight-bits 1")
        same = _same_weights(args, tmp / "w.pt")
    head = (
        f"binarized 2 x 512, permuted {args.dataset}, 2 tasks x {args.iters} Adam steps; "
        f"medians of {args.repeats} rounds, malloc thresholds fixed"
    )
    paired = report(head, walls, loops, ratios)
    ratio = paired["run --weight-bits 1"]
    vs_tested = [r / b for r, b in zip(walls["run --weight-bits 1"], walls["bare, tested"], strict=True)]
    print(f"\nthe bare loop's final weights equal the run's training, step for step: {same}")
    print(
        f"run against the bare loop making the same test passes (the same accuracies, checked): "
        f"paired {statistics.median(vs_tested):.2f} ({min(vs_tested):.2f}-{max(vs_tested):.2f})"
    )
    print(
        json.dumps(
            {
                "benchmark": "low_precision_run",
                "iters": args.iters,
                "repeats": args.repeats,
                "paired_ratio_run": round(ratio, 3),
                "paired_ratios": [round(r, 3) for r in ratios["run --weight-bits 1"]],
                "paired_ratio_curves_once": round(paired["run, curves once"], 3),
                "paired_ratio_run_vs_bare_tested": round(statistics.median(vs_tested), 3),
                "paired_ratio_bare_tested": round(paired["bare, tested"], 3),
                "wall_s": {k: round(statistics.median(v), 2) for k, v in walls.items()},
                "loop_s": {k: round(statistics.median(v), 2) for k, v in loops.items()},
                "same_weights": same,
                "target": 1.1,
                "pass": ratio <= 1.1 and same,
            }
        )
    )


def _same_weights(args, bare_weights: Path) -> bool:
    """The run's training, in this process (its own prepare and stream), ends with the
    bare loop's weights: the two time the same arithmetic."""
    from complex_synapses.data import stream
    from complex_synapses.experiments import RunSettings
    from complex_synapses.experiments.run.train import prepare as prepare_run

    s = RunSettings.make(**SETTINGS, iters=args.iters, dataset=args.dataset, data_dir=args.data_dir)
    protocol, model, optimizer, _ = prepare_run(s, torch.device("cpu"))
    for b in stream(protocol, s.stream, s.iters, s.batch, s.seed):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(protocol.images(b.task, b.rows)), b.y).backward()
        optimizer.step()
    theirs = list(torch.load(bare_weights, weights_only=True).values())
    return len(theirs) == len(list(model.state_dict().values())) and all(
        torch.equal(a, b) for a, b in zip(model.state_dict().values(), theirs)
    )


if __name__ == "__main__":
    main()
