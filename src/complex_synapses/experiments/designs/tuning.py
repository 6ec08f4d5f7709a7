"""Tuning a method's hyperparameters with Optuna: TPE over a declared search space,
median pruning of hopeless trials after their first seed, the study in SQLite so a
stopped tuning resumes: it draws its trials again from the first, by its seeded
sampler, their runs from the cache, so that it ends as a tuning run whole would.

A trial is one setting, run on every tuning seed in turn; its value is the mean final
accuracy on the validation split (``validation.average``: each task's held-out training
rows, ``--validation``) over them; the test set is never read. After each seed the running mean is reported
as the trial's intermediate value at step ``i``; a trial whose first seeds fall below
the median of earlier trials at the same step is pruned (and counts towards the budget).
Runs go through the result cache, so a setting is never run twice on a seed.

A search space maps option names (as ``complex-synapses run`` names them) to::

    {low = 1e-4, high = 1e-2, log = true}         # a float, log-uniform
    {low = 1, high = 8, int = true}               # an integer
    {low = 0.9, high = 0.9999, complement = true} # 1 - value log-uniform: decays near 1
    {choices = ["a", "b"]}                        # categorical
    {low = 1, high = 1e4, log = true, times = "alpha"}  # this option = a factor x alpha's value

A ``times`` dimension searches the ratio of an option to another of the space (a chain's
beta as 1-10^4 times its alpha, say), so that every draw satisfies beta >= alpha however
far alpha's range reaches; its range, edges and widening are the factor's.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..execution.runner import RunFailed, run_many
from ..run.settings import OptionError, RunSettings

__all__ = ["Param", "parse_space", "suggest", "tune", "Tuned", "COUNTED", "at_edges", "widened", "EDGE"]
__all__ += ["resolve", "drawn", "corner", "validation_score", "record_range"]

SPEC_KEYS = ("low", "high", "log", "int", "complement", "choices", "times")


@dataclass(frozen=True)
class Param:
    """One dimension of a search space (see the module docstring)."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    complement: bool = False
    choices: tuple | None = None
    times: str | None = None  # the option this one is a factor of (its range is the factor's)

    def record(self) -> dict[str, Any]:
        """Its fields, ``times`` left out where unused (so that earlier studies' units keep
        their fingerprints)."""
        return {k: v for k, v in vars(self).items() if not (k == "times" and v is None)}


def _param(name: str, spec: Any, where: str) -> Param:
    if not isinstance(spec, dict) or set(spec) - set(SPEC_KEYS) or not spec:
        raise OptionError(
            f"{where}: {name} must be a table of {', '.join(SPEC_KEYS)}, e.g. {{low = 1e-4, high = 1e-2, "
            f"log = true}}, got {spec!r}"
        )
    if "choices" in spec:
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices or len(spec) > 1:
            raise OptionError(f"{where}: {name}: choices must be a non-empty list, and alone, got {spec!r}")
        return Param(name, choices=tuple(choices))
    low, high = spec.get("low"), spec.get("high")
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high))
    if not numbers or not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise OptionError(f"{where}: {name} needs numbers low < high, got low={low!r}, high={high!r}")
    p = Param(name, low, high, bool(spec.get("log")), bool(spec.get("int")), bool(spec.get("complement")))
    if "times" in spec:
        times = spec["times"]
        if not isinstance(times, str) or p.integer or p.complement or low <= 0:
            raise OptionError(
                f"{where}: {name}: times names the option this one is a positive factor of (e.g. "
                f'times = "alpha", with low > 0; not with int or complement), got {spec!r}'
            )
        p = dataclasses.replace(p, times=times)
    if (p.log or p.complement) and low <= 0:
        raise OptionError(f"{where}: {name}: a log scale needs low > 0, got {low!r}")
    if p.complement and (p.log or p.integer or high >= 1):
        raise OptionError(f"{where}: {name}: complement is for values in (0, 1) alone, got {spec!r}")
    return p


