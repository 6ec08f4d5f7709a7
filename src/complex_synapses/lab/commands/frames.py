"""``simulate frames`` (formerly ``simulate beakers``): the beaker levels after a kick,
as frames (a PNG strip and a GIF)."""

from __future__ import annotations

from pathlib import Path

from .. import LabExperiment
from .chain_options import add_chain_options, file_name, synapse

ORDER = 3


def add_options(k) -> None:
    add_chain_options(k)
    k.add_argument("--frames", type=int, default=8, help="frames, log-spaced in time (default %(default)s)")


def run(args):
    from ..memory import beaker_frames
    from ..plots import plot_beakers

    s = synapse(args)
    times, levels = beaker_frames(s, args.frames)
    path = Path(args.plot_dir) / file_name("frames", s)
    plots = plot_beakers(times, levels, s.n_beakers, s.alpha, s.beta, path, args.pdf)
    record = {"t": times.tolist(), "levels": levels.tolist(), "plots": [str(p) for p in plots]}
    return record, [f"beaker levels after a kick: {', '.join(map(str, plots))}"]


EXPERIMENT = LabExperiment(
    "frames",
    "frames (PNG strip and GIF) of the beaker levels after a kick",
    add_options,
    run,
    aliases=("beakers",),
)
