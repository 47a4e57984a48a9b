"""The log: one write-once JSON entry per batch, numbered, the single source of truth
(written again only by an upgrade to a new layout: `rmg_lake.store.upgrade`).

    _log/000001.json, _log/000002.json, …

An entry is an ingest (`Batch`: what became of every file it saw), a `Correction` (a
sheet of fixes to observations' values, every row with its outcome) or a `Rollback` of an
earlier entry. A batch exists only once its entry is committed; everything derived is
rebuilt from the entries and the files they name (raw files, events, sheets). Nothing is
ever deleted: a rollback takes a batch's events or corrections out of the frames, and a
rollback of that rollback puts them back.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal, NamedTuple

import polars as pl
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
)

from rmg_lake._internal.files import write_once
from rmg_lake.config import Settings
from rmg_lake.errors import LakeUnusable, passing
from rmg_lake.store.records import OUTCOMES, FileRecord, file_records, records_frame

__all__ = [
    "Batch", "Correction", "CorrectionRow", "Current", "Deferred", "Entry", "Log",
    "LogEntry", "Review", "ReviewOutcome", "Rollback", "RowOutcome", "arrival",
    "corrections_in_effect", "in_effect", "is_newer", "read_entry",
    "retracted", "rolled_back_by", "settings_in_force",
]

class Deferred(BaseModel):
    """A listed file that could not be read whole: nothing of it is kept, and the next
    ingest from the same source tries it again."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    size: int
    modified: AwareDatetime
    fingerprint: str
    reason: str


class Batch(BaseModel):
    """One committed ingest: what it saw, and the study settings if they changed with it.

    What became of each file is in `records`, a Parquet file the entry names (see
    `rmg_lake.store.records`): `files` reads it when asked, `frame()` as columns. An entry of
    layout 1 held them inline (`inline`, `files` in its JSON), as a batch just made does.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    batch: int
    kind: Literal["ingest"] = "ingest"
    committed_at: AwareDatetime
    source: str
    cursor: str | None = None  # where the source's listing ended (a source that has one)
    settings: Settings | None = None  # None: the settings in force stay
    counts: dict[str, int]
    inline: tuple[FileRecord, ...] = Field(default=(), alias="files")
    records: str | None = None  # `records/<sha256>.parquet`: its file records (layout 2)
    deferred: tuple[Deferred, ...] = ()
    # frame → `events/v<format>/<frame>/<sha256>.parquet`: the rows of the events it added
    # (see rmg_lake.store.events; an entry written before the event store names none)
    events: dict[str, str] = Field(default_factory=dict)
    reader: int | None = None  # how its files were read (rmg_lake.store.ingest.READER); None: 1
    examines: tuple[int, ...] | None = None  # batches whose quarantine it examined again

    _lake: Path | None = PrivateAttr(default=None)  # where `records` is (set by the Log)

    @property
    def files(self) -> tuple[FileRecord, ...]:
        """What became of each file it saw, in order."""
        if self.inline or self.records is None:
            return self.inline
        return file_records(self.frame())

    def frame(self, columns: list[str] | None = None) -> pl.DataFrame:
        """Its file records as columns (`rmg_lake.store.records.RECORD_SCHEMA`), in order."""
        if self.inline or self.records is None:
            frame = records_frame(self.inline)
            return frame.select(columns) if columns is not None else frame
        if self._lake is None:
            raise LakeUnusable(f"batch {self.batch}'s file records are not at hand",
                               file=self.records)
        try:
            return pl.read_parquet(self._lake / self.records, columns=columns)
        except (OSError, pl.exceptions.PolarsError) as err:
            if passing(err):
                raise
            raise LakeUnusable(f"batch {self.batch}'s file records cannot be read",
                               file=str(self._lake / self.records),
                               hint="restore the lake from a backup") from None

    @staticmethod
    def frames(batches: list[Batch], columns: list[str] | None = None) -> list[pl.DataFrame]:
        """Each batch's `frame(columns)`, the files read side by side."""
        files = {id(b): b._lake / b.records for b in batches
                 if not b.inline and b.records and b._lake is not None}
        try:
            read = pl.collect_all([pl.scan_parquet(file).select(columns or pl.all())
                                   for file in files.values()])
        except (OSError, pl.exceptions.PolarsError):
            read = []  # (each batch reads its own, and says which cannot be read)
        found = dict(zip(files, read, strict=False))
        return [found[id(b)] if id(b) in found else b.frame(columns) for b in batches]

    def __eq__(self, other: object) -> bool:  # the same entry, wherever it is read from
        return isinstance(other, Batch) and self.__dict__ == other.__dict__

    __hash__ = BaseModel.__hash__

    def at(self, lake: Path) -> Batch:
        """This entry, reading its records from `lake`."""
        self._lake = lake
        return self

    def named(self) -> dict[str, str]:
        """Every file of the lake it names (path → sha256): the files kept, its records and
        its events."""
        stored = self.frame(["stored", "sha256"])
        return {**dict(zip(stored["stored"], stored["sha256"], strict=True)),
                **{path: PurePosixPath(path).stem
                   for path in [*self.events.values(), *filter(None, [self.records])]}}

    def as_json(self) -> bytes:
        """The entry's bytes in the log: its records inline only if it names no file."""
        return self.model_dump_json(exclude_none=True, indent=1, by_alias=True,
                                    exclude={"inline"} if self.records else None).encode()

    @staticmethod
    def count(files: tuple[FileRecord, ...], deferred: tuple[Deferred, ...] = (),
              ) -> dict[str, int]:
        """seen = added + duplicate + quarantined + attachment + deferred."""
        return Batch.tally((f.outcome for f in files), len(deferred))

    @staticmethod
    def tally(outcomes: Iterable[str], deferred: int = 0) -> dict[str, int]:
        """`count`, of the files' outcomes."""
        tally = Counter(outcomes)
        return {"seen": tally.total() + deferred,
                **{outcome: tally[outcome] for outcome in OUTCOMES}, "deferred": deferred}


