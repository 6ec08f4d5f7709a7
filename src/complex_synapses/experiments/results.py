"""Result files: JSON written atomically (a temporary name, then a rename), never pickle."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["write_json", "write_text", "read_json"]


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path``: to a temporary file in the same folder first, then
    renamed, so that a reader never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as JSON to ``path``, atomically (see :func:`write_text`)."""
    return write_text(path, json.dumps(obj, indent=1) + "\n")


def read_json(path: str | Path) -> Any:
    """The object in JSON file ``path``, or None if it is missing or unreadable
    (an unreadable cache entry is simply run again)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
