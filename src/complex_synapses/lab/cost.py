"""The work of a capacity study before it runs, and the time it will take here.

A batch's work is the levels it steps times the memories it stores: for each setting
(chain and write) n levels of ``synapses`` synapses over its batch's length (burn-in,
memories followed, oldest age). The time per unit of work is measured on this machine
by a short batch of the study's own kind (:func:`rate`), so that the estimate printed
before a long run (``simulate capacity --preset paper``) is this machine's, not another's.
A two-stage selection's fine pass is not known before its coarse pass has chosen; it is
bounded by each N's candidates run at the coarse plan's longest batch.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from .batches import Batch, simulate

__all__ = ["work", "rate", "Estimate", "estimate"]


def work(batches: list[Batch]) -> float:
    """Level-steps of ``batches``: sum over settings of levels x synapses x memories."""
    return float(
        sum(b.length * b.synapses * len(b.writes) * sum(max(c[0], 1) for c in b.chains) for b in batches)
    )


def rate(batch: Batch, steps: int = 300) -> float:
    """Seconds per level-step of ``batch``'s kind on this machine: its first chain with
    every write, ``steps`` memories stored (no burn-in), timed."""
    probe = dataclasses.replace(batch, chains=batch.chains[:1], ages=(0, 1), steps=steps, burn=0)
    simulate(probe)  # warm: the C library loaded, the kernels specialised
    start = time.perf_counter()
    simulate(probe)
    return (time.perf_counter() - start) / work([probe])


@dataclass(frozen=True)
class Estimate:
    """Minutes a study should take on ``jobs`` workers: ``low`` for the work known before
    it runs, ``high`` with the largest work a two-stage fine pass could add."""

    low: float
    high: float
    jobs: int

    def line(self, what: str) -> str:
        span = f"{self.low:.0f}" if self.high <= self.low * 1.05 else f"{self.low:.0f} to {self.high:.0f}"
        return f"{what}: about {span} minutes on {self.jobs} worker(s), from this machine's measured rate"


def estimate(plans: list[list[Batch]], fine: list[tuple[int, int]], synapses: int, jobs: int) -> Estimate:
    """The estimate for the batches of ``plans`` (one list a model), and for a two-stage
    fine pass of at most ``fine`` = (settings, largest n) a model on ``synapses`` synapses,
    each as long as that model's longest batch; the rate measured on the first batch."""
    batches = [b for plan in plans for b in plan]
    if not batches:
        return Estimate(0.0, 0.0, jobs)
    seconds = rate(batches[0])
    known = work(batches) * seconds
    extra = sum(
        settings * n * synapses * max(b.length for b in plan) * seconds
        for plan, (settings, n) in zip(plans, fine, strict=True)
        if plan
    )
    return Estimate(known / 60 / jobs, (known + extra) / 60 / jobs, jobs)
