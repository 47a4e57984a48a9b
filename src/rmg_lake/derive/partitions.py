"""Derived files: the frames as Parquet partitions, kept current with the log, byte for byte.

    frames/<frame>/<day>-<hash>.parquet        observations, roster, wip, interactions:
                                               one file per factory-local day
    frames/teams/<name>/<month>-<hash>.parquet  the team frames: one file per month
    frames/history/b<batch>-<hash>.parquet     what became of each file: one per ingest
    frames/<frame>/all-<hash>.parquet          completion, batches, quarantine,
                                               corrections, reviews: whole
    _derived.json                              which files make up each frame now

A file is named by its content's hash, so the same log gives the same names and bytes
wherever it is derived. The rows come from the event store (`rmg_lake.store.events`), but for
corrected observations, made again from their raw files (`rmg_lake.corrections.apply`). An
update writes only the days whose current events (or their corrections) changed, their
months' team frames (and the small whole frames), then swaps in the catalog and
`_derived.json`, the moment the new state becomes the lake's; files no longer named are
deleted at the update after (a reader may still be using them). A rebuild derives every
day again and trusts nothing derived.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import orjson
import polars as pl

from rmg_lake._internal.faults import reached
from rmg_lake._internal.files import sync_all, write_atomic
from rmg_lake._internal.progress import Track
from rmg_lake.config import Settings
from rmg_lake.corrections.apply import Patch
from rmg_lake.derive.catalog import build_catalog
from rmg_lake.derive.changes import Update, what_changed
from rmg_lake.derive.frames import (
    DETAIL,
    batches_frame,
    completion,
    completion_after,
    corrections_frame,
    current_frames,
    empty_frame,
    history_frame,
    quarantine_frame,
    reviews_frame,
    team_frame_name,
    team_frames,
)
from rmg_lake.store.events import EVENT_FRAMES, corrected_rows, in_store, read_events
from rmg_lake.store.log import (
    Batch,
    LogEntry,
    in_effect,
    settings_in_force,
)
from rmg_lake.store.raw import sha256
from rmg_lake.store.resolved import family
from rmg_lake.store.tables import SCHEMAS, parquet_bytes
from rmg_lake.store.versions import log_rows

__all__ = ["STATE", "Derived", "derive", "load_state"]

STATE = "_derived.json"
FORMAT = 6  # frames' layout and columns: a state of another format is derived again
BASE = ("observations", "roster", "wip", "interactions", "completion", "batches", "quarantine",
        "corrections", "reviews", "history")
_WRITERS = 4  # partitions written at once (polars lets go of the GIL while it writes)
_EMPTY, _WHOLE = "empty", "all"  # the keys of a frame with no partitions, of a whole frame
_UNCORRECTED = [pl.lit(False).alias("corrected"), pl.lit(0, pl.Int64).alias("corrections")]


@dataclass(frozen=True, slots=True)
class Derived:
    """Which files make up each frame, for the first `entries` log entries."""

    root: str  # the lake the catalog's absolute paths point into
    entries: int
    frames: dict[str, dict[str, str]]  # frame → partition key → file, relative to its folder

    def files(self, name: str, start: date | None = None,
              end: date | None = None) -> list[str]:
        """The frame's files; with `start` or `end`, only the partitions that may hold
        those days (a day's, a month's, or a whole frame's)."""
        low, high = (start or date.min).isoformat(), (end or date.max).isoformat()
        return [self.frames[name][key] for key in sorted(self.frames[name])
                if not _dated(key) or low[:len(key)] <= key <= high[:len(key)]]


def _dated(key: str) -> bool:
    """Whether a partition key is a day or a month (else a batch's, or the whole frame)."""
    return key[:4].isdigit()


def load_state(out: Path, *, whole: bool = True) -> Derived | None:
    """The derived state in `out`, if it is readable (and, if `whole`, every file it names
    is there)."""
    try:
        raw = orjson.loads((out / STATE).read_bytes())
        state = Derived(raw["root"], raw["entries"], raw["frames"])
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
        return None
    if raw.get("format") != FORMAT:  # derived by another rmg-lake: its files are not ours
        return None
    if not whole or all((out / f).is_file() for parts in state.frames.values()
                        for f in parts.values()):
        return state
    return None


def derive(lake: Path, entries: list[LogEntry], out: Path, *,
           previous: Derived | None = None, track: Track | None = None,
           rows: pl.DataFrame | None = None) -> Derived:
    """Bring the frames and catalog in `out` to the state after `entries`.

    With `previous` (the state in `out`, for a prefix of `entries`) only the days whose
    current events changed are derived again (and the months of their team frames);
    without it, everything is. `rows` are the entries' `versions.log_rows`, if at hand.
    """
    before = load_state(out, whole=False)  # its files stay one more update
    update = what_changed(lake, entries, previous.entries if previous else None,
                          log_rows(entries) if rows is None else rows)
    del rows  # the whole log's columns: not needed while the days are derived
    frames = {name: dict(parts) for name, parts in previous.frames.items()} if previous else {}
    _derive_days(lake, out, frames, entries, update, track)
    _derive_history(out, frames, entries)
    settings = settings_in_force(in_effect(entries))
    _derive_whole(out, frames, entries, previous, update, settings)
    state = _commit(lake, out, frames, entries, settings)
    _delete_unnamed(out, state, before)
    return state


def _derive_days(lake: Path, out: Path, frames: dict[str, dict[str, str]],
                 entries: list[LogEntry], update: Update, track: Track | None) -> None:
    """Write the day partitions of `update`'s days, and their months' team frames."""
    names = sorted({day.isoformat()[:7] for day in update.days})
    months = names if track is None else track(names, len(names), "Deriving frames")
    by_number = {e.batch: e for e in entries if isinstance(e, Batch)}
    with ThreadPoolExecutor(max_workers=_WRITERS) as pool:
        for month in months:
            days = sorted(day for day in update.days if day.isoformat().startswith(month))
            _derive_month(lake, out, frames, days, update.shown.filter(
                pl.col("day").is_between(days[0], days[-1])), update.holders, by_number,
                update.patched, pool)


def _derive_history(out: Path, frames: dict[str, dict[str, str]],
                    entries: list[LogEntry]) -> None:
    """What became of each file of each ingest: a partition per batch, written once."""
    history = frames.setdefault("history", {})
    for batch in entries:
        key = f"b{batch.batch:06d}"
        if isinstance(batch, Batch) and (batch.inline or batch.records) and key not in history:
            history[key] = _write(out, "history", key, history_frame(batch))


def _derive_whole(out: Path, frames: dict[str, dict[str, str]], entries: list[LogEntry],
                  previous: Derived | None, update: Update, settings: Settings) -> None:
    """The whole frames: completion, batches, quarantine, corrections and reviews. They go
    on from the frames before where those still hold: the quarantine after new ingests
    only, completion under the same settings (made again for the days that changed)."""
    batches = in_effect(entries)
    if previous is not None and update.ingests_only:
        quarantine = quarantine_frame([b for b in batches if b.batch > previous.entries],
                                      _whole(out, previous, "quarantine"),
                                      {b.batch: family(b.source) for b in batches})
    else:
        quarantine = quarantine_frame(batches)
    earlier = _whole(out, previous, "completion") if previous is not None and settings == \
        settings_in_force(in_effect(entries[:previous.entries])) else None
    completion = _completion_frame(out, frames.get("observations", {}), settings, earlier,
                                   update.days)
    for name, frame in (("completion", completion), ("batches", batches_frame(entries)),
                        ("quarantine", quarantine),
                        ("corrections", corrections_frame(entries, update.applied)),
                        ("reviews", reviews_frame(entries))):
        frames[name] = {_WHOLE: _write(out, name, _WHOLE, frame)}


def _commit(lake: Path, out: Path, frames: dict[str, dict[str, str]],
            entries: list[LogEntry], settings: Settings) -> Derived:
    """Make the new state the lake's: every expected frame there, the catalog over it,
    the files on disk, then `_derived.json`, which names them."""
    configured = {f"teams/{team_frame_name(task, d, t)}" for task in DETAIL
                  for departments in settings.study.values()
                  for d, teams in departments.items() for t in teams}
    _settle_empty(out, frames, {*BASE, *configured})
    state = Derived(str(lake), len(entries), {k: frames[k] for k in sorted(frames)})
    build_catalog(out, state.frames, settings)
    sync_all()  # the files it names are on disk before the state that trusts them is
    write_atomic(out / STATE, orjson.dumps(
        {"format": FORMAT, "root": state.root, "entries": state.entries,
         "frames": state.frames},
        option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS), sync=False)
    reached("state-written")
    return state


def _derive_month(lake: Path, out: Path, frames: dict[str, dict[str, str]],
                  days: list[date], shown: pl.DataFrame, holders: pl.DataFrame,
                  by_number: dict[int, Batch], patched: dict[str, Patch],
                  pool: ThreadPoolExecutor) -> None:
    """Write the partitions of `days` (of one month; `shown`: the current events on them,
    `patched` ones as corrected), then the month's team frames: a frame at a time, so
    that a month of one frame's rows is in memory, not of all."""
    month = days[0].isoformat()[:7]
    for parts in frames.values():  # what was derived of these days before
        for key in (*(day.isoformat() for day in days), month):
            parts.pop(key, None)
    rows_of = _month_rows(lake, shown, holders, by_number, patched, (days[0], days[-1]))
    log_side = _log_side(shown, patched)
    for name in EVENT_FRAMES:
        rows = rows_of(name)
        for first in range(0, len(days), _WRITERS):  # a few days' rows at a time: one
            made = [(name, day.isoformat(), _day_frame(name, rows, log_side, day))  # copy
                    for day in days[first:first + _WRITERS]]  # of the month's, not three
            _write_all(pool, out, frames, [part for part in made if not part[2].is_empty()])
            del made
        del rows
        if name in DETAIL:
            _write_teams(pool, out, frames, name, month)


def _day_frame(name: str, rows: pl.DataFrame, log_side: pl.DataFrame,
               day: date) -> pl.DataFrame:
    """The frame `name` of one `day`: its `rows`, with what the log says of their events."""
    return current_frames({name: rows.filter(pl.col("day") == day)},
                          log_side.filter(pl.col("day") == day).drop("day"))[name]


def _month_rows(lake: Path, shown: pl.DataFrame, holders: pl.DataFrame,
                by_number: dict[int, Batch], patched: dict[str, Patch],
                span: tuple[date, date]) -> Callable[[str], pl.DataFrame]:
    """A reader of one frame's rows of the `shown` events: from the event store of the
    batch that holds each (or made from raw, every frame at once, for a batch the store
    lacks), and for a corrected observation made again from its raw file."""
    fixed = shown.filter(pl.col("observation_id").is_in(list(patched)))
    plain = shown.filter(~pl.col("observation_id").is_in(list(patched)))
    wanted = [(by_number[number], group["sha256"].unique()) for (number,), group in sorted(
        plain.select("sha256").join(holders, on="sha256", how="left").group_by("holder"))]
    corrected = corrected_rows([(sha, observation, patch.fields) for sha, key in fixed.select(
        "sha256", "observation_id").iter_rows() if (patch := patched[key]) is not None
        and (observation := patch.observation) is not None])  # (withdrawn: not shown)
    parsed = {batch.batch: read_events(lake, batch, ids, span)
              for batch, ids in wanted if not in_store(batch)}

    def rows(name: str) -> pl.DataFrame:
        found = [parsed[batch.batch][name] if batch.batch in parsed
                 else read_events(lake, batch, ids, span, (name,))[name]
                 for batch, ids in wanted]
        return pl.concat([*(part.with_columns(_UNCORRECTED) if name != "observations"
                            else part for part in found), corrected[name]])

    return rows


def _log_side(shown: pl.DataFrame, patched: dict[str, Patch]) -> pl.DataFrame:
    """What the log says of each shown event, with its day: its batch, its versions, where
    it came from and when it was first saved, and how many corrections changed it."""
    return shown.select(
        "day", pl.col("sha256").alias("event_id"), "batch", "versions",
        pl.col("path").alias("source_path"), pl.col("first_saved").alias("synced_at"),
        pl.col("observation_id").is_in(list(patched)).alias("corrected"),
        pl.col("observation_id").replace_strict(
            list(patched), [len(p.fields) for p in patched.values()], default=0,
            return_dtype=pl.Int64).alias("corrections"))


def _write_teams(pool: ThreadPoolExecutor, out: Path, frames: dict[str, dict[str, str]],
                 task: str, month: str) -> None:
    """Write the team frames of `task`'s `month` from its days' partitions, a team at a
    time."""
    files = [out / file for key, file in sorted(frames.get(task, {}).items())
             if key.startswith(month)]
    if not files:
        return
    month_rows = pl.scan_parquet(files)
    teams = month_rows.select("department", "team").unique().collect().sort(
        "department", "team")
    for department, team in teams.iter_rows():
        rows = month_rows.filter(pl.col("department") == department, pl.col("team") == team)
        _write_all(pool, out, frames, [(name, month, frame) for name, frame in
                                       team_frames(task, rows.collect()).items()])


def _write_all(pool: ThreadPoolExecutor, out: Path, frames: dict[str, dict[str, str]],
               parts: list[tuple[str, str, pl.DataFrame]]) -> None:
    """Write each (frame, key, rows) as a partition of `frames`, a few at a time."""
    written = pool.map(lambda part: _write(out, *part), parts)
    for (name, key, _), relative in zip(parts, written, strict=True):
        frames.setdefault(name, {})[key] = relative


def _settle_empty(out: Path, frames: dict[str, dict[str, str]], expected: set[str]) -> None:
    """Every expected frame exists (an empty file if it has no rows); others only with rows."""
    for name in sorted(set(frames) | expected):
        parts = frames.get(name, {})
        real = {key: file for key, file in parts.items() if key != _EMPTY}
        if real:
            frames[name] = real
        elif name in expected:
            frames[name] = {_EMPTY: parts.get(_EMPTY) or _write(out, name, _EMPTY,
                                                                 empty_frame(name))}
        else:
            frames.pop(name, None)


def _completion_frame(out: Path, observations: dict[str, str], settings: Settings,
                      earlier: pl.DataFrame | None, changed: set[date]) -> pl.DataFrame:
    """The completion frame of the `observations` partitions: from `earlier` (under the
    same settings, before the days `changed`), reading only the days made again, if it
    still holds."""
    days = sorted(key for key in observations if _dated(key))

    def read(keys: Iterable[str]) -> pl.DataFrame:
        return _read(out, {key: observations[key] for key in keys if key in observations},
                     "observations", ["day", "factory", "task", "department", "team",
                                      "status", "observation_id", "observer", "started_at"])

    if earlier is not None and days and (table := completion_after(
            earlier, (date.fromisoformat(days[0]), date.fromisoformat(days[-1])), changed,
            lambda redo: read(day.isoformat() for day in redo), settings)) is not None:
        return table
    return completion(read(days), settings)


def _write(out: Path, name: str, key: str, frame: pl.DataFrame) -> str:
    """Write `frame` as `frames/<name>/<key>-<hash>.parquet`; its path, relative to `out`."""
    data = parquet_bytes(frame)
    relative = f"frames/{name}/{key}-{sha256(data)[:16]}.parquet"
    write_atomic(out / relative, data, sync=False)  # derived: remade if lost
    reached("partition-written")
    return relative


def _read(out: Path, parts: dict[str, str], name: str, columns: list[str]) -> pl.DataFrame:
    files = [out / parts[key] for key in sorted(parts) if key != _EMPTY]
    return pl.read_parquet(files, columns=columns) if files else empty_frame(name)


def _whole(out: Path, state: Derived, name: str) -> pl.DataFrame:
    """The whole frame `name` of `state` (derived in `out`)."""
    return _read(out, state.frames.get(name, {}), name, list(SCHEMAS[name]))


def _delete_unnamed(out: Path, state: Derived, before: Derived | None) -> None:
    """Delete the files neither this state nor the one `before` it names, and folders left
    empty. (A reader that opened the catalog before this update still finds its files.)"""
    named = {f for s in (state, before) if s is not None
             for parts in s.frames.values() for f in parts.values()}
    frames = out / "frames"
    for path in sorted(frames.rglob("*"), reverse=True):
        relative = path.relative_to(out).as_posix()
        if path.is_dir():
            if not any(path.iterdir()):
                path.rmdir()
        elif relative not in named:
            path.unlink()
