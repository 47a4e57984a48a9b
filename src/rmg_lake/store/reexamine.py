"""A quarantine that heals: files an older reader refused, examined again by this one.

When rmg-lake reads files differently (a new version of the contract's models, a new
pilot importer: `READER`), the quarantined files of batches an older reader made may now
be taken in. The batches in effect of each source that an older reader made get one
batch, from that source, that examines again their quarantined files that no later batch
has taken in (see `rmg_lake.store.resolved`), from the bytes the lake kept:

    a sync folder's file         its bytes, validated again
    a pilot import's round/file  the import's files (kept as evidence), read again by
                                 this importer with the options of that import

A file taken in now is added (its quarantine resolved); one refused again keeps its
quarantine, under its new reason if that changed. The new batch names the batches it
`examines`: this happens once per batch and reader, and a rolled-back examination is not
made again (roll the rollback back to have it again).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from rmg_lake.errors import LakeUnusable
from rmg_lake.sources import FileGone, Source, SourceFile, unprintable
from rmg_lake.sources.legacy import PilotFiles, legacy_path, study_of
from rmg_lake.sources.pilot import PilotFile
from rmg_lake.store.ingest import READER, Index
from rmg_lake.store.log import Batch, LogEntry, in_effect
from rmg_lake.store.records import FileRecord
from rmg_lake.store.resolved import and_above, family, resolutions

__all__ = ["KeptQuarantine", "heal", "kept_file", "reexaminations"]

# a pilot import's refusals of what is no file to read (links, unreadable files)
_NO_FILE = ("a symbolic link", "cannot be read", "not a regular file")


def heal(lake: Path, entries: list[LogEntry], index: Index | None,
         take: Callable[[Source, tuple[int, ...], Index], list[Batch]],
         ) -> tuple[tuple[Batch, ...], tuple[str, ...], Index | None]:
    """Examine again what older readers quarantined: `take(source, batches examined,
    index)` commits each examination (`index`: the log's, made here if None and needed).
    The batches committed, why any examination failed (said, not raised, unless the lake
    is unusable: the ingest goes on), and the index to go on with (without what a failed
    one decided)."""
    healed: list[Batch] = []
    unexamined: list[str] = []
    for examined, again in reexaminations(lake, entries):
        index = index or Index.of(entries)
        try:
            healed += take(again, examined, index)
        except (LakeUnusable, OSError):
            raise
        except Exception as err:  # (a reading that fails: reported by the caller)
            unexamined.append(f"the quarantine of batch {examined[0]}"
                              f"{'…' if len(examined) > 1 else ''} could not be "
                              f"examined again ({type(err).__name__}: {err})")
            index = Index.of(entries)
    return tuple(healed), tuple(unexamined), index


def reexaminations(lake: Path, entries: list[LogEntry],
                   ) -> list[tuple[tuple[int, ...], Source]]:
    """(the batches, the source of their quarantine to examine again) for the batches in
    effect of each source that an older reader made, with quarantined files no later batch
    has taken in."""
    batches = in_effect(entries)
    examined = {number for e in entries if isinstance(e, Batch) and e.examines
                and (e.reader or 1) >= READER for number in e.examines}
    older = [b for b in batches if (b.reader or 1) < READER and b.batch not in examined
             and b.counts.get("quarantined")]
    resolved = resolutions(batches) if older else {}
    by_source: dict[str, list[Batch]] = {}  # (in the order of their first batch)
    for batch in older:
        by_source.setdefault(batch.source, []).append(batch)
    found: list[tuple[tuple[int, ...], Source]] = []
    for name, group in by_source.items():
        waiting = [r for b in group for r in b.files if r.outcome == "quarantined" and (
            (done := resolved.get((b.batch, r.path))) is None
            or done.outcome == "quarantined")]  # (a newer version refused: this one waits)
        numbers = tuple(b.batch for b in group)
        if not waiting:
            continue
        if not name.startswith("legacy:"):
            found.append((numbers, KeptQuarantine(lake, name, waiting)))
        elif (source := _pilot(lake, group, batches, waiting)) is not None:
            found.append((numbers, source))
    return found


class KeptQuarantine:
    """Quarantined files of a sync folder, listed again from the lake's copies, under
    their paths as the source gave them (not the files refused for what they are: links,
    files over the size limit)."""

    readers = 2
    cursor = None
    relisted = False

    def __init__(self, lake: Path, name: str, records: list[FileRecord]) -> None:
        self.lake, self.name = lake, name
        self.records = {(unprintable(r.path), _again(r)): r for r in records
                        if r.field != "(file)"}

    def resume(self, cursor: str | None) -> None:
        pass

    @property
    def gone(self) -> list[str]:
        return []

    def list(self) -> Iterator[SourceFile]:
        for (path, fingerprint), r in self.records.items():
            yield SourceFile(path, r.size, r.modified, fingerprint)

    def read(self, file: SourceFile) -> bytes:
        try:
            return (self.lake / self.records[file.path, file.fingerprint].stored).read_bytes()
        except OSError:  # `rmg-lake verify` tells of a kept file gone missing
            raise FileGone("the quarantined copy is missing", file=file.path) from None

    def chunks(self, file: SourceFile) -> Iterator[bytes]:
        yield self.read(file)


def _again(record: FileRecord) -> str:
    return f"{record.fingerprint} examined again by reader {READER}"


def _pilot(lake: Path, group: list[Batch], batches: list[Batch],
           waiting: list[FileRecord]) -> PilotFiles | None:
    """Imports' quarantine, read again: their files and those of the earlier imports of
    the same folder (the operator-ID files their rounds take workers from), with their
    options."""
    study = study_of(group[0].source)
    if study is None:
        return None
    last, ours = group[-1].batch, {b.batch for b in group}
    files: dict[tuple[str, str, datetime], PilotFile] = {}  # every version
    for earlier in batches:
        if earlier.batch > last or family(earlier.source) != family(group[0].source):
            continue
        kept = {r.path: r for r in earlier.files if r.stored.startswith("attachments/")}
        if earlier.batch in ours:  # and the files it refused whole (not rounds under one)
            kept |= {r.path: r for r in earlier.files if r.outcome == "quarantined"
                     and not any(p in kept for p in and_above(r.path)[1:])
                     and not (r.reason or "").startswith(_NO_FILE)}
        for record in kept.values():
            if (file := kept_file(lake, record)) is not None:
                files[record.path, record.sha256, record.modified] = file
    if not files:
        return None
    return PilotFiles(legacy_path(group[0].source), study, kept=list(files.values()),
                      name=group[0].source, only={r.path for r in waiting})


def kept_file(lake: Path, record: FileRecord, *, data: bool = True) -> PilotFile | None:
    """The pilot file `record` names, as the lake keeps it (without its bytes, unless
    `data`); None if the copy is missing (`rmg-lake verify` tells of it)."""
    try:
        return PilotFile(record.path, (lake / record.stored).read_bytes() if data else b"",
                         record.modified)
    except OSError:
        return None
