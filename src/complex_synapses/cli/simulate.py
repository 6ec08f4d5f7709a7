"""``complex-synapses simulate``: the model lab's experiments (see :mod:`..lab`), one
subcommand each, found in its registry. This module parses and prints; the experiments
compute and write their files."""

from __future__ import annotations

import argparse

from ..experiments.run.checks import check_writable
from ..experiments.run.settings import OptionError
from .common import add_output_options

__all__ = ["add_parser", "command"]


def add_parser(sub, parser_class) -> None:
    from ..lab import registry

    sim = sub.add_parser(
        "simulate",
        help="the synapse model: " + ", ".join(registry()),
        description="What a complex synapse remembers, computed from the same chain code as the optimizer "
        "(exactly, and by stepping the optimizer).",
    )
    kinds = sim.add_subparsers(dest="kind", required=True, parser_class=parser_class)
    for name, e in registry().items():
        k = kinds.add_parser(name, help=e.help, description=e.description or e.help, aliases=list(e.aliases))
        e.add_options(k)
        add_output_options(k)


def experiment(kind: str):
    """The lab experiment of a subcommand, by its name or an older alias."""
    from ..lab import registry

    return next(e for e in registry().values() if kind == e.name or kind in e.aliases)


def command(args: argparse.Namespace) -> int:
    from ..experiments.execution.cache import to_json

    check_writable(args.results_dir, "--results-dir")
    check_writable(args.plot_dir, "--plot-dir")
    try:
        record, lines = experiment(args.kind).run(args)
    except ValueError as exc:  # the lab's own checks name the option
        raise OptionError(str(exc)) from None
    print("\n".join(lines))
    if args.json:
        print(to_json(record))
    return 0
