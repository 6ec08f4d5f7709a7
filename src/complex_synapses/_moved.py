"""Modules that moved in release 0.2, importable by their old names with a warning.

``import complex_synapses.kernels`` (or ``from complex_synapses import kernels``)
gives :mod:`complex_synapses.step.kernels` itself, the same module object, with a
DeprecationWarning naming the new place. :data:`MOVED` is the whole list.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from types import ModuleType

__all__ = ["MOVED", "install"]

PACKAGE = "complex_synapses"
MOVED = {
    "kernels": "step.kernels",
    "native": "step.native",
    "graphs": "step.graphs",
    "bounds": "step.bounds",
    "step_sizes": "step.bases",
    "simulate": "lab.model",
    "simulate_plots": "lab.plots",
    "capacity": "lab.capacity",
}


def _new_name(old: str) -> str:
    return f"{PACKAGE}.{MOVED[old]}"


def load(old: str) -> ModuleType:
    """The module that ``complex_synapses.<old>`` now is, with a DeprecationWarning."""
    warnings.warn(
        f"{PACKAGE}.{old} is now {_new_name(old)}; the old name will go in a later release",
        DeprecationWarning,
        stacklevel=3,
    )
    return importlib.import_module(_new_name(old))


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``complex_synapses.<old>`` for ``import`` statements, as the moved module."""

    def find_spec(self, fullname, path=None, target=None):
        package, _, old = fullname.rpartition(".")
        if package != PACKAGE or old not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        module = load(spec.name.rpartition(".")[2])
        self.spec = module.__spec__  # the import system overwrites it with ``spec``
        return module

    def exec_module(self, module) -> None:  # the module is the moved one, already run
        module.__spec__ = self.spec


def install() -> None:
    """Let ``import complex_synapses.<old>`` find the moved modules (once per process)."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.append(_Finder())
