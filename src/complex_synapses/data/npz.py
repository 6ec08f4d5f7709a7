"""A user's own data: one ``.npz`` file (``numpy.savez``) with four arrays,

- ``x_train``, ``x_test``: images ``(N, H, W)`` or feature vectors ``(N, D)``, the same
  shape after the first axis; ``uint8`` arrays are read as pixel intensities and divided
  by 255, any other real numbers are used as they are (they must be finite);
- ``y_train``, ``y_test``: integer class labels ``0..C-1``, one per row, every class
  present in the training set (C >= 2 is the largest label plus one).

It is read without pickle. Every fault is one line naming the array and what is wrong
(a missing or unknown key, a shape, a dtype, a label), raised before any training. A
run's stamp holds the file's SHA-256 rather than its path, so a changed file is a new run
and the same file moved is the same run.
"""

from __future__ import annotations

import functools
import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError

__all__ = ["KEYS", "NpzInfo", "is_npz", "npz_info", "read_npz"]

KEYS = ("x_train", "y_train", "x_test", "y_test")


def is_npz(name: str) -> bool:
    """Whether a ``--dataset`` value names a file of one's own rather than a built-in set."""
    return name.lower().endswith(".npz")


@dataclass(frozen=True)
class NpzInfo:
    """What the checks found: the file's SHA-256, its classes and one row's shape."""

    sha256: str
    n_classes: int
    shape: tuple[int, ...]
    n_train: int
    n_test: int


def _arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not an .npz file (numpy.savez writes a zip of .npy arrays)")
    try:
        with np.load(path, allow_pickle=False) as f:
            keys = set(f.files)
            missing, unknown = [k for k in KEYS if k not in keys], sorted(keys - set(KEYS))
            if missing:
                raise DataError(f"{path}: no array {missing[0]!r}; the file needs {', '.join(KEYS)}")
            if unknown:
                raise DataError(
                    f"{path}: unknown array {unknown[0]!r}; the file holds {', '.join(KEYS)} only"
                )
            out = {}
            for k in KEYS:
                try:
                    out[k] = f[k]
                except ValueError:  # object arrays need pickle, which is not used
                    raise DataError(
                        f"{path}: {k} holds Python objects (it needs pickle); save numbers"
                    ) from None
            return out
    except DataError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{path}: not an .npz file numpy can read ({exc})") from None


def _check(path: Path, a: dict[str, np.ndarray]) -> tuple[int, tuple[int, ...]]:
    for split in ("train", "test"):
        x, y = a[f"x_{split}"], a[f"y_{split}"]
        if x.ndim not in (2, 3):
            raise DataError(
                f"{path}: x_{split} has shape {x.shape}; images are (N, H, W), feature vectors (N, D)"
            )
        if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
            raise DataError(f"{path}: x_{split} has dtype {x.dtype}; it must hold real numbers")
        if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
            raise DataError(
                f"{path}: x_{split} holds {int((~np.isfinite(x)).sum())} values that are not finite"
            )
        if y.ndim != 1 or len(y) != len(x):
            raise DataError(
                f"{path}: y_{split} has shape {y.shape}; it must be ({len(x)},), one label per row"
            )
        if not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"{path}: y_{split} has dtype {y.dtype}; labels must be integers 0..C-1")
        if len(x) == 0:
            raise DataError(f"{path}: x_{split} has no rows")
    if a["x_train"].shape[1:] != a["x_test"].shape[1:]:
        raise DataError(
            f"{path}: x_train rows have shape {a['x_train'].shape[1:]}, x_test rows {a['x_test'].shape[1:]}; "
            "they must be the same"
        )
    y_train, y_test = a["y_train"], a["y_test"]
    low = min(int(y_train.min()), int(y_test.min()))
    if low < 0:
        where = "y_train" if int(y_train.min()) < 0 else "y_test"
        raise DataError(f"{path}: {where} has label {low}; labels are 0..C-1")
    n_classes = int(y_train.max()) + 1
    if n_classes < 2:
        raise DataError(f"{path}: y_train has one class only; a classifier needs 2 or more")
    absent = np.setdiff1d(np.arange(n_classes), y_train)
    if len(absent):
        raise DataError(
            f"{path}: y_train has no row of class {int(absent[0])} (labels 0..{n_classes - 1}); "
            "every class needs training rows"
        )
    if int(y_test.max()) >= n_classes:
        raise DataError(
            f"{path}: y_test has label {int(y_test.max())}, a class y_train has not (0..{n_classes - 1})"
        )
    return n_classes, tuple(a["x_train"].shape[1:])


@functools.lru_cache(maxsize=16)
def _info(resolved: str, size: int, mtime_ns: int) -> NpzInfo:
    path = Path(resolved)
    a = _arrays(path)
    n_classes, shape = _check(path, a)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return NpzInfo(digest, n_classes, shape, len(a["y_train"]), len(a["y_test"]))


def npz_info(path: str | Path) -> NpzInfo:
    """Check the file (see the module docstring) and return what it holds; DataError
    naming the first fault. Cached while the file is unchanged."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    stat = path.stat()
    return _info(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def read_npz(path: str | Path) -> tuple[NpzInfo, dict[str, np.ndarray]]:
    """The file's four arrays, checked first (:func:`npz_info`), inputs as float32
    (``uint8`` divided by 255) and labels as int64."""
    path = Path(path)
    info = npz_info(path)
    a = _arrays(path)
    out = {}
    for k, v in a.items():
        if k.startswith("x_"):
            out[k] = v.astype(np.float32) / 255.0 if v.dtype == np.uint8 else v.astype(np.float32)
        else:
            out[k] = v.astype(np.int64)
    return info, out
