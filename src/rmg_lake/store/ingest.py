"""One ingest: read every file the log has not seen, keep it, and say what became of it."""

from __future__ import annotations

from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl

from rmg_lake._internal.progress import Track
from rmg_lake.config import Settings
from rmg_lake.contract import original_name
from rmg_lake.sources import (
    FileDeferred,
    FileGone,
    FileRefused,
    Source,
    SourceFile,
    printable,
)
from rmg_lake.store.events import EventRows, keep_events
from rmg_lake.store.log import Batch, Deferred, LogEntry, arrival, is_newer, retracted
from rmg_lake.store.raw import RawStore, sha256
from rmg_lake.store.reading import Got, Large, Read, is_observation, read_all
from rmg_lake.store.records import RECORD_SCHEMA, FileRecord, record_bytes, records_frame
from rmg_lake.store.versions import ROWS, in_log_order

__all__ = ["BATCH_FILES", "MAX_SIZE", "READER", "Collected", "Index", "collect", "new_batch"]

# How this rmg-lake reads files: contract 1.1's models and the pilot's importer 2 (1: 1.0
# and importer 1). A batch records it; a quarantine an older reader decided is examined
# again (see rmg_lake.store.reexamine).
READER = 2


# what the index keeps of each record: what deciding a new file may ask of it
_INDEXED = ["path", "size", "modified", "fingerprint", "sha256", "outcome", "stored",
            "observation_id", "day", "reason"]


class Index:
    """What the log already holds, as columns: to skip files seen before, and, for the
    files a part of an ingest read, what the lake knows of their bytes and observations
    (`about`). A rolled-back batch's files count as seen (they are not read again unless
    they change) but not as held: arriving again, they are new. Its committed records
    are the log's (`rows`): deriving after a batch need not read them again."""

    def __init__(self) -> None:
        self._parts: list[pl.DataFrame] = []  # records in log order: `batch`, `held`, ...
        self._pending: list[pl.DataFrame] = []  # decided, not committed yet (no batch)
        self._whole: pl.DataFrame | None = None
        # source → path → a file no run has read whole yet (until any version of it lands)
        self.deferred: dict[str, dict[str, Deferred]] = {}

    @classmethod
    def of(cls, entries: list[LogEntry]) -> Index:
        """The index of a log."""
        index, out = cls(), retracted(entries)
        batches = [b for b in entries if isinstance(b, Batch)]
        for batch, frame in zip(batches, Batch.frames(batches, _INDEXED), strict=True):
            pending = index.deferred.setdefault(batch.source, {})
            for path in set(frame["path"]).intersection(pending) if pending else ():
                del pending[path]
            pending.update({d.path: d for d in batch.deferred})
            index._parts.append(_indexed(  # (evidence: a pilot import's files)
                frame, batch.batch, held=batch.batch not in out,
                evidence=batch.source.startswith("legacy:")))
        return index

    def add(self, records: pl.DataFrame, evidence: list[bool]) -> None:
        """Learn the files a part decided (`records_frame`; held: they are about to be
        committed)."""
        self._pending.append(_indexed(records.select(_INDEXED), None, held=True,
                                      evidence=evidence))
        self._whole = None

    def committed(self, batch: int) -> None:
        """The files decided since the last commit are `batch`'s, now in the log."""
        self._parts += [part.with_columns(pl.lit(batch, pl.Int64).alias("batch"))
                        for part in self._pending]
        self._pending, self._whole = [], None

    def rows(self) -> pl.DataFrame:
        """The committed file records, as `versions.log_rows` gives them."""
        return in_log_order([pl.concat(self._parts).select(*ROWS, "batch")]
                            if self._parts else [])

    def _frame(self) -> pl.DataFrame:
        if self._whole is None:
            parts = [*self._parts, *self._pending]
            self._whole = pl.concat(parts) if parts else _indexed(
                pl.DataFrame(schema={c: RECORD_SCHEMA[c] for c in _INDEXED}), None,
                held=True, evidence=False)
            if not self._pending:
                self._parts = [self._whole]
        return self._whole

    def unseen(self, files: list[SourceFile]) -> list[SourceFile]:
        """Those of `files` that no batch has seen (by path and fingerprint)."""
        listed = pl.DataFrame({"path": [printable(f.path) for f in files],
                               "fingerprint": [f.fingerprint for f in files],
                               "n": range(len(files))},
                              schema={"path": pl.String, "fingerprint": pl.String,
                                      "n": pl.Int64})
        new = listed.join(self._frame().select("path", "fingerprint"),
                          on=["path", "fingerprint"], how="anti")
        return [files[n] for n in sorted(new["n"])]

    def about(self, digests: set[str], observations: set[str]) -> Known:
        """What the lake holds of these bytes and observations, to decide new files by."""
        rows = self._frame().filter(
            pl.col("sha256").is_in(list(digests))
            | pl.col("observation_id").is_in(list(observations))).drop("batch")
        known = Known()
        for row in rows.iter_rows(named=True):
            held, evidence = row.pop("held"), row.pop("evidence")
            if held:
                known.note(FileRecord.model_construct(**row), evidence=evidence)
        return known


