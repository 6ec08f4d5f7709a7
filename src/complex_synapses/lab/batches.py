r"""The Monte Carlo batches of a capacity study, run one after another or on worker
processes.

A batch is a set of chains (n, alpha, beta) of one grid, each with every write strength
of the grid, simulated together by :func:`.writes.signal_curves` (one optimizer, the same
patterns: common random numbers; or by :func:`.coupled.coupled_curves`, the chains one
after another on the same patterns) after the burn-in its slowest setting needs. Chains are
batched by that burn-in, rounded up to a power of two (:func:`batch_chains`), so that a setting
that settles in a thousand steps is not stepped for the hundred thousand a slow chain
needs: every setting gets at least its own burn-in and at most twice it. A batch's seed
fixes its result, which therefore does not depend on the number of workers or on the
order in which batches finish.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import signal
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

from ..files import atomic_path
from .coupled import coupled_curves
from .markov import exact_curves
from .writes import Curves, burn_in, grid_of, signal_curves

__all__ = ["Batch", "batch_chains", "simulate", "run_batches", "default_jobs", "is_cached", "cached", "keep"]

SEED_STRIDE = 7919  # between the seeds of a plan's batches
# Part of a cached batch's name: raised whenever what a batch computes changes (the
# Monte Carlo, the optimizer's step or its rounding), so that no stale curves are read.
CACHE_VERSION = 1


@dataclass(frozen=True)
class Batch:
    """One simulation: ``chains`` x ``writes`` settings on ``levels`` values (None:
    continuous) in ``synapses`` synapses each, ``burn`` memories stored before
    ``steps`` are followed to ``ages``; ``kind`` and ``stride`` as in
    :func:`.writes.signal_curves`, ``dtype`` the levels' ("float32" or "float64"),
    ``ranged`` each level on its own range (:func:`.writes.level_ranges`)."""

    chains: tuple[tuple[int, float, float], ...]
    writes: tuple[float, ...]
    levels: int | None
    ages: tuple[int, ...]
    synapses: int
    steps: int
    groups: int
    seed: int
    burn: int
    kind: str
    stride: int
    dtype: str
    ranged: bool = False
    estimator: str = "plain"  # or "coupled" (:mod:`.coupled`; random writes), "exact" (:mod:`.markov`)

    @property
    def length(self) -> int:
        """Memories stored in all: the burn-in, the followed ones, the oldest age."""
        return self.burn + self.steps + max(self.ages)


def batch_chains(
    chains,
    writes,
    levels,
    ages,
    synapses,
    steps,
    groups,
    seed,
    cap,
    kind,
    stride,
    dtype,
    ranged=False,
    estimator="plain",
) -> list[Batch]:
    """The batches of a grid's ``chains``: those whose burn-in (:func:`.writes.burn_in`,
    at most ``cap``) rounds up to the same power of two run together, with their
    largest; the i-th batch (shortest burn-in first) is seeded ``seed + SEED_STRIDE i``."""
    buckets: dict[int, list] = {}
    for chain in chains:
        need = burn_in([chain], writes, levels, cap)
        buckets.setdefault(math.ceil(math.log2(max(need, 1))), []).append((chain, need))
    out = []
    for i, key in enumerate(sorted(buckets)):
        members = buckets[key]
        out.append(
            Batch(
                tuple(c for c, _ in members),
                tuple(writes),
                levels,
                tuple(int(a) for a in ages),
                synapses,
                steps,
                groups,
                seed + SEED_STRIDE * i,
                max(need for _, need in members),
                kind,
                stride,
                dtype,
                ranged,
                estimator,
            )
        )
    return out


def simulate(batch: Batch, threads: int | None = None, tick: Callable[[int], None] | None = None) -> Curves:
    """One batch's signal curves (``threads``: torch's threads in this process, if given)."""
    if threads is not None:
        torch.set_num_threads(threads)
    if batch.estimator == "exact":
        return exact_curves(list(batch.chains), batch.writes, grid_of(batch.levels), batch.ages, batch.groups)
    # both Monte Carlo estimators take a batch's settings in the same order
    common = (list(batch.chains), batch.writes, batch.levels, np.asarray(batch.ages), batch.synapses)
    common += (batch.steps, batch.groups, batch.seed, tick, batch.burn)
    dtype = getattr(torch, batch.dtype)
    if batch.estimator == "coupled":
        return coupled_curves(*common, batch.stride, dtype, batch.ranged)
    return signal_curves(*common, batch.kind, batch.stride, dtype, batch.ranged)


def default_jobs() -> int:
    """Workers by default: one per core this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_batches(
    batches: list[Batch],
    jobs: int = 1,
    tick: Callable[[int], None] | None = None,
    cache: Path | None = None,
    reuse: bool = True,
) -> list[Curves]:
    """Every batch's curves, in the order given: in this process (``jobs`` 1, ``tick``
    every 500 memories) or on ``jobs`` worker processes, each with an equal share of the
    cores (``tick`` as each batch ends, with its memories), longest batches first. With
    a ``cache`` folder each batch's curves are kept there as it ends and taken from there
    when the same batch is asked again (:func:`cached`): a study stopped by Ctrl-C (its
    workers ended at once) or by a failure resumes from the batches that finished
    (``reuse`` False: every batch run anew, and kept)."""
    out: list[Curves | None] = [None if cache is None or not reuse else cached(cache, b) for b in batches]
    todo = [i for i, c in enumerate(out) if c is None]

    def done(i: int, curves: Curves) -> None:
        out[i] = curves
        if cache is not None:
            keep(cache, batches[i], curves)

    if jobs <= 1 or len(todo) <= 1:
        for i in todo:
            done(i, simulate(batches[i], tick=tick))
            if tick is not None and batches[i].estimator == "exact":
                tick(batches[i].length)  # no memories stepped, but counted as done, as in a pool
        return out  # type: ignore[return-value]
    threads = max(1, default_jobs() // jobs)
    order = sorted(todo, key=lambda i: -batches[i].length * len(batches[i].chains))
    pool = ProcessPoolExecutor(
        max_workers=min(jobs, len(todo)), mp_context=get_context("spawn"), initializer=_ignore_interrupt
    )
    try:
        pending = {pool.submit(simulate, batches[i], threads): i for i in order}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                i = pending.pop(future)
                done(i, future.result())
                if tick is not None:
                    tick(batches[i].length)
    except BaseException:
        _stop(pool)
        raise
    pool.shutdown()
    return out  # type: ignore[return-value]


def _key(batch: Batch) -> str:
    """The batch's name in a cache: a hash of every field and of what computes it."""
    fields = dataclasses.asdict(batch)
    if fields["estimator"] == "plain":
        del fields["estimator"]  # the names of batches kept before there was a choice
    fields = json.dumps(fields, sort_keys=True, default=float)
    made = f"{CACHE_VERSION} torch {torch.__version__} {fields}"
    if batch.levels is not None and grid_of(batch.levels) is None:
        made += " continuous"  # such batches ran on a grid past float64's resolution before: garbage
    return hashlib.sha256(made.encode()).hexdigest()[:24]


def is_cached(cache: Path | None, batch: Batch) -> bool:
    """Whether ``cache`` keeps the batch's curves (without reading them)."""
    return cache is not None and (Path(cache) / f"{_key(batch)}.npz").exists()


def cached(cache: Path, batch: Batch) -> Curves | None:
    """The batch's curves kept in ``cache`` (NumPy arrays, no pickle), or None."""
    path = Path(cache) / f"{_key(batch)}.npz"
    if not path.exists():
        return None
    with np.load(path, allow_pickle=False) as f:
        return Curves(f["ages"], f["signal"], f["power"], int(f["burn_in"]))


def keep(cache: Path, batch: Batch, curves: Curves) -> Path:
    """Keep the batch's curves in ``cache``, whole or not at all (written, then renamed)."""
    path = Path(cache) / f"{_key(batch)}.npz"
    with atomic_path(path) as tmp:
        np.savez(tmp, ages=curves.ages, signal=curves.signal, power=curves.power, burn_in=curves.burn_in)
    return path


def _ignore_interrupt() -> None:
    """Workers leave Ctrl-C to the parent, which ends them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop(pool: ProcessPoolExecutor) -> None:
    """End a pool now: cancel what waits, terminate what runs."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=10)
