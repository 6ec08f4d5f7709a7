"""A study as typed values: its cells, its methods with their search spaces, its seeds
and budgets (read from a TOML file by :mod:`.load`, checked by :mod:`.checks`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...run.settings import RunSettings
from ..search_space import Param

__all__ = ["MethodSpec", "StudyConfig"]


@dataclass
class MethodSpec:
    """A row of the study: a method spec, its fixed options, its search space."""

    name: str
    fixed: dict[str, Any]
    space: dict[str, Param]
    baseline: str = "none"  # the method it is tested against at the same precision (a chain's)
    cells: tuple[str, ...] | None = None  # the cells it runs in (None: every cell)
    off: dict[str, Any] = field(default_factory=dict)  # its own options' values where it is off (.fallbacks)


@dataclass
class StudyConfig:
    path: Path
    base: dict[str, Any]
    cells: dict[str, dict[str, Any]]
    methods: dict[str, MethodSpec]
    tune_seeds: list[int]
    eval_seeds: list[int]
    trials: int
    startup_trials: int
    results_dir: Path
    csv: Path | None = None
    figure: Path | None = None
    widen_rounds: int = 2  # times a range whose tuned value binds is widened and tuned again
    trials_per_dimension: int = 0  # where > 0: trials = max(min_trials, this x tuned options)
    min_trials: int = 16
    smallest_gain: float | None = None  # the least gain that matters (a fraction): "no gain" below it
    start_from_baseline: bool = False  # score each method's off point beside its search (.fallbacks)

    def starts_from(self, method: str) -> str | None:
        """The method whose tuned setting ``method``'s off point starts from (its
        baseline, with ``start_from_baseline``), or None (:mod:`.fallbacks`)."""
        baseline = self.methods[method].baseline
        return baseline if self.start_from_baseline and baseline != method else None

    def units(self) -> list[tuple[str, str]]:
        """Every (cell, method) the study runs: each method in its cells."""
        return [
            (c, m)
            for c in self.cells
            for m, spec in self.methods.items()
            if spec.cells is None or c in spec.cells
        ]

    def trials_for(self, method: str) -> int:
        """The tuning budget of ``method``: the same rule for every method."""
        if not self.trials_per_dimension:
            return self.trials
        return max(self.min_trials, self.trials_per_dimension * len(self.methods[method].space))

    def settings(self, cell: str, method: str, params: dict[str, Any], seed: int) -> RunSettings:
        """The run of ``method`` with ``params`` in ``cell`` on ``seed``."""
        m = self.methods[method]
        values = {**self.base, **self.cells[cell], **m.fixed, **params, "seed": seed}
        return RunSettings().replace(**values, results_dir=str(self.results_dir / "runs"))

    def fingerprint(self, cell: str, method: str, search_only: bool = False) -> str:
        """A hash of everything that decides a unit's outcome: a change starts it anew
        (``search_only``: everything that decides its search, the off point left out)."""
        m = self.methods[method]
        what = [self.base, self.cells[cell], m.fixed, {k: p.record() for k, p in m.space.items()}]
        what += [
            self.tune_seeds,
            self.eval_seeds,
            self.trials_for(method),
            self.startup_trials,
            self.widen_rounds,
        ]
        if (baseline := self.starts_from(method)) and not search_only:  # and the baseline's outcome
            what.append({"off_point_from": self.fingerprint(cell, baseline), "off": m.off})
        return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:10]