class Rollback(BaseModel):
    """Takes entry `target` (an ingest, a correction, or a rollback: which restores what it
    took) out of effect. Its raw files stay; the frames are derived as if it had not happened."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch: int
    kind: Literal["rollback"] = "rollback"
    committed_at: AwareDatetime
    target: int
    reason: str


RowOutcome = Literal["applied", "already", "refused"]  # already: the value was new_value


class CorrectionRow(BaseModel):
    """One row of a corrections sheet, and what became of it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    row: int  # its row in the sheet (the header is row 1)
    worksheet: str | None = None  # a checks workbook's: the sheet it is on (layout 3)
    flag_id: str | None = None  # a checks workbook's: the flag it settles (layout 3)
    observation_id: str
    field: str  # a path into the payload: `team`, `machines.KN3.worker_id`, … ("" to DROP)
    old_value: str  # as text; "" is null
    new_value: str  # as text; "" is null, DROP withdraws the observation
    reason: str
    outcome: RowOutcome
    detail: str | None = None  # refused: why (never a value: it may be a person's code)
    current: str | None = None  # refused for a stale old_value: the value it found


ReviewOutcome = Literal["reviewed", "already", "refused"]  # already: settled before


class Review(BaseModel):
    """A checks workbook's row with a resolution and no change: its flag was looked at and
    the data is right as it is (layout 3)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    worksheet: str
    row: int
    flag_id: str
    resolution: str
    outcome: ReviewOutcome
    detail: str | None = None  # refused: why


class Correction(BaseModel):
    """One applied corrections sheet (or checks workbook): who, which sheet (kept as
    evidence), every row, and the flags it reviewed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    batch: int
    kind: Literal["correction"] = "correction"
    committed_at: AwareDatetime
    by: str
    sheet: str  # its file name, as given
    sha256: str
    stored: str  # where the sheet's bytes are kept, relative to the lake
    partial: bool  # applied with some rows refused (--partial)
    rows: tuple[CorrectionRow, ...]
    reviews: tuple[Review, ...] = ()

    def named(self) -> dict[str, str]:
        """The file of the lake it names: the sheet."""
        return {self.stored: self.sha256}

    @property
    def counts(self) -> dict[str, int]:
        tally = Counter(row.outcome for row in self.rows)
        reviewed = Counter(review.outcome for review in self.reviews)
        return {"rows": len(self.rows), "applied": tally["applied"],
                "already": tally["already"], "refused": tally["refused"],
                **({"reviewed": reviewed["reviewed"], "reviews_refused": reviewed["refused"]}
                   if self.reviews else {})}


LogEntry = Batch | Correction | Rollback
Entry = Annotated[LogEntry, Field(discriminator="kind")]
_entry: TypeAdapter[Batch | Correction | Rollback] = TypeAdapter(Entry)


