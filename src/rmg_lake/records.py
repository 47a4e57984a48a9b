"""File records as columns: what a batch made of each file, as one Parquet file it names.

    records/<sha256>.parquet    one ingest's file records (a log entry of layout 2 names it)

A log entry keeps its header (counts, source, cursor, settings, events) as JSON and its
file records here, write-once and named by their hash, so that reading the log costs
little whatever its size, and what is asked of every record (the index of an ingest, the
current versions) is a query over columns. Entries of layout 1 held their records inline;
the first write to such a lake moves them here (`rmg_lake.upgrade`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from rmg_lake.frames import parquet_bytes
from rmg_lake.log import FileRecord

__all__ = ["RECORD_SCHEMA", "file_records", "record_bytes", "records_frame"]

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
