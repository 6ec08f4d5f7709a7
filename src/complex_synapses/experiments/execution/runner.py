"""The one executor: every unit of work, from the cache where it is there, else in this
process, in a pool of local processes, or as Ray tasks on a cluster. ``run``,
``compare``, ``matrix``, ``sweep`` and the study's (cell, method) units all go through
:func:`execute`; :func:`run_many` is its form for runs.

A unit (:class:`Unit`) is what it is known by, how to find it in the cache, the work
(done in a worker: it and the unit must pickle), and how to keep its record. Each
record is kept by this process, the driver, as soon as it arrives, so a stopped batch
resumes where it was and a Ray worker need not share a disk with the driver. A unit
that fails (an exception, a loss that became NaN, a worker that died) is tried again up
to ``retries`` times while the others go on; what still fails is recorded, never cached.
A unit may name others it ``needs`` (their keys): it starts once their records are in,
and fails, in one line, where one of them failed or is not in the batch.
"""

from __future__ import annotations

import functools
import os
import re
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from typing import Any, Protocol

from ...errors import DataError, OptionError, RunFailed
from ..run.provenance import code_version, other_code
from ..run.settings import RunSettings
from .cache import cached, record_failure, result_path, write_json
from .where import Execution

__all__ = ["Unit", "RunUnit", "Outcome", "execute", "perform", "run_many", "run_one", "RunFailed"]

Record = dict[str, Any]
Logger = Callable[[str, float, int], None]


class Unit(Protocol):
    """One piece of work for :func:`execute`."""

    @property
    def key(self) -> str:
        """What the unit is known by (a run's stamp): the key of its record in an Outcome."""

    def cached(self) -> Record | None:
        """Its record from an earlier run, if one is kept."""

    def work(self) -> Record:
        """Do it (in a worker) and return its record, a JSON-able dict."""

    def store(self, record: Record) -> None:
        """Keep the record (in the driver), where ``cached`` will find it."""

    def record_failure(self, errors: list[str]) -> None:
        """Keep the errors of a unit that failed every attempt (never as its record)."""


def _needs(unit: Unit) -> tuple[str, ...]:
    """The keys of the units whose records ``unit`` needs before it starts (none by default)."""
    return tuple(getattr(unit, "needs", ()))


@dataclass
class RunUnit:
    """One run of :func:`train.run_experiment`, cached by its parameter stamp.
    ``loggers`` (TensorBoard, visdom) only where it runs in this process."""

    settings: RunSettings
    progress: bool = False
    loggers: list[Logger] = field(default_factory=list)

    @functools.cached_property
    def key(self) -> str:
        return self.settings.stamp()

    def cached(self) -> Record | None:
        return cached(self.settings)

    def work(self) -> Record:
        from ..run.train import run_experiment

        return run_experiment(self.settings, progress=self.progress, loggers=self.loggers or None)

    def store(self, record: Record) -> None:
        write_json(result_path(self.settings), record)

    def record_failure(self, errors: list[str]) -> None:
        record_failure(self.settings, errors)


@dataclass
class Outcome:
    """What :func:`execute` did: ``results`` (key -> record) and ``failed`` (key ->
    the error of each attempt), with counts and the wall time."""

    results: dict[str, Record] = field(default_factory=dict)
    failed: dict[str, list[str]] = field(default_factory=dict)
    runs_made: int = 0
    from_cache: int = 0
    other_code: dict[str, str] = field(default_factory=dict)  # cached runs made by other code
    retried: int = 0
    wall_time_s: float = 0.0

    def ordered(self, units: list[RunSettings] | list[Unit]) -> list[Record]:
        """The records in the order of ``units`` (units or run settings); RunFailed
        naming the first that failed."""
        keys = [u.stamp() if isinstance(u, RunSettings) else u.key for u in units]
        for key in keys:
            if key not in self.results:
                errors = self.failed.get(key, ["not run"])
                raise RunFailed(f"run {key} failed: {_last_line(errors[-1])}")
        return [self.results[key] for key in keys]


def _say_other_code(made_by: dict[str, str]) -> None:
    """One line where cached runs were made by other code than this one: they are used,
    and said to be."""
    if made_by:
        codes = ", ".join(sorted(set(made_by.values()))[:3])
        print(
            f"complex-synapses: {len(made_by)} result(s) taken from the cache were made by other code "
            f"({codes}; this is {code_version()}); --fresh runs them again",
            file=sys.stderr,
        )