def _indexed(frame: pl.DataFrame, batch: int | None, *, held: bool,
             evidence: bool | list[bool]) -> pl.DataFrame:
    """`frame` with the columns the index adds."""
    return frame.with_columns(
        pl.lit(batch, pl.Int64).alias("batch"), pl.lit(held).alias("held"),
        pl.Series("evidence", evidence, pl.Boolean) if isinstance(evidence, list)
        else pl.lit(evidence).alias("evidence"))


@dataclass
class Known:
    """What the lake holds of some bytes and observations, in log order; deciding a file
    notes it here, so the next file of the part knows it."""

    events: dict[str, FileRecord] = field(default_factory=dict)  # sha256 → added record
    current: dict[str, FileRecord] = field(default_factory=dict)  # observation_id → record
    attachments: dict[str, FileRecord] = field(default_factory=dict)  # sha256 → record
    # (file name, sha256, time) → record: evidence, whose name and time say what it is (a
    # pilot's operator-ID file is named by its day; its start-of-day form, of its time)
    evidence: dict[tuple[str, str, datetime], FileRecord] = field(default_factory=dict)
    # (file name, sha256, reason) → record: the same bad file again, maybe in another folder
    quarantined: dict[tuple[str, str, str | None], FileRecord] = field(default_factory=dict)

    def note(self, record: FileRecord, *, evidence: bool = False) -> None:
        if record.outcome == "attachment":
            self.attachments.setdefault(record.sha256, record)
            if evidence:
                self.evidence.setdefault(_evidence_key(record.path, record.sha256,
                                                       record.modified), record)
        elif record.outcome == "quarantined":
            self.quarantined.setdefault(_bad_key(record.path, record.sha256, record.reason),
                                        record)
        elif (event := arrival(record)) is not None and event.observation_id is not None \
                and event.sha256 not in self.events:
            self.events[event.sha256] = event
            current = self.current.get(event.observation_id)
            if current is None or is_newer(event, current):
                self.current[event.observation_id] = event


@dataclass(frozen=True, slots=True)
class Collected:
    """What became of some of the new files: one batch's worth."""

    records: tuple[FileRecord, ...]
    deferred: tuple[Deferred, ...]  # not read whole after the retries: tried next time
    vanished: int  # listed, then gone before they could be read: taken when they return
    events: dict[str, str]  # frame → the kept events file of the events added
    last: bool  # the listing is taken whole: the batch may record the source's cursor
    stored: str | None = None  # the kept Parquet file of `records` (None if there are none)


MAX_SIZE = 10 * 2**20  # bytes: a larger file is kept as it is, never held whole or parsed
BATCH_FILES = 50_000  # files per batch: a large first import is committed a part at a time


def collect(
    source: Source, store: RawStore, index: Index, *, track: Track | None = None,
    workers: int = 8, max_size: int = MAX_SIZE, batch_files: int = BATCH_FILES,
) -> Generator[Collected, None, None]:
    """Keep every file of `source` the log has not seen, and those deferred before, and
    the rows of the events they add (see `rmg_lake.store.events`), in parts of `batch_files`
    files, each to be committed as a batch before the next is asked for (an interrupted
    import keeps what it committed). The last part (empty if nothing is new) says `last`.

    Files are read `workers` at a time but kept one by one, oldest first (then by path),
    so that within a batch, as across batches, the version saved last is the current one.
    Files over `max_size` bytes are kept without being held whole: as attachments, or in
    quarantine if they are meant to be observations.
    """
    new = deque(_new_files(source, index))
    count, size = len(new), sum(f.size for f in new)
    reading = read_all(source, store, new, workers=workers, max_size=max_size)
    try:
        read: Iterator[tuple[SourceFile, Got]] = reading
        if track is not None:
            read = iter(track(reading, count, "Reading", size=lambda item: item[0].size,
                              total_size=size))
        part = _Part(store, index, max_size)
        for taken, item in enumerate(read, 1):
            part.take(item)
            if part.files == batch_files and taken < count:
                yield part.collected(last=False)
                part = _Part(store, index, max_size)
        yield part.collected(last=True)  # the reading is done
    finally:  # also when the caller stops early: reads not yet started are dropped
        reading.close()


