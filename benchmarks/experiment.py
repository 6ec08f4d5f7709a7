"""Wall time of ``complex-synapses run`` against a bare PyTorch loop on the same batches.

    python benchmarks/experiment.py [--dataset fashion-mnist] [--repeats 3] [--device cpu]

The run: split protocol, Task-IL, the original's default settings (Adam lr 1e-3, batch
128, 500 iterations x 5 tasks, 3 layers of 400 units; with --cs: 5 beakers, alpha 500,
beta 2500), as ``complex-synapses run`` in a process of its own, without and with --cs.
The bare loop: a plain PyTorch script, also a process of its own, that loads the same
images (from a NumPy file, so that its memory comes from the same allocator as the run's:
a tensor from torch.load trained about 20% slower here), builds the same model (same
initial weights: checked to end with bit-identical weights) and makes the same 2,500 Adam
steps on the same batches (the row indices are taken from the run's stream beforehand),
with nothing else: no evaluation, no logging, no result file.

Both are timed as whole processes (start-up, imports, data and training included), in
``--repeats`` rounds that run every command once, in an order rotated each round; medians
are reported, and beside them the median over rounds of each round's own ratio to its
bare loop (the paired ratio: the machine is shared, and its slow and fast minutes cancel
within a round), and the ratio of the best (shortest) times, which a busy machine can
only lengthen. The targets are checked on the paired ratios. glibc raises its mmap threshold
after large blocks are freed, which the run's data loading does and a bare script does
not: the bare script then maps and faults in fresh pages for its gradients at every step
and trains about 15% slower here. So that neither side profits by accident, the
headline numbers fix the thresholds for every process (MALLOC_MMAP_THRESHOLD_ 32 MiB,
MALLOC_TRIM_THRESHOLD_ 64 MiB); the same measurement with glibc's defaults follows.
The ratios asked for are run / bare (at most 1.15 without --cs, 1.25 with), and
run --compile (the training step compiled, Adam fused) below 1; run --fused (torch's
fused Adam, the model eager) is measured beside it. The native kernel of
--cs (and, for --compile, torch's compiled code) is built once per machine and cached on
disk: one untimed run of each fills those caches first; their times are printed too.
The loop-only times (the run's own ``train_time_s`` against the bare loop's) are
printed beside them, and the default run with its learning curves tested once, at its
end (``--eval-log 2500``; the accuracy matrix still after each task), against the
default's test every 100 steps: how much of the difference from the bare loop is the
curves' test passes, which the bare loop does not make. Beside them, the bare loop
making the default run's test passes too ("bare, tested": its curves before the first
step and every 100 steps on each task's first 1,024 test samples, and its accuracy matrix
on every test sample after each task, in the run's order and chunks of 4,096; its
accuracies are checked equal to the run's, or the benchmark stops): the run against it
is what the run's own machinery costs beyond the work it reports. With ``--device cuda``
both train on the GPU (model, images and labels there; the bare loop synchronises once,
at its end). The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

BARE = r"""
import json, sys, time, numpy, torch
import torch.nn.functional as F
d = torch.load(sys.argv[1], weights_only=True)
dev = torch.device(sys.argv[3])
d["images"] = torch.from_numpy(numpy.load(sys.argv[2])).to(dev)  # numpy-allocated, as the run's
torch.manual_seed(d["seed"])
width, out = d["fc_units"], d["n_outputs"]
model = torch.nn.Sequential(
    torch.nn.Linear(d["images"].shape[1], width), torch.nn.ReLU(),
    torch.nn.Linear(width, width), torch.nn.ReLU(), torch.nn.Linear(width, out)).to(dev)
opt = torch.optim.Adam(model.parameters(), lr=d["lr"])
images, labels, rows = d["images"], d["labels"].to(dev), d["rows"].to(dev)
tasks, cpt = d["tasks"].tolist(), d["cpt"]
tested = len(sys.argv) > 4  # the run's test passes too: curves every eval_log steps, matrix per task
if tested:
    test_images = torch.from_numpy(numpy.load(sys.argv[4])).to(dev)
    test_rows = [r.to(dev) for r in d["test_rows"]]  # each task's test rows in the run's order
    test_labels = [y.to(dev) for y in d["test_labels"]]
    curves, matrix = [], []