def parse_space(raw: Any, where: str) -> dict[str, Param]:
    """The search space of a method from its TOML table; OptionError naming what is wrong."""
    from .toml_files import setting_key

    if not isinstance(raw, dict):
        raise OptionError(f"{where}: the search space must be a table of options, got {raw!r}")
    space = {setting_key(k, where): _param(k, v, where) for k, v in raw.items()}
    for name, p in space.items():
        other = space.get(setting_key(p.times, where)) if p.times else None
        if p.times and (other is None or other.choices is not None or other.times is not None):
            raise OptionError(
                f"{where}: {name}: times = {p.times!r} must name another numeric option of the "
                f"search space that is no factor itself (one of {', '.join(k for k in space if k != name)})"
            )
        if p.times:
            space[name] = dataclasses.replace(p, times=setting_key(p.times, where))
    return space


def resolve(drawn: dict[str, Any], space: dict[str, Param]) -> dict[str, Any]:
    """Option values from values as drawn: a ``times`` option's factor multiplied by the
    value of the option it is a factor of."""
    return {n: drawn[n] * drawn[p.times] if p.times else drawn[n] for n, p in space.items()}


def drawn(params: dict[str, Any], space: dict[str, Param]) -> dict[str, Any]:
    """The inverse of :func:`resolve`: option values as the search draws them."""
    return {n: params[n] / params[p.times] if p.times else params[n] for n, p in space.items()}


def corner(space: dict[str, Param], at: dict[str, float] | None = None) -> dict[str, Any]:
    """Option values at the lower end of every range (first choice), or at ``at``'s
    drawn values where it names one."""
    out = {k: (p.choices[0] if p.choices else p.low) for k, p in space.items()} | (at or {})
    return resolve({k: int(v) if space[k].integer else v for k, v in out.items()}, space)


def suggest(trial, space: dict[str, Param]) -> dict[str, Any]:
    """One setting drawn by ``trial`` (an Optuna trial) from ``space``."""
    out: dict[str, Any] = {}
    for name, p in space.items():
        if p.choices is not None:
            out[name] = trial.suggest_categorical(name, list(p.choices))
        elif p.integer:
            out[name] = trial.suggest_int(name, int(p.low), int(p.high), log=p.log)
        elif p.complement:  # sample 1 - value on a log scale, so that 0.99 and 0.9999 are as likely
            out[name] = 1.0 - trial.suggest_float(f"1-{name}", 1.0 - p.high, 1.0 - p.low, log=True)
        else:
            out[name] = trial.suggest_float(_key(name, p), p.low, p.high, log=p.log)
    return resolve(out, space)


def record_range(p: Param) -> list:
    """A dimension's final range as the unit records it (a factor's with what it multiplies)."""
    if p.choices is not None:
        return list(p.choices)
    return [p.low, p.high] + ([f"x {p.times}"] if p.times else [])


def _key(name: str, p: Param) -> str:
    """The name Optuna keeps a dimension under: a factor's is ``NAME/OTHER``, another
    quantity than the option."""
    return f"{name}/{p.times}" if p.times else name


@dataclass
class Tuned:
    """The outcome of a tuning: the best setting's values, its mean over the tuning
    seeds, and how the trials ended."""

    params: dict[str, Any]
    value: float
    trials: dict[str, int]
    history: list[float] = dataclasses.field(default_factory=list)  # best so far after each counted trial
    score_se: float = float("nan")  # the best trial's standard error over the tuning seeds
    converged: bool = True  # its last third improved the best by no more than score_se


COUNTED = ("COMPLETE", "PRUNED", "DIVERGED")  # trial outcomes that use up the budget


def _outcome(t) -> str:
    return "DIVERGED" if t.user_attrs.get("diverged") else t.state.name


def _counted(study) -> int:
    return sum(_outcome(t) in COUNTED for t in study.get_trials(deepcopy=False))


def _objective(trial, params, base: RunSettings, seeds: list[int]) -> float:
    import optuna

    values = []
    for i, s in enumerate(_on(params, base, seeds)):
        outcome = run_many([s], progress=False)
        result = outcome.ordered([s])[0]  # RunFailed where it diverged
        values.append(result["validation"]["average"])
        trial.report(sum(values) / len(values), i)
        if i + 1 < len(seeds) and trial.should_prune():
            raise optuna.TrialPruned()
    return sum(values) / len(values)


