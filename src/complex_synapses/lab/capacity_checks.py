"""The checks of a capacity study's settings (:mod:`.capacity_study`), made before any
work: each failure is one ValueError naming the option, the value and what is allowed."""

from __future__ import annotations

import os

import numpy as np

from ..chain import MAX_GRID_VALUES
from .selection import SELECTIONS
from .writes import WRITES

__all__ = ["check_study", "check_memory", "check_search", "check_estimator", "copy_bytes"]


def copy_bytes(grids: list, kept: int) -> int:
    """Bytes per synapse of the coupled estimator's copies (:mod:`.coupled`) at most: for
    each write, ``kept`` memories' copies alive at once (continuous levels never drop
    theirs before the oldest age), each with the longest chain's levels (8 bytes each)
    and its column, birth and sign (24 bytes); one chain at a time."""
    return max(len(g.writes) * kept * (8 * max(c[0] for c in g.chains) + 24) for g in grids) if grids else 0


def check_memory(
    grids: list,
    synapses: int,
    kept: int,
    jobs: int = 1,
    what: str | None = None,
    fewer: str = "--synapses",
    copies: int = 0,
) -> None:
    """Refuse, before any work, a setting whose tensors would not fit in half of this
    machine's memory: per synapse, the probes kept (1 byte each), the coupled
    estimator's ``copies`` (bytes, :func:`copy_bytes`), and for each chain of a grid
    and each write its levels, gradient and rounding (8 bytes each, float64 at most):
    the largest grid taken as one batch (its batches are no larger), in each of
    ``jobs`` workers at once. ``what`` names the synapses in the message (default
    ``--synapses N``), ``fewer`` the options that make them fewer."""
    if not grids:
        return
    batch = max(len(g.writes) * sum(c[0] + 3 for c in g.chains) for g in grids)
    need = synapses * (kept + copies + 8 * batch) * jobs
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if need > total / 2:
        raise ValueError(
            f"{what or f'--synapses {synapses}'} needs about {need / 1e9:,.1f} GB for {jobs} worker(s), more "
            f"than half of this machine's {total / 1e9:,.0f} GB: use fewer {fewer} or --jobs, or a smaller "
            "--max-age"
        )


def check_study(
    known, models, ns, levels, synapses, steps, groups, max_age, writes, max_burn_in, selection
) -> None:
    """Refuse, before any work, a capacity study's settings that are not allowed, each
    with one message naming the option; ``known``: the models by name."""
    if writes not in WRITES:
        raise ValueError(f"--writes must be one of {', '.join(WRITES)}, got {writes!r}")
    closed = [m for m in models if m.endswith("-unbounded")]
    if writes == "perceptron" and closed:
        raise ValueError(f"--writes perceptron: {closed[0]} is a closed form for random writes; leave it out")
    if max_burn_in is not None and max_burn_in < 0:
        raise ValueError(f"--max-burn-in must be >= 0, got {max_burn_in}")
    unknown = [m for m in models if m not in known]
    if unknown or not models:
        raise ValueError(f"--models must name some of {', '.join(known)}, got {', '.join(unknown) or 'none'}")
    if isinstance(levels, bool) or not isinstance(levels, int) or not 2 <= levels <= MAX_GRID_VALUES:
        raise ValueError(f"--grid-values must be an integer from 2 to 2^53, got {levels!r}")
    if len(ns) < 3 or np.any(np.asarray(ns) < 1):
        got = ",".join(f"{float(n):g}" for n in np.asarray(ns).ravel())
        raise ValueError(f"--synapse-counts needs at least 3 values >= 1, got {got or 'none'}")
    if groups < 2 or synapses < groups or synapses % groups:
        raise ValueError(f"--synapses must be a multiple of --groups (>= 2), got {synapses} and {groups}")
    if steps < 1 or max_age < 1 or steps + max_age > 10**6:
        raise ValueError(
            f"--steps and --max-age must be >= 1 and at most 10^6 together, got {steps}, {max_age}"
        )
    if selection not in SELECTIONS:
        raise ValueError(f"--selection must be one of {', '.join(SELECTIONS)}, got {selection!r}")
    if selection in ("cross-fit", "two-stage") and groups < 4:
        raise ValueError(
            f"--selection {selection} splits the groups in halves: it needs --groups >= 4, got {groups}"
        )


def check_search(jobs, grid, grids, selection, stages, groups) -> None:
    """Refuse, before any work, a number of workers, a grid or two-stage settings that
    are not allowed (``groups`` None: perceptron writes, whose coarse pass takes fewer
    perceptrons, not fewer synapses)."""
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"--jobs must be an integer >= 1, got {jobs!r}")
    if grid not in grids:
        raise ValueError(f"--grid must be one of {', '.join(grids)}, got {grid!r}")
    if stages.candidates < 1 or stages.widen < 0:
        got = f"{stages.candidates} and {stages.widen}"
        raise ValueError(f"--candidates must be >= 1 and --widen >= 0, got {got}")
    if groups is not None and (stages.coarse_synapses < groups or stages.coarse_synapses % groups):
        raise ValueError(
            f"--coarse-synapses must be a multiple of --groups, got {stages.coarse_synapses} and {groups}"
        )


def check_estimator(estimator: str, estimators: tuple[str, ...], writes: str) -> None:
    """Refuse an unknown estimator, or the coupled one with perceptron writes (a
    perceptron's write depends on all its synapses: a copy of one would need copies of
    all)."""
    if estimator not in estimators:
        raise ValueError(f"--estimator must be one of {', '.join(estimators)}, got {estimator!r}")
    if estimator != "plain" and writes != "random":
        raise ValueError(
            f"--estimator {estimator} is for random writes (a perceptron's write depends on all its "
            f"synapses); got --writes {writes}"
        )
