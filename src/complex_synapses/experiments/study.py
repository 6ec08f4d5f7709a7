"""A study: every method tuned the same way in every cell, then tested on other seeds.

For each (cell, method) the method's search space is tuned with Optuna (see
:mod:`.tuning`) on the tuning seeds with the same budget of trials; the best setting is
then run on the evaluation seeds, which no tuning ever saw. Per cell, each method is
compared on those seeds (paired: a seed fixes the data order, the permutations and the
initial weights) with ``none`` and with the best baseline, the best method that holds no
method under test (``Method.treatment``; chosen by its tuning score, not by the
evaluation seeds). All p-values of the
table are Holm-corrected together.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import check_keys, check_sections, read_toml, setting_keys
from .methods import flags, is_treatment
from .report import CSV_COLUMNS, csv_columns, study_figure, study_table
from .report import study_csv as csv_text
from .results import read_json, write_json, write_text
from .runner import execute, run_many
from .settings import OptionError, RunSettings
from .stats import holm, mean_ci, paired, sem
from .tuning import Param, parse_space, tune

__all__ = ["StudyConfig", "StudyUnit", "load_study", "run_unit", "run_study", "finished_units"]
__all__ += ["analyse", "csv_text"]
__all__ += ["plot_study", "markdown_table", "write_outputs"]

STUDY_KEYS = ("tune_seeds", "eval_seeds", "trials", "startup_trials", "results_dir", "csv", "figure")


@dataclass
class MethodSpec:
    """A row of the study: a method spec, its fixed options, its search space."""

    name: str
    fixed: dict[str, Any]
    space: dict[str, Param]


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

    def settings(self, cell: str, method: str, params: dict[str, Any], seed: int) -> RunSettings:
        """The run of ``method`` with ``params`` in ``cell`` on ``seed``."""
        m = self.methods[method]
        values = {**self.base, **self.cells[cell], **m.fixed, **params, "seed": seed}
        return RunSettings().replace(**values, results_dir=str(self.results_dir / "runs"))

    def fingerprint(self, cell: str, method: str) -> str:
        """A hash of everything that decides a unit's outcome: a change starts it anew."""
        m = self.methods[method]
        what = [self.base, self.cells[cell], m.fixed, {k: vars(p) for k, p in m.space.items()}]
        what += [self.tune_seeds, self.eval_seeds, self.trials, self.startup_trials]
        return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:10]


def _seeds(raw: Any, where: str) -> list[int]:
    ok = isinstance(raw, list) and raw and all(isinstance(s, int) and not isinstance(s, bool) for s in raw)
    if not ok or len(set(raw)) != len(raw):
        raise OptionError(f"{where} must be a non-empty list of distinct integers, got {raw!r}")
    return raw


def _method(name: str, raw: Any, where: str) -> MethodSpec:
    if not isinstance(raw, dict) or "method" not in raw:
        raise OptionError(f'{where}: a method needs method = "..." (e.g. "ewc"), got {raw!r}')
    fixed = setting_keys({k: v for k, v in raw.items() if k != "search"}, where)
    space = parse_space(raw.get("search", {}), f"{where} search")
    if not space:
        raise OptionError(f"{where}: search is empty; give every method something to tune (at least lr)")
    return MethodSpec(name, fixed, space)


def load_study(path: str | Path) -> StudyConfig:
    """Read and check a study (see the module docstring); every run it can make is
    checked here, before the first step."""
    path = Path(path)
    raw = read_toml(path)
    check_sections(raw, ("study", "base", "cells", "methods"), str(path))
    study = raw.get("study", {})
    check_keys(study, STUDY_KEYS, f"{path} [study]")
    tune_seeds = _seeds(study.get("tune_seeds", [0, 1, 2]), f"{path} [study] tune_seeds")
    eval_seeds = _seeds(study.get("eval_seeds", list(range(10, 20))), f"{path} [study] eval_seeds")
    if set(tune_seeds) & set(eval_seeds):
        raise OptionError(f"{path} [study]: a seed is both a tuning and an evaluation seed; keep them apart")
    trials, startup = study.get("trials", 10), study.get("startup_trials", 4)
    for name, v in (("trials", trials), ("startup_trials", startup)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise OptionError(f"{path} [study]: {name} must be an integer >= 1, got {v!r}")
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
        Path(study["figure"]) if "figure" in study else None,
    )  # fmt: skip
    _check_task_order(config)
    _check_validation(config)
    for c in cells:  # every cell and method at its search space's lower corner, checked
        for m, spec in methods.items():
            corner = {k: (p.choices[0] if p.choices else p.low) for k, p in spec.space.items()}
            corner = {k: int(v) if spec.space[k].integer else v for k, v in corner.items()}
            try:
                config.settings(c, m, corner, tune_seeds[0]).check()
            except OptionError as exc:
                raise OptionError(f"{path}: cell {c!r}, method {m!r}: {exc}") from None
    return config