def _sampler(seed: int, startup_trials: int):
    """TPE over the joint distribution of the options (multivariate), not one at a time."""
    import warnings

    import optuna

    with warnings.catch_warnings():  # optuna calls multivariate TPE experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials, multivariate=True)


def open_study(path: Path, name: str, startup_trials: int, seed: int):
    """The Optuna study ``name`` stored in SQLite at ``path`` (made or resumed)."""
    import optuna

    optuna.logging.set_verbosity(logging.WARNING)
    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.create_study(
        study_name=name,
        storage=f"sqlite:///{path}",
        load_if_exists=True,
        direction="maximize",
        sampler=_sampler(seed, startup_trials),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_warmup_steps=0),
    )


def _open_or_set_aside(path: Path, name: str, startup_trials: int, seed: int):
    """The stored study, or where its file is damaged (cut short by a full disk or a
    killed copy), a new one: the file is kept aside under a new name, said in one line,
    and the tuning starts again. TPE's draws are seeded, so the new tuning asks for the
    same settings again, and their runs come from the run cache: no finished run is lost."""
    import sqlite3

    from sqlalchemy.exc import SQLAlchemyError

    try:
        study = open_study(path, name, startup_trials, seed)
        study.get_trials(deepcopy=False)  # reads every table: a damaged file fails here if not before
        return study
    except (SQLAlchemyError, sqlite3.DatabaseError) as e:
        if not path.exists():
            raise
        aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
        path.replace(aside)
        reason = str(getattr(e, "orig", None) or e).splitlines()[0]
        print(
            f"complex-synapses: the tuner's store {path} is damaged ({reason}); kept as {aside.name}, "
            f"tuning {name} again with its runs from the cache",
            file=sys.stderr,
        )
        return open_study(path, name, startup_trials, seed)


def tune(
    base: RunSettings,
    space: dict[str, Param],
    seeds: list[int],
    trials: int,
    path: Path,
    name: str,
    *,
    startup_trials: int = 4,
    seed: int = 0,
) -> Tuned:
    """Tune ``space`` around ``base`` until ``trials`` trials have finished (completed,
    pruned or diverged). ``seed`` seeds TPE's draws. A stopped tuning is drawn again from
    its first trial: a sampler made anew draws from its seed, so resumed in the middle it
    would draw other settings than the tuning run whole; drawn again, it asks for the same
    settings, whose runs come from the cache."""
    import optuna
    from optuna.trial import TrialState

    if not base.validation:
        raise OptionError(
            "tuning scores each setting on a validation split, never on the test set: set validation "
            "(the fraction of each task's training data held out, e.g. 0.1) in the run settings"
        )
    study = _open_or_set_aside(path, name, startup_trials, seed)
    if study.get_trials(deepcopy=False) and _counted(study) < trials:
        optuna.delete_study(study_name=name, storage=f"sqlite:///{path}")
        study = open_study(path, name, startup_trials, seed)
    while _counted(study) < trials:
        trial = study.ask()
        params = suggest(trial, space)
        try:
            study.tell(trial, _objective(trial, params, base, seeds))
        except optuna.TrialPruned:
            study.tell(trial, state=TrialState.PRUNED)
        except RunFailed:  # the setting diverged: a poor setting, not a broken tuning
            trial.set_user_attr("diverged", True)
            study.tell(trial, state=TrialState.FAIL)
    done = study.get_trials(deepcopy=False)
    counts = {k: sum(_outcome(t) == k for t in done) for k in COUNTED}
    complete = [t for t in done if t.state == TrialState.COMPLETE]
    if not complete:
        raise RunFailed(f"tuning {name}: no trial completed ({counts}); widen or move its search space")
    best = max(complete, key=lambda t: t.value)
    history, se = _history(done), _seed_se(best)
    return Tuned(_params(best.params, space), float(best.value), counts, history, se, converged(history, se))


def validation_score(params: dict[str, Any], base: RunSettings, seeds: list[int]) -> float | None:
    """One setting's score as a tuning scores its trials: the mean final validation
    accuracy over ``seeds`` (runs through the cache); None where it diverged."""
    try:
        results = [run_many([s], progress=False).ordered([s])[0] for s in _on(params, base, seeds)]
    except RunFailed:
        return None
    return sum(r["validation"]["average"] for r in results) / len(results)


