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

The search space (its dimensions, draws, edges and widening) is :mod:`.search_space`'s.
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
from .search_space import Param, optuna_name, resolve, suggest

__all__ = ["tune", "Tuned", "COUNTED", "validation_score", "converged"]


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
    values = {n: (1.0 - raw[f"1-{n}"]) if p.complement else raw[optuna_name(n, p)] for n, p in space.items()}
    return resolve(values, space)
