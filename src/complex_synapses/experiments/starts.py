"""A method's off point: where its tuned setting can fall back to.

With ``start_from_baseline = true`` in a study's ``[study]`` table, every method but a
baseline also scores its off point: its baseline's tuned setting in the same cell with
itself switched off, the options it shares with its baseline (lr) at the baseline's
tuned values, its own options at the values its ``off`` table declares (a chain whose
alpha lies beyond the run's length, ewc's lambda near 0, an EMA over two steps). Its
search runs as it would without (the same trials, the same seeds); the method's tuned
setting is then the better of the search's best and the off point, both scored alike on
the validation split of the tuning seeds. A search can miss its own off corner: the
chain's at 1 bit is a corner of a 4-dimensional box that 32 trials did not find
(docs/study.md), so a chain that does no good lost to a search that missed "off" rather
than tying its baseline. The off point is not a trial of the search: put there, it drew
TPE towards "off" and away from better settings (an EMA lost 3 points that way).

A search whose best value binds is tuned again over a widened range; that range holds
the narrower one, so the unit keeps the better of the rounds' bests
(:func:`best_of_rounds`), as one search over both would: a wider search of the same
number of trials can find less (at 1 bit over 30 tasks, `none`'s widened search found
50.25% where its first had found 52.47%).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from .settings import OptionError
from .tuning import Tuned, converged, drawn

if TYPE_CHECKING:
    from .study import StudyConfig

__all__ = ["starts_from", "check_offs", "off_point", "best_of_rounds"]


def starts_from(config: StudyConfig, method: str) -> str | None:
    """The method whose tuned setting ``method``'s off point starts from, or None."""
    baseline = config.methods[method].baseline
    return baseline if config.start_from_baseline and baseline != method else None


def check_offs(config: StudyConfig) -> None:
    """Every method that starts from its baseline declares, inside its ranges, the values of
    the options its baseline does not tune; ``off`` elsewhere is refused."""
    for name, spec in config.methods.items():
        where = f"{config.path} [methods.{name}]"
        baseline = starts_from(config, name)
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


def off_point(config: StudyConfig, method: str, baseline_params: dict[str, Any]) -> dict[str, Any]:
    """``method``'s off point: its off values, and for the options it shares with its
    baseline the baseline's tuned values (kept inside its own ranges)."""
    spec = config.methods[method]
    shared = {k: _inside(baseline_params[k], p) for k, p in spec.space.items() if k not in spec.off}
    return shared | spec.off


def _inside(v: Any, p) -> Any:
    if p.choices is not None or p.times is not None:
        return v
    return min(max(v, p.low), p.high)


def best_of_rounds(earlier: Tuned | None, later: Tuned) -> Tuned:
    """The tuning over a widened range (``later``) with the best setting of every round so
    far: an earlier round's best where it scored higher, and then the history as the best
    so far over both rounds (so its convergence is judged as one search's)."""
    if earlier is None or later.value >= earlier.value:
        return later
    history = [max(earlier.value, h) for h in later.history]
    return dataclasses.replace(
        later, params=earlier.params, value=earlier.value, score_se=earlier.score_se,
        history=history, converged=converged(history, earlier.score_se),
    )  # fmt: skip
