"""What the chain experiments of the lab share: the chain's options, their check, the
name of their files, and CSV writing."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ...chain import validate_chain
from ...files import csv_text, write_text
from ..memory import Synapse

__all__ = ["add_chain_options", "synapse", "file_name", "write_csv", "int_list"]

# The lab's default spans alpha..beta = 1..1e4, four decades; ten beakers keep about a
# factor 2.5 in timescale between neighbours, where the power law is smooth. A training
# run's default (5 beakers over 500..2500 iterations) spans less than one decade.
LAB_BEAKERS = 10


def add_chain_options(k: argparse.ArgumentParser) -> None:
    k.add_argument(
        "--beakers",
        type=int,
        default=LAB_BEAKERS,
        help="beakers (default %(default)s, not run's 5: the lab's alpha..beta spans four decades, "
        "and ten beakers keep a factor of about 2.5 between neighbouring timescales)",
    )
    k.add_argument("--alpha", type=float, default=1.0, help="shortest timescale (default %(default)s)")
    k.add_argument("--beta", type=float, default=1e4, help="longest timescale (default %(default)s)")
    k.add_argument(
        "--time-unit",
        choices=["iteration", "lr"],
        default="iteration",
        help="chain time per optimizer step: 1, or the learning rate --lr (default %(default)s)",
    )
    k.add_argument(
        "--lr", type=float, default=1.0, help="SGD learning rate of the stepped optimizer (default 1)"
    )
    k.add_argument(
        "--integrator",
        choices=["exact", "euler"],
        default="exact",
        help="integrator of the stepped optimizer (default %(default)s)",
    )


def synapse(args: argparse.Namespace) -> Synapse:
    """The synapse of the chain options; ValueError naming the option that is wrong."""
    if args.beakers < 1:
        raise ValueError(f"--beakers must be >= 1 for simulate, got {args.beakers}")
    try:
        validate_chain(args.beakers, args.alpha, args.beta)
    except (TypeError, ValueError) as exc:
        raise ValueError(str(exc).replace("n_beakers", "--beakers")) from None
    if not (args.lr > 0 and np.isfinite(args.lr)):
        raise ValueError(f"--lr must be a finite number > 0, got {args.lr}")
    return Synapse(args.beakers, args.alpha, args.beta, args.time_unit, args.integrator, args.lr)


def file_name(kind: str, s: Synapse) -> str:
    """The stem of an experiment's files: what it is, and the chain it ran."""
    return f"simulate-{kind}--n{s.n_beakers}-a{s.alpha:g}-b{s.beta:g}-{s.time_unit}"


def write_csv(path: Path, header: list[str], rows) -> Path:
    return write_text(path, csv_text(header, rows))


def int_list(text: str, option: str) -> list[int]:
    """A comma-separated list of integers >= 1; ValueError naming ``option`` otherwise."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"{option} must be integers separated by commas, got {text!r}") from None
    if not values or min(values) < 1:
        raise ValueError(f"{option} must be integers >= 1, got {text!r}")
    return values
