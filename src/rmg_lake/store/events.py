"""The event store: the rows each batch's new events make, as columns, kept with the batch.

    events/v<format>/<frame>/<sha256>.parquet    observations, roster, wip, interactions rows

An ingest turns every event it adds into rows of the four detail frames, leaving out what
depends on the rest of the log (batch, versions, source path), and keeps them the way raw
files are kept: named by their hash, written once, named by the batch's log entry. Deriving
then reads columns instead of parsing every raw JSON file again. The rows follow from the
raw bytes alone: an entry written before the event store existed (it names none), or whose
events are of another `FORMAT`, gets the same rows made again from its raw files. Change
what a row holds, and `FORMAT` goes up with it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import ValidationError

from rmg_lake.contract.models import (
    InteractionsObservation,
    KnittingWipObservation,
    LinkingWipObservation,
    Observation,
    RosterObservation,
    parse_observation,
)
from rmg_lake.contract.validate import extra_keys
from rmg_lake.errors import LakeUnusable, passing
from rmg_lake.store.log import Batch
from rmg_lake.store.raw import RawStore, sha256
from rmg_lake.store.tables import SCHEMAS, parquet_bytes

__all__ = ["EVENT_FRAMES", "EVENT_SCHEMAS", "EventRows", "Rows", "corrected_rows",
           "event_rows", "in_store", "keep_events", "read_events"]

FORMAT = 1  # what the rows hold: the frames' columns, as `_observation_row` & co. make them
EVENT_FRAMES = ("observations", "roster", "wip", "interactions")
# added when derived, from the log
_FROM_LOG = ("batch", "versions", "source_path", "synced_at", "corrected", "corrections")
EVENT_SCHEMAS = {name: {column: kind for column, kind in SCHEMAS[name].items()
                        if column not in _FROM_LOG} for name in EVENT_FRAMES}
_CHUNK = 2_000  # events held as Python rows before they become (compact) columns


Rows = dict[str, list[tuple[Any, ...]]]  # frame → rows, as tuples of EVENT_SCHEMAS' columns


def event_rows(event_id: str, observation: Observation) -> Rows:
    """The rows one event makes (made as its file is read: see `rmg_lake.store.reading`)."""
    rows: Rows = {"observations": [_tuple("observations",
                                          _observation_row(event_id, observation))]}
    for name, row in _detail_rows(event_id, observation):
        rows.setdefault(name, []).append(_tuple(name, row))
    return rows


def _tuple(name: str, row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row.get(column) for column in EVENT_SCHEMAS[name])


class EventRows:
    """The rows of events, gathered one event at a time."""

    def __init__(self) -> None:
        self._rows: Rows = {name: [] for name in EVENT_FRAMES}
        self._done: dict[str, list[pl.DataFrame]] = {name: [] for name in EVENT_FRAMES}
        self._held = 0

    def add(self, event_id: str, observation: Observation) -> None:
        self.extend(event_rows(event_id, observation))

    def extend(self, rows: Rows) -> None:
        """Add one event's `event_rows`."""
        for name, found in rows.items():
            self._rows[name].extend(found)
        self._held += 1
        if self._held == _CHUNK:
            self._columns()

    def frames(self) -> dict[str, pl.DataFrame]:
        """Every frame with rows, by day, then by event (an event's rows in their order)."""
        self._columns()
        return {name: pl.concat(parts).sort("day", "event_id", maintain_order=True)
                for name, parts in self._done.items() if parts}

    def _columns(self) -> None:
        for name, rows in self._rows.items():
            if rows:
                self._done[name].append(
                    pl.DataFrame(rows, schema=EVENT_SCHEMAS[name], orient="row"))
                rows.clear()
        self._held = 0


