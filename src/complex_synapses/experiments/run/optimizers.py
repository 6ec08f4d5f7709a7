"""The base optimizers a run can use: torch.optim's classes by their ``--optimizer`` name,
and from a kept library (pytorch-optimizer, in the ``experiments`` extra) AdEMAMix
(Pagliardini et al. 2024: Adam with a second, slow momentum, the nearest large-scale
evidence that a slow timescale pays), a control for the chain's slow levels."""

from __future__ import annotations

import inspect

import torch

from ...errors import OptionError

__all__ = ["optimizer_class", "optimizer_names", "has_fused", "fused_names", "UNUSABLE_OPTIMIZERS"]

# torch.optim classes that cannot be the base of a run: SparseAdam needs sparse
# gradients, LBFGS a closure that re-evaluates the loss, Muon 2-D parameters only.
UNUSABLE_OPTIMIZERS = ("sparseadam", "lbfgs", "muon")


def _optimizers() -> dict[str, type[torch.optim.Optimizer]]:
    found = {
        k.lower(): v
        for k, v in vars(torch.optim).items()
        if isinstance(v, type)
        and issubclass(v, torch.optim.Optimizer)
        and v is not torch.optim.Optimizer
        and k.lower() not in UNUSABLE_OPTIMIZERS
    }
    return found | _kept_library()


def _kept_library() -> dict[str, type[torch.optim.Optimizer]]:
    """AdEMAMix from pytorch-optimizer where it is installed."""
    try:
        from pytorch_optimizer import AdEMAMix
    except ImportError:
        return {}
    return {"ademamix": AdEMAMix}


def optimizer_names() -> list[str]:
    """The base optimizers a run can use, by their --optimizer name."""
    return sorted(_optimizers())


def optimizer_class(name: str) -> type[torch.optim.Optimizer]:
    """A torch.optim optimizer by name, case-insensitively ("adam", "sgd", "adamw", ...)."""
    known = _optimizers()
    if not isinstance(name, str) or name.lower() not in known:
        raise OptionError(f"--optimizer must be one of {', '.join(sorted(known))}, got {name!r}")
    return known[name.lower()]


def has_fused(cls: type[torch.optim.Optimizer]) -> bool:
    """Whether torch's optimizer ``cls`` has a fused kernel (a ``fused`` argument)."""
    return "fused" in inspect.signature(cls).parameters


def fused_names() -> list[str]:
    """The ``--optimizer`` names whose optimizer has a fused kernel."""
    return sorted(name for name, cls in _optimizers().items() if has_fused(cls))
