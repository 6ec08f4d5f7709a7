"""Fault injection for the runner's tests: a worker that dies on the first unit it is
given (as a machine lost mid-sweep would), kept here rather than in the package.

A test puts :func:`perform_crashing_once` in place of ``runner.perform`` (monkeypatch);
the worker processes (spawned, or Ray's on a head started with this folder on
PYTHONPATH) find it by name, and read the marker file's path from ``CRASH_ONCE``.
"""

from __future__ import annotations

import os
from pathlib import Path

from complex_synapses.experiments.execution import runner

CRASH_ONCE = "COMPLEX_SYNAPSES_CRASH_ONCE"  # the marker file's path: absent until a worker died
_perform = runner.perform


def perform_crashing_once(unit, threads=None):
    """``runner.perform``, but the first unit attempted kills its worker process."""
    marker = os.environ.get(CRASH_ONCE)
    if marker and not Path(marker).exists():
        Path(marker).write_text(unit.key)
        os._exit(17)
    return _perform(unit, threads)


class Sleeper:
    """A unit that writes its worker's pid to ``folder/KEY.pid`` and then sleeps: what a
    long tuning looks like to the runner."""

    def __init__(self, key: str, folder: str, seconds: float = 600.0) -> None:
        self.key, self.folder, self.seconds = key, folder, seconds

    def cached(self):
        return None

    def work(self):
        import time

        (Path(self.folder) / f"{self.key}.pid").write_text(str(os.getpid()))
        time.sleep(self.seconds)
        return {"key": self.key}

    def store(self, record) -> None:
        pass

    def record_failure(self, errors) -> None:
        pass
