"""What every source gives the lake: a listing of files and their bytes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from rmg_lake.errors import SourceError

__all__ = [
    "OUR_FOLDERS", "FileDeferred", "FileGone", "FileRefused", "Source", "SourceFile", "ours",
    "printable", "unprintable", "utf8",
]

# The folders at the top of a sync folder that rmg-lake itself writes (`backup --to` the
# study's folder, the reports `ingest --report` delivers), in any case: never read as the
# study's files.
OUR_FOLDERS = frozenset({"backups", "reports"})


class FileDeferred(SourceError):
    """A file that could not be fetched whole after the retries; the next run tries again."""


class FileGone(SourceError):
    """A listed file was gone by the time it was read (a live sync folder); the next
    ingest takes it if it comes back."""


class FileRefused(SourceError):
    """A listed entry that is no file to read: a symbolic link (never followed), a named
    pipe, a device, a pilot file's round that the contract has no place for. It is
    quarantined with this reason; `evidence` is what is kept of it (a link's target)."""

    def __init__(self, message: str, *, file: str, evidence: bytes,
                 hint: str = "copy the file itself into the folder") -> None:
        super().__init__(message, file=file, hint=hint)
        self.evidence = evidence


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: str  # POSIX path relative to the sync root, as the source names it
    size: int
    modified: datetime  # UTC-aware: when this version was saved; orders versions
    fingerprint: str  # changes whenever the content may have changed
    evidence: bool = False  # kept as it is, never read as an observation (a pilot file)
    note: str | None = None  # evidence: what it is (kept with its record)
    attached_to: str | None = None  # evidence: the observation it documents (a photo)


class Source(Protocol):
    # files best read at once: a local disk gains nothing beyond the cores (more threads
    # only fight over Python's lock), downloads wait on the network
    readers: int

    @property
    def name(self) -> str:
        """How the log names this source, e.g. `local:/home/r/Dropbox/RMG`."""
        ...

    @property
    def cursor(self) -> str | None:
        """Where the last listing ended, for a source that lists changes (else None)."""
        ...

    def resume(self, cursor: str | None) -> None:
        """List only what changed since `cursor`, recorded by the last committed batch."""
        ...

    @property
    def gone(self) -> list[str]:
        """Files the last listing saw deleted or moved away (reported, never acted on)."""
        ...

    @property
    def relisted(self) -> bool:
        """Whether the stored cursor had expired, so the whole folder was listed again."""
        ...

    def list(self) -> Iterator[SourceFile]: ...

    def read(self, file: SourceFile) -> bytes:
        """The file's bytes; FileGone if it went away, FileDeferred to try next time,
        FileRefused if it is no file to read."""
        ...

    def chunks(self, file: SourceFile) -> Iterator[bytes]:
        """The file's bytes a piece at a time, for files too large to hold whole (the same
        errors as `read`)."""
        ...


def printable(path: str) -> str:
    """`path` as UTF-8 text, one to one: bytes a file system allowed but UTF-8 does not
    become `\\xNN`, and a backslash of the name itself is doubled."""
    escaped = path.replace("\\", "\\\\")
    return escaped.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def unprintable(shown: str) -> str:
    """The path `printable` made `shown` from (its bytes that are not UTF-8, as the file
    system gives them: surrogate escapes)."""
    return _ESCAPED.sub(lambda m: "\\" if m[1] == "\\" else chr(0xDC00 + int(m[1][1:], 16)),
                        shown)


_ESCAPED = re.compile(r"\\(\\|x[0-9a-f]{2})")


def utf8(name: str) -> bool:
    """Whether a name the file system gave is UTF-8 text."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def ours(path: str) -> bool:
    """Whether a path relative to the sync root lies in one of `OUR_FOLDERS` (in any case:
    Dropbox's names are)."""
    top, _, rest = path.partition("/")
    return bool(rest) and top.casefold() in OUR_FOLDERS