def _last_line(text: str) -> str:
    """A traceback's last line, its exception named without its module."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return re.sub(r"^(?:[A-Za-z_]\w*\.)+(\w+): ", r"\1: ", lines[-1]) if lines else text


def perform(unit: Unit, threads: int | None = None) -> Record:
    """Do one unit, in this process or a worker (a pool's process, a Ray task), on
    ``threads`` CPU threads where given."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    return unit.work()


def run_one(settings: RunSettings, threads: int | None = None, progress: bool = False) -> Record:
    """One run, not cached (:func:`perform` of its :class:`RunUnit`)."""
    return perform(RunUnit(settings, progress), threads)


def _ignore_interrupt() -> None:
    """Workers leave Ctrl-C to the driver, which stops them and says what was kept; on
    Linux a worker also ends with its driver, however that ends (a worker left behind
    would go on tuning and running for hours, writing to the stores, unseen)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _terminate_as_interrupt(signum, frame) -> None:
    raise SystemExit(128 + signum)  # so that the pool is stopped and what was kept is said


class _Attempts:
    """The runs still to make, their errors, and what to do with a result or an error."""

    def __init__(self, todo: list[Unit], retries: int, outcome: Outcome, bar, report) -> None:
        self.queue = list(todo)
        self.retries = retries
        self.errors: dict[str, list[str]] = {u.key: [] for u in todo}
        self.outcome = outcome
        self.bar = bar
        self.report = report

    def done(self, unit: Unit, record: Record) -> None:
        unit.store(record)
        self.outcome.results[unit.key] = record
        line = self.report(record) if self.report else None
        if line:
            self.bar.write(line)
        self.bar.update()

    def fail(self, unit: Unit, error: str) -> None:
        self.errors[unit.key].append(error)
        if len(self.errors[unit.key]) <= self.retries:
            self.queue.append(unit)
        else:
            self.bar.update()

    def ready(self, running: set[str]) -> Unit | None:
        """The first queued unit whose needs have their records (taken off the queue);
        one that needs a unit neither done, queued nor ``running`` fails, untried."""
        waiting = {u.key for u in self.queue} | running
        for unit in list(self.queue):
            missing = [k for k in _needs(unit) if k not in self.outcome.results]
            if not missing:
                self.queue.remove(unit)
                return unit
            lost = [k for k in missing if k not in waiting]
            if lost:
                self.queue.remove(unit)
                self.errors[unit.key].append(f"RunFailed: it needs {lost[0]}, which has no record")
                self.bar.update()
        return None

    def give_up(self) -> None:
        """Fail what is still queued when nothing can start or finish: needs in a cycle."""
        for unit in self.queue:
            self.errors[unit.key].append("RunFailed: its needs wait on each other")
            self.bar.update()
        self.queue.clear()


def _in_process(attempts: _Attempts) -> None:
    while (s := attempts.ready(set())) is not None:
        try:
            attempts.done(s, perform(s))
        except (KeyboardInterrupt, SystemExit, DataError, OptionError):
            raise  # the user's to fix (a data set missing, an option): not a run that failed
        except Exception:  # noqa: BLE001 - the run failed: recorded, retried
            attempts.fail(s, traceback.format_exc(limit=3))
    attempts.give_up()


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now: cancel what waits, end what runs (its result is not kept)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # shutdown forgets them
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=10)
    pool.shutdown(wait=True)  # the dead pool's queues and locks are released


def _local(attempts: _Attempts, jobs: int) -> None:
    """At most ``jobs`` runs in flight, so that a worker's death costs an attempt only to
    the runs that were running; the pool is then made anew."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    main = threading.current_thread() is threading.main_thread()
    before = signal.signal(signal.SIGTERM, _terminate_as_interrupt) if main else None
    try:
        _pools(attempts, jobs, threads)
    finally:
        if main:
            signal.signal(signal.SIGTERM, before)


def _pools(attempts: _Attempts, jobs: int, threads: int) -> None:
    """A pool of ``jobs`` workers until the queue is done, made anew where one breaks."""
    while attempts.queue:
        pool = ProcessPoolExecutor(
            max_workers=jobs, mp_context=get_context("spawn"), initializer=_ignore_interrupt
        )
        inflight: dict[Any, Unit] = {}
        try:
            broken = False
            while (attempts.queue or inflight) and not broken:
                while len(inflight) < jobs and not broken:
                    s = attempts.ready({u.key for u in inflight.values()})
                    if s is None:
                        break
                    try:
                        inflight[pool.submit(perform, s, threads)] = s
                    except BrokenProcessPool:  # a worker died before its run's result came in
                        attempts.queue.insert(0, s)
                        broken = True
                if not inflight:
                    attempts.give_up()
                    break
                finished, _ = wait(inflight, return_when=FIRST_COMPLETED)
                for fut in finished:
                    s = inflight.pop(fut)
                    try:
                        attempts.done(s, fut.result())
                    except BrokenProcessPool as exc:
                        broken = True
                        attempts.fail(s, f"worker died: {exc}")
                    except Exception:  # noqa: BLE001 - the run failed: recorded, retried
                        attempts.fail(s, traceback.format_exc(limit=3))
            for s in inflight.values():  # the pool broke under them
                attempts.fail(s, "worker died (its pool broke)")
        except BaseException:
            _stop(pool)
            raise
        pool.shutdown()


def _ray(attempts: _Attempts, address: str | None, resources: dict[str, float]) -> None:
    import ray

    connected_here = not ray.is_initialized()
    if connected_here:
        ray.init(
            address=address,
            include_dashboard=False,
            log_to_driver=False,
            **({} if address else {"num_cpus": os.cpu_count()}),
        )
    try:
        task = ray.remote(perform).options(
            max_retries=0, num_cpus=resources["num_cpus"], num_gpus=resources["num_gpus"]
        )
        threads = max(1, int(resources["num_cpus"]))
        pending = {}
        while attempts.queue or pending:
            while (s := attempts.ready({u.key for u in pending.values()})) is not None:
                pending[task.remote(s, threads)] = s
            if not pending:
                attempts.give_up()
                break
            ready, _ = ray.wait(list(pending), num_returns=1)
            s = pending.pop(ready[0])
            try:
                attempts.done(s, ray.get(ready[0]))
            except Exception as exc:  # noqa: BLE001 - a task error or a killed worker: recorded, retried
                attempts.fail(s, f"{type(exc).__name__}: {_last_line(str(exc)) if str(exc) else ''}")
    finally:
        if connected_here:  # also stops Ray's own messages before the summary is printed
            ray.shutdown()


def execute(
    units: list[Unit],
    how: Execution | None = None,
    *,
    progress: bool = True,
    desc: str = "runs",
    fresh: bool = False,
    report: Callable[[Record], str | None] | None = None,
) -> Outcome:
    """The record of every unit: from the cache where it is there (unless ``fresh``),
    else done as ``how`` says (see :class:`.Execution`): in this process (``jobs=1``), in
    ``jobs`` local processes, or as Ray tasks. ``report(record)``: a line to print as each
    record arrives."""
    from tqdm import tqdm

    how = Execution() if how is None else how
    start = time.perf_counter()
    outcome = Outcome()
    todo: list[Unit] = []
    queued: set[str] = set()
    for unit in units:
        key = unit.key
        if key in outcome.results or key in queued:
            continue
        hit = None if fresh else unit.cached()
        if hit is not None:
            outcome.results[key] = hit
            if "stamp" in hit and other_code(hit):
                outcome.other_code[key] = other_code(hit)
        else:
            todo.append(unit)
            queued.add(key)
    outcome.from_cache = len(units) - len(todo)
    _say_other_code(outcome.other_code)
    if todo:
        bar = tqdm(total=len(todo), desc=desc, unit="unit" if desc != "runs" else "run", disable=not progress)
        attempts = _Attempts(todo, how.retries, outcome, bar, report)
        try:
            if how.backend == "ray":
                _ray(attempts, how.address, how.task_resources)
            elif how.jobs <= 1:
                _in_process(attempts)
            else:
                _local(attempts, how.jobs)
        finally:
            bar.close()
        outcome.failed = {k: v for k, v in attempts.errors.items() if k not in outcome.results}
        for unit in todo:
            if unit.key in outcome.failed:
                unit.record_failure(outcome.failed[unit.key])
        outcome.retried = sum(1 for k, v in attempts.errors.items() if v and k in outcome.results)
    outcome.runs_made = len(todo) - len(outcome.failed)
    outcome.wall_time_s = time.perf_counter() - start
    return outcome


def run_many(
    settings: list[RunSettings], how: Execution | None = None, *, progress: bool = True, desc: str = "runs"
) -> Outcome:
    """The result of every settings (:func:`execute` of their :class:`RunUnit`)."""
    return execute([RunUnit(s) for s in settings], how, progress=progress, desc=desc)
