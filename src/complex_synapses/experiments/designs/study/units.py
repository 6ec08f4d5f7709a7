"""One (cell, method) of a study as a unit of the runner, and the whole study run.

A unit tunes its method in its cell on the tuning seeds (:mod:`..tuning`; a range whose
best value binds is widened and tuned again), scores its off point where the study asks
(:mod:`.fallbacks`), runs the chosen setting on the evaluation seeds (both through the run
cache) and keeps its record under ``results_dir/units``. Everything is resumable: runs
come from the cache, a tuning from its SQLite file, a finished unit from its record.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ....errors import RunFailed
from ...execution.cache import read_json, write_json, write_text
from ...execution.runner import execute, run_many
from ...execution.where import Execution
from ...reports.figures import study_figure
from ...reports.tables import study_csv, unit_line
from ...run.methods import is_treatment
from ...run.provenance import code_version
from ...run.settings import OptionError, RunSettings
from ..search_space import Param, at_edges, corner, record_range, widened
from ..tuning import Tuned, tune, validation_score
from .config import StudyConfig
from .fallbacks import best_of_rounds, off_point

__all__ = ["StudyUnit", "run_unit", "run_study", "finished_units", "legacy_flags", "write_outputs"]

Tuning = tuple[Tuned, dict[str, Param], dict[str, str], int]  # the last tuning, its space, edges, rounds


def legacy_flags(settings: RunSettings) -> dict[str, bool]:
    """``uses_FLAG`` for each method's flag: the unit keys the registered study's records hold."""
    from ...run.methods import flags

    return {f"uses_{flag}": settings.uses(method) for flag, method in flags().items()}


def _unit_path(config: StudyConfig, cell: str, method: str) -> Path:
    return config.results_dir / "units" / f"{cell}--{method}--{config.fingerprint(cell, method)}.json"


@dataclass
class StudyUnit:
    """One (cell, method) of a study as a unit of the runner: tune the method on the
    tuning seeds, run the best setting on the evaluation seeds (both through the run
    cache), and keep the record under ``results_dir/units``."""

    config: StudyConfig
    cell: str
    method: str

    @property
    def key(self) -> str:
        return f"{self.cell}--{self.method}--{self.config.fingerprint(self.cell, self.method)}"

    @property
    def search_key(self) -> str:
        """What its search is known by: its tuner store's name, its draws' seed."""
        return f"{self.cell}--{self.method}--{self.config.fingerprint(self.cell, self.method, True)}"

    @property
    def needs(self) -> tuple[str, ...]:
        """The unit whose tuned setting this one's off point starts from, if any."""
        baseline = self.config.starts_from(self.method)
        return () if baseline is None else (StudyUnit(self.config, self.cell, baseline).key,)

    def cached(self) -> dict[str, Any] | None:
        path = _unit_path(self.config, self.cell, self.method)
        if not path.exists():
            return None
        return {**read_json(path), "baseline": self.config.methods[self.method].baseline}  # as declared now

    def work(self) -> dict[str, Any]:
        config, cell, method = self.config, self.cell, self.method
        start = time.perf_counter()
        tuned, space, edges, rounds = self._tune()
        off = self._off_point()
        off_score = None if off is None else validation_score(off, self._tuning_base(), config.tune_seeds)
        off_won = off_score is not None and off_score > tuned.value
        params = off if off_won else tuned.params
        runs = [config.settings(cell, method, params, s) for s in config.eval_seeds]
        results = run_many(runs, progress=False).ordered(runs)
        return {
            "cell": cell,
            "method": method,
            "treatment": is_treatment(runs[0].method_spec),
            **legacy_flags(runs[0]),
            "params": params,
            "space": {k: record_range(p) for k, p in space.items()},
            "at_edge": edges,
            "widened": rounds,
            "tune_score": off_score if off_won else tuned.value,
            "search_score": tuned.value,
            "tune_se": tuned.score_se,
            "history": tuned.history,
            "converged": tuned.converged,
            "search_params": tuned.params,
            "off_point": off,
            "off_score": off_score,
            "off_won": off_won,
            "trials": tuned.trials,
            "args": " ".join(runs[0].run_args()),
            "eval_seeds": config.eval_seeds,
            "accuracy": [r["accuracy"]["average"] for r in results],
            "learning": [r["accuracy"].get("learning") for r in results],
            "forgetting": [r["accuracy"].get("forgetting") for r in results],
            "relearning": [r["relearning"]["mean_steps"] if "relearning" in r else None for r in results],
            "baseline": config.methods[method].baseline,
            "code": code_version(),
            "stamps": [s.stamp() for s in runs],
            "wall_time_s": time.perf_counter() - start,
        }

    def _tuning_base(self) -> RunSettings:
        return self.config.settings(self.cell, self.method, {}, self.config.tune_seeds[0])

    def _off_point(self) -> dict[str, Any] | None:
        """This unit's off point (:mod:`.fallbacks`), or None."""
        baseline = self.config.starts_from(self.method)
        if baseline is None:
            return None
        path = _unit_path(self.config, self.cell, baseline)
        if not path.exists():
            raise RunFailed(f"{self.key}: its off point needs {baseline}'s unit in {self.cell}, not finished")
        return off_point(self.config, self.method, read_json(path)["params"])

    def _tune(self) -> Tuning:
        """Tune; while a tuned value binds (:func:`.search_space.at_edges`), widen its range where the option
        allows and tune again, up to ``widen_rounds`` times. The last tuning with the best of every round
        (:func:`.fallbacks.best_of_rounds`), its space, the values still at an edge, and the widenings."""
        config, method, key = self.config, self.method, self.search_key
        base = self._tuning_base()
        seed = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
        space, rounds, tuned = config.methods[method].space, 0, None
        while True:
            name = key if rounds == 0 else f"{key}--widened{rounds}"
            tuned = best_of_rounds(
                tuned,
                tune(
                    base,
                    space,
                    seeds=config.tune_seeds,
                    trials=config.trials_for(self.method),
                    path=config.results_dir / "tuning" / f"{name}.db",
                    name=name,
                    startup_trials=config.startup_trials,
                    seed=seed,
                ),
            )
            edges = at_edges(tuned.params, space)
            wider = self._allowed(widened(space, edges), space) if edges else space
            if not edges or rounds == config.widen_rounds or wider == space:
                return tuned, space, edges, rounds
            space, rounds = wider, rounds + 1

    def _allowed(self, wider: dict[str, Param], space: dict[str, Param]) -> dict[str, Param]:
        """``wider`` less the widenings that leave the option's allowed values (both ends
        tried with the other options at their lower ends)."""
        out = dict(wider)
        for name in [k for k in wider if wider[k] != space[k]]:
            for end in (wider[name].low, wider[name].high):
                at = corner(out, {name: end})
                try:
                    self.config.settings(self.cell, self.method, at, self.config.tune_seeds[0]).check()
                except OptionError:
                    out[name] = space[name]
        return out

    def store(self, record: dict[str, Any]) -> None:
        write_json(_unit_path(self.config, self.cell, self.method), record)

    def record_failure(self, errors: list[str]) -> None:
        path = self.config.results_dir / "units" / "failed" / f"{self.key}.json"
        write_json(path, {"unit": self.key, "attempts": len(errors), "errors": errors})


