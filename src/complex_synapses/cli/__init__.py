"""The ``complex-synapses`` command line: one module per command.

- ``run`` (:mod:`.run`): one experiment;
- ``compare``, ``matrix``, ``demo`` (:mod:`.compare`): methods over seeds;
- ``sweep`` (:mod:`.sweep`): a grid / random search, locally or on Ray;
- ``study`` (:mod:`.study`): every method tuned alike in every cell, tested on other seeds;
- ``frontier`` (:mod:`.frontier`): every method over a fixed grid, no tuner;
- ``simulate`` (:mod:`.simulate`): the synapse model itself.

Every failure the user can fix ends in one line on stderr and a non-zero exit: 2 for
an option that is not allowed, 1 for data that cannot be read or a run that failed,
130 for Ctrl-C (the finished runs are kept; the same command resumes).
"""

from __future__ import annotations

import signal
import sys

from ..experiments.run.settings import OptionError
from . import compare, frontier, run, simulate, study, sweep
from .common import Parser

__all__ = ["main", "build_parser"]

COMMANDS = {
    "run": run.command,
    "compare": compare.compare,
    "matrix": compare.matrix,
    "demo": compare.demo,
    "simulate": simulate.command,
    "sweep": sweep.command,
    "study": study.command,
    "frontier": frontier.command,
}


def build_parser() -> Parser:
    parser = Parser(
        prog="complex-synapses",
        description="The Benna-Fusi complex synapse as a PyTorch optimizer: continual-learning experiments.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    run.add_parser(sub)
    compare.add_parsers(sub)
    simulate.add_parser(sub, Parser)
    sweep.add_parser(sub)
    study.add_parser(sub)
    frontier.add_parser(sub)
    return parser


def _interrupted(args) -> str:
    where = getattr(args, "results_dir", None)
    kept = f"finished runs are kept in {where}; " if where and args.command != "simulate" else ""
    return f"complex-synapses {args.command}: interrupted; {kept}run the same command again to resume"


def _interruptible() -> None:
    """Make SIGINT stop a command, however it was started. A shell without job control
    starts a background command (``cmd &`` in a script, ``nohup cmd &``) with SIGINT
    ignored, and Python keeps an inherited ignore; Ctrl-C and ``kill -INT`` would then be
    lost while the command trains for hours. Every command here stops on SIGINT within a
    second or two and keeps what finished, so SIGINT is made Python's KeyboardInterrupt
    again. (A run that must not see a terminal's Ctrl-C is started in a session of its
    own, with ``setsid``.)"""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def main(argv: list[str] | None = None) -> int:
    from ..data import DataError
    from ..experiments.execution.runner import RunFailed

    _interruptible()
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except OptionError as exc:
        print(f"complex-synapses {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (DataError, RunFailed) as exc:
        print(f"complex-synapses {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\n{_interrupted(args)}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
