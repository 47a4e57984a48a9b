"""A local folder: the one the Dropbox desktop client keeps in sync, or any folder of files."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from rmg_lake._internal.files import open_unfollowed
from rmg_lake.errors import SourceError
from rmg_lake.sources.base import (
    OUR_FOLDERS,
    FileDeferred,
    FileGone,
    FileRefused,
    SourceFile,
)

__all__ = ["NOT_OURS", "LocalFolder"]

# What the Dropbox client and the operating systems keep in a synced folder. Any other
# file is listed, whatever its name (a `.hidden.json` is a file an observer may have made).
NOT_OURS = frozenset({".dropbox", ".dropbox.attr", ".dropbox.cache", ".DS_Store",
                      ".Spotlight-V100", ".Trashes", ".fseventsd", "desktop.ini",
                      "Thumbs.db", "Icon\r"})


def _identity(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino


class LocalFolder:
    """Walks the folder recursively, in sorted order.

    The sync client's and the operating system's own files (`.dropbox.cache`, `.DS_Store`,
    `Thumbs.db`, …: `NOT_OURS`) are not listed, nor are rmg-lake's own folders at the top
    (`OUR_FOLDERS`: `backups/`, `reports/`) or `exclude`d folders (a lake kept inside the
    sync folder, however its path is spelled). Symbolic links are never
    followed, and neither they nor named pipes or devices are read: each is listed, to be
    quarantined with what it is.
    """

    readers = 2

    def __init__(self, root: str | Path, *, exclude: Sequence[Path] = ()) -> None:
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise SourceError("is a file, not a folder" if self.root.exists()
                              else "no such folder", file=str(root),
                              hint="check `source` in rmg-lake.toml or pass --source DIR")
        # by path, and by identity however the path is spelled (taken when listing: the
        # folder may not exist yet)
        self.exclude_paths = {p.expanduser().resolve() for p in exclude}
        self.exclude: set[tuple[int, int]] = set()
        if self.root in self.exclude_paths:
            raise SourceError("the source folder is the lake folder", file=str(root),
                              hint="keep the lake outside the sync folder")

    @property
    def name(self) -> str:
        return f"local:{self.root}"

    @property
    def cursor(self) -> None:
        return None  # a folder is listed whole; what was seen is skipped by fingerprint

    def resume(self, cursor: str | None) -> None:
        pass

    @property
    def gone(self) -> list[str]:
        return []  # a folder listing does not say what left it

    @property
    def relisted(self) -> bool:
        return False

    def list(self) -> Iterator[SourceFile]:
        def fail(err: OSError) -> None:
            if isinstance(err, FileNotFoundError) and err.filename != str(self.root):
                return  # a sub-folder gone since its parent was listed: nothing to take
            raise SourceError(f"cannot list the folder ({err.strerror})",
                              file=str(err.filename or self.root))

        self.exclude = {_identity(p) for p in self.exclude_paths if p.is_dir()}
        if _identity(self.root) in self.exclude:
            raise SourceError("the source folder is the lake folder", file=str(self.root),
                              hint="keep the lake outside the sync folder")
        for folder, dirs, files in os.walk(self.root, onerror=fail):
            linked = [d for d in dirs if Path(folder, d).is_symlink()]  # listed, not walked
            top = folder == str(self.root)
            dirs[:] = sorted(d for d in dirs if d not in NOT_OURS and d not in linked
                             and not (top and d.casefold() in OUR_FOLDERS)
                             and not self._excluded(Path(folder, d)))
            for name in sorted([*files, *linked]):
                full = Path(folder, name)
                if name in NOT_OURS:
                    continue
                try:
                    st = full.lstat()  # a link itself, never what it points to
                except FileNotFoundError:
                    continue  # gone since the folder was listed: not there to take
                except OSError as err:
                    raise SourceError(f"cannot look at the file ({err.strerror})",
                                      file=str(full)) from None
                yield SourceFile(
                    path=full.relative_to(self.root).as_posix(),
                    size=st.st_size,
                    modified=datetime.fromtimestamp(st.st_mtime_ns / 1e9, UTC),
                    fingerprint=_fingerprint(st),
                )

    def _excluded(self, folder: Path) -> bool:
        if folder in self.exclude_paths:
            return True
        try:
            return _identity(folder) in self.exclude
        except OSError:
            return False

    def read(self, file: SourceFile) -> bytes:
        return b"".join(self._read(file, whole=True))

    def chunks(self, file: SourceFile) -> Iterator[bytes]:
        return self._read(file, whole=False)

    def _read(self, file: SourceFile, *, whole: bool) -> Iterator[bytes]:
        """The file's bytes (at once, or 1 MiB at a time), opened without following a link
        and checked to be the version listed: a file still being written is left for the
        next ingest."""
        path = self.root / file.path
        try:
            fd = open_unfollowed(path)
        except FileNotFoundError:
            raise FileGone("the file went away before it was read", file=file.path) from None
        except OSError as err:
            try:
                st = path.lstat()
                target = path.readlink() if stat.S_ISLNK(st.st_mode) else None
            except FileNotFoundError:
                raise FileGone("the file went away before it was read",
                               file=file.path) from None
            except OSError:
                st, target = None, None
            if target is not None:
                raise FileRefused(f"a symbolic link (to {target}), not followed",
                                  file=file.path, evidence=os.fsencode(target)) from None
            if st is not None and not stat.S_ISREG(st.st_mode):  # a socket will not open
                raise FileRefused(f"not a regular file ({_kind(st.st_mode)})",
                                  file=file.path, evidence=b"") from None
            raise FileDeferred(f"cannot be read ({err.strerror}); tried again next time",
                               file=file.path) from None
        with os.fdopen(fd, "rb") as handle:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise FileRefused(f"not a regular file ({_kind(st.st_mode)})", file=file.path,
                                  evidence=b"")
            if _fingerprint(st) != file.fingerprint:
                raise FileGone("the file changed after it was listed", file=file.path)
            try:
                yield from iter(lambda: handle.read(-1 if whole else 1 << 20), b"")
            except OSError as err:
                raise FileDeferred(f"cannot be read ({err.strerror}); tried again next time",
                                   file=file.path) from None
            if _fingerprint(os.fstat(fd)) != file.fingerprint:
                raise FileGone("the file changed while it was being read", file=file.path)


def _fingerprint(st: os.stat_result) -> str:
    return f"{st.st_size}:{st.st_mtime_ns}"


def _kind(mode: int) -> str:
    for test, kind in ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISDIR, "a folder")):
        if test(mode):
            return kind
    return "not a file"
