"""The work of a capacity study before it runs, and the time it will take here.

A step of a batch costs a fixed time for each chain in it (each is a parameter group of
the optimizer: Python's work, a call into the step's library) and a time for each level
of each synapse it steps: ``c_chain * chains + c_level * levels * synapses * writes``.
Both are measured on this machine by short timings of the study's own largest batch,
whole and with its shortest chain alone (:func:`rates`), so that the estimate printed before a long run
(``simulate capacity --preset paper``) is this machine's, not another's. A two-stage
selection's fine pass is not known before its coarse pass has chosen; it is bounded by
each N's candidates, each run at its model's longest batch.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from .batches import Batch, simulate

__all__ = ["Rates", "rates", "Estimate", "estimate"]


def _levels(b: Batch) -> float:
    """Levels the batch steps at each step: levels x synapses x writes, over its chains."""
    return float(b.synapses * len(b.writes) * sum(max(c[0], 1) for c in b.chains))


@dataclass(frozen=True)
class Rates:
    """Seconds a step costs per chain (``chain``) and per level of one synapse stepped
    (``level``)."""

    chain: float
    level: float

    def seconds(self, b: Batch) -> float:
        """The batch's whole time: its length in steps at this cost a step."""
        return b.length * (self.chain * len(b.chains) + self.level * _levels(b))


def _timed(b: Batch, steps: int) -> float:
    """Seconds a step of ``b`` takes (no burn-in; the faster of two timings, which a
    shared machine's other work disturbs least)."""
    probe = dataclasses.replace(b, ages=(0, 1), steps=steps, burn=0)
    simulate(probe)  # warm: the C library loaded, the kernels specialised
    times = []
    for _ in range(2):
        start = time.perf_counter()
        simulate(probe)
        times.append(time.perf_counter() - start)
    return min(times) / probe.length


def rates(b: Batch, steps: int = 100) -> Rates:
    """:class:`Rates` from ``b`` whole (k chains, L levels a step) and from its shortest
    chain alone (L1): ``whole = c_chain k + c_level L`` and ``one = c_chain + c_level L1``
    give ``c_level = (whole - k one) / (L - k L1)``; where its chains are all of one
    length the two cannot be told apart, and every second is put on the levels."""
    single = dataclasses.replace(b, chains=(min(b.chains, key=lambda c: c[0]),))
    whole = _timed(b, steps)
    spread = _levels(b) - len(b.chains) * _levels(single)
    if spread <= 0:
        return Rates(0.0, whole / _levels(b))
    one = _timed(single, steps)
    level = min(max((whole - len(b.chains) * one) / spread, 0.0), whole / _levels(b))
    return Rates((whole - level * _levels(b)) / len(b.chains), level)


@dataclass(frozen=True)
class Estimate:
    """Minutes a study should take on ``jobs`` workers: ``low`` for the work known before
    it runs, ``high`` with the largest work a two-stage fine pass could add."""

    low: float
    high: float
    jobs: int
    copies: bool = False  # the coupled estimator's copies are not in it

    def line(self, what: str) -> str:
        span = f"{self.low:.0f}" if self.high <= self.low * 1.05 else f"{self.low:.0f} to {self.high:.0f}"
        out = f"{what}: about {span} minutes on {self.jobs} worker(s), from this machine's measured rate"
        return out + (" (the coupled estimator's copies add to it, not estimated)" if self.copies else "")


def estimate(plans: list[list[Batch]], fine: list[tuple[int, int]], synapses: int, jobs: int) -> Estimate:
    """The estimate for the batches of ``plans`` (one list a model), and for a two-stage
    fine pass of at most ``fine`` = (settings, largest n) a model on ``synapses`` synapses,
    each as long as that model's longest batch, one chain a setting. Exact batches
    (:mod:`.markov`) take no steps and are left out; a coupled batch is timed without
    its copies (their work depends on how long they live), which the line says."""
    plans = [[b for b in plan if b.estimator != "exact"] for plan in plans]  # exact: no steps
    batches = [b for plan in plans for b in plan]
    copies = any(b.estimator == "coupled" for b in batches)
    if not batches:
        return Estimate(0.0, 0.0, jobs)
    r = rates(max(batches, key=_levels))
    known = sum(r.seconds(b) for b in batches)
    extra = sum(
        settings * max(b.length for b in plan) * (r.chain + r.level * n * synapses)
        for plan, (settings, n) in zip(plans, fine, strict=True)
        if plan
    )
    return Estimate(known / 60 / jobs, (known + extra) / 60 / jobs, jobs, copies)
