"""Sweeps: a grid (and random search) over run options, on this machine's processes or as
Ray tasks on a cluster, through the same result cache as ``run``, ``compare`` and
``matrix``: a finished run is never repeated, a stopped sweep resumes, a failed run is
recorded with its error and retried up to a limit while the rest go on.

The configuration is a TOML file::

    [base]                      # run options, as `complex-synapses run` names them
    dataset = "digits"
    iters = 200

    [grid]                      # every combination of these
    method = ["none", "l2"]
    l2_lambda = [0.1, 1.0]
    seed = [0, 1, 2]

    [random]                    # optional: n more runs drawn from these distributions
    n = 8
    seed = 0
    lr = { log_uniform = [1e-4, 1e-2] }
    batch = { choice = [64, 128] }

    [sweep]
    retries = 2                 # attempts after the first failure
    heatmap = ["l2_lambda", "method"]  # two settings: the axes of the heat map
    resources = { num_cpus = 1, num_gpus = 0 }  # per run, for Ray
"""

from __future__ import annotations

import itertools
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..execution.runner import run_many
from ..execution.where import BACKENDS, Execution
from ..reports.stats import group_rows
from ..run.settings import OptionError, RunSettings
from .toml_files import FIELDS, check_keys, check_sections, read_toml, setting_key, setting_keys

__all__ = [
    "SweepConfig",
    "load_config",
    "expand",
    "run_sweep",
    "summary_rows",
    "loopback_ray_environment",
    "read_toml",
]

SWEEP_KEYS = ("retries", "heatmap", "resources")
__all__ += ["BACKENDS"]


@dataclass
class SweepConfig:
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    random: dict[str, Any] = field(default_factory=dict)
    retries: int = 2
    heatmap: tuple[str, str] | None = None
    resources: dict[str, float] = field(default_factory=lambda: {"num_cpus": 1, "num_gpus": 0})


def load_config(path: str | Path) -> SweepConfig:
    """Read and check a sweep configuration (see the module docstring)."""
    path = Path(path)
    raw = read_toml(path)
    check_sections(raw, ("base", "grid", "random", "sweep"), str(path))
    base = setting_keys(raw.get("base", {}), f"{path} [base]")
    grid = {}
    for k, v in raw.get("grid", {}).items():
        if not isinstance(v, list) or not v:
            raise OptionError(f"{path} [grid]: {k} must be a non-empty list, got {v!r}")
        grid[setting_key(k, f"{path} [grid]")] = v
    random = dict(raw.get("random", {}))
    for k, v in random.items():
        if k not in ("n", "seed"):
            setting_key(k, f"{path} [random]")
            if not (
                isinstance(v, dict) and len(v) == 1 and next(iter(v)) in ("choice", "uniform", "log_uniform")
            ):
                raise OptionError(
                    f"{path} [random]: {k} must be {{choice = [...]}}, {{uniform = [lo, hi]}} "
                    f"or {{log_uniform = [lo, hi]}}, got {v!r}"
                )
    sweep = raw.get("sweep", {})
    check_keys(sweep, SWEEP_KEYS, f"{path} [sweep]")
    heatmap = sweep.get("heatmap")
    if heatmap is not None:
        if not (isinstance(heatmap, list) and len(heatmap) == 2):
            raise OptionError(f"{path} [sweep]: heatmap must name two settings, got {heatmap!r}")
        heatmap = tuple(setting_key(h, f"{path} [sweep] heatmap") for h in heatmap)
    retries = sweep.get("retries", 2)
    if not isinstance(retries, int) or retries < 0:
        raise OptionError(f"{path} [sweep]: retries must be an int >= 0, got {retries!r}")
    resources = Execution(resources=dict(sweep.get("resources", {}))).check(f"{path} [sweep]").task_resources
    return SweepConfig(base, grid, random, retries, heatmap, resources)


def _settings(values: dict[str, Any], defaults: RunSettings) -> RunSettings:
    """One run's settings, checked (a grid value of the wrong type is named here)."""
    s = defaults.replace(**values)
    s.check()
    return s


def expand(config: SweepConfig, defaults: RunSettings) -> list[RunSettings]:
    """Every run of the sweep: the grid's combinations, then the random draws."""
    keys = list(config.grid)
    runs = [
        _settings({**config.base, **dict(zip(keys, combo))}, defaults)
        for combo in itertools.product(*(config.grid[k] for k in keys))
    ]
    space = {k: v for k, v in config.random.items() if k not in ("n", "seed")}
    rng = np.random.default_rng(config.random.get("seed", 0))
    for _ in range(int(config.random.get("n", 0))):
        draw = {}
        for k, spec in space.items():
            kind, arg = next(iter(spec.items()))
            if kind == "choice":
                draw[k] = arg[int(rng.integers(len(arg)))]
            elif kind == "uniform":
                draw[k] = float(rng.uniform(*arg))
            else:
                draw[k] = float(np.exp(rng.uniform(np.log(arg[0]), np.log(arg[1]))))
        runs.append(_settings({**config.base, **draw}, defaults))
    return runs


def loopback_ray_environment(token_file: Path) -> dict[str, str]:
    """The environment for a Ray head and driver that stay on this machine (127.0.0.1).

    Ray on Linux turns ``--node-ip-address=127.0.0.1`` into the machine's interface
    address unless ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (its single-machine mode), and
    Ray 2.5x turns token authentication on for a new head, so head and driver must share
    a token: a new random one is written to ``token_file``. Ray reads these settings when
    it is imported: start the head and the driver as new processes with this environment.
    """
    token_file.write_text(secrets.token_hex(32))
    return {
        **os.environ,
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token_file),
        "RAY_USAGE_STATS_ENABLED": "0",
    }


def run_sweep(runs: list[RunSettings], how: Execution, progress: bool = True) -> dict[str, Any]:
    """Run what is not in the cache as ``how`` says (see :func:`runner.run_many`); the driver
    writes each result as it arrives. Returns ``results`` (stamp -> result), ``failed``
    (stamp -> errors), counts and time."""
    out = run_many(runs, how.check(), progress=progress, desc=f"sweep ({how.backend})")
    return {
        "results": out.results,
        "failed": out.failed,
        "runs_made": out.runs_made,
        "retried": out.retried,
        "from_cache": out.from_cache,
        "wall_time_s": out.wall_time_s,
    }


def _value(s: RunSettings, key: str) -> Any:
    if key == "method":
        return s.method_spec
    from ..run.methods import flags

    if key in flags():
        return s.uses(flags()[key])
    if key in FIELDS:
        return getattr(s, key)
    return s.resolved_options().get(key)


def summary_rows(runs: list[RunSettings], results: dict[str, dict[str, Any]], axes: list[str]):
    """Mean, SEM and count of the average accuracy for each combination of ``axes``."""
    keyed = [
        (tuple(_value(s, a) for a in axes), results[s.stamp()]["accuracy"]["average"])
        for s in runs
        if s.stamp() in results
    ]
    return group_rows(keyed, axes)