def _on(params: dict[str, Any], base: RunSettings, seeds: list[int]) -> list[RunSettings]:
    return [base.replace(**params, seed=seed) for seed in seeds]


def converged(history: list[float], se: float) -> bool:
    """Whether a search's last third raised its best score by no more than ``se`` (the
    best trial's standard error over the tuning seeds; without one, by nothing). One
    whose first two thirds completed no trial has not converged."""
    before = history[len(history) * 2 // 3 - 1] if len(history) >= 3 else history[-1]
    late = history[-1] - before
    return math.isfinite(late) and (late <= se if math.isfinite(se) else late == 0)


def _history(done) -> list[float]:
    """The best value so far after each counted trial, in the order they were asked
    (nan until one completes)."""
    best, out = float("-inf"), []
    for t in sorted((t for t in done if _outcome(t) in COUNTED), key=lambda t: t.number):
        if t.state.name == "COMPLETE":
            best = max(best, t.value)
        out.append(best if math.isfinite(best) else float("nan"))
    return out


def _seed_se(trial) -> float:
    """The standard error over the tuning seeds of a trial's value, from its running
    means (its intermediate values)."""
    means = [trial.intermediate_values[k] for k in sorted(trial.intermediate_values)]
    seeds = [
        (i + 1) * m - i * prev for i, (m, prev) in enumerate(zip(means, [0.0, *means[:-1]], strict=True))
    ]
    if len(seeds) < 2:
        return float("nan")
    mean = sum(seeds) / len(seeds)
    return math.sqrt(sum((v - mean) ** 2 for v in seeds) / (len(seeds) - 1) / len(seeds))


def _params(raw: dict[str, Any], space: dict[str, Param]) -> dict[str, Any]:
    """A trial's parameters by option name (undoing the complement's and the factor's renaming)."""
    values = {n: (1.0 - raw[f"1-{n}"]) if p.complement else raw[_key(n, p)] for n, p in space.items()}
    return resolve(values, space)


EDGE = 0.05  # a tuned value this close to an end of its range (share of the range, on its scale) binds


def _scale(p: Param, v: float) -> float:
    """``v`` on the scale its range is searched on (a complement's: -log(1 - v), so that
    the high end stays the high end)."""
    if p.complement:
        return -math.log(1.0 - v)
    return math.log(v) if p.log else float(v)


def at_edges(params: dict[str, Any], space: dict[str, Param]) -> dict[str, str]:
    """The tuned values within ``EDGE`` of an end of their range, on the range's scale:
    ``{name: "low" or "high"}`` (categorical choices have no edges)."""
    out, params = {}, drawn(params, space)
    for name, p in space.items():
        if p.choices is not None:
            continue
        lo, hi, v = _scale(p, p.low), _scale(p, p.high), _scale(p, params[name])
        share = (v - lo) / (hi - lo)
        if share < EDGE or share > 1 - EDGE:
            out[name] = "low" if share < EDGE else "high"
    return out


def widened(space: dict[str, Param], edges: dict[str, str]) -> dict[str, Param]:
    """``space`` with each bound in ``edges`` moved out by half its range, on its scale
    (a log range by the square root of its ratio), staying where the option is defined
    (log and complement ranges above 0, a complement's below 1)."""
    out = dict(space)
    for name, end in edges.items():
        p = space[name]
        lo, hi = _scale(p, p.low), _scale(p, p.high)
        step = (hi - lo) / 2
        back = (_unscale(p, lo - step), p.high) if end == "low" else (p.low, _unscale(p, hi + step))
        if p.integer:
            back = (math.floor(back[0]), math.ceil(back[1]))
        if (p.log or p.complement) and back[0] <= 0:
            back = (p.low, back[1])
        out[name] = dataclasses.replace(p, low=back[0], high=back[1])
    return out


def _unscale(p: Param, x: float) -> float:
    if p.complement:
        return 1.0 - math.exp(-x)
    return math.exp(x) if p.log else x
