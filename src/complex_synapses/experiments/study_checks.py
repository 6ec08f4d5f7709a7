"""What a study file must satisfy before anything runs, besides its keys and types:
tuning and evaluation seeds that see the same kind of task sequence, a validation split
for the tuner, baselines without a chain, and every cell running ``none`` and each of its
methods' baselines."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .methods import is_treatment
from .settings import OptionError

if TYPE_CHECKING:
    from .study import StudyConfig

__all__ = ["check_task_order", "check_baselines", "check_validation", "check_cells_have"]
__all__ += ["check_smallest_gain"]


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