def test(n):  # per task, whether each of its first n test samples (0: all) is classified right
    model.eval()
    flags = []
    with torch.no_grad():
        for t, (r, y) in enumerate(zip(test_rows, test_labels)):
            r, y = (r[:n], y[:n]) if n else (r, y)
            f = [model(test_images.index_select(0, r[a:a + 4096]))[:, t * cpt:(t + 1) * cpt].argmax(1)
                 == y[a:a + 4096] for a in range(0, len(r), 4096)]
            flags.append(torch.cat(f))
    model.train()
    return flags

total, iters, eval_log, eval_n = len(rows), d["iters"], d["eval_log"], d["eval_n"]
if tested:  # the run's curves start before the first step
    curves.append([float(f.sum()) / len(f) for f in test(eval_n)])
t1 = time.perf_counter()
for i in range(total):
    t = tasks[i]
    x, y = images[rows[i]], labels[i]
    opt.zero_grad()
    loss = F.cross_entropy(model(x)[:, t * cpt:(t + 1) * cpt], y)
    loss.backward()
    opt.step()
    # TEST_SCHEDULE: the run's test passes after this step (experiment.TEST_SCHEDULE)
if dev.type == "cuda":
    torch.cuda.synchronize(dev)
seconds = time.perf_counter() - t1
if tested:
    print(json.dumps({"matrix": matrix, "curves": curves}))
print(seconds)
"""


def batches_file(args, folder: Path) -> Path:
    """The run's batches (rows of the shared image tensor, labels, tasks) and model shape."""
    from complex_synapses.data import build_protocol, load_dataset, stream
    from complex_synapses.experiments import RunSettings

    s = RunSettings(dataset=args.dataset, data_dir=args.data_dir)
    p = build_protocol(load_dataset(s.dataset, s.data_dir), s.experiment, s.scenario, s.tasks, s.seed)
    batches = list(stream(p, s.stream, s.iters, s.batch, s.seed))
    # the run's test order (train.Curves): each task's test samples permuted by seed + 1
    gen = torch.Generator().manual_seed(s.seed + 1)
    perms = [torch.randperm(len(t.test_rows), generator=gen) for t in p.tasks]
    path = folder / "batches.pt"
    np.save(folder / "images.npy", p.train_images.numpy())
    np.save(folder / "test_images.npy", p.test_images.numpy())
    torch.save(
        {
            "rows": torch.stack([b.rows for b in batches]),
            "labels": torch.stack([b.y for b in batches]),
            "tasks": torch.tensor([b.task for b in batches]),
            "cpt": p.classes_per_task,
            "n_outputs": p.n_outputs,
            "fc_units": s.fc_units,
            "lr": s.lr,
            "seed": s.seed,
            "iters": s.iters,
            "eval_log": s.eval_log,
            "eval_n": s.eval_n,
            "test_rows": [t.test_rows[q] for t, q in zip(p.tasks, perms, strict=True)],
            "test_labels": [t.test_y[q] for t, q in zip(p.tasks, perms, strict=True)],
        },
        path,
    )
    return path


# The run's test passes after training step ``it`` of a bare script (its curves every
# eval_log steps and at the end, its accuracy matrix after each task; one pass where both
# fall on one step, the curves then reading its first eval_n samples, as the run's
# train._test): the run's schedule written once for the bare loops of this script and of
# low_precision_run.py, each of which marks its place with SCHEDULE_MARK.
TEST_SCHEDULE = """\
    it = i + 1
    if tested and (it % eval_log == 0 or it == total or it % iters == 0):
        end_of_task = it % iters == 0
        flags = test(0 if end_of_task else eval_n)
        if it % eval_log == 0 or it == total:
            curves.append([float(f[:eval_n].sum()) / len(f[:eval_n]) for f in flags])
        if end_of_task:
            matrix.append([float(f.sum()) / len(f) for f in flags])
"""
SCHEDULE_MARK = "    # TEST_SCHEDULE: the run's test passes after this step (experiment.TEST_SCHEDULE)\n"


def with_test_schedule(script: str) -> str:
    """A bare script with the run's test schedule in place of its SCHEDULE_MARK line."""
    if script.count(SCHEDULE_MARK) != 1:
        raise ValueError("a bare script marks the place of the run's test schedule once")
    return script.replace(SCHEDULE_MARK, TEST_SCHEDULE)


# The commands measured against the bare loop, and their names in the JSON's keys.
KEYS = {"run": "run", "run --cs": "run_cs", "run --compile": "run_compile", "run --fused": "run_fused"}
KEYS |= {"run, curves once": "run_curves_once", "bare, tested": "bare_tested"}
BARE_KEYS = ("bare", "bare, tested")  # the plain scripts: their last line is the loop's seconds
FIXED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(32 << 20), "MALLOC_TRIM_THRESHOLD_": str(64 << 20)}


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return time.perf_counter() - t0, out


