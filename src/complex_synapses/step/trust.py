"""The cache folder of built libraries, trusted as ssh trusts its keys.

The C library (:mod:`.native`) runs inside every training process, so a folder or file
of the cache owned by another user, or writable by group or others, is not trusted, and a
library is loaded only if its size and SHA-256 are those recorded when it was built
(``step-KEY.json`` beside it). A library cut short (a full disk, a killed copy) is
removed, to be rebuilt; one changed in any other way is refused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

from ..files import atomic_path

__all__ = ["Refused", "folder_lock", "untrusted", "verify", "record_build", "sha256_of"]


class Refused(Exception):
    """The cache is not to be trusted (see the module's docstring): why."""


@contextlib.contextmanager
def folder_lock(folder: Path):
    """The cache folder locked against other processes while a library is checked, built
    and recorded: a library and its record are seen together or not at all."""
    import fcntl

    with open(folder / ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def untrusted(path: Path) -> str | None:
    """Why ``path`` (the cache folder, a library or its record) may not be trusted: owned
    by another user, or writable by group or others; None where it may be (or is absent)."""
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    if st.st_uid != os.getuid():
        return f"{path} is owned by another user (uid {st.st_uid})"
    if st.st_mode & 0o022:
        return f"{path} is writable by others than its owner (mode {st.st_mode & 0o777:o}; chmod go-w it)"
    return None


def verify(target: Path, record: Path) -> str | None:
    """None where ``target`` is the library recorded when it was built; where it is
    shorter (cut short) or has no record (built by an earlier release), it is removed, to
    be rebuilt; where it was changed otherwise, why it is refused."""
    try:
        made = json.loads(record.read_text())
    except (OSError, ValueError):
        made = None
    size = target.stat().st_size
    if made is None or size < made["size"]:
        target.unlink()
        return None
    if size != made["size"] or sha256_of(target) != made["sha256"]:
        return f"{target} is not the library built there (changed since its build)"
    return None


def record_build(target: Path, record: Path) -> None:
    """The built library's size and SHA-256, and the library made writable by its owner
    alone (whatever the umask)."""
    target.chmod(0o755)
    with atomic_path(record) as out:
        out.write_text(json.dumps({"size": target.stat().st_size, "sha256": sha256_of(target)}))
    record.chmod(0o644)


def sha256_of(path: Path) -> str:
    """The SHA-256 of the file at ``path``, in hex."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
