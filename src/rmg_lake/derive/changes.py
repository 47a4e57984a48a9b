"""What an update derives again: the days on which an observation shows otherwise after
the new log entries than before them, and the current events on those days.

An observation shows by its current event (`rmg_lake.store.versions`), as its corrections
in effect make it (`rmg_lake.corrections`); a day is derived again when one of its
observations' events, counts of versions or corrections differ on either side of the
change. After new ingests alone only the observations they bring can differ.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import polars as pl

from rmg_lake.corrections.apply import Patch, patches
from rmg_lake.store.log import (
    Batch,
    Correction,
    Current,
    LogEntry,
    corrections_in_effect,
    in_effect,
)
from rmg_lake.store.versions import arrivals, as_currents, currents

__all__ = ["Update", "what_changed"]


@dataclass(frozen=True, slots=True)
class Update:
    """What an update derives again: the `days` on which an observation shows otherwise,
    the current events on them (`shown`; corrected ones as `patched` makes them), which
    batch holds each event's rows (`holders`), and whether new ingests alone made it."""

    days: set[date]
    shown: pl.DataFrame
    holders: pl.DataFrame
    patched: dict[str, Patch]
    applied: set[tuple[int, int]]  # (batch, row) of every correction row in effect
    ingests_only: bool


def what_changed(lake: Path, entries: list[LogEntry], known: int | None,
                 rows: pl.DataFrame) -> Update:
    """The days to derive again after `entries` (of which the first `known` were derived
    before; None: none were), and what shows on them. New ingests alone change only the
    observations they bring: their current versions are found, not the whole log's."""
    corrections = corrections_in_effect(entries)
    effect, corrected = {b.batch for b in in_effect(entries)}, _corrected(corrections)
    new = entries[known:] if known is not None else []
    brought = arrivals(rows, {e.batch for e in new})["observation_id"].unique() \
        if known is not None and all(isinstance(e, Batch) for e in new) else None
    after = _currents(rows, effect, None if brought is None else {*brought, *corrected})
    patched = patches(lake, corrections, _of(after, corrected))
    if known is None:
        days = set(_shown(after, patched.by_id)["day"])
    else:
        days = _changed(lake, entries, known, rows, after, patched.by_id, brought)
    if brought is not None:  # every observation that may show on the days to derive
        after = _currents(rows, effect, {*_on(rows, days), *corrected})
    shown = _shown(after, patched.by_id).filter(pl.col("day").is_in(list(days)))
    return Update(days, shown, _holders(rows, shown["sha256"]), patched.by_id,
                   patched.applied, brought is not None)


def _corrected(corrections: list[Correction]) -> set[str]:
    """The observations some row of `corrections` is about."""
    return {row.observation_id for c in corrections for row in c.rows}


def _currents(rows: pl.DataFrame, batches: set[int],
              ids: set[str] | None = None) -> pl.DataFrame:
    """`versions.currents` after `batches` (those in effect) of every observation, or of
    those `ids`."""
    if ids is not None:
        rows = rows.filter(pl.col("observation_id").is_in(list(ids)))
    return currents(arrivals(rows, batches))


def _on(rows: pl.DataFrame, days: set[date]) -> pl.Series:
    """The observations with some file of `rows` on one of `days` (a duplicate's event is
    on the day of the file that added its bytes, which `rows` hold, rolled back or not)."""
    return rows.filter(pl.col("day").is_in(sorted(days)))["observation_id"].unique()


def _of(frame: pl.DataFrame, ids: Iterable[str]) -> dict[str, Current]:
    """The Currents of `frame` (of `versions.currents`) of the observations `ids`."""
    return as_currents(frame.filter(pl.col("observation_id").is_in(list(ids))))


