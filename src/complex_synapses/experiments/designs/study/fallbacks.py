"""What a unit's tuned setting can fall back to: its method's off point, or an earlier
round's best.

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
from typing import Any

from ..tuning import Tuned, converged
from .config import StudyConfig

__all__ = ["off_point", "best_of_rounds"]


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
        later,
        params=earlier.params,
        value=earlier.value,
        score_se=earlier.score_se,
        history=history,
        converged=converged(history, earlier.score_se),
    )
