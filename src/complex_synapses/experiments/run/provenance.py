"""Where a result came from: the package's version and the code's git commit, the
libraries' versions, the CPU threads torch used and the kernels the optimizer step ran
on. Every result keeps them under ``"versions"``, so that a number is traced to the code
that made it and a cached result from other code is told apart (:func:`other_code`)."""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ... import __version__

__all__ = ["code_version", "versions", "kernels_ran", "other_code"]

SOURCE = Path(__file__).resolve().parents[2]  # the package's folder: src/complex_synapses


@functools.cache
def code_version() -> str:
    """The git commit of the package's source (``<commit>-dirty`` where files differ from
    it), or ``"release <version>"`` for an installed package outside a git checkout."""
    try:
        _git("ls-files", "--error-unmatch", "__init__.py")  # the source itself, not an install in a checkout
        commit = _git("rev-parse", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no", "--", ".")
    except (OSError, ValueError, subprocess.SubprocessError):
        return f"release {__version__}"
    return commit + ("-dirty" if dirty else "")


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=SOURCE, capture_output=True, text=True, timeout=10, check=True)
    return done.stdout.strip()


def kernels_ran(optimizer: torch.optim.Optimizer) -> list[str]:
    """How the optimizer's step ran: the complex synapse's kernels ("native", "compiled",
    "eager", "cuda-graph"), or "torch" for any other optimizer."""
    synapse = getattr(optimizer, "synapse", optimizer)  # a ReadoutSynapse wraps its chain
    ran = getattr(synapse, "kernels_ran", None)
    return sorted(ran) if ran else ["torch"]


def versions(optimizer: torch.optim.Optimizer | None = None) -> dict[str, Any]:
    """The provenance of a run: package, code, torch, numpy and Python versions, torch's
    CPU threads (their count orders float sums, so the same bits need the same count), and
    the kernels its step ran on (where ``optimizer`` is given)."""
    out: dict[str, Any] = {
        "complex_synapses": __version__,
        "code": code_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
    }
    if optimizer is not None:
        out["kernels"] = kernels_ran(optimizer)
    return out


def other_code(result: dict[str, Any]) -> str | None:
    """The code a cached ``result`` was made by, where it is not this code's (results
    from before provenance was kept: ``"unknown"``); None where it is the same."""
    made_by = result.get("versions", {}).get("code", "unknown")
    return None if made_by == code_version() else made_by