def _shown(after: pl.DataFrame, patched: dict[str, Patch]) -> pl.DataFrame:
    """The current events by the day each shows on: its own, or as corrected (a withdrawn
    observation shows on none)."""
    moved = {key: patch.observation.day for key, patch in patched.items()
             if patch.observation is not None}
    return after.filter(~pl.col("observation_id").is_in(list(patched.keys() - moved))) \
        .with_columns(pl.col("observation_id").replace_strict(
            list(moved), list(moved.values()), default=pl.col("day"),
            return_dtype=pl.Date).alias("day"))


def _holders(rows: pl.DataFrame, events: pl.Series) -> pl.DataFrame:
    """sha256 → `holder` of the `events` (their sha256): the batch that first added the
    event, whose events hold its rows (rolled back or not: a later duplicate of it may
    stand in)."""
    return rows.filter(pl.col("outcome") == "added",
                       pl.col("sha256").is_in(events.implode())).select(
        "sha256", pl.col("batch").alias("holder")).unique("sha256", keep="first",
                                                           maintain_order=True)


def _changed(lake: Path, entries: list[LogEntry], known: int, rows: pl.DataFrame,
             after: pl.DataFrame, patched: dict[str, Patch],
             brought: pl.Series | None) -> set[date]:
    """The days on which an observation shows otherwise after `entries` than after the
    first `known` of them: its current event (or its count of versions) or its
    corrections differ, on either side of the change. If the new entries are ingests
    alone, they only add to what was current: only the observations they bring events of
    (`brought`) may change."""
    earlier = entries[:known]
    was_in_effect, was_corrected = {b.batch for b in in_effect(earlier)}, \
        corrections_in_effect(earlier)
    if brought is not None:
        before = _currents(rows, was_in_effect, set(brought))
        ids = set(brought)
    else:  # a rollback or a correction: what counted before may change anywhere
        before = _currents(rows, was_in_effect)
        same = before.join(after, on=[*after.columns], how="semi", nulls_equal=True)
        ids = (set(before["observation_id"]) | set(after["observation_id"])) \
            - set(same["observation_id"])
        ids |= _corrected(was_corrected) | _corrected(corrections_in_effect(entries))
    # an observation corrected before or after: as the corrections show it (a few)
    fixed = ids & (_corrected(was_corrected) | patched.keys())
    then, now = _of(before, fixed), _of(after, fixed)
    was = patches(lake, was_corrected, then, only=fixed)
    return _changed_days({k: (then.get(k), was.by_id.get(k)) for k in fixed},
                         {k: (now.get(k), patched.get(k)) for k in fixed}) \
        | _differing_days(before, after, ids - fixed)


Shown = tuple[Current | None, Patch | None]  # an observation's current event, as corrected


def _day(current: Current | None, patch: Patch | None) -> date | None:
    """The day an observation shows on: its corrected one; None if it is not shown."""
    if patch is not None:
        return patch.observation.day if patch.observation is not None else None
    return current.record.day if current is not None else None


def _changed_days(before: dict[str, Shown], after: dict[str, Shown]) -> set[date]:
    """The days on which some observation's current event (its count of versions, or its
    corrections) differs, on either side of the change."""
    days = set()
    for observation_id in before.keys() | after.keys():
        old, new = before.get(observation_id, (None, None)), after.get(observation_id,
                                                                       (None, None))
        if old != new:
            days |= {day for day in (_day(*old), _day(*new)) if day is not None}
    return days


def _differing_days(before: pl.DataFrame, after: pl.DataFrame, ids: set[str]) -> set[date]:
    """The days on which one of the observations `ids` (of no correction) shows otherwise
    `before` than `after` (of `versions.currents`): its current event or its count of
    versions differs (`_changed_days`, as columns)."""
    columns = [c for c in after.columns if c != "order"]  # (what a Current holds)
    then, now = (frame.filter(pl.col("observation_id").is_in(list(ids))).select(columns)
                 for frame in (before, after))
    return {day for gone, there in ((then, now), (now, then)) for day in gone.join(
        there, on=columns, how="anti", nulls_equal=True)["day"].drop_nulls()}
