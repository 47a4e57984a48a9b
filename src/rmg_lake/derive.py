"""Derived frames: rebuilt from the log and the raw store alone, byte for byte the same.

    frames/observations.parquet   one row per current observation
    frames/roster.parquet         one row per machine of each roster
    frames/wip.parquet            one row per machine of each wip round (both departments)
    frames/interactions.parquet   one row per interaction
    frames/teams/<task>_<department>_<team>.parquet   the same rows, one frame per team
    frames/completion.parquet     day × factory × task × department × team against the protocol
    frames/batches.parquet, frames/quarantine.parquet   the log, as tables
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import ValidationError

from rmg_lake.config import Settings
from rmg_lake.contract.models import (
    InteractionsObservation,
    KnittingWipObservation,
    LinkingWipObservation,
    Observation,
    RosterObservation,
    observation_adapter,
)
from rmg_lake.errors import LakeUnusable
from rmg_lake.files import make_private_dir
from rmg_lake.log import Batch, Current, FileRecord, current_versions, settings_in_force
from rmg_lake.progress import Track

__all__ = ["FRAMES", "build_frames", "team_frame_name", "write_frames"]

TS = pl.Datetime("us", "UTC")
KEYS: dict[str, Any] = {
    "observation_id": pl.String, "event_id": pl.String, "factory": pl.String,
    "department": pl.String, "team": pl.String, "observer": pl.String, "day": pl.Date,
    "started_at": TS, "status": pl.String,
}
SCHEMAS: dict[str, dict[str, Any]] = {
    "observations": {
        "event_id": pl.String, "observation_id": pl.String, "batch": pl.Int64,
        "task": pl.String, "factory": pl.String, "department": pl.String, "team": pl.String,
        "observer": pl.String, "day": pl.Date, "started_at": TS, "ended_at": TS,
        "status": pl.String, "versions": pl.Int64, "source_path": pl.String,
        "supervisor": pl.String, "left_floor_s": pl.List(pl.Int64), "app_version": pl.String,
        "device": pl.String, "notes": pl.String, "extra_keys": pl.List(pl.String),
    },
    "roster": {**KEYS, "machine": pl.String, "mc_status": pl.String, "worker_id": pl.String},
    "wip": {
        **KEYS, "machine": pl.String, "mc_status": pl.String, "worker_id": pl.String,
        "style": pl.String, "component": pl.String, "back": pl.Int64, "front": pl.Int64,
        "sleeve": pl.Int64, "collar": pl.Int64, "wip": pl.Float64,
    },
    "interactions": {
        **KEYS, "supervisor": pl.String, "seq": pl.Int64, "interlocutor": pl.String,
        "length_s": pl.Int64, "initiator": pl.String, "topic": pl.String,
    },
    "completion": {
        "day": pl.Date, "factory": pl.String, "task": pl.String, "department": pl.String,
        "team": pl.String, "expected": pl.Int64, "completed": pl.Int64,
        "attempted": pl.Int64, "status": pl.String,
    },
    "batches": {
        "batch": pl.Int64, "committed_at": TS, "source": pl.String, "seen": pl.Int64,
        "added": pl.Int64, "duplicate": pl.Int64, "quarantined": pl.Int64,
        "attachment": pl.Int64, "deferred": pl.Int64,
    },
    "quarantine": {
        "batch": pl.Int64, "source_path": pl.String, "sha256": pl.String,
        "field": pl.String, "reason": pl.String, "stored": pl.String,
    },
}
FRAMES = tuple(SCHEMAS)
# Columns a team frame leaves out because its department has none of them.
_NOT_IN = {"knitting": ("wip",), "linking": ("component", "back", "front", "sleeve", "collar")}
_ROW_ORDER = ("factory", "department", "team", "started_at", "observation_id")


def team_frame_name(task: str, department: str, team: str) -> str:
    """`wip_linking_same_floor`: the frame's file stem and its DuckDB view name."""
    return f"{task}_{department}_{team}".replace("-", "_")


def build_frames(
    lake: Path, batches: list[Batch], track: Track | None = None,
) -> dict[str, pl.DataFrame]:
    """Every derived frame, from the committed batches and the raw files they name alone."""
    rows: dict[str, list[dict[str, Any]]] = {"observations": [], "roster": [], "wip": [],
                                             "interactions": []}
    events = current_versions(batches)
    items: Iterable[tuple[str, Current]] = sorted(events.items())
    if track is not None:
        items = track(items, len(events), "Deriving frames")
    for _, (batch, record, versions) in items:
        observation = _read_event(lake, record)
        rows["observations"].append(_observation_row(observation, record, batch, versions))
        for name, row in _detail_rows(observation, record):
            rows[name].append(row)
    machine_no = pl.col("machine").str.slice(2).cast(pl.Int64)
    then_by = {"roster": [machine_no], "wip": [machine_no], "interactions": [pl.col("seq")]}
    frames = {
        name: pl.DataFrame(data, schema=SCHEMAS[name], orient="row")
        .sort([*_ROW_ORDER, *then_by.get(name, [])])
        for name, data in rows.items()
    }
    settings = settings_in_force(batches)
    frames["completion"] = completion(frames["observations"], settings)
    frames["batches"] = pl.DataFrame(
        [{"batch": b.batch, "committed_at": b.committed_at, "source": b.source, **b.counts}
         for b in batches], schema=SCHEMAS["batches"], orient="row")
    frames["quarantine"] = pl.DataFrame(
        [{"batch": b.batch, "source_path": f.path, "sha256": f.sha256, "field": f.field,
          "reason": f.reason, "stored": f.stored}
         for b in batches for f in b.files if f.outcome == "quarantined"],
        schema=SCHEMAS["quarantine"], orient="row")
    teams = set(frames["observations"].select("department", "team").iter_rows())
    teams |= {(d, t) for depts in settings.study.values() for d, names in depts.items()
              for t in names}
    for task in ("roster", "wip", "interactions"):  # every team has all three, rows or not
        for department, team in sorted(teams):
            part = frames[task].filter(department=department, team=team)
            frames[f"teams/{team_frame_name(task, department, team)}"] = part.drop(
                _NOT_IN[department] if task == "wip" else ())
    return frames


