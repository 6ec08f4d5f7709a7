"""The result cache: a run's result is found again by its parameter stamp. Results are
strict JSON written atomically (:mod:`complex_synapses.files`), never pickle."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from ...files import read_json, strict, to_json, write_json, write_text

__all__ = [
    "write_json",
    "write_text",
    "read_json",
    "strict",
    "to_json",
    "result_path",
    "cached",
    "is_result",
    "record_failure",
]


def result_path(settings) -> Path:
    return Path(settings.results_dir) / f"{settings.stamp()}.json"


def is_result(obj: Any, stamp: str) -> bool:
    """Whether ``obj`` is a complete result of the run ``stamp``."""
    if not isinstance(obj, dict) or obj.get("stamp") != stamp:
        return False
    accuracy = obj.get("accuracy")
    if not isinstance(accuracy, dict):
        return False
    average, per_task = accuracy.get("average"), accuracy.get("per_task")
    return (
        isinstance(average, (int, float))
        and math.isfinite(average)
        and isinstance(per_task, list)
        and all(isinstance(a, (int, float)) for a in per_task)
    )


def cached(settings) -> dict[str, Any] | None:
    """The stored result of exactly these settings, if there is one. A file there that
    is not a result (corrupt, cut short, edited) is said so in one line, and the run is
    made again."""
    path = result_path(settings)
    if not path.exists():
        return None
    result = read_json(path)
    if is_result(result, settings.stamp()):
        return result
    print(f"complex-synapses: {path} is not a complete result; running it again", file=sys.stderr)
    return None


def record_failure(settings, errors: list[str]) -> Path:
    """A failed run's record, under ``failed/`` beside the results (never in the cache)."""
    path = Path(settings.results_dir) / "failed" / f"{settings.stamp()}.json"
    return write_json(
        path,
        {
            "stamp": settings.stamp(),
            "attempts": len(errors),
            "errors": errors,
            "settings": settings.as_dict(),
        },
    )