def _check_task_order(config: StudyConfig) -> None:
    """Tuning and evaluation seeds must see the same kind of task sequence: with the
    original's task order, seeds below 10 keep the class order and an unpermuted first task
    and the others draw them, so a study whose seeds lie on both sides of 10 is refused."""
    seeds = [*config.tune_seeds, *config.eval_seeds]
    if min(seeds) >= 10 or max(seeds) < 10:
        return
    for c in config.cells:
        if config.settings(c, "none", {}, seeds[0]).task_order == "original":
            raise OptionError(
                f"{config.path}: cell {c!r}: with task_order original, seeds below 10 keep the class order "
                f"and an unpermuted first task while seeds from 10 draw them, so tuning and evaluation "
                f'seeds would see different task sequences: set task_order = "random" in [base]'
            )


def _check_validation(config: StudyConfig) -> None:
    """Tuning scores a validation split: every cell must hold one out."""
    for c in config.cells:
        if not config.settings(c, "none", {}, config.tune_seeds[0]).validation:
            raise OptionError(
                f"{config.path}: cell {c!r} holds out no validation split, and tuning never reads test "
                f"accuracy: set validation (e.g. 0.1, the fraction of each task's training data) in [base]"
            )


def legacy_flags(settings: RunSettings) -> dict[str, bool]:
    """``uses_FLAG`` for each method's flag: the unit keys of release 0.2."""
    from .methods import flags

    return {f"uses_{flag}": settings.uses(method) for flag, method in flags().items()}


def _treated(unit: dict[str, Any]) -> bool:
    """Whether a unit's method holds a method under test (units of release 0.2 say it
    by their ``uses_FLAG`` keys)."""
    if "treatment" in unit:
        return unit["treatment"]
    return any(v for k, v in unit.items() if k.startswith("uses_"))


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

    def cached(self) -> dict[str, Any] | None:
        path = _unit_path(self.config, self.cell, self.method)
        return read_json(path) if path.exists() else None

    def work(self) -> dict[str, Any]:
        config, cell, method = self.config, self.cell, self.method
        start = time.perf_counter()
        base = config.settings(cell, method, {}, config.tune_seeds[0])
        seed = int(hashlib.sha256(self.key.encode()).hexdigest()[:8], 16)
        tuned = tune(
            base, config.methods[method].space, config.tune_seeds, config.trials,
            config.results_dir / "tuning" / f"{self.key}.db", self.key, config.startup_trials, seed,
        )  # fmt: skip
        runs = [config.settings(cell, method, tuned.params, s) for s in config.eval_seeds]
        results = run_many(runs, jobs=1, progress=False).ordered(runs)
        return {
            "cell": cell,
            "method": method,
            "treatment": is_treatment(runs[0].method_spec),
            **legacy_flags(runs[0]),
            "params": tuned.params,
            "tune_score": tuned.value,
            "trials": tuned.trials,
            "args": " ".join(runs[0].run_args()),
            "eval_seeds": config.eval_seeds,
            "accuracy": [r["accuracy"]["average"] for r in results],
            "stamps": [s.stamp() for s in runs],
            "wall_time_s": time.perf_counter() - start,
        }

    def store(self, record: dict[str, Any]) -> None:
        write_json(_unit_path(self.config, self.cell, self.method), record)

    def record_failure(self, errors: list[str]) -> None:
        path = self.config.results_dir / "units" / "failed" / f"{self.key}.json"
        write_json(path, {"unit": self.key, "attempts": len(errors), "errors": errors})