def _new_files(source: Source, index: Index) -> list[SourceFile]:
    """The files to read: listed and not seen, and those deferred before; oldest first."""
    listing = list(source.list())
    # Deferred files are tried again unless the listing says what became of them: a full
    # listing (a folder, an expired cursor) names every file there is, and a listing of
    # changes names those that changed or went away.
    deferred = index.deferred.get(source.name, {})
    pending = []
    if deferred and not (source.cursor is None or source.relisted):
        said = {printable(f.path) for f in listing} | {printable(p) for p in source.gone}
        pending = [SourceFile(d.path, d.size, d.modified, d.fingerprint)
                   for d in deferred.values() if d.path not in said]
    listed = index.unseen(listing)
    return sorted({(f.path, f.fingerprint): f for f in [*pending, *listed]}.values(),
                  key=lambda f: (f.modified, f.path))


_DECIDE = 2_000  # files read before they are decided: what a part holds is its records


class _Part:
    """The files of one part, decided a couple of thousand at a time as they are read
    (each lot looks up what the index knows of it, its earlier lots included), so that a
    part holds its records and the columns of its events, not every file's rows."""

    def __init__(self, store: RawStore, index: Index, max_size: int) -> None:
        self.store, self.index, self.max_size = store, index, max_size
        self.files = 0
        self.records: list[FileRecord] = []
        self._frames: list[pl.DataFrame] = []  # the records, as columns, a lot at a time
        self.deferred: list[Deferred] = []
        self.vanished = 0
        self.rows = EventRows()
        self._read: list[tuple[SourceFile, Got]] = []

    def take(self, item: tuple[SourceFile, Got]) -> None:
        self.files += 1
        self._read.append(item)
        if len(self._read) == _DECIDE:
            self._decide()

    def collected(self, *, last: bool) -> Collected:
        """What became of the part's files; its records are kept as a Parquet file."""
        self._decide()
        stored = None
        if self.records:
            table = record_bytes(pl.concat(self._frames))
            stored = self.store.put_records(sha256(table), table).stored
        return Collected(tuple(self.records), tuple(self.deferred), self.vanished,
                         keep_events(self.store, self.rows), last, stored)

    def _decide(self) -> None:
        """Decide the files read so far, in order (each noted, so the next knows it);
        the index learns them."""
        lot, self._read = self._read, []
        known = self.index.about(
            {d.digest if isinstance(d, Read | Large) else sha256(d.evidence)
             for _, d in lot if isinstance(d, Read | Large | FileRefused)},
            {d.valid.observation_id for _, d in lot if isinstance(d, Read) and d.valid})
        records: list[FileRecord] = []
        evidence: list[bool] = []
        for file, data in lot:
            if isinstance(data, FileGone):
                self.vanished += 1
            elif isinstance(data, FileDeferred):
                self.deferred.append(Deferred(
                    path=printable(file.path), size=file.size, modified=file.modified,
                    fingerprint=file.fingerprint, reason=data.message))
            else:
                record = (
                    _refused(file, data, self.store, known) if isinstance(data, FileRefused)
                    else _large(file, data, known, self.max_size) if isinstance(data, Large)
                    else _decide(file, data, known))
                if isinstance(data, Read) and record.stored != data.kept.stored:
                    self.store.take_back(data.kept)  # a duplicate kept under another name
                if record.outcome == "added" and isinstance(data, Read) and data.valid:
                    self.rows.extend(data.valid.rows)
                known.note(record, evidence=file.evidence)
                records.append(record)
                evidence.append(file.evidence)
        if records:
            self._frames.append(frame := records_frame(records))
            self.index.add(frame, evidence)
            self.records.extend(records)


