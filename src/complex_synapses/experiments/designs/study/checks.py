"""What a study file must satisfy before anything runs, besides its keys and types:
tuning and evaluation seeds that see the same kind of task sequence, a validation split
for the tuner, baselines without a chain, and every cell running ``none`` and each of its
methods' baselines, off points declared inside their ranges, and every run the study
can make allowed at its search space's lower corner."""

from __future__ import annotations

from typing import Any

from ...run.methods import is_treatment
from ...run.settings import OptionError
from ..search_space import corner, drawn
from .config import StudyConfig

__all__ = ["check_task_order", "check_baselines", "check_validation", "check_cells_have"]
__all__ += ["check_smallest_gain", "check_offs", "check_method_cells", "check_corners", "check_study"]


def check_task_order(config: StudyConfig) -> None:
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


def check_cells_have(config: StudyConfig) -> None:
    """Every cell runs none, and each method's baseline wherever the method runs."""
    ran = set(config.units())
    for c in config.cells:
        if (c, "none") not in ran:
            raise OptionError(f"{config.path}: cell {c!r} does not run none, the reference of its tests")
    for c, m in ran:
        if (c, config.methods[m].baseline) not in ran:
            raise OptionError(
                f"{config.path}: cell {c!r} runs {m} but not its baseline {config.methods[m].baseline}"
            )


def check_baselines(config: StudyConfig) -> None:
    """Each method's ``baseline`` names a method of the study without a chain."""
    for name, m in config.methods.items():
        other = config.methods.get(m.baseline)
        if other is None or is_treatment(other.fixed.get("method", other.name)):
            plain = [k for k, v in config.methods.items() if not is_treatment(v.fixed.get("method", k))]
            raise OptionError(
                f"{config.path} [methods.{name}]: baseline must name a method of the study without a chain "
                f"({', '.join(plain)}), got {m.baseline!r}"
            )


def check_validation(config: StudyConfig) -> None:
    """Tuning scores a validation split: every cell must hold one out."""
    for c in config.cells:
        if not config.settings(c, "none", {}, config.tune_seeds[0]).validation:
            raise OptionError(
                f"{config.path}: cell {c!r} holds out no validation split, and tuning never reads test "
                f"accuracy: set validation (e.g. 0.1, the fraction of each task's training data) in [base]"
            )


def check_smallest_gain(gain: Any, where: str) -> float | None:
    """``smallest_gain`` (the least gain that matters, a fraction of accuracy), checked."""
    number = isinstance(gain, (int, float)) and not isinstance(gain, bool)
    if gain is not None and not (number and 0 < gain < 1):
        raise OptionError(f"{where}: smallest_gain must be a fraction of accuracy in (0, 1), got {gain!r}")
    return gain


def check_offs(config: StudyConfig) -> None:
    """Every method that starts from its baseline declares, inside its ranges, the values of
    the options its baseline does not tune; ``off`` elsewhere is refused."""
    for name, spec in config.methods.items():
        where = f"{config.path} [methods.{name}]"
        baseline = config.starts_from(name)
        if baseline is None:
            if spec.off:
                raise OptionError(f"{where}: off applies only with start_from_baseline = true in [study]")
            continue
        own = [k for k in spec.space if k not in config.methods[baseline].space]
        missing = [k for k in own if k not in spec.off]
        unknown = [k for k in spec.off if k not in spec.space]
        if missing or unknown:
            raise OptionError(
                f"{where}: start_from_baseline needs off = {{...}} with a value for each option it tunes "
                f"and {baseline} does not ({', '.join(own) or 'none'}), no other; "
                f"missing: {', '.join(missing) or '-'}, not tuned: {', '.join(unknown) or '-'}"
            )
        off = spec.off | {k: spec.space[k].low for k in spec.space if k not in spec.off}
        for k, v in drawn(off, spec.space).items():
            p = spec.space[k]
            inside = v in p.choices if p.choices is not None else p.low <= v <= p.high
            if k in spec.off and not inside:
                raise OptionError(f"{where}: off {k} = {spec.off[k]!r} lies outside its search range")


def check_method_cells(config: StudyConfig) -> None:
    """A method's ``cells`` name cells of the study."""
    for m, spec in config.methods.items():
        unknown = sorted(set(spec.cells or ()) - set(config.cells))
        if unknown:
            raise OptionError(
                f"{config.path} [methods.{m}]: cells names no cell of the study: {', '.join(unknown)}"
            )


def check_corners(config: StudyConfig) -> None:
    """Every unit's run at its search space's lower corner passes the run's own checks."""
    for c, m in config.units():
        try:
            config.settings(c, m, corner(config.methods[m].space), config.tune_seeds[0]).check()
        except OptionError as exc:
            raise OptionError(f"{config.path}: cell {c!r}, method {m!r}: {exc}") from None


def check_study(config: StudyConfig) -> None:
    """Every check of a study, in the order a reader fixes them."""
    check_task_order(config)
    check_baselines(config)
    check_validation(config)
    check_method_cells(config)
    check_cells_have(config)
    check_offs(config)
    check_corners(config)
