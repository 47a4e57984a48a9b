"""The current version of each observation, as a query over the log's file records.

An observation's events arrive as files: added, or a duplicate of an event the lake keeps
(which stands for it when the batch that added it is rolled back; see `log.arrival`).
Each event counts once, from its first arrival. The current event is the one saved last
(the latest file time), whenever it arrived; on equal times the later arrival (as
`log.is_newer` says), computed over the columns of a whole log at once.
"""

from __future__ import annotations

from collections.abc import Collection

import polars as pl

from rmg_lake.store.log import Batch, Current, LogEntry, in_effect
from rmg_lake.store.records import RECORD_SCHEMA, FileRecord

__all__ = ["ROWS", "arrivals", "as_currents", "current_of", "currents", "in_log_order",
           "log_rows"]

ROWS = ["path", "size", "modified", "fingerprint", "sha256", "outcome", "stored",
        "observation_id", "day"]


def log_rows(entries: list[LogEntry], columns: list[str] = ROWS) -> pl.DataFrame:
    """The file records of every ingest of `entries`, with its `batch` and their `order`
    in the log."""
    batches = [b for b in entries if isinstance(b, Batch) and (b.inline or b.records)]
    return in_log_order([frame.with_columns(pl.lit(b.batch, pl.Int64).alias("batch"))
                         for b, frame in zip(batches, Batch.frames(batches, columns),
                                             strict=True)], columns)


def in_log_order(frames: list[pl.DataFrame], columns: list[str] = ROWS) -> pl.DataFrame:
    """`frames` (of `columns` and `batch`), in log order, as one, numbered (`order`)."""
    if not frames:
        return pl.DataFrame(schema={**{c: RECORD_SCHEMA[c] for c in columns},
                                    "batch": pl.Int64, "order": pl.Int64})
    return pl.concat(frames).with_row_index("order").with_columns(pl.col("order").cast(
        pl.Int64))


def arrivals(rows: pl.DataFrame, batches: Collection[int]) -> pl.DataFrame:
    """The first arrival of each event in `rows` (of `log_rows`) of `batches` (those in
    effect): an added file, or a duplicate of a kept observation (on its raw file's day)."""
    raw = pl.col("stored").str.starts_with("raw/date=")
    return rows.filter(
        pl.col("batch").is_in(list(batches)), pl.col("observation_id").is_not_null(),
        (pl.col("outcome") == "added") | ((pl.col("outcome") == "duplicate") & raw),
    ).with_columns(
        pl.when(pl.col("outcome") == "duplicate")
        .then(pl.col("stored").str.slice(9, 10).str.to_date("%Y-%m-%d"))
        .otherwise(pl.col("day")).alias("day"),
    ).unique(["observation_id", "sha256"], keep="first", maintain_order=True)


def currents(events: pl.DataFrame) -> pl.DataFrame:
    """Each observation's current event among `events` (of `arrivals`), with how many
    events it has had (`versions`) and the earliest file time among them (`first_saved`);
    one row per observation_id, in no particular order."""
    return events.group_by("observation_id").agg(
        pl.all().exclude("observation_id").sort_by("modified", "order").last(),
        pl.len().cast(pl.Int64).alias("versions"),
        pl.col("modified").min().alias("first_saved"),
    )


def as_currents(frame: pl.DataFrame) -> dict[str, Current]:
    """The rows of `frame` (of `currents`) as observation_id → Current."""
    out = {}
    for row in frame.iter_rows(named=True):
        record = FileRecord.model_construct(
            path=row["path"], size=row["size"], modified=row["modified"],
            fingerprint=row["fingerprint"], sha256=row["sha256"], outcome=row["outcome"],
            stored=row["stored"], observation_id=row["observation_id"], day=row["day"])
        out[row["observation_id"]] = Current(row["batch"], record, row["versions"],
                                             row["first_saved"])
    return out


def current_of(entries: list[LogEntry], ids: Collection[str]) -> dict[str, Current]:
    """observation_id → its current event after `entries`, of the observations `ids`."""
    rows = log_rows(entries).filter(pl.col("observation_id").is_in(list(ids)))
    return as_currents(currents(arrivals(rows, {b.batch for b in in_effect(entries)})))