def run_unit(config: StudyConfig, cell: str, method: str) -> dict[str, Any]:
    """Tune ``method`` in ``cell``, run the best setting on the evaluation seeds; the
    unit's record (also written under ``results_dir/units``)."""
    unit = StudyUnit(config, cell, method)
    return execute([unit], progress=False).ordered([unit])[0]


def finished_units(config: StudyConfig) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The units of the cells whose every method has finished, and for each other cell
    the number of its units still to run."""
    units, missing = [], {}
    for cell in config.cells:
        paths = [_unit_path(config, cell, m) for m in config.methods]
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
    units = [StudyUnit(config, c, m) for c in config.cells for m in config.methods]
    outcome = execute(units, jobs, backend, address, 0, resources, progress, desc="study", report=_done)
    return outcome.ordered(units)


def _done(unit: dict[str, Any]) -> str:
    acc = np.array(unit["accuracy"])
    return (
        f"  {unit['cell']:>14s} {unit['method']:>14s}: tuned {100 * unit['tune_score']:.2f}%, "
        f"test {100 * acc.mean():.2f} +- {100 * sem(acc):.2f}% ({unit['wall_time_s']:.0f} s)"
    )


def analyse(units: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (cell, method): mean, SEM and paired tests on the evaluation seeds
    against ``none`` and against the cell's best baseline (by tuning score), with
    Holm-corrected p-values over the whole table."""
    rows = []
    for cell in dict.fromkeys(u["cell"] for u in units):
        here = {u["method"]: u for u in units if u["cell"] == cell}
        plain = [u for u in here.values() if not _treated(u)]
        best = max(plain, key=lambda u: u["tune_score"])["method"]
        for name, u in here.items():
            acc = np.array(u["accuracy"])
            row = {
                "cell": cell,
                "method": name,
                "args": u["args"],
                "n_seeds": len(acc),
                "treatment": _treated(u),
            }
            row.update({"mean": float(acc.mean()), "sem": sem(acc), "best_baseline": best})
            row.update({f"best_non_{flag}": best for flag in flags()})  # release 0.2's name
            for ref, tag in (("none", "none"), (best, "best")):
                test = paired(acc, here[ref]["accuracy"]) if name != ref else dict.fromkeys(
                    ("diff", "ci_low", "ci_high", "d_z", "p"), float("nan"))  # fmt: skip
                row.update({f"diff_vs_{tag}": test["diff"], f"ci_low_vs_{tag}": test["ci_low"]})
                row.update({f"ci_high_vs_{tag}": test["ci_high"], f"d_vs_{tag}": test["d_z"]})
                row[f"p_vs_{tag}_raw"] = test["p"]
            row["tune_score"] = u["tune_score"]
            row.update({f"trials_{k.lower()}": v for k, v in u["trials"].items()})
            row["ci_mean"] = mean_ci(acc)
            rows.append(row)
    raw = [r["p_vs_none_raw"] for r in rows] + [r["p_vs_best_raw"] for r in rows]
    adjusted = holm(raw)
    for i, r in enumerate(rows):
        r["p_vs_none"], r["p_vs_best"] = adjusted[i], adjusted[len(rows) + i]
    return rows


def write_outputs(config: StudyConfig, rows: list[dict[str, Any]]) -> list[Path]:
    """The CSV, the figure and ``study.json`` (rows and units) where the config says."""
    out = [write_json(config.results_dir / "study.json", {"rows": rows})]
    if config.csv is not None:
        out.append(write_text(config.csv, csv_text(rows)))
    if config.figure is not None:
        out += study_figure(rows, config.figure, f"{config.path.stem}: tuned on seeds "
                          f"{config.tune_seeds}, tested on {len(config.eval_seeds)} others")  # fmt: skip
    return out


markdown_table = study_table  # the names of release 0.2
plot_study = study_figure
__all__ += ["CSV_COLUMNS", "csv_columns", "StudyUnit"]
