"""The lake's tables: each frame's columns and their types, and a frame's Parquet bytes.

The ingest writes the event rows of its batches in these columns, derive the frames
(`rmg_lake.derive.frames` says what each holds); the same rows always make the same bytes.
"""

from __future__ import annotations

import io
from typing import Any

import polars as pl

__all__ = ["FRAMES", "SCHEMAS", "parquet_bytes"]

TS = pl.Datetime("us", "UTC")
KEYS: dict[str, Any] = {
    "observation_id": pl.String, "event_id": pl.String, "factory": pl.String,
    "department": pl.String, "team": pl.String, "observer": pl.String, "day": pl.Date,
    "started_at": TS, "status": pl.String,
}
CORRECTED: dict[str, Any] = {"corrected": pl.Boolean, "corrections": pl.Int64}
SCHEMAS: dict[str, dict[str, Any]] = {
    "observations": {
        "event_id": pl.String, "observation_id": pl.String, "batch": pl.Int64,
        "task": pl.String, "factory": pl.String, "department": pl.String, "team": pl.String,
        "observer": pl.String, "day": pl.Date, "started_at": TS, "ended_at": TS,
        "status": pl.String, "versions": pl.Int64, "source_path": pl.String,
        "synced_at": TS, "supervisor": pl.String, "left_floor_s": pl.List(pl.Int64),
        "app_version": pl.String, "device": pl.String, "notes": pl.String,
        "extra_keys": pl.List(pl.String), **CORRECTED,
    },
    "roster": {**KEYS, "machine": pl.String, "mc_status": pl.String, "worker_id": pl.String,
               **CORRECTED},
    "wip": {
        **KEYS, "machine": pl.String, "mc_status": pl.String, "worker_id": pl.String,
        "style": pl.String, "component": pl.String, "back": pl.Int64, "front": pl.Int64,
        "sleeve": pl.Int64, "collar": pl.Int64, "wip": pl.Float64, **CORRECTED,
    },
    "interactions": {
        **KEYS, "supervisor": pl.String, "seq": pl.Int64, "interlocutor": pl.String,
        "length_s": pl.Int64, "initiator": pl.String, "topic": pl.String, **CORRECTED,
    },
    "completion": {
        "day": pl.Date, "factory": pl.String, "task": pl.String, "department": pl.String,
        "team": pl.String, "expected": pl.Int64, "completed": pl.Int64,
        "attempted": pl.Int64, "status": pl.String,
    },
    "batches": {
        "batch": pl.Int64, "kind": pl.String, "committed_at": TS, "source": pl.String,
        "seen": pl.Int64, "added": pl.Int64, "duplicate": pl.Int64, "quarantined": pl.Int64,
        "attachment": pl.Int64, "deferred": pl.Int64, "rolled_back": pl.Boolean,
        "rolled_back_by": pl.Int64, "target": pl.Int64, "reason": pl.String,
    },
    "quarantine": {
        "batch": pl.Int64, "source_path": pl.String, "sha256": pl.String,
        "field": pl.String, "reason": pl.String, "stored": pl.String,
        "resolved_by": pl.Int64, "resolution": pl.String,
    },
    "corrections": {
        "batch": pl.Int64, "committed_at": TS, "by": pl.String, "sheet": pl.String,
        "row": pl.Int64, "worksheet": pl.String, "flag_id": pl.String,
        "observation_id": pl.String, "field": pl.String,
        "old_value": pl.String, "new_value": pl.String, "reason": pl.String,
        "outcome": pl.String, "detail": pl.String, "current": pl.String,
        "rolled_back": pl.Boolean, "in_effect": pl.Boolean,
    },
    "reviews": {
        "batch": pl.Int64, "committed_at": TS, "by": pl.String, "sheet": pl.String,
        "worksheet": pl.String, "row": pl.Int64, "flag_id": pl.String,
        "resolution": pl.String, "outcome": pl.String, "detail": pl.String,
        "rolled_back": pl.Boolean,
    },
    "history": {
        "batch": pl.Int64, "source": pl.String, "path": pl.String, "sha256": pl.String,
        "outcome": pl.String, "stored": pl.String, "observation_id": pl.String,
        "day": pl.Date, "supersedes": pl.String, "duplicate_of": pl.String,
        "field": pl.String, "reason": pl.String,
    },
}
FRAMES = tuple(SCHEMAS)


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    """`frame` as Parquet, the same bytes for the same rows (every setting explicit)."""
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", compression_level=3, statistics=True,
                        row_group_size=100_000)
    return buffer.getvalue()
