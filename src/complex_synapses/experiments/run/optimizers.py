"""The base optimizers a run can use: torch.optim's classes by their ``--optimizer`` name,
and from a kept library (pytorch-optimizer, in the ``experiments`` extra) AdEMAMix
(Pagliardini et al. 2024: Adam with a second, slow momentum, the nearest large-scale
evidence that a slow timescale pays), a control for the chain's slow levels."""

from __future__ import annotations

import importlib
import importlib.util
import inspect

import torch

from ...errors import OptionError

__all__ = ["optimizer_class", "optimizer_names", "has_fused", "fused_names", "UNUSABLE_OPTIMIZERS", "KEPT"]

# torch.optim classes that cannot be the base of a run: SparseAdam needs sparse
# gradients, LBFGS a closure that re-evaluates the loss, Muon 2-D parameters only.
UNUSABLE_OPTIMIZERS = ("sparseadam", "lbfgs", "muon")


# Optimizers of kept libraries, by name: (module, class). Named here so that listing the
# choices (every command's --help) imports nothing; the library is imported when chosen.
KEPT = {"ademamix": ("pytorch_optimizer", "AdEMAMix")}


def _torch_optimizers() -> dict[str, type[torch.optim.Optimizer]]:
    return {
        k.lower(): v
        for k, v in vars(torch.optim).items()
        if isinstance(v, type)
        and issubclass(v, torch.optim.Optimizer)
        and v is not torch.optim.Optimizer
        and k.lower() not in UNUSABLE_OPTIMIZERS
    }


def _kept_installed() -> list[str]:
    """The kept libraries' optimizers whose library is installed (found, not imported)."""
    return [name for name, (module, _) in KEPT.items() if importlib.util.find_spec(module) is not None]


def optimizer_names() -> list[str]:
    """The base optimizers a run can use, by their --optimizer name."""
    return sorted([*_torch_optimizers(), *_kept_installed()])


def optimizer_class(name: str) -> type[torch.optim.Optimizer]:
    """A torch.optim optimizer by name, case-insensitively ("adam", "sgd", "adamw", ...), or
    a kept library's (imported now)."""
    key = name.lower() if isinstance(name, str) else None
    found = _torch_optimizers()
    if key in found:
        return found[key]
    if key in _kept_installed():
        module, cls = KEPT[key]
        return getattr(importlib.import_module(module), cls)
    raise OptionError(f"--optimizer must be one of {', '.join(optimizer_names())}, got {name!r}")


def has_fused(cls: type[torch.optim.Optimizer]) -> bool:
    """Whether torch's optimizer ``cls`` has a fused kernel (a ``fused`` argument)."""
    return "fused" in inspect.signature(cls).parameters


def fused_names() -> list[str]:
    """The ``--optimizer`` names whose optimizer has a fused kernel (torch's own: the kept
    libraries' have none)."""
    return sorted(name for name, cls in _torch_optimizers().items() if has_fused(cls))
