"""Sweeps: a grid (and random search) over run options, on this machine's processes or as
Ray tasks on a cluster, through the same result cache as ``run``, ``compare`` and
``matrix``: a finished run is never repeated, a stopped sweep resumes, a failed run is
recorded with its error and retried up to a limit while the rest go on.

The configuration is a TOML file::

    [base]                      # run options, as `complex-synapses run` names them
    dataset = "digits"
    iters = 200

    [grid]                      # every combination of these
    method = ["none", "cs"]
    alpha = [100.0, 500.0]
    seed = [0, 1, 2]

    [random]                    # optional: n more runs drawn from these distributions
    n = 8
    seed = 0
    lr = { log_uniform = [1e-4, 1e-2] }
    beta = { choice = [1000.0, 2500.0] }

    [sweep]
    retries = 2                 # attempts after the first failure
    heatmap = ["alpha", "method"]  # two settings: the axes of the heat map
    resources = { num_cpus = 1, num_gpus = 0 }  # per run, for Ray
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import secrets
import sys
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from .compare import cached, result_path
from .results import write_json
from .settings import OptionError, RunSettings

__all__ = [
    "SweepConfig",
    "load_config",
    "expand",
    "run_sweep",
    "summary_rows",
    "plot_heatmap",
    "loopback_ray_environment",
]

FIELDS = {f.name for f in dataclasses.fields(RunSettings)} - {"method_options"}
CRASH_ONCE = "COMPLEX_SYNAPSES_CRASH_ONCE"  # fault injection for the tests: a marker file path


@dataclass
class SweepConfig:
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    random: dict[str, Any] = field(default_factory=dict)
    retries: int = 2
    heatmap: tuple[str, str] | None = None
    resources: dict[str, float] = field(default_factory=lambda: {"num_cpus": 1, "num_gpus": 0})


def _key(name: str, where: str) -> str:
    from .methods import registry

    key = name.replace("-", "_")
    options = {k for cls in registry().values() for k in cls.options}
    if key not in FIELDS and key not in options:
        raise OptionError(
            f"{where}: unknown setting {name!r} (run options: see `complex-synapses run --help`)"
        )
    return key


def load_config(path: str | Path) -> SweepConfig:
    """Read and check a sweep configuration (see the module docstring)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise OptionError(f"{path}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise OptionError(f"{path}: not valid TOML ({exc})") from None
    unknown = set(raw) - {"base", "grid", "random", "sweep"}
    if unknown:
        raise OptionError(f"{path}: unknown section(s) {sorted(unknown)}; allowed: base, grid, random, sweep")
    base = {_key(k, f"{path} [base]"): v for k, v in raw.get("base", {}).items()}
    grid = {}
    for k, v in raw.get("grid", {}).items():
        if not isinstance(v, list) or not v:
            raise OptionError(f"{path} [grid]: {k} must be a non-empty list, got {v!r}")
        grid[_key(k, f"{path} [grid]")] = v
    random = dict(raw.get("random", {}))
    for k, v in random.items():
        if k not in ("n", "seed"):
            _key(k, f"{path} [random]")
            if not (
                isinstance(v, dict) and len(v) == 1 and next(iter(v)) in ("choice", "uniform", "log_uniform")
            ):
                raise OptionError(
                    f"{path} [random]: {k} must be {{choice = [...]}}, {{uniform = [lo, hi]}} "
                    f"or {{log_uniform = [lo, hi]}}, got {v!r}"
                )
    sweep = raw.get("sweep", {})
    heatmap = sweep.get("heatmap")
    if heatmap is not None:
        if not (isinstance(heatmap, list) and len(heatmap) == 2):
            raise OptionError(f"{path} [sweep]: heatmap must name two settings, got {heatmap!r}")
        heatmap = tuple(_key(h, f"{path} [sweep] heatmap") for h in heatmap)
    retries = sweep.get("retries", 2)
    if not isinstance(retries, int) or retries < 0:
        raise OptionError(f"{path} [sweep]: retries must be an int >= 0, got {retries!r}")
    resources = {"num_cpus": 1, "num_gpus": 0, **sweep.get("resources", {})}
    return SweepConfig(base, grid, random, retries, heatmap, resources)


def _settings(values: dict[str, Any], defaults: RunSettings) -> RunSettings:
    run = {k: v for k, v in values.items() if k in FIELDS}
    options = {k: v for k, v in values.items() if k not in FIELDS}
    s = defaults.replace(**run, method_options={**defaults.method_options, **options})
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


def _attempt(settings: RunSettings, threads: int | None) -> dict[str, Any]:
    """One run in a worker (a process of the pool, or a Ray task)."""
    import torch

    from .train import run_experiment

    marker = os.environ.get(CRASH_ONCE)
    if marker and not Path(marker).exists():  # tests: the first run attempted kills its worker
        Path(marker).write_text(settings.stamp())
        os._exit(17)
    if threads:
        torch.set_num_threads(threads)
    return run_experiment(settings, progress=False)


def _record_failure(settings: RunSettings, errors: list[str]) -> None:
    path = Path(settings.results_dir) / "failed" / f"{settings.stamp()}.json"
    write_json(
        path,
        {
            "stamp": settings.stamp(),
            "attempts": len(errors),
            "errors": errors,
            "settings": dataclasses.asdict(settings),
        },
    )


def _run_local(todo, jobs, retries, done, errors, bar):
    """At most ``jobs`` runs in flight, so that a worker's death costs an attempt only to
    the runs that were running; the pool is then made anew."""
    threads = max(1, (os.cpu_count() or 1) // jobs)
    queue = list(todo)

    def fail(s: RunSettings, error: str) -> None:
        errors[s.stamp()].append(error)
        if len(errors[s.stamp()]) <= retries:
            queue.append(s)
        else:
            bar.update()

    while queue:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            inflight: dict[Any, RunSettings] = {}
            broken = False
            while (queue or inflight) and not broken:
                while queue and len(inflight) < jobs and not broken:
                    try:
                        inflight[pool.submit(_attempt, queue[0], threads)] = queue[0]
                        queue.pop(0)
                    except BrokenProcessPool:  # a worker died before its run's result came in
                        broken = True
                if not inflight:
                    break
                finished, _ = wait(inflight, return_when=FIRST_COMPLETED)
                for fut in finished:
                    s = inflight.pop(fut)
                    try:
                        done(s, fut.result())
                        bar.update()
                    except BrokenProcessPool as exc:
                        broken = True
                        fail(s, f"worker died: {exc}")
                    except Exception:  # noqa: BLE001 - the run failed: recorded, retried
                        fail(s, traceback.format_exc(limit=3))
            for s in inflight.values():  # the pool broke under them
                fail(s, "worker died (its pool broke)")


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


def _run_ray(todo, address, resources, retries, done, errors, bar):
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
        _gather_ray(ray, todo, resources, retries, done, errors, bar)
    finally:
        if connected_here:  # also stops Ray's own messages before the summary is printed
            ray.shutdown()


def _gather_ray(ray, todo, resources, retries, done, errors, bar):
    task = ray.remote(_attempt).options(
        max_retries=0, num_cpus=resources["num_cpus"], num_gpus=resources["num_gpus"]
    )
    threads = max(1, int(resources["num_cpus"]))
    pending = {task.remote(s, threads): s for s in todo}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        s = pending.pop(ready[0])
        try:
            done(s, ray.get(ready[0]))
            bar.update()
        except Exception as exc:  # noqa: BLE001 - a task error or a killed worker: recorded, retried
            errors[s.stamp()].append(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
            if len(errors[s.stamp()]) <= retries:
                pending[task.remote(s, threads)] = s
            else:
                bar.update()


def run_sweep(
    runs: list[RunSettings],
    backend: str = "local",
    address: str | None = None,
    jobs: int = 1,
    retries: int = 2,
    resources: dict[str, float] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run what is not in the cache; the driver writes each result as it arrives.
    Returns ``results`` (stamp -> result), ``failed`` (stamp -> errors), counts, time."""
    from tqdm import tqdm

    start = time.perf_counter()
    results: dict[str, dict[str, Any]] = {}
    todo = []
    for s in runs:
        hit = cached(s)
        if hit is not None:
            results[s.stamp()] = hit
        elif s.stamp() not in {t.stamp() for t in todo}:
            todo.append(s)
    errors: dict[str, list[str]] = {s.stamp(): [] for s in todo}

    def done(s: RunSettings, result: dict[str, Any]) -> None:
        write_json(result_path(s), result)
        results[s.stamp()] = result

    bar = tqdm(total=len(todo), desc=f"sweep ({backend})", unit="run", disable=not progress)
    if backend == "local":
        _run_local(todo, jobs, retries, done, errors, bar)
    elif backend == "ray":
        _run_ray(todo, address, resources or {"num_cpus": 1, "num_gpus": 0}, retries, done, errors, bar)
    else:
        raise OptionError(f"--backend must be local or ray, got {backend!r}")
    bar.close()
    failed = {k: v for k, v in errors.items() if k not in results}
    for s in todo:
        if s.stamp() in failed:
            _record_failure(s, failed[s.stamp()])
    retried = sum(1 for k, v in errors.items() if v and k in results)
    return {
        "results": results,
        "failed": failed,
        "runs_made": len(todo) - len(failed),
        "retried": retried,
        "from_cache": len(runs) - len(todo),
        "wall_time_s": time.perf_counter() - start,
    }


def _value(s: RunSettings, key: str) -> Any:
    if key == "method":
        return s.method_spec
    if key in FIELDS:
        return getattr(s, key)
    return s.resolved_options().get(key)


def summary_rows(runs: list[RunSettings], results: dict[str, dict[str, Any]], axes: list[str]):
    """Mean, SEM and count of the average accuracy for each combination of ``axes``."""
    groups: dict[tuple, list[float]] = {}
    for s in runs:
        r = results.get(s.stamp())
        if r is not None:
            groups.setdefault(tuple(_value(s, a) for a in axes), []).append(r["accuracy"]["average"])
    rows = []
    for key, accs in sorted(groups.items(), key=lambda kv: tuple(map(str, kv[0]))):
        a = np.array(accs)
        sem = float(a.std(ddof=1) / np.sqrt(len(a))) if len(a) > 1 else float("nan")
        rows.append({**dict(zip(axes, key)), "mean": float(a.mean()), "sem": sem, "n": len(a)})
    return rows


def plot_heatmap(
    rows: list[dict[str, Any]], axes: tuple[str, str], title: str, path: Path, pdf: bool = False
):
    """Mean accuracy over two settings (averaged over all the others)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plots import save_figure

    xs = sorted({r[axes[0]] for r in rows}, key=str)
    ys = sorted({r[axes[1]] for r in rows}, key=str)
    grid = np.full((len(ys), len(xs)), np.nan)
    for r in rows:
        grid[ys.index(r[axes[1]]), xs.index(r[axes[0]])] = 100 * r["mean"]
    fig, ax = plt.subplots(figsize=(1.4 + 1.1 * len(xs), 1.2 + 0.6 * len(ys)))
    im = ax.imshow(grid, cmap="viridis", aspect="auto")
    for i in range(len(ys)):
        for j in range(len(xs)):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center", color="white", fontsize=8)
    ax.set_xticks(range(len(xs)), [str(x) for x in xs])
    ax.set_yticks(range(len(ys)), [str(y) for y in ys])
    ax.set_xlabel(axes[0])
    ax.set_ylabel(axes[1])
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="average test accuracy (%)")
    fig.tight_layout()
    return save_figure(fig, path, pdf)
