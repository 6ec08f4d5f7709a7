"""Files written whole or not at all, and strict JSON.

Every file the project writes (results, tables, figures, data, the C library) is
written under a temporary name in its folder and renamed into place
(:func:`atomic_path`), so that a reader never sees a half-written file and a stopped
command leaves none behind. JSON is strict: no bare NaN or Infinity (which JSON does
not have), null instead; never pickle.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["atomic_path", "write_text", "write_json", "read_json", "strict", "to_json", "csv_text"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A new temporary path beside ``path`` (same suffix, so that writers that go by
    it, as matplotlib does, write the same format) to write within the block; renamed
    to ``path`` when the block ends, removed if it raises. The file gets the mode an
    ordinary ``open`` would give it (0666 less the umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


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
    """Write ``obj`` as strict JSON to ``path``, atomically (see :func:`atomic_path`)."""
    return write_text(path, to_json(obj, indent=1) + "\n")


def read_json(path: str | Path) -> Any:
    """The object in JSON file ``path``, or None if it is missing or unreadable
    (an unreadable cache entry is simply run again)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def csv_text(header: Iterable[str], rows: Iterable[Iterable[Any]], digits: int | None = 10) -> str:
    """A table as CSV text: floats with ``digits`` significant digits (None: as Python
    writes them, exactly), None and NaN as empty cells."""

    def cell(v: Any) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return ""
        return f"{v:.{digits}g}" if isinstance(v, float) and digits else str(v)

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([cell(v) for v in row] for row in rows)
    return out.getvalue()