def measure(cmds: dict[str, list[str]], env: dict[str, str], repeats: int, run: str = "run"):
    """Process wall times, loop times and wall/bare ratios of each command over
    ``repeats`` rounds. Each round runs every command once, in an order rotated from
    round to round, so that no command always follows another; a ratio is taken within
    one round (its command against that round's bare loop), which cancels the machine's
    slower and faster minutes better than a ratio of medians does. Where ``cmds`` has a
    "bare, tested", its accuracies are checked against those of the command ``run``."""
    walls: dict[str, list[float]] = {k: [] for k in cmds}
    loops: dict[str, list[float]] = {k: [] for k in cmds}
    names = list(cmds)
    tested: dict[str, tuple] = {}  # the accuracies that the run and the bare loop with tests found
    for r in range(repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            wall, out = timed(cmds[name], env)
            lines = out.strip().splitlines()
            walls[name].append(wall)
            loop_s = float(lines[-1]) if name in BARE_KEYS else json.loads(lines[-1])["train_time_s"]
            loops[name].append(loop_s)
            if name in (run, "bare, tested") and "bare, tested" in cmds:
                _check_same_tests(name == run, lines, tested)
    ratios = {k: [w / b for w, b in zip(v, walls["bare"], strict=True)] for k, v in walls.items()}
    return walls, loops, ratios


def _check_same_tests(is_run: bool, lines: list[str], tested: dict[str, tuple]) -> None:
    """The bare loop with tests must test what the run tests and find the same accuracies
    (the same weights, the same samples in the same order): its accuracy matrix and
    curves against the run's (``is_run``: ``lines`` are the run's output), exactly.
    Raises where they differ."""
    name = "run" if is_run else "bare, tested"
    if is_run:
        result = json.loads(lines[-1])
        per_task = result["curves"]["accuracy_per_task"]
        tested[name] = (result["accuracy"]["matrix"], [list(c) for c in zip(*per_task, strict=True)])
    else:
        found = json.loads(lines[-2])
        tested[name] = (found["matrix"], found["curves"])
    if len(tested) == 2 and tested["run"] != tested["bare, tested"]:
        raise SystemExit("the bare loop with tests found other accuracies than the run: not the same work")


def report(title: str, walls, loops, ratios) -> dict[str, float]:
    """Print the medians; return each command's median paired ratio."""
    print(title)
    print(
        f"{'':14s} {'process wall s':>15s} {'x bare':>8s} {'paired x bare':>14s} {'(min-max)':>12s} "
        f"{'best s':>7s} {'x bare':>7s} {'loop s':>8s} {'x bare loop':>12s}"
    )
    med = {k: statistics.median(v) for k, v in walls.items()}
    best = {k: min(v) for k, v in walls.items()}
    loop = {k: statistics.median(v) for k, v in loops.items()}
    paired = {k: statistics.median(v) for k, v in ratios.items()}
    for k in med:
        spread = f"{min(ratios[k]):.2f}-{max(ratios[k]):.2f}"
        print(
            f"{k:14s} {med[k]:15.2f} {med[k] / med['bare']:8.2f} {paired[k]:14.2f} {spread:>12s} "
            f"{best[k]:7.2f} {best[k] / best['bare']:7.2f} {loop[k]:8.2f} {loop[k] / loop['bare']:12.2f}"
        )
    return paired


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="fashion-mnist", help="mnist needs a download; default %(default)s")
    ap.add_argument("--data-dir", default="./store/datasets")
    ap.add_argument("--repeats", type=int, default=3, help="rounds (each runs every command once)")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (default cpu)")
    ap.add_argument(
        "--fixed-malloc-only",
        action="store_true",
        help="skip the second measurement with glibc's default allocator (halves the time)",
    )
    args = ap.parse_args()
    if args.repeats < 1:
        ap.error(f"--repeats must be at least 1, not {args.repeats}")
    from complex_synapses.experiments import RunSettings

    defaults = RunSettings.make()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = batches_file(args, tmp)
        (tmp / "bare.py").write_text(with_test_schedule(BARE))
        cli = [
            sys.executable,
            "-m",
            "complex_synapses.cli",
            "run",
            "--dataset",
            args.dataset,
            "--data-dir",
            args.data_dir,
            "--results-dir",
            str(tmp / "r"),
            "--plot-dir",
            str(tmp / "p"),
            "--device",
            args.device,
            "--json",
            "--fresh",  # every round trains: the results folder would otherwise serve the same run
        ]
        cmds = {
            "bare": [sys.executable, str(tmp / "bare.py"), str(data), str(tmp / "images.npy"), args.device],
            "run": cli,
            "run --cs": cli + ["--cs"],
            "run --compile": cli + ["--compile"],
            "run --fused": cli + ["--fused"],
            # the default run with its learning curves tested once, at the end, where the
            # default tests them every 100 steps: what the curves' test passes cost
            "run, curves once": cli + ["--eval-log", str(defaults.iters * defaults.tasks)],
            # the bare loop making the default run's test passes too (checked: the same
            # accuracies): what the run's own machinery costs beyond the work it reports
            "bare, tested": [
                sys.executable,
                str(tmp / "bare.py"),
                str(data),
                str(tmp / "images.npy"),
                args.device,
                str(tmp / "test_images.npy"),
            ],
        }
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
        # torch's on-disk compile cache is filled once per machine; warm it, untimed, so
        # that the repeats measure what every later run pays. The cold run is reported.
        cold_s, _ = timed(cmds["run --cs"], base_env)
        cold_compile_s, _ = timed(cmds["run --compile"], base_env)
        fixed = measure(cmds, base_env | FIXED_MALLOC, args.repeats)
        default = None if args.fixed_malloc_only else measure(cmds, base_env, args.repeats)
    head = (
        f"split {args.dataset}, Task-IL, default settings, 2,500 Adam steps on {args.device}; "
        f"{torch.get_num_threads()} threads; medians of {args.repeats} rounds"
    )
    paired = report(head + "\n-- malloc thresholds fixed (the headline) --", *fixed)
    if default is not None:
        report("-- glibc's default malloc --", *default)
    print(f"first run --cs, untimed above (it fills the caches if they are cold): {cold_s:.1f} s")
    print(f"first run --compile, untimed above: {cold_compile_s:.1f} s")
    med = {k: statistics.median(v) for k, v in fixed[0].items()}
    walls = fixed[0]
    vs_tested = [r / b for r, b in zip(walls["run"], walls["bare, tested"], strict=True)]
    paired_vs_tested = statistics.median(vs_tested)
    print(
        f"run against the bare loop making the same test passes (the same accuracies, checked): "
        f"paired {paired_vs_tested:.2f} ({min(vs_tested):.2f}-{max(vs_tested):.2f}); "
        f"against the bare loop {paired['run']:.2f} (issue 41's aim: 1.05)"
    )
    ratio, ratio_cs = med["run"] / med["bare"], med["run --cs"] / med["bare"]
    ratio_compile = med["run --compile"] / med["bare"]
    print(
        json.dumps(
            {
                "benchmark": "experiment",
                "dataset": args.dataset,
                "device": args.device,
                "repeats": args.repeats,
                "ratio_run": round(ratio, 3),
                "ratio_run_cs": round(ratio_cs, 3),
                "ratio_run_compile": round(ratio_compile, 3),
                **{f"paired_ratio_{KEYS[k]}": round(paired[k], 3) for k in KEYS},
                "paired_ratios": {k: [round(r, 3) for r in v] for k, v in fixed[2].items() if k != "bare"},
                "target_run": 1.15,
                "target_run_cs": 1.25,
                "target_run_compile": 1.0,
                "pass": paired["run"] <= 1.15 and paired["run --cs"] <= 1.25,
                "pass_compile": paired["run --compile"] < 1.0,
                "aim_run": 1.05,
                "pass_aim_run": paired["run"] <= 1.05,
                "paired_ratio_run_vs_bare_tested": round(paired_vs_tested, 3),
                "pass_aim_run_vs_bare_tested": paired_vs_tested <= 1.05,
                **{f"best_ratio_{KEYS[k]}": round(min(fixed[0][k]) / min(fixed[0]["bare"]), 3) for k in KEYS},
                "wall_s": {k: round(v, 2) for k, v in med.items()},
                "walls_per_round_s": {k: [round(w, 2) for w in v] for k, v in fixed[0].items()},
                "loop_s": {k: round(statistics.median(v), 2) for k, v in fixed[1].items()},
                "default_malloc_wall_s": None
                if default is None
                else {k: round(statistics.median(v), 2) for k, v in default[0].items()},
                "run_cs_cold_cache_s": round(cold_s, 2),
                "run_compile_cold_cache_s": round(cold_compile_s, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
