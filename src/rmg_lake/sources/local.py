"""A local folder: the one the Dropbox desktop client keeps in sync, or any folder of files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rmg_lake.errors import SourceError

if TYPE_CHECKING:
    from rmg_lake.sources import SourceFile

__all__ = ["LocalFolder"]


class LocalFolder:
    """Walks the folder recursively; dot-files and dot-folders (`.dropbox.cache`) are
    the sync client's own and are not listed. Symbolic links are never followed."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().absolute()
        if not self.root.is_dir():
            raise SourceError("no such folder", file=str(root),
                              hint="check `source` in rmg-lake.toml or pass --source DIR")

    @property
    def name(self) -> str:
        return f"local:{self.root}"

    def list(self) -> Iterator[SourceFile]:
        from rmg_lake.sources import SourceFile

        def fail(err: OSError) -> None:
            raise SourceError(f"cannot list the folder ({err.strerror})",
                              file=err.filename or str(self.root))

        for folder, dirs, files in os.walk(self.root, onerror=fail):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if name.startswith("."):
                    continue
                full = Path(folder, name)
                st = full.lstat()
                if not full.is_file() or full.is_symlink():
                    continue
                yield SourceFile(
                    path=full.relative_to(self.root).as_posix(),
                    size=st.st_size,
                    modified=datetime.fromtimestamp(st.st_mtime_ns / 1e9, UTC),
                    fingerprint=f"{st.st_size}:{st.st_mtime_ns}",
                )

    def read(self, file: SourceFile) -> bytes:
        try:
            return (self.root / file.path).read_bytes()
        except OSError as err:
            raise SourceError(f"cannot read the file ({err.strerror})", file=file.path) from err
