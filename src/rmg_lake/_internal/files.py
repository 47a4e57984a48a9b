"""Writing files safely: private to the user, atomic, and write-once where it matters."""

from __future__ import annotations

import contextlib
import itertools
import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rmg_lake.errors import LakeError

__all__ = ["fsync_dir", "make_private_dir", "own_private_dir", "private_umask", "read_file",
           "sync_all", "write_atomic", "write_new", "write_once"]


def make_private_dir(path: Path) -> None:
    """Create `path` and any missing parents, private to the user whatever the umask."""
    if path.is_dir():
        return
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)  # private from the start (a run killed
        folder.chmod(0o700)  # before the chmod leaves none open); the chmod, whatever umask


def own_private_dir(path: Path) -> None:
    """Make `path` a folder of rmg-lake's own, private to the user, even if it was made
    beforehand (empty, or by rmg-lake)."""
    make_private_dir(path)
    path.chmod(0o700)


@contextmanager
def private_umask() -> Iterator[None]:
    """Files others' code creates meanwhile (DuckDB's) are private to the user from the
    start. (The umask is the process's: it only takes access away, never gives it.)"""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


_serial = itertools.count()
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW  # a file that must not exist yet


def _write_temp(folder: Path, data: bytes, *, sync: bool = True) -> Path:
    """A new file in `folder` holding `data`, private to the user whatever the umask.

    Its name is this process's, thread's and call's own, and it must not exist yet (one a
    dead process of the same pid left may be a second name of a log entry): making it
    costs a third of what `tempfile.mkstemp` does, which draws random names.
    """
    while True:
        temp = folder / f".tmp-{os.getpid()}-{threading.get_ident()}-{next(_serial)}"
        try:
            fd = os.open(temp, _NEW, 0o600)
            break
        except FileExistsError:
            continue  # left by a dead process: never written into
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def write_atomic(path: Path, data: bytes, *, sync: bool = True) -> None:
    """Replace `path` with `data` in one step: readers see the old file or the new one.

    Without `sync` the caller syncs later (many files at once: see `sync_all`). Anything
    but a file at `path` (a folder, a named pipe, a device such as /dev/null) is refused,
    never replaced.
    """
    make_private_dir(path.parent)
    if path.exists() and not path.is_file():
        raise LakeError("is not a file (a folder, a named pipe or a device)", file=str(path),
                        hint="give a file to write")
    with _about(path):
        temp = _write_temp(path.parent, data, sync=sync)
        try:
            temp.replace(path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise


def write_new(path: Path, data: bytes) -> None:
    """Create `path`, private to the user, holding `data` (not synced; its folder is made
    if missing). Raises FileExistsError if it exists. Not atomic: a run killed meanwhile
    leaves it short, which the caller must be able to tell (a content-addressed file)."""
    try:
        fd = os.open(path, _NEW, 0o600)
    except FileNotFoundError:
        make_private_dir(path.parent)
        fd = os.open(path, _NEW, 0o600)
    mine = os.fstat(fd).st_ino
    try:
        with _about(path), os.fdopen(fd, "wb") as handle:
            handle.write(data)
    except BaseException:
        with contextlib.suppress(OSError):  # (unless another has put the whole file there)
            if os.lstat(path).st_ino == mine:
                path.unlink()
        raise


def write_once(path: Path, data: bytes, *, durable: bool = False) -> bool:
    """Create `path` holding `data` unless it exists; True if this call created it.

    The file appears whole or not at all (temp file + hard link, which never overwrites).
    `durable` syncs the file and its folder, so it survives a power cut; without it the
    caller syncs later (many files at once: see `sync_all`).
    """
    if path.exists():
        return False
    make_private_dir(path.parent)
    with _about(path):
        temp = _write_temp(path.parent, data, sync=durable)
    try:
        os.link(temp, path)
    except FileExistsError:
        return False
    finally:
        temp.unlink()
    if durable:
        fsync_dir(path.parent)
    return True


def sync_all() -> None:
    """Flush every written file to disk: one call before a commit instead of one per file."""
    os.sync()


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_file(path: Path, *, kind: type[LakeError] = LakeError) -> bytes:
    """The bytes of the regular file `path`. A named pipe, a device or a folder is refused
    (`kind`), not read: reading one would wait for ever, or never end."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # (a pipe: opened, never waited on)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise kind("not a file (a folder, a named pipe or a device)",
                            file=str(path), hint="give a regular file")
        return handle.read()


@contextmanager
def _about(path: Path) -> Iterator[None]:
    """An OSError while writing `path` names it (not a temp file, nor no file at all)."""
    try:
        yield
    except OSError as err:
        if err.filename is None or Path(str(err.filename)).name.startswith(".tmp-"):
            err.filename, err.filename2 = str(path), None
        raise
