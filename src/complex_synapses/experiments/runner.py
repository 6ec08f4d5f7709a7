"""Running many experiments: the result cache first, then what is missing, in this
process, in a pool of local processes, or as Ray tasks on a cluster. ``run``,
``compare``, ``matrix`` and ``sweep`` all go through :func:`run_many`.

Each result is written to the cache (by its parameter stamp) as soon as it arrives,
so a stopped batch resumes where it was. A run that fails (an exception, a loss that
became NaN, a worker that died) is retried up to ``retries`` times while the others go
on; what still fails is recorded under ``failed/`` beside the results, never cached.
"""

from __future__ import annotations

import os
import signal
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from ..errors import RunFailed
from .results import cached, record_failure, result_path, write_json
from .settings import RunSettings

__all__ = ["Outcome", "run_many", "run_one", "RunFailed", "CRASH_ONCE"]

CRASH_ONCE = "COMPLEX_SYNAPSES_CRASH_ONCE"  # fault injection for the tests: a marker file path


@dataclass
class Outcome:
    """What :func:`run_many` did: ``results`` (stamp -> result) and ``failed`` (stamp
    -> the error of each attempt), with counts and the wall time."""

    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: dict[str, list[str]] = field(default_factory=dict)
    runs_made: int = 0
    from_cache: int = 0
    retried: int = 0
    wall_time_s: float = 0.0

    def ordered(self, settings: list[RunSettings]) -> list[dict[str, Any]]:
        """The results in the order of ``settings``; RunFailed naming the first that failed."""
        for s in settings:
            if s.stamp() not in self.results:
                errors = self.failed.get(s.stamp(), ["not run"])
                raise RunFailed(f"run {s.stamp()} failed: {_last_line(errors[-1])}")
        return [self.results[s.stamp()] for s in settings]


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else text


def run_one(settings: RunSettings, threads: int | None = None, progress: bool = False) -> dict[str, Any]:
    """One run, in this process or a worker (a pool's process, a Ray task)."""
    import torch

    from .train import run_experiment

    marker = os.environ.get(CRASH_ONCE)
    if marker and not Path(marker).exists():  # tests: the first run attempted kills its worker
        Path(marker).write_text(settings.stamp())
        os._exit(17)
    if threads:
        torch.set_num_threads(threads)
    return run_experiment(settings, progress=progress)


def _ignore_interrupt() -> None:
    """Workers leave Ctrl-C to the driver, which stops them and says what was kept."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _Attempts:
    """The runs still to make, their errors, and what to do with a result or an error."""

    def __init__(self, todo: list[RunSettings], retries: int, outcome: Outcome, bar) -> None:
        self.queue = list(todo)
        self.retries = retries
        self.errors: dict[str, list[str]] = {s.stamp(): [] for s in todo}
        self.outcome = outcome
        self.bar = bar

    def done(self, s: RunSettings, result: dict[str, Any]) -> None:
        write_json(result_path(s), result)
        self.outcome.results[s.stamp()] = result
        self.bar.update()

    def fail(self, s: RunSettings, error: str) -> None:
        self.errors[s.stamp()].append(error)
        if len(self.errors[s.stamp()]) <= self.retries:
            self.queue.append(s)
        else:
            self.bar.update()


def _in_process(attempts: _Attempts, progress: bool) -> None:
    while attempts.queue:
        s = attempts.queue.pop(0)
        try:
            attempts.done(s, run_one(s, progress=progress))
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception:  # noqa: BLE001 - the run failed: recorded, retried
            attempts.fail(s, traceback.format_exc(limit=3))


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
    while attempts.queue:
        pool = ProcessPoolExecutor(
            max_workers=jobs, mp_context=get_context("spawn"), initializer=_ignore_interrupt
        )
        inflight: dict[Any, RunSettings] = {}
        try:
            broken = False
            while (attempts.queue or inflight) and not broken:
                while attempts.queue and len(inflight) < jobs and not broken:
                    try:
                        inflight[pool.submit(run_one, attempts.queue[0], threads)] = attempts.queue[0]
                        attempts.queue.pop(0)
                    except BrokenProcessPool:  # a worker died before its run's result came in
                        broken = True
                if not inflight:
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
        task = ray.remote(run_one).options(
            max_retries=0, num_cpus=resources["num_cpus"], num_gpus=resources["num_gpus"]
        )
        threads = max(1, int(resources["num_cpus"]))
        pending = {}
        while attempts.queue or pending:
            while attempts.queue:
                s = attempts.queue.pop(0)
                pending[task.remote(s, threads)] = s
            ready, _ = ray.wait(list(pending), num_returns=1)
            s = pending.pop(ready[0])
            try:
                attempts.done(s, ray.get(ready[0]))
            except Exception as exc:  # noqa: BLE001 - a task error or a killed worker: recorded, retried
                attempts.fail(s, f"{type(exc).__name__}: {_last_line(str(exc)) if str(exc) else ''}")
    finally:
        if connected_here:  # also stops Ray's own messages before the summary is printed
            ray.shutdown()


def run_many(
    settings: list[RunSettings],
    jobs: int = 1,
    backend: str = "local",
    address: str | None = None,
    retries: int = 0,
    resources: dict[str, float] | None = None,
    progress: bool = True,
    desc: str = "runs",
) -> Outcome:
    """The result of every settings: from the cache where it is there, else run (in
    this process for ``jobs=1``, else in ``jobs`` processes, or as Ray tasks)."""
    from tqdm import tqdm

    start = time.perf_counter()
    outcome = Outcome()
    todo: list[RunSettings] = []
    queued: set[str] = set()
    for s in settings:
        stamp = s.stamp()
        if stamp in outcome.results or stamp in queued:
            continue
        hit = cached(s)
        if hit is not None:
            outcome.results[stamp] = hit
        else:
            todo.append(s)
            queued.add(stamp)
    outcome.from_cache = len(settings) - len(todo)
    if todo:
        bar = tqdm(total=len(todo), desc=desc, unit="run", disable=not progress)
        attempts = _Attempts(todo, retries, outcome, bar)
        try:
            if backend == "ray":
                _ray(attempts, address, resources or {"num_cpus": 1, "num_gpus": 0})
            elif jobs <= 1:
                _in_process(attempts, progress=False)
            else:
                _local(attempts, jobs)
        finally:
            bar.close()
        outcome.failed = {k: v for k, v in attempts.errors.items() if k not in outcome.results}
        for s in todo:
            if s.stamp() in outcome.failed:
                record_failure(s, outcome.failed[s.stamp()])
        outcome.retried = sum(1 for k, v in attempts.errors.items() if v and k in outcome.results)
    outcome.runs_made = len(todo) - len(outcome.failed)
    outcome.wall_time_s = time.perf_counter() - start
    return outcome
