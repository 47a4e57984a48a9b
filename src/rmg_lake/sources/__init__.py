"""Where files come from: anything that lists files with a stable identity and reads their bytes.

A source lists `SourceFile`s; `path` is the file's identity within the source and
`fingerprint` changes whenever its content may have changed (size and mtime for a local
folder, Dropbox's content hash for the API). Files already logged with the same path and
fingerprint are not read again, which keeps every ingest proportional to what is new.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from rmg_lake.errors import SourceError
from rmg_lake.sources.local import LocalFolder

__all__ = ["LocalFolder", "Source", "SourceFile", "open_source"]


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: str  # POSIX path relative to the sync root
    size: int
    modified: datetime  # UTC-aware; orders versions of a file within one batch
    fingerprint: str


class Source(Protocol):
    @property
    def name(self) -> str:
        """How the log names this source, e.g. `local:/home/r/Dropbox/RMG`."""
        ...

    def list(self) -> Iterator[SourceFile]: ...

    def read(self, file: SourceFile) -> bytes: ...


def open_source(spec: str) -> Source:
    """The source a config value or `--source` names (today: a local folder)."""
    if spec.startswith("dropbox:"):
        raise SourceError("reading from the Dropbox API is not available yet", file=spec,
                          hint="point `source` at the folder the Dropbox desktop client syncs")
    return LocalFolder(spec)
