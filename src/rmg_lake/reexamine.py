"""A quarantine that heals: files an older reader refused, examined again by this one.

When rmg-lake reads files differently (a new version of the contract's models, a new
pilot importer: `READER`), the quarantined files of batches an older reader made may now
be taken in. Each such batch in effect gets a batch of its own, from the same source,
that examines again its quarantined files that no later batch has taken in (see
`rmg_lake.resolved`), from the bytes the lake kept:

    a sync folder's file         its bytes, validated again
    a pilot import's round/file  the import's files (kept as evidence), read again by
                                 this importer with the options of that import

A file taken in now is added (its quarantine resolved); one refused again keeps its
quarantine, under its new reason if that changed. The new batch names the one it
`examines`: this happens once per batch and reader, and a rolled-back examination is not
made again (roll the rollback back to have it again).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from rmg_lake.ingest import READER
from rmg_lake.log import Batch, FileRecord, LogEntry, in_effect
from rmg_lake.pilot import PilotFile, Study
from rmg_lake.resolved import family, resolutions
from rmg_lake.sources import FileGone, Source, SourceFile
from rmg_lake.sources.legacy import PilotFiles

__all__ = ["KeptQuarantine", "reexaminations"]

_OPTIONS = re.compile(r"factory=(\S+) observer=(\S+) team=(\S+) "
                      r"department=([a-z]+|\(from files\))\)$")
# a pilot import's refusals of what is no file to read (links, unreadable files)
_NO_FILE = ("a symbolic link", "cannot be read")


def reexaminations(lake: Path, entries: list[LogEntry]) -> list[tuple[int, Source]]:
    """(batch, the source of its quarantine to examine again) for each batch in effect
    that an older reader made, with quarantined files no later batch has resolved."""
    batches = in_effect(entries)
    examined = {e.examines for e in entries if isinstance(e, Batch)
                and e.examines is not None and (e.reader or 1) >= READER}
    older = [b for b in batches if (b.reader or 1) < READER and b.batch not in examined
             and b.counts.get("quarantined")]
    resolved = resolutions(batches) if older else {}
    found: list[tuple[int, Source]] = []
    for batch in older:
        waiting = [r for r in batch.files if r.outcome == "quarantined" and (
            (done := resolved.get((batch.batch, r.path))) is None
            or done.outcome == "quarantined")]  # (a newer version refused: this one waits)
        if not waiting:
            continue
        if family(batch.source) == batch.source:
            found.append((batch.batch, KeptQuarantine(lake, batch.source, waiting)))
        elif (source := _pilot(lake, batch, batches, waiting)) is not None:
            found.append((batch.batch, source))
    return found


class KeptQuarantine:
    """Quarantined files of a sync folder, listed again from the lake's copies (files
    refused for what they are, such as links or files over the size limit, are not)."""

    readers = 2
    cursor = None
    relisted = False

    def __init__(self, lake: Path, name: str, records: list[FileRecord]) -> None:
        self.lake, self.name = lake, name
        self.records = {r.path: r for r in records if r.field != "(file)"}

    def resume(self, cursor: str | None) -> None:
        pass

    @property
    def gone(self) -> list[str]:
        return []

    def list(self) -> Iterator[SourceFile]:
        for r in self.records.values():
            yield SourceFile(r.path, r.size, r.modified,
                             f"{r.fingerprint} examined again by reader {READER}")

    def read(self, file: SourceFile) -> bytes:
        try:
            return (self.lake / self.records[file.path].stored).read_bytes()
        except OSError:  # `rmg-lake verify` tells of a kept file gone missing
            raise FileGone("the quarantined copy is missing", file=file.path) from None

    def chunks(self, file: SourceFile) -> Iterator[bytes]:
        yield self.read(file)


def _pilot(lake: Path, batch: Batch, batches: list[Batch],
           waiting: list[FileRecord]) -> PilotFiles | None:
    """An import's quarantine, read again: its files and those of the earlier imports of
    the same folder (the operator-ID files its rounds take workers from), with its
    options."""
    options = _OPTIONS.search(batch.source)
    if options is None:
        return None
    factory, observer, team, department = options.groups()
    study = Study(factory, observer, team, None if department.startswith("(") else department)
    files: dict[str, PilotFile] = {}
    for earlier in batches:
        if earlier.batch > batch.batch or family(earlier.source) != family(batch.source):
            continue
        kept = {r.path: r for r in earlier.files if r.stored.startswith("attachments/")}
        if earlier is batch:  # and the files it refused whole (not the rounds under one)
            kept |= {r.path: r for r in earlier.files if r.outcome == "quarantined"
                     and not any(p in kept for p in _above(r.path))
                     and not (r.reason or "").startswith(_NO_FILE)}
        for record in kept.values():
            try:
                files[record.path] = PilotFile(record.path, (lake / record.stored).read_bytes(),
                                               record.modified)
            except OSError:  # `rmg-lake verify` tells of a kept file gone missing
                continue
    if not files:
        return None
    return PilotFiles(family(batch.source).removeprefix("legacy:"), study,
                      kept=[files[p] for p in sorted(files)], name=batch.source,
                      only={r.path for r in waiting})


def _above(path: str) -> Iterator[str]:
    """The paths `path` lies under: `a/b/c` → `a/b`, `a`."""
    while "/" in path:
        path = path.rsplit("/", 1)[0]
        yield path