def _size(n: int) -> str:
    """`524 bytes`, `3.5 kB`, `10 MB`."""
    for unit, scale in (("MB", 2**20), ("kB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f}".removesuffix(".0") + f" {unit}"
    return f"{n} bytes"


def _common(file: SourceFile, digest: str, size: int) -> dict[str, Any]:
    return {"path": printable(file.path), "size": size, "modified": file.modified,
            "fingerprint": file.fingerprint, "sha256": digest}


def _refused(file: SourceFile, refused: FileRefused, store: RawStore,
             index: Known) -> FileRecord:
    """A link, a pipe, a device: quarantined with what it is (a link: its target)."""
    digest = sha256(refused.evidence)
    kept = store.put_quarantine(file.path, digest, refused.evidence)
    return _quarantined(_common(file, digest, len(refused.evidence)), "(file)",
                        refused.message, kept.stored, index)


def _large(file: SourceFile, large: Large, index: Known, max_size: int) -> FileRecord:
    common = _common(file, large.digest, large.size)
    if not is_observation(file):
        return _attachment(file, common, large.stored, index)
    reason = (f"larger than {_size(max_size)} ({_size(large.size)}): kept, not read as an "
              "observation (max_file_mb in rmg-lake.toml)")
    return _quarantined(common, "(file)", reason, large.stored, index)


def _attachment(file: SourceFile, common: dict[str, Any], stored: str,
                index: Known) -> FileRecord:
    """A file that is no observation: new, or bytes the lake holds already (evidence: under
    the same name and time, which say what it is, such as the day of an operator-ID file).
    Its record keeps what the source says of it, and the observation it documents."""
    digest = common["sha256"]
    known = index.evidence.get(_evidence_key(file.path, digest, file.modified)) \
        if file.evidence else index.attachments.get(digest)
    said = {"reason": file.note, "observation_id": file.attached_to}
    if known is not None:
        return FileRecord(outcome="duplicate", stored=known.stored, duplicate_of=digest,
                          **said, **common)
    return FileRecord(outcome="attachment", stored=stored, **said, **common)


def _quarantined(common: dict[str, Any], field: str | None, reason: str, stored: str,
                 index: Known) -> FileRecord:
    """A bad file: new, or the same bad file seen before under the same name."""
    digest = common["sha256"]
    if (known := index.quarantined.get(_bad_key(common["path"], digest, reason))) is not None:
        return FileRecord(outcome="duplicate", stored=known.stored, duplicate_of=digest,
                          **common)
    return FileRecord(outcome="quarantined", field=field, reason=reason, stored=stored,
                      **common)


def _decide(file: SourceFile, read: Read, index: Known) -> FileRecord:
    """What a kept file is in this batch.

    A duplicate is bytes the lake already holds with the same meaning: a valid observation
    (under any valid name), an attachment, or a bad file seen before under the same file
    name (moved to another folder, touched, or a Dropbox clash copy). Two observers' empty
    uploads are two bad files, not one.
    """
    digest = read.digest
    common = _common(file, digest, read.size)
    if read.valid is None and read.invalid is None:
        return _attachment(file, common, read.kept.stored, index)
    if read.invalid is not None:
        return _quarantined(common, read.invalid.field, read.invalid.message,
                            read.kept.stored, index)
    if (event := index.events.get(digest)) is not None:
        return FileRecord(outcome="duplicate", stored=event.stored,
                          observation_id=event.observation_id, duplicate_of=digest, **common)
    assert read.valid is not None
    valid = read.valid
    current = index.current.get(valid.observation_id)
    record = FileRecord(outcome="added", stored=read.kept.stored, event_id=digest,
                        observation_id=valid.observation_id, day=valid.day,
                        extra_keys=valid.extra_keys or None, **common)
    if current is not None and is_newer(record, current):
        record = record.model_copy(update={"supersedes": current.sha256})
    return record


def _bad_key(path: str, digest: str, reason: str | None) -> tuple[str, str, str | None]:
    return _name(path), digest, reason


def _evidence_key(path: str, digest: str, modified: datetime) -> tuple[str, str, datetime]:
    return _name(path), digest, modified


def _name(path: str) -> str:
    """A file's name, without the suffixes Dropbox adds to clashing uploads."""
    return original_name(path.rsplit("/", 1)[-1])


def new_batch(number: int, source: Source, settings: Settings | None, got: Collected, *,
              examines: tuple[int, ...] | None = None) -> Batch:
    return Batch(batch=number, committed_at=datetime.now(UTC), source=source.name,
                 cursor=source.cursor if got.last else None, settings=settings,
                 counts=Batch.count(got.records, got.deferred), inline=got.records,
                 records=got.stored, deferred=got.deferred, events=got.events, reader=READER,
                 examines=examines)
