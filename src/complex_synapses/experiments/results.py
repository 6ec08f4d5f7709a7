"""Result files and the result cache: strict JSON written atomically (a temporary name,
then a rename), never pickle; a run's result is found again by its parameter stamp."""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path``: to a temporary file in the same folder first, then
    renamed, so that a reader never sees a half-written file. The file gets the mode
    an ordinary ``open`` would give it (0666 less the umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def strict(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float replaced by None (JSON's null)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict(v) for v in obj]
    return obj


def to_json(obj: Any, indent: int | None = None) -> str:
    """Strict JSON (no bare NaN or Infinity, which JSON does not have): null instead."""
    return json.dumps(strict(obj), indent=indent, allow_nan=False, default=str)


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as strict JSON to ``path``, atomically (see :func:`write_text`)."""
    return write_text(path, to_json(obj, indent=1) + "\n")


def read_json(path: str | Path) -> Any:
    """The object in JSON file ``path``, or None if it is missing or unreadable
    (an unreadable cache entry is simply run again)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


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
