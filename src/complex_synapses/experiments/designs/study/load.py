"""A study file read: its TOML text into a checked :class:`.config.StudyConfig`.

The file::

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
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...run.settings import OptionError
from ..search_space import parse_space
from ..toml_files import check_keys, check_sections, read_toml, seed_list, setting_keys
from .checks import check_smallest_gain, check_study
from .config import MethodSpec, StudyConfig

__all__ = ["load_study", "STUDY_KEYS"]

STUDY_KEYS = ("tune_seeds", "eval_seeds", "trials", "startup_trials", "results_dir", "csv", "figure")
STUDY_KEYS += ("widen_rounds", "trials_per_dimension", "min_trials", "smallest_gain", "start_from_baseline")


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
        name=name,
        fixed=fixed,
        space=space,
        baseline=raw.get("baseline", "none"),
        cells=None if cells is None else tuple(cells),
        off=setting_keys(off, f"{where} off"),
    )


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
        path=path,
        base=base,
        cells=cells,
        methods=methods,
        tune_seeds=tune_seeds,
        eval_seeds=eval_seeds,
        trials=trials,
        startup_trials=startup,
        results_dir=Path(study.get("results_dir", "store/study")),
        csv=Path(study["csv"]) if "csv" in study else None,
        figure=Path(study["figure"]) if "figure" in study else None,
        widen_rounds=widen,
        trials_per_dimension=per_dim,
        min_trials=least_trials,
        smallest_gain=check_smallest_gain(study.get("smallest_gain"), f"{path} [study]"),
        start_from_baseline=_flag(study, "start_from_baseline", path),
    )
    check_study(config)
    return config


def _flag(study: dict[str, Any], name: str, path: Path) -> bool:
    value = study.get(name, False)
    if not isinstance(value, bool):
        raise OptionError(f"{path} [study]: {name} must be true or false, got {value!r}")
    return value