def corrected_rows(corrected: list[tuple[str, Observation, tuple[str, ...]]],
                   ) -> dict[str, pl.DataFrame]:
    """The rows of corrected observations, from (event id, the observation as corrected,
    the fields corrected): the detail frames with `corrected` and `corrections`, counting
    the corrections of each row's own values (its machine's or interaction's, and the
    observation's keys it repeats, e.g. team)."""
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in EVENT_FRAMES}
    for event_id, observation, fields in corrected:
        rows["observations"].append(_observation_row(event_id, observation))
        for name, row in _detail_rows(event_id, observation):
            own = f"machines.{row['machine']}." if "machine" in row \
                else f"interactions.{row['seq']}."
            n = sum(1 for f in fields if f.startswith(own) or ("." not in f and f in row))
            rows[name].append({**row, "corrected": n > 0, "corrections": n})
    counts = {"corrected": pl.Boolean, "corrections": pl.Int64}
    return {name: pl.DataFrame(found, orient="row", schema={
                **EVENT_SCHEMAS[name], **(counts if name != "observations" else {})})
            for name, found in rows.items()}


def keep_events(store: RawStore, rows: EventRows) -> dict[str, str]:
    """Keep each frame of `rows` as `events/v<format>/<frame>/<sha256>.parquet`: frame →
    its path."""
    kept = {}
    for name, frame in rows.frames().items():
        data = parquet_bytes(frame)
        kept[name] = store.put_events(f"v{FORMAT}/{name}", sha256(data), data).stored
    return kept


def in_store(batch: Batch) -> bool:
    """Whether `batch`'s events are in the event store as this rmg-lake reads them (not
    from before the event store, nor of another format): else they are made from raw."""
    return bool(batch.events) and all(path.startswith(f"events/v{FORMAT}/")
                                      for path in batch.events.values())


def read_events(lake: Path, batch: Batch, wanted: pl.Series, days: tuple[date, date],
                names: Sequence[str] = EVENT_FRAMES) -> dict[str, pl.DataFrame]:
    """The rows of the `wanted` events (their sha256, each once) among those `batch` added,
    all of them between `days` (first and last): the frames `names` (every frame by
    default), maybe empty."""
    if not in_store(batch):
        rows = EventRows()
        ids = set(wanted)
        for record in batch.files:
            if record.outcome == "added" and record.sha256 in ids:
                rows.add(record.sha256, _parse(lake / record.stored))
        found = rows.frames()
        return {name: found.get(name, pl.DataFrame(schema=EVENT_SCHEMAS[name]))
                for name in names}
    frames = {}
    for name in names:
        stored = batch.events.get(name)
        if stored is None:
            frames[name] = pl.DataFrame(schema=EVENT_SCHEMAS[name])
            continue
        try:
            frames[name] = pl.scan_parquet(lake / stored).filter(pl.col("day").is_between(
                *days), pl.col("event_id").is_in(wanted.implode())).collect()
        except (OSError, pl.exceptions.PolarsError) as err:
            if passing(err):
                raise
            raise _damaged(lake / stored) from None
    if "observations" in frames and frames["observations"].height != len(wanted):
        raise _damaged(lake / batch.events.get("observations", "events"))  # one is not in it
    return frames


def _damaged(path: Path) -> LakeUnusable:
    return LakeUnusable("an events file the log names is missing or damaged", file=str(path),
                        hint="restore it from a backup (its name is its sha256)")


def _parse(path: Path) -> Observation:
    try:
        return parse_observation(path.read_bytes())
    except (OSError, ValidationError) as err:
        if passing(err):
            raise
        raise LakeUnusable("a raw file the log names is missing or damaged", file=str(path),
                           hint="restore it from a backup (its name is its sha256)") from None


def _observation_row(event_id: str, obs: Observation) -> dict[str, Any]:
    interactions = obs if isinstance(obs, InteractionsObservation) else None
    return {
        "event_id": event_id, "observation_id": str(obs.observation_id), "task": obs.task,
        "factory": obs.factory, "department": obs.department, "team": obs.team,
        "observer": obs.observer, "day": obs.day, "started_at": obs.started_at,
        "ended_at": obs.ended_at, "status": obs.status,
        "supervisor": interactions.supervisor if interactions else None,
        "left_floor_s": interactions.left_floor_s if interactions else None,
        "app_version": obs.app_version, "device": obs.device, "notes": obs.notes,
        "extra_keys": extra_keys(obs),
    }


def _detail_rows(event_id: str, obs: Observation) -> Iterator[tuple[str, dict[str, Any]]]:
    keys = {
        "observation_id": str(obs.observation_id), "event_id": event_id,
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
