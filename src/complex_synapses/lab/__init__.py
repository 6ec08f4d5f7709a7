"""The model lab: what a complex synapse remembers, computed from the same chain code as
the optimizer (:mod:`.model`, :mod:`.capacity`) and drawn (:mod:`.plots`).

Each experiment of ``complex-synapses simulate`` is one module in
``lab/commands/`` defining ``EXPERIMENT``, a :class:`LabExperiment`: its name, one
line of help, the options it adds to its command, and ``run(args) -> (record, lines)``,
which computes, writes its CSV and figures, and returns the JSON record and the lines to
print. The command line finds it by name; nothing else changes when one is added.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

__all__ = ["LabExperiment", "registry"]


@dataclass(frozen=True)
class LabExperiment:
    """One ``simulate`` subcommand. ``run`` raises ValueError naming an option that is
    not allowed (the command line turns it into one line and exit code 2)."""

    name: str
    help: str
    add_options: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], tuple[dict[str, Any], list[str]]]
    description: str = ""
    aliases: tuple[str, ...] = ()  # older names of the subcommand


@cache
def registry() -> dict[str, LabExperiment]:
    """Every experiment of ``lab/commands/``, in the order of their ``order``."""
    from . import commands as experiments

    found = []
    for info in pkgutil.iter_modules(experiments.__path__):
        module = importlib.import_module(f"{experiments.__name__}.{info.name}")
        if hasattr(module, "EXPERIMENT"):
            found.append((getattr(module, "ORDER", 99), module.EXPERIMENT))
    return {e.name: e for _, e in sorted(found, key=lambda x: x[0])}
