"""Reader for the IDX format of MNIST-like data sets (plain or gzip-compressed).

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number of
dimensions), one big-endian uint32 per dimension, then the values in C order.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..files import atomic_path

__all__ = ["DataError", "read_idx", "write_idx"]

_TYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(
            f"{path}: corrupt or truncated gzip file ({exc}); delete it and fetch it again"
        ) from exc


def read_idx(path: str | Path) -> np.ndarray:
    """The array stored in IDX file ``path`` (``.gz`` or not). Raises DataError
    naming the file if it is not a complete IDX file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    data = _read_bytes(path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _TYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number {data[:4].hex() or 'empty'})")
    dtype, ndim = _TYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataError(
            f"{path}: IDX size mismatch: header says {shape} ({expected} bytes of data), "
            f"file holds {len(data) - header} bytes (truncated or corrupt)"
        )
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> None:
    """Write ``array`` as an IDX file (gzip-compressed if the name ends in .gz)."""
    path = Path(path)
    array = np.asarray(array)
    code = {v.newbyteorder("=").str: k for k, v in _TYPES.items()}.get(array.dtype.newbyteorder("=").str)
    if code is None:
        raise ValueError(f"write_idx: dtype {array.dtype} has no IDX type code")
    body = array.astype(_TYPES[code]).tobytes()
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    data = header + body
    if compress if compress is not None else path.suffix == ".gz":
        data = gzip.compress(data)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