def _read_event(lake: Path, record: FileRecord) -> Observation:
    path = lake / record.stored
    try:
        return observation_adapter.validate_json(path.read_bytes(), strict=True)
    except (OSError, ValidationError):
        raise LakeUnusable("a raw file the log names is missing or damaged", file=str(path),
                           hint="restore it from a backup (its name is its sha256)") from None


def _observation_row(
    obs: Observation, record: FileRecord, batch: int, versions: int,
) -> dict[str, Any]:
    interactions = obs if isinstance(obs, InteractionsObservation) else None
    return {
        "event_id": record.sha256, "observation_id": str(obs.observation_id), "batch": batch,
        "task": obs.task, "factory": obs.factory, "department": obs.department,
        "team": obs.team, "observer": obs.observer, "day": obs.day,
        "started_at": obs.started_at, "ended_at": obs.ended_at, "status": obs.status,
        "versions": versions, "source_path": record.path,
        "supervisor": interactions.supervisor if interactions else None,
        "left_floor_s": interactions.left_floor_s if interactions else None,
        "app_version": obs.app_version, "device": obs.device, "notes": obs.notes,
        "extra_keys": list(record.extra_keys or ()),
    }


def _detail_rows(obs: Observation, record: FileRecord) -> Iterator[tuple[str, dict[str, Any]]]:
    keys = {
        "observation_id": str(obs.observation_id), "event_id": record.sha256,
        "factory": obs.factory, "department": obs.department, "team": obs.team,
        "observer": obs.observer, "day": obs.day, "started_at": obs.started_at,
        "status": obs.status,
    }
    if isinstance(obs, RosterObservation):
        for code, machine in obs.machines.items():
            yield "roster", {**keys, "machine": code, "mc_status": machine.mc_status,
                             "worker_id": machine.worker_id}
    elif isinstance(obs, KnittingWipObservation | LinkingWipObservation):
        for code, m in obs.machines.items():
            yield "wip", {**keys, "machine": code, "mc_status": m.mc_status,
                          "worker_id": m.worker_id, "style": m.style,
                          **m.model_dump(include={"component", "back", "front", "sleeve",
                                                  "collar", "wip"})}
    else:
        for seq, i in enumerate(obs.interactions):
            yield "interactions", {**keys, "supervisor": obs.supervisor, "seq": seq,
                                   "interlocutor": i.with_, "length_s": i.length_s,
                                   "initiator": i.initiator, "topic": i.topic}


def completion(observations: pl.DataFrame, settings: Settings) -> pl.DataFrame:
    """Observed against expected, for every day from the first to the last observed one."""
    schema = SCHEMAS["completion"]
    if observations.is_empty():
        return pl.DataFrame(schema=schema)
    first, last = observations["day"].min(), observations["day"].max()
    assert isinstance(first, date) and isinstance(last, date)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    teams = set(observations.select("factory", "department", "team").unique().iter_rows())
    teams |= {(f, d, t) for f, depts in settings.study.items()
              for d, names in depts.items() for t in names}
    protocol = settings.protocol.expected()
    tasks = sorted({t for t, n in protocol.items() if n > 0} | set(observations["task"]))
    counts = observations.group_by("day", "factory", "task", "department", "team").agg(
        completed=(pl.col("status") == "complete").sum().cast(pl.Int64),
        attempted=pl.len().cast(pl.Int64))
    grid = pl.DataFrame(
        [{"day": d, "factory": f, "task": task, "department": dep, "team": team}
         for d in days for (f, dep, team) in sorted(teams) for task in tasks],
        schema={k: schema[k] for k in ("day", "factory", "task", "department", "team")},
        orient="row")
    off = pl.col("day").is_in([d for d in days if settings.calendar.is_off(d)])
    expected = pl.col("task").replace_strict(protocol, default=0, return_dtype=pl.Int64)
    return (
        grid.join(counts, on=["day", "factory", "task", "department", "team"], how="left")
        .with_columns(pl.col("completed", "attempted").fill_null(0),
                      expected=pl.when(off).then(0).otherwise(expected))
        .with_columns(status=pl.when(off).then(pl.lit("off"))
                      .when(pl.col("completed") >= pl.col("expected")).then(pl.lit("done"))
                      .when(pl.col("completed") > 0).then(pl.lit("partial"))
                      .otherwise(pl.lit("missing")))
        .select(list(schema))
        .sort("day", "factory", "task", "department", "team")
    )


def write_frames(lake: Path, frames: dict[str, pl.DataFrame]) -> Path:
    """Write all frames to `frames/`, replacing the old set as a whole."""
    new, old, final = lake / "frames.new", lake / "frames.old", lake / "frames"
    for stale in (new, old):
        shutil.rmtree(stale, ignore_errors=True)
    make_private_dir(new / "teams")
    for name, frame in sorted(frames.items()):
        frame.write_parquet(new / f"{name}.parquet", compression="zstd", compression_level=3,
                            statistics=True, row_group_size=1_000_000)
        (new / f"{name}.parquet").chmod(0o600)
    if final.exists():
        final.rename(old)
    new.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final

