"""What every source gives the lake: a listing of files and their bytes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

__all__ = ["Source", "SourceFile", "printable"]


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: str  # POSIX path relative to the sync root, as the source names it
    size: int
    modified: datetime  # UTC-aware: when this version was saved; orders versions
    fingerprint: str  # changes whenever the content may have changed


class Source(Protocol):
    @property
    def name(self) -> str:
        """How the log names this source, e.g. `local:/home/r/Dropbox/RMG`."""
        ...

    def list(self) -> Iterator[SourceFile]: ...

    def read(self, file: SourceFile) -> bytes: ...


def printable(path: str) -> str:
    """`path` as UTF-8 text: bytes a file system allowed but UTF-8 does not become `\\xNN`."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
