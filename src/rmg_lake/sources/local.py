"""A local folder: the one the Dropbox desktop client keeps in sync, or any folder of files."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from rmg_lake.errors import SourceError
from rmg_lake.sources.base import FileGone, SourceFile

__all__ = ["LocalFolder"]


def _identity(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino


class LocalFolder:
    """Walks the folder recursively, in sorted order.

    Dot-files and dot-folders (`.dropbox.cache`, `.DS_Store`) are the sync client's own and
    are not listed; neither are symbolic links, which are never followed, nor `exclude`d
    folders (a lake kept inside the sync folder, however its path is spelled).
    """

    def __init__(self, root: str | Path, *, exclude: Sequence[Path] = ()) -> None:
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise SourceError("no such folder", file=str(root),
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
            dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                             and not self._excluded(Path(folder, d)))
            for name in sorted(files):
                full = Path(folder, name)
                if name.startswith(".") or full.is_symlink():
                    continue
                try:
                    st = full.stat()
                except FileNotFoundError:
                    continue  # gone since the folder was listed: not there to take
                except OSError as err:
                    raise SourceError(f"cannot look at the file ({err.strerror})",
                                      file=str(full)) from None
                yield SourceFile(
                    path=full.relative_to(self.root).as_posix(),
                    size=st.st_size,
                    modified=datetime.fromtimestamp(st.st_mtime_ns / 1e9, UTC),
                    fingerprint=f"{st.st_size}:{st.st_mtime_ns}",
                )

    def _excluded(self, folder: Path) -> bool:
        if folder in self.exclude_paths:
            return True
        try:
            return _identity(folder) in self.exclude
        except OSError:
            return False

    def read(self, file: SourceFile) -> bytes:
        try:
            return (self.root / file.path).read_bytes()
        except FileNotFoundError:
            raise FileGone("the file went away while it was being read",
                           file=file.path) from None
        except OSError as err:
            raise SourceError(f"cannot read the file ({err.strerror})", file=file.path) from err
