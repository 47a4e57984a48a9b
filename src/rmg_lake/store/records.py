"""File records as columns: what a batch made of each file, as one Parquet file it names.

    records/<sha256>.parquet    one ingest's file records (a log entry of layout 2 names it)

A log entry keeps its header (counts, source, cursor, settings, events) as JSON and its
file records here, write-once and named by their hash, so that reading the log costs
little whatever its size, and what is asked of every record (the index of an ingest, the
current versions) is a query over columns. Entries of layout 1 held their records inline;
the first write to such a lake moves them here (`rmg_lake.store.upgrade`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, Literal

import polars as pl
from pydantic import AwareDatetime, BaseModel, ConfigDict

from rmg_lake.store.tables import parquet_bytes

__all__ = ["OUTCOMES", "RECORD_SCHEMA", "FileRecord", "Outcome", "file_records",
           "record_bytes", "records_frame"]

Outcome = Literal["added", "duplicate", "quarantined", "attachment"]
OUTCOMES: tuple[Outcome, ...] = ("added", "duplicate", "quarantined", "attachment")


class FileRecord(BaseModel):
    """What became of one file a batch saw."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str  # in the source
    size: int
    modified: AwareDatetime
    fingerprint: str
    sha256: str
    outcome: Outcome
    stored: str  # where the bytes are kept, relative to the lake
    event_id: str | None = None  # added: the new event's id (its sha256: events are content)
    # added, and a duplicate of an observation; evidence: the observation it documents
    observation_id: str | None = None
    day: date | None = None  # added: factory-local day of the observation
    supersedes: str | None = None  # added: the event of the same observation it replaces
    duplicate_of: str | None = None  # duplicate: sha256 of the stored file it repeats
    field: str | None = None  # quarantined: where the problem is
    reason: str | None = None  # quarantined: what it is; evidence: what the file is
    extra_keys: tuple[str, ...] | None = None  # added: keys the contract lacks (kept in raw)


RECORD_SCHEMA: dict[str, Any] = {
    "path": pl.String, "size": pl.Int64, "modified": pl.Datetime("us", "UTC"),
    "fingerprint": pl.String, "sha256": pl.String, "outcome": pl.String, "stored": pl.String,
    "event_id": pl.String, "observation_id": pl.String, "day": pl.Date,
    "supersedes": pl.String, "duplicate_of": pl.String, "field": pl.String,
    "reason": pl.String, "extra_keys": pl.List(pl.String),
}
_FIELDS = tuple(RECORD_SCHEMA)


def records_frame(records: Sequence[FileRecord]) -> pl.DataFrame:
    """`records` as columns, in order."""
    columns = {name: [getattr(r, name) for r in records] for name in _FIELDS}
    columns["extra_keys"] = [list(keys) if keys is not None else None
                             for keys in columns["extra_keys"]]
    return pl.DataFrame(columns, schema=RECORD_SCHEMA)


def file_records(frame: pl.DataFrame) -> tuple[FileRecord, ...]:
    """The records of `frame` (of RECORD_SCHEMA's columns) as FileRecords, in order."""
    out = []
    for row in frame.select(_FIELDS).iter_rows(named=True):
        if row["extra_keys"] is not None:
            row["extra_keys"] = tuple(row["extra_keys"])
        out.append(FileRecord.model_construct(**row))
    return tuple(out)


def record_bytes(frame: pl.DataFrame) -> bytes:
    """The Parquet file of records (a `records_frame`): the same bytes for the same
    records."""
    return parquet_bytes(frame)