def read_entry(data: bytes, lake: Path) -> LogEntry:
    """One log entry of `lake` from its file's bytes (raises pydantic's ValidationError)."""
    entry = _entry.validate_json(data)
    return entry.at(lake) if isinstance(entry, Batch) else entry


def rolled_back_by(entries: list[LogEntry]) -> dict[int, int]:
    """Each entry a rollback in effect has taken out of effect → that rollback (the newest,
    should several).

    A rollback's own standing depends only on later entries, so one pass from the newest
    entry back decides every one.
    """
    by: dict[int, int] = {}
    for entry in reversed(entries):
        if isinstance(entry, Rollback) and entry.batch not in by:
            by.setdefault(entry.target, entry.batch)
    return by


def retracted(entries: list[LogEntry]) -> set[int]:
    """The entries a rollback in effect has taken out of effect."""
    return set(rolled_back_by(entries))


def in_effect(entries: list[LogEntry]) -> list[Batch]:
    """The ingests whose files count: every batch no rollback in effect has taken out."""
    out = retracted(entries)
    return [e for e in entries if isinstance(e, Batch) and e.batch not in out]


def corrections_in_effect(entries: list[LogEntry]) -> list[Correction]:
    """The corrections no rollback in effect has taken out, in log order."""
    out = retracted(entries)
    return [e for e in entries if isinstance(e, Correction) and e.batch not in out]


class Log:
    def __init__(self, lake: Path) -> None:
        self.lake = lake
        self.dir = lake / "_log"

    def paths(self) -> list[Path]:
        """The entries' files, in name order."""
        if not self.dir.is_dir():
            return []
        return sorted(p for p in self.dir.glob("*.json") if not p.name.startswith("."))

    def entries(self) -> list[LogEntry]:
        """Every committed entry, in order; refuses a log with gaps or unreadable entries."""
        batches = []
        for number, path in enumerate(self.paths(), start=1):
            if path.name != f"{number:06d}.json":
                raise LakeUnusable(f"the log has no entry {number:06d}.json before {path.name}",
                                   file=str(path),
                                   hint="restore it from a backup; _log/ is never edited by hand")
            try:
                batches.append(read_entry(path.read_bytes(), self.lake))
            except ValidationError as exc:
                raise LakeUnusable(f"unreadable log entry ({exc.error_count()} problems)",
                                   file=str(path), hint="the log is never edited by hand") from None
        return batches

    def count(self) -> int:
        """How many batches are committed, without reading them."""
        return len(self.paths())

    def commit(self, batch: LogEntry) -> Path:
        """Write the entry once and durably; this is the moment the batch exists."""
        path = self.dir / f"{batch.batch:06d}.json"
        data = batch.as_json() if isinstance(batch, Batch) else batch.model_dump_json(
            exclude_none=True, indent=1).encode()
        if not write_once(path, data, durable=True):
            raise LakeUnusable(f"batch {batch.batch} is already in the log", file=str(path),
                               hint="another rmg-lake run may be writing this lake")
        return path


class Current(NamedTuple):
    batch: int
    record: FileRecord  # the observation's current event
    versions: int  # how many different events the observation has had
    first_saved: datetime  # the earliest file time of its versions (each counted once)


def is_newer(record: FileRecord, than: FileRecord) -> bool:
    """Whether `record` replaces `than`: the version saved later wins, whenever it arrives;
    on equal times the later arrival wins (callers pass arrivals in log order)."""
    return record.modified >= than.modified


def arrival(record: FileRecord) -> FileRecord | None:
    """The observation event a file brought, if any: an added one, or a duplicate of one.

    A duplicate stands for its event when the batch that added it is rolled back: the
    file arrived, and rolling back another batch must not take it away. (Its day is that
    of the raw file it repeats.)
    """
    if record.observation_id is None:
        return None
    if record.outcome == "added":
        return record
    if record.outcome == "duplicate" and record.stored.startswith("raw/date="):
        return record.model_copy(update={"day": date.fromisoformat(record.stored[9:19])})
    return None


def settings_in_force(batches: list[Batch]) -> Settings:
    """The study settings the latest batch that set them recorded (defaults before any).

    Pass the batches `in_effect`: a rolled-back batch's settings are not in force."""
    return next((b.settings for b in reversed(batches) if b.settings is not None), Settings())
