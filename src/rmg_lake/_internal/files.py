"""Writing files safely: private to the user, atomic, and write-once where it matters.

What depends on the operating system is here and nowhere else: which systems rmg-lake
runs on (`check_platform`), syncing files and folders to disk, opening a file without
following a link or waiting on a pipe, and the permissions that keep a lake private to
the user. The other modules call these.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import stat
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rmg_lake.errors import LakeError, UnsupportedPlatform

__all__ = ["PRIVATE_FILE", "RUNS_ON", "check_platform", "fsync_dir", "make_private_dir",
           "make_private_file", "open_to_others", "open_unfollowed", "own_private_dir",
           "private_umask", "read_file", "restrict_to_user", "sync_all", "write_atomic",
           "write_new", "write_once"]

# The systems rmg-lake runs on (`sys.platform`: their names). Its writes rest on POSIX: a
# folder opened and synced so that a commit survives a power cut, `os.sync`, O_NOFOLLOW,
# and permission bits that keep a lake private. Native Windows has none of these; WSL2
# is a Linux, and runs it.
RUNS_ON = {"linux": "Linux", "darwin": "macOS"}
_WINDOWS = ("win32", "cygwin", "msys")

# (Looked up so that this module imports where they are missing, native Windows: the
# refusal there is then one line, not an import's traceback.)
_NOFOLLOW: int = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK: int = getattr(os, "O_NONBLOCK", 0)
PRIVATE_FILE, _PRIVATE_DIR = 0o600, 0o700  # the user's alone


def check_platform() -> None:
    """Refuse (`UnsupportedPlatform`) a system rmg-lake does not run on, before anything
    is written; on Windows, say how to run it in WSL2."""
    platform = sys.platform
    if platform in RUNS_ON:
        return
    systems = list(RUNS_ON.values())
    runs_on = f"rmg-lake runs on {' and '.join(systems)}"
    if platform in _WINDOWS:
        raise UnsupportedPlatform(
            f"{runs_on}, not on Windows itself",
            hint="run it in WSL2 (`wsl --install` in PowerShell, then install rmg-lake "
                 "inside the Linux it gives)")
    raise UnsupportedPlatform(f"{runs_on}, not on {platform}",
                              hint=f"run it on {' or '.join(systems)}")


def make_private_dir(path: Path) -> None:
    """Create `path` and any missing parents, private to the user whatever the umask."""
    if path.is_dir():
        return
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):  # private from the start (a run killed before the
        folder.mkdir(mode=_PRIVATE_DIR, exist_ok=True)  # chmod leaves none open), and
        folder.chmod(_PRIVATE_DIR)  # the chmod, whatever the umask


def own_private_dir(path: Path) -> None:
    """Make `path` a folder of rmg-lake's own, private to the user, even if it was made
    beforehand (empty, or by rmg-lake)."""
    make_private_dir(path)
    path.chmod(_PRIVATE_DIR)


def make_private_file(path: Path) -> None:
    """Let the user alone read and write `path` (a file made by code that follows the
    umask, such as `tempfile`'s or DuckDB's)."""
    path.chmod(PRIVATE_FILE)


def open_to_others(mode: int) -> bool:
    """Whether a file or folder of `mode` (its `st_mode`) lets other users in."""
    return bool(stat.S_IMODE(mode) & 0o077)


def restrict_to_user(path: Path) -> None:
    """Take other users' access to `path` away, leaving the user's own as it is."""
    path.chmod(stat.S_IMODE(path.lstat().st_mode) & _PRIVATE_DIR)


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
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW  # a file that must not exist yet


def _write_temp(folder: Path, data: bytes, *, sync: bool = True) -> Path:
    """A new file in `folder` holding `data`, private to the user whatever the umask.

    Its name is this process's, thread's and call's own, and it must not exist yet (one a
    dead process of the same pid left may be a second name of a log entry): making it
    costs a third of what `tempfile.mkstemp` does, which draws random names.
    """
    while True:
        temp = folder / f".tmp-{os.getpid()}-{threading.get_ident()}-{next(_serial)}"
        try:
            fd = os.open(temp, _NEW, PRIVATE_FILE)
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
        fd = os.open(path, _NEW, PRIVATE_FILE)
    except FileNotFoundError:
        make_private_dir(path.parent)
        fd = os.open(path, _NEW, PRIVATE_FILE)
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
    """Flush the folder `path` itself to disk: the names in it (a new file, one replaced)
    survive a power cut. (A POSIX folder opens read-only, and syncs.)"""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_file(path: Path, *, kind: type[LakeError] = LakeError) -> bytes:
    """The bytes of the regular file `path`. A named pipe, a device or a folder is refused
    (`kind`), not read: reading one would wait for ever, or never end."""
    fd = os.open(path, os.O_RDONLY | _NONBLOCK)  # (a pipe: opened, never waited on)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise kind("not a file (a folder, a named pipe or a device)",
                            file=str(path), hint="give a regular file")
        return handle.read()


def open_unfollowed(path: Path) -> int:
    """A file descriptor reading `path` itself: a symbolic link there is not followed (an
    OSError instead), and a named pipe opens without waiting for a writer."""
    return os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK)


@contextmanager
def _about(path: Path) -> Iterator[None]:
    """An OSError while writing `path` names it (not a temp file, nor no file at all)."""
    try:
        yield
    except OSError as err:
        if err.filename is None or Path(str(err.filename)).name.startswith(".tmp-"):
            err.filename, err.filename2 = str(path), None
        raise
