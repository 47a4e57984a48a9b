"""Writing files safely: private to the user, atomic, and write-once where it matters."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["fsync_dir", "make_private_dir", "write_atomic", "write_once"]


def make_private_dir(path: Path) -> None:
    """Create `path` and any missing parents, private to the user whatever the umask."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(exist_ok=True)
        folder.chmod(0o700)


def _write_temp(folder: Path, data: bytes) -> Path:
    fd, name = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` in one step: readers see the old file or the new one."""
    make_private_dir(path.parent)
    _write_temp(path.parent, data).replace(path)


def write_once(path: Path, data: bytes, *, durable: bool = False) -> bool:
    """Create `path` holding `data` unless it exists; True if this call created it.

    The file appears whole or not at all (temp file + hard link, which never overwrites).
    `durable` also syncs the folder, so the new name survives a power cut.
    """
    if path.exists():
        return False
    make_private_dir(path.parent)
    temp = _write_temp(path.parent, data)
    try:
        os.link(temp, path)
    except FileExistsError:
        return False
    finally:
        temp.unlink()
    if durable:
        fsync_dir(path.parent)
    return True


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