def run_unit(config: StudyConfig, cell: str, method: str) -> dict[str, Any]:
    """Tune ``method`` in ``cell``, run the best setting on the evaluation seeds; the
    unit's record (also written under ``results_dir/units``)."""
    units = [StudyUnit(config, cell, method)]
    while baseline := config.starts_from(units[0].method):  # its off point needs its baseline's record
        units.insert(0, StudyUnit(config, cell, baseline))
    return execute(units, progress=False).ordered(units)[-1]


def finished_units(config: StudyConfig) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The units of the cells whose every method has finished, and for each other cell
    the number of its units still to run."""
    units, missing = [], {}
    for cell in config.cells:
        paths = [_unit_path(config, c, m) for c, m in config.units() if c == cell]
        todo = sum(not p.exists() for p in paths)
        if todo:
            missing[cell] = todo
        else:
            units += [read_json(p) for p in paths]
    return units, missing


def run_study(
    config: StudyConfig, how: Execution | None = None, progress: bool = True
) -> list[dict[str, Any]]:
    """Every (cell, method) unit through the runner, as ``how`` says (local processes, or
    Ray tasks; by default in this process, a failed unit not tried again: its tuning is
    long, and a failure says something); the units in the config's order. RunFailed
    naming the first unit that failed, after the others have finished."""
    units = [StudyUnit(config, c, m) for c, m in config.units()]
    outcome = execute(units, how, progress=progress, desc="study", report=unit_line)
    return outcome.ordered(units)


def write_outputs(config: StudyConfig, rows: list[dict[str, Any]]) -> list[Path]:
    """The CSV, the figure and ``study.json`` (rows and units) where the config says."""
    out = [write_json(config.results_dir / "study.json", {"rows": rows})]
    if config.csv is not None:
        out.append(write_text(config.csv, study_csv(rows)))
    if config.figure is not None:
        seeds = f"tuned on seeds {config.tune_seeds}, tested on {len(config.eval_seeds)} others"
        title = f"{config.path.stem}: {seeds}"
        out += study_figure(rows, config.figure, title)
    return out
