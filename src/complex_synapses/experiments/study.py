"""A study: every method tuned the same way in every cell, then tested on other seeds.

For each (cell, method) the method's search space is tuned with Optuna (see
:mod:`.tuning`) on the tuning seeds with the same budget of trials; the best setting is
then run on the evaluation seeds, which no tuning ever saw. Per cell, each method is
compared on those seeds (paired: a seed fixes the data order, the permutations and the
initial weights) with its baseline and with the best method that holds no method under
test (``Method.treatment``; chosen by tuning score); Holm within each family (.analysis).

The configuration is a TOML file::

    [study]
    tune_seeds = [0, 1, 2]
    eval_seeds = [10, 11, 12, 13, 14, 15, 16, 17, 18, 19]
    trials = 10                   # per (cell, method), the same for every method
    startup_trials = 4            # TPE's random draws first; no pruning before them
    results_dir = "store/study"   # the run cache, the tuner's SQLite files, the units
    csv = "docs/results/study.csv"
    figure = "docs/results/study"  # .png appended

    [base]                        # run options shared by every cell
    dataset = "fashion-mnist"

    [cells.split-task]            # run options of one cell
    experiment = "splitMNIST"
    scenario = "task"

    [methods.ewc]                 # a method: its spec, fixed options, and search space
    method = "ewc"
    search = { lr = {low = 1e-4, high = 1e-2, log = true}, ewc_lambda = {low = 1, high = 1e4, log = true} }

Everything is resumable: runs come from the cache, a tuning from its SQLite file, a
finished (cell, method) from its unit file under ``results_dir/units``.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RunFailed
from .analysis import analyse, search_lines
from .config import check_keys, check_sections, read_toml, seed_list, setting_keys
from .methods import is_treatment
from .provenance import code_version
from .report import CSV_COLUMNS, csv_columns, study_figure, study_table, unit_line, write_outputs
from .report import study_csv as csv_text
from .results import read_json, write_json
from .runner import execute, run_many
from .settings import OptionError, RunSettings
from .starts import best_of_rounds, check_offs, off_point, starts_from
from .study_checks import (
    check_baselines,
    check_cells_have,
    check_smallest_gain,
    check_task_order,
    check_validation,
)
from .tuning import Param, Tuned, at_edges, corner, parse_space, record_range, tune, validation_score, widened

__all__ = ["StudyConfig", "StudyUnit", "load_study", "run_unit", "run_study", "finished_units"]
__all__ += ["analyse", "csv_text"]
__all__ += ["plot_study", "markdown_table", "write_outputs", "search_lines"]

STUDY_KEYS = ("tune_seeds", "eval_seeds", "trials", "startup_trials", "results_dir", "csv", "figure")
STUDY_KEYS += ("widen_rounds", "trials_per_dimension", "min_trials", "smallest_gain", "start_from_baseline")


Tuning = tuple[Tuned, dict[str, Param], dict[str, str], int]  # the last tuning, its space, edges, rounds


@dataclass
class MethodSpec:
    """A row of the study: a method spec, its fixed options, its search space."""

    name: str
    fixed: dict[str, Any]
    space: dict[str, Param]
    baseline: str = "none"  # the method it is tested against at the same precision (a chain's)
    cells: tuple[str, ...] | None = None  # the cells it runs in (None: every cell)
    off: dict[str, Any] = field(default_factory=dict)  # its own options' values where it is off (.starts)


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
    start_from_baseline: bool = False  # score each method's off point beside its search (.starts)

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
        if (baseline := starts_from(self, method)) and not search_only:  # and the baseline's outcome
            what.append({"off_point_from": self.fingerprint(cell, baseline), "off": m.off})
        return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _method(name: str, raw: Any, where: str) -> MethodSpec:
    if not isinstance(raw, dict) or "method" not in raw:
        raise OptionError(f'{where}: a method needs method = "..." (e.g. "ewc"), got {raw!r}')
    not_fixed = ("search", "baseline", "cells", "off")
    fixed = setting_keys({k: v for k, v in raw.items() if k not in not_fixed}, where)
    off = raw.get("off", {})
    if not isinstance(off, dict):
        raise OptionError(f"{where}: off must be a table of option values, e.g. {{alpha = 1e5}}, got {off!r}")
    space = parse_space(raw.get("search", {}), f"{where} search")
    if not space:
        raise OptionError(f"{where}: search is empty; give every method something to tune (at least lr)")
    cells = raw.get("cells")
    if cells is not None and (
        not isinstance(cells, list) or not cells or not all(isinstance(c, str) for c in cells)
    ):
        raise OptionError(f"{where}: cells must be a non-empty list of cell names, got {cells!r}")
    return MethodSpec(
        name, fixed, space, raw.get("baseline", "none"), None if cells is None else tuple(cells),
        setting_keys(off, f"{where} off"),
    )  # fmt: skip


def load_study(path: str | Path) -> StudyConfig:
    """Read and check a study (see the module docstring); every run it can make is
    checked here, before the first step."""
    path = Path(path)
    raw = read_toml(path)
    check_sections(raw, ("study", "base", "cells", "methods"), str(path))
    study = raw.get("study", {})
    check_keys(study, STUDY_KEYS, f"{path} [study]")
    tune_seeds = seed_list(study.get("tune_seeds", [0, 1, 2]), f"{path} [study] tune_seeds")
    eval_seeds = seed_list(study.get("eval_seeds", list(range(10, 20))), f"{path} [study] eval_seeds")
    if set(tune_seeds) & set(eval_seeds):
        raise OptionError(f"{path} [study]: a seed is both a tuning and an evaluation seed; keep them apart")
    trials, startup = study.get("trials", 10), study.get("startup_trials", 4)
    widen, per_dim = study.get("widen_rounds", 2), study.get("trials_per_dimension", 0)
    least_trials = study.get("min_trials", 16)
    checks = (("trials", trials, 1), ("startup_trials", startup, 1), ("widen_rounds", widen, 0))
    checks += (("trials_per_dimension", per_dim, 0), ("min_trials", least_trials, 1))
    for name, v, least in checks:
        if isinstance(v, bool) or not isinstance(v, int) or v < least:
            raise OptionError(f"{path} [study]: {name} must be an integer >= {least}, got {v!r}")
    base = setting_keys(raw.get("base", {}), f"{path} [base]")
    cells = {c: setting_keys(o, f"{path} [cells.{c}]") for c, o in raw.get("cells", {}).items()}
    methods = {m: _method(m, o, f"{path} [methods.{m}]") for m, o in raw.get("methods", {}).items()}
    if not cells or not methods:
        raise OptionError(f"{path}: a study needs at least one [cells.NAME] and one [methods.NAME]")
    if "none" not in methods:
        raise OptionError(f"{path}: a study needs a [methods.none] (fine-tuning), the reference of its tests")
    config = StudyConfig(
        path, base, cells, methods, tune_seeds, eval_seeds, trials, startup,
        Path(study.get("results_dir", "store/study")),
        Path(study["csv"]) if "csv" in study else None,
        Path(study["figure"]) if "figure" in study else None, widen, per_dim, least_trials,
    )  # fmt: skip
    config.smallest_gain = check_smallest_gain(study.get("smallest_gain"), f"{path} [study]")
    config.start_from_baseline = start = study.get("start_from_baseline", False)
    if not isinstance(start, bool):
        raise OptionError(f"{path} [study]: start_from_baseline must be true or false, got {start!r}")
    check_task_order(config)
    check_baselines(config)
    check_validation(config)
    for m, spec in methods.items():
        unknown = sorted(set(spec.cells or ()) - set(cells))
        if unknown:
            raise OptionError(f"{path} [methods.{m}]: cells names no cell of the study: {', '.join(unknown)}")
    check_cells_have(config)
    check_offs(config)
    for c, m in config.units():  # every unit at its search space's lower corner, checked
        spec = methods[m]
        try:
            config.settings(c, m, corner(spec.space), tune_seeds[0]).check()
        except OptionError as exc:
            raise OptionError(f"{path}: cell {c!r}, method {m!r}: {exc}") from None
    return config


def legacy_flags(settings: RunSettings) -> dict[str, bool]:
    """``uses_FLAG`` for each method's flag: the unit keys of release 0.2."""
    from .methods import flags

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
        baseline = starts_from(self.config, self.method)
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
        results = run_many(runs, jobs=1, progress=False).ordered(runs)
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
        """This unit's off point (:mod:`.starts`), or None."""
        baseline = starts_from(self.config, self.method)
        if baseline is None:
            return None
        path = _unit_path(self.config, self.cell, baseline)
        if not path.exists():
            raise RunFailed(f"{self.key}: its off point needs {baseline}'s unit in {self.cell}, not finished")
        return off_point(self.config, self.method, read_json(path)["params"])

    def _tune(self) -> Tuning:
        """Tune; while a tuned value binds (:func:`.tuning.at_edges`), widen its range where the option
        allows and tune again, up to ``widen_rounds`` times. The last tuning with the best of every round
        (:func:`.starts.best_of_rounds`), its space, the values still at an edge, and the widenings."""
        config, method, key = self.config, self.method, self.search_key
        base = self._tuning_base()
        seed = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
        space, rounds, tuned = config.methods[method].space, 0, None
        while True:
            name = key if rounds == 0 else f"{key}--widened{rounds}"
            tuned = best_of_rounds(tuned, tune(
                base, space, config.tune_seeds, config.trials_for(self.method),
                config.results_dir / "tuning" / f"{name}.db", name, config.startup_trials, seed,
            ))  # fmt: skip
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
    while baseline := starts_from(config, units[0].method):  # its off point needs its baseline's record
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
    config: StudyConfig,
    jobs: int = 1,
    progress: bool = True,
    backend: str = "local",
    address: str | None = None,
    resources: dict[str, float] | None = None,
) -> list[dict[str, Any]]:
    """Every (cell, method) unit through the runner (``jobs`` local processes, or Ray
    tasks on the cluster at ``address``); the units in the config's order. RunFailed
    naming the first unit that failed, after the others have finished."""
    units = [StudyUnit(config, c, m) for c, m in config.units()]
    outcome = execute(units, jobs, backend, address, 0, resources, progress, desc="study", report=unit_line)
    return outcome.ordered(units)


markdown_table = study_table  # the names of release 0.2
plot_study = study_figure
__all__ += ["CSV_COLUMNS", "csv_columns", "StudyUnit"]
