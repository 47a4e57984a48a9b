"""What every source gives the lake: a listing of files and their bytes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from rmg_lake.errors import SourceError

__all__ = ["FileGone", "Source", "SourceFile", "printable", "utf8"]


class FileGone(SourceError):
    """A listed file was gone by the time it was read (a live sync folder); the next
    ingest takes it if it comes back."""


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
    """`path` as UTF-8 text, one to one: bytes a file system allowed but UTF-8 does not
    become `\\xNN`, and a backslash of the name itself is doubled."""
    escaped = path.replace("\\", "\\\\")
    return escaped.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def utf8(name: str) -> bool:
    """Whether a name the file system gave is UTF-8 text."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
