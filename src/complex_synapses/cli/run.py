"""``complex-synapses run``: one experiment, its result file and (with --plot) its curves."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import OptionError
from ..experiments.execution.cache import to_json
from ..experiments.run.methods import stray_options
from .common import add_run_options, settings

__all__ = ["add_parser", "command"]


def add_parser(sub) -> None:
    p = sub.add_parser(
        "run",
        help="one experiment",
        description="Train and test an MLP on a continual-learning protocol, with or without complex "
        "synapses; write a JSON result file.",
    )
    add_run_options(p)
    p.add_argument(
        "--fresh",
        action="store_true",
        help="run it even if its result is in the cache (--results-dir), and replace that result; "
        "--tensorboard and --visdom imply it, since they log the run as it goes",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads for torch (default: torch's own choice, usually one per core). The thread "
        "count changes the order of float sums, so a run gives the same bits only with the same "
        "count; studies run one thread a run (--threads 1 reruns their rows bit for bit)",
    )


def loggers(args: argparse.Namespace, s) -> list:
    """TensorBoard and visdom, as asked; a clear error where their package is missing."""
    out = []
    if args.tensorboard:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise SystemExit(
                f"complex-synapses: --tensorboard needs the tensorboard package ({exc})"
            ) from None
        writer = SummaryWriter(log_dir=args.tensorboard)
        out.append(lambda name, value, it: writer.add_scalar(name, value, it))
    if args.visdom:
        try:
            import visdom
        except ImportError:
            print(
                "complex-synapses: error: --visdom needs `pip install visdom` and a running "
                "`python -m visdom.server`",
                file=sys.stderr,
            )
            raise SystemExit(2) from None
        vis = visdom.Visdom(env=f"{s.experiment}-{s.scenario}", raise_exceptions=True)
        graph = s.method_spec
        out.append(
            lambda name, value, it: vis.line(
                X=[it], Y=[value], win=f"{graph}-{name}", update="append", opts={"title": f"{graph}: {name}"}
            )
        )
    return out


def command(args: argparse.Namespace) -> int:
    from ..experiments.execution.cache import result_path
    from ..experiments.execution.runner import RunUnit, execute
    from ..experiments.reports.figures import plot_curves

    s = settings(args)
    stray = stray_options(s.method_spec, s.method_options)
    if stray:  # a method option without its method: refused, not ignored
        key, owner = stray[0]
        raise OptionError(
            f"--{key.replace('_', '-')} is an option of --method {owner}, not of --method {s.method_spec}"
        )
    if args.threads is not None and args.threads < 1:
        raise OptionError(f"--threads must be >= 1, got {args.threads}")
    if args.get_stamp:
        print(s.stamp())
        return 0
    s.check()
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    draw = args.plot or s.pdf
    s.check_outputs(plots=draw)
    unit = RunUnit(s, progress=True, loggers=loggers(args, s))
    fresh = args.fresh or bool(unit.loggers)
    outcome = execute([unit], progress=False, fresh=fresh)
    (result,) = outcome.ordered([unit])
    path = result_path(s)
    plots = plot_curves(result, Path(s.plot_dir) / s.stamp(), pdf=s.pdf) if draw else []
    word = {"task": "task", "domain": "domain", "class": "task (classes)"}[s.scenario]
    print(
        f"\nTest accuracy, {s.experiment} on {s.dataset}, {s.scenario}-incremental, "
        f"method {s.method_spec}, {s.optimizer}:"
    )
    for t, a in enumerate(result["accuracy"]["per_task"], 1):
        print(f"  {word} {t}: {100 * a:.2f}%")
    print(f"  average: {100 * result['accuracy']['average']:.2f}%")
    if s.time:
        print(f"training time: {result['train_time_s']:.1f} s (wall {result['wall_time_s']:.1f} s)")
    cache = " (taken from the cache; --fresh runs it again)" if outcome.from_cache else ""
    print(f"result: {path}{cache}" + (f"\nplot: {', '.join(map(str, plots))}" if plots else ""))
    if s.json:
        print(to_json(result))
    return 0
