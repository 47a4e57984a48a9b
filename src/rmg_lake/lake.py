"""The lake as a library: open it, ingest into it, rebuild it, read its frames.

    >>> lake = open_lake("lake")
    >>> lake.frame("wip", "knitting", "treatment")        # a polars DataFrame
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing, contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import orjson
import polars as pl

from rmg_lake._internal.faults import reached
from rmg_lake._internal.files import (
    check_platform,
    fsync_dir,
    make_private_dir,
    own_private_dir,
    sync_all,
    write_once,
)
from rmg_lake._internal.progress import Track
from rmg_lake.config import Settings
from rmg_lake.corrections.apply import observation_key, plan
from rmg_lake.corrections.review import Flag, check_flags, plan_reviews
from rmg_lake.corrections.sheet import read_sheet
from rmg_lake.derive.catalog import CATALOG
from rmg_lake.derive.checks import FLAG_SCHEMA, flags_sql
from rmg_lake.derive.frames import team_frame_name
from rmg_lake.derive.pairs import AGREEMENT_SCHEMA, PAIR_SCHEMA, agreement_sql, pairs_sql
from rmg_lake.derive.partitions import Derived, derive, load_state
from rmg_lake.errors import LakeError, LakeUnusable, boundary, passing
from rmg_lake.results import Corrected, IngestResult, RolledBack
from rmg_lake.sources import Source, open_source
from rmg_lake.store.ingest import BATCH_FILES, MAX_SIZE, Index, collect, new_batch
from rmg_lake.store.locking import WriterLock
from rmg_lake.store.log import (
    Batch,
    Correction,
    Log,
    LogEntry,
    Rollback,
    corrections_in_effect,
    in_effect,
    retracted,
    rolled_back_by,
    settings_in_force,
)
from rmg_lake.store.raw import RawStore, sha256
from rmg_lake.store.reexamine import heal
from rmg_lake.store.tables import FRAMES
from rmg_lake.store.upgrade import LAYOUT, READABLE, needed, upgrade
from rmg_lake.store.verify import Verified, make_private, remove_orphans, verify
from rmg_lake.store.versions import current_of

__all__ = ["LAYOUT", "Corrected", "IngestResult", "Lake", "RolledBack", "open_lake"]

T = TypeVar("T")
_OURS = frozenset({"_meta.json", "_log"})  # what a lake being created already holds


class Lake:
    """A lake folder: raw store, log, and the frames and catalog derived from them.

    One process at a time writes (an ingest, a rollback, a rebuild, or a reader bringing
    the derived files up to date): the others wait for it (see `rmg_lake.store.locking`); set
    `lock.wait`, `lock.on_wait` and `lock.on_stale` to change how long and what they say.
    """

    def __init__(self, root: Path, *, wait: float | None = None) -> None:
        self.root = root.resolve()
        self.log = Log(self.root)
        self.store = RawStore(self.root)
        self.lock = WriterLock(self.root, wait=wait)

    def ingest(self, source: Source | str | Path, *, settings: Settings | None = None,
               track: Track | None = None, workers: int | None = None,
               max_size: int = MAX_SIZE, batch_files: int = BATCH_FILES,
               before: Callable[[list[LogEntry]], None] | None = None) -> IngestResult:
        """Take every new file from `source` into the lake as one batch, or, past
        `batch_files` new files, one batch per `batch_files`, each committed and derived
        as soon as it is read (the frames grow as a large import goes on).

        Up to `workers` files are read at once (default: what suits the source, 2 from a
        folder, 8 from Dropbox, whose downloads wait mostly on the network).
        Files over `max_size` bytes are kept but not parsed (quarantined if `.json`).

        `settings` (protocol, calendar, expected teams) are recorded with the (first) batch
        when they differ from those in force (and always in a new lake), and shape the
        frames from then on; None keeps the lake's. New settings alone make a batch of no
        files.

        First, what an older rmg-lake quarantined is examined again, a batch per source
        (see `rmg_lake.store.reexamine`). Then `before(entries)` is given the log before
        anything of `source` is read: it may prepare the source, or refuse (a LakeError).
        """
        if batch_files < 1:
            raise ValueError(f"batch_files must be at least 1, not {batch_files}")
        if isinstance(source, str | Path):
            source = open_source(str(source), exclude=[self.root])
        with self._writing():
            entries = self.log.entries()
            healed, unexamined, known = self._reexamine(entries, None, max_size)
            index = known or Index.of(entries)
            if before is not None:
                before(entries)
            if not entries:
                settings = settings or Settings()  # the first batch always records them
            elif settings == settings_in_force(in_effect(entries)):
                settings = None
            source.resume(_cursor(entries, source.name))
            batches, vanished = self._take(source, entries, index, settings, track=track,
                                           workers=workers or source.readers,
                                           max_size=max_size, batch_files=batch_files)
            if not batches and not healed:
                self._refresh_locked(entries)
        return IngestResult(source.name, tuple(batches), vanished, tuple(source.gone),
                            source.relisted, healed, unexamined)

    def reexamine(self) -> tuple[tuple[Batch, ...], tuple[str, ...]]:
        """Examine again what an older rmg-lake quarantined (`ingest` does it first; see
        `rmg_lake.store.reexamine`): the batches that did, and why any could not."""
        with self._writing():
            entries = self.log.entries()
            healed, unexamined, _ = self._reexamine(entries, None, MAX_SIZE)
            if not healed:
                self._refresh_locked(entries)
        return healed, unexamined

    def _reexamine(self, entries: list[LogEntry], index: Index | None, max_size: int,
                   ) -> tuple[tuple[Batch, ...], tuple[str, ...], Index | None]:
        """`heal` (see `rmg_lake.store.reexamine`), each examination committed as `_take` does."""
        def take(source: Source, examines: tuple[int, ...], known: Index) -> list[Batch]:
            return self._take(source, entries, known, None, track=None, workers=2,
                              max_size=max_size, batch_files=BATCH_FILES,
                              examines=examines)[0]

        return heal(self.root, entries, index, take)

    def _take(self, source: Source, entries: list[LogEntry], index: Index,
              settings: Settings | None, *, track: Track | None, workers: int,
              max_size: int, batch_files: int, examines: tuple[int, ...] | None = None,
              ) -> tuple[list[Batch], int]:
        """Commit the new files of `source` as batches (appended to `entries`; `index` is
        theirs, and learns each file decided), deriving after each; the batches, and how
        many files went away while being read."""
        batches: list[Batch] = []
        vanished = 0
        with closing(collect(source, self.store, index, track=track,
                             workers=workers, max_size=max_size,
                             batch_files=batch_files)) as parts:
            for got in parts:
                vanished += got.vanished
                # a part with nothing to record is left out, unless it is the last of
                # several (its batch records where the source's listing ended)
                if not got.records and not got.deferred and settings is None \
                        and not (got.last and batches and source.cursor):
                    continue
                batch = new_batch(len(entries) + 1, source, settings, got, examines=examines)
                sync_all()  # every file the entry names is on disk before the entry is
                reached("before-commit")
                self.log.commit(batch)
                index.committed(batch.batch)
                reached("after-commit")
                batch = batch.model_copy(update={"inline": ()}).at(self.root)  # as read:
                entries.append(batch)  # its records stay on disk, not in memory
                batches.append(batch)
                settings = None  # recorded with the first
                # readers wait for one part's derive at most, not the whole ingest
                self._derive(entries, track if got.last else None, rows=index.rows())
        return batches, vanished

    def rollback(self, target: int, reason: str) -> RolledBack:
        """Take entry `target` out of effect by appending a rollback entry; its raw files
        stay. Rolling back a rollback puts back what it took out."""
        if not reason.strip():
            raise LakeError("a rollback needs a reason", hint="pass --reason TEXT")
        with self._writing():
            entries = self.log.entries()
            if not 1 <= target <= len(entries):
                raise LakeError(f"there is no batch {target}",
                                hint=f"the log holds batches 1 to {len(entries)}"
                                if entries else "the log is empty")
            entry = Rollback(batch=len(entries) + 1, committed_at=datetime.now(UTC),
                             target=target, reason=reason.strip())
            before, after = _effective(entries), _effective([*entries, entry])
            if target in retracted(entries) or before == after:
                raise LakeError(f"rolling back batch {target} changes nothing",
                                hint=_standing(entries, target))
            reached("before-commit")
            self.log.commit(entry)
            reached("after-commit")
            self._derive([*entries, entry], None)
        return RolledBack(entry, sorted(before - after), sorted(after - before))

    def correct(self, sheet: Path, *, by: str, partial: bool = False) -> Corrected:
        """Apply a corrections sheet (CSV or XLSX; see `rmg_lake.corrections.apply`), or a
        checks workbook filled in (its corrections, and the flags it reviewed), as one log
        entry that keeps the sheet: all its rows, or with `partial` those not refused. A
        sheet with nothing to apply, or applied before, commits nothing."""
        read = read_sheet(sheet)
        digest = sha256(read.data)
        flags = self._flags_now() if read.reviews or any(
            row.worksheet is not None for row in read.rows) else {}
        with self._writing():
            entries = self.log.entries()
            corrections = corrections_in_effect(entries)
            done = next((c for c in corrections if c.sha256 == digest), None)
            if done is not None:
                return Corrected(done.rows, None, same_as=done.batch, reviews=done.reviews)
            asked = {observation_key(row.observation_id) for row in read.rows}
            records = tuple(plan(self.root, corrections, current_of(entries, asked),
                                 read.rows, check_flags(read.rows, flags)))
            result = Corrected(records, None, reviews=plan_reviews(read.reviews, flags))
            if not (result.count("applied") or result.count("reviewed")) or (
                    result.count("refused") and not partial):
                return result
            kept = self.store.put_sheet(sheet.name, digest, read.data)
            entry = Correction(batch=len(entries) + 1, committed_at=datetime.now(UTC), by=by,
                               sheet=sheet.name, sha256=digest, stored=kept.stored,
                               partial=bool(result.count("refused")), rows=records,
                               reviews=result.reviews)
            sync_all()
            reached("before-commit")
            self.log.commit(entry)
            reached("after-commit")
            self._derive([*entries, entry], None)
        return replace(result, entry=entry)

    def _flags_now(self) -> dict[str, Flag]:
        """Every flag found now, by its flag_id."""
        flags = self.flags()
        return {row[0]: Flag(*row[1:]) for row in flags.select(
            "flag_id", "check_name", "observation_id", "status").iter_rows()}

    def rebuild(self, *, track: Track | None = None, as_of: int | None = None,
                out: Path | None = None) -> Path:
        """Make every derived file again from the log and the files it names; the folder.

        Nothing derived is read. With `as_of`, the frames and catalog are made as they
        stood right after that batch, in `out` (default `as-of-NNNNNN/` in the lake),
        and the lake's own are left alone.
        """
        with self._writing():
            entries = self.log.entries()
            if as_of is None:
                self._derive(entries, track, full=True)
                return self.root
            if not 1 <= as_of <= len(entries):
                raise LakeError(f"there is no batch {as_of}",
                                hint=f"the log holds batches 1 to {len(entries)}")
            folder = (out or self.root / f"as-of-{as_of:06d}").expanduser().resolve()
            _check_as_of_folder(folder, self.root)
            with boundary(file=folder, doing="write the frames there"):  # (not the lake's)
                own_private_dir(folder)
                derive(self.root, entries[:as_of], folder, track=track)
            return folder

    def refresh(self) -> Derived:
        """Bring the derived files up to date if they are missing, behind the log, or moved;
        the state they are in. While another run writes, the last state it derived is
        read as it is (readers never wait for a writer): only a lake with none waits."""
        return self._latest()

    def _latest(self) -> Derived:
        state = self._current(self.log.count())
        if state is not None:
            return state
        last = self._current(None)
        if last is not None:
            with self.lock.taken() as mine, _lake_errors(self.root):
                return self._refresh_locked(self.log.entries()) if mine else last
        with self._writing():
            return self._refresh_locked(self.log.entries())

    def _current(self, entries: int | None) -> Derived | None:
        """The derived state, if it is that of `entries` log entries (None: of any) in
        this folder."""
        state = load_state(self.root)
        if state is not None and entries in (None, state.entries) \
                and state.root == str(self.root) and (self.root / CATALOG).is_file():
            return state
        return None

    def _refresh_locked(self, entries: list[LogEntry]) -> Derived:
        # another process may have brought it up to date meanwhile
        return self._current(len(entries)) or self._derive(entries, None)

    def _derive(self, entries: list[LogEntry], track: Track | None, *,
                full: bool = False, rows: pl.DataFrame | None = None) -> Derived:
        state = None if full else load_state(self.root)
        if state is not None and (state.entries > len(entries)
                                  or state.root != str(self.root)):
            state = None  # not this lake's, as it is now: derive everything
        return derive(self.root, entries, self.root, previous=state, track=track, rows=rows)

    def upgrade(self) -> None:
        """Bring a lake of an older layout to this one now (the first run that writes does
        it anyway; see `rmg_lake.store.upgrade`)."""
        if needed(_meta(self.root)):
            with self._writing():
                pass

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the lake's lock, and turn what the file system says into a lake error."""
        with self.lock.held(), _lake_errors(self.root):
            if needed(meta := _meta(self.root)):  # (read under the lock: another may have)
                upgrade(self.root, meta)  # the first run that writes upgrades an older lake
            yield

    def verify(self, *, repair: bool = False, track: Track | None = None) -> Verified:
        """Re-hash every file the log names, look for orphans and for files other users may
        read (see `rmg_lake.store.verify`); `repair` then deletes the orphans and makes every
        file private, and nothing else."""
        with self._writing():  # an ingest's files are orphans until its entry commits
            verified = verify(self.root, track=track)
            if repair:
                remove_orphans(self.root, verified)
                make_private(self.root)
                verified = replace(verified, findings=tuple(
                    f for f in verified.findings if f.kind != "mode"))
        return verified

    def entries(self) -> list[LogEntry]:
        """Every log entry: ingests, corrections and rollbacks."""
        return self.log.entries()

    def cursor(self, source: str) -> str | None:
        """Where the last committed listing of `source` (its name, `dropbox:/…`) ended:
        the cursor its next ingest lists changes from (None for a folder, or none yet)."""
        return _cursor(self.log.entries(), source)

    def batches(self) -> list[Batch]:
        """The ingests of the log (rolled back or not)."""
        return [e for e in self.log.entries() if isinstance(e, Batch)]

    def table(self, name: str, start: date | None = None,
              end: date | None = None) -> pl.DataFrame:
        """A lake-wide frame: observations, roster, wip, interactions, completion, …;
        with `start` or `end`, only the rows of those days (reading only their files)."""
        if name not in FRAMES:
            raise LakeError(f"no frame called {name!r}", hint=f"one of {', '.join(FRAMES)}")
        frame = self._read(name, start, end)
        if name == "history":  # with each batch's time, and whether it is in effect
            batches = self._read("batches").select("batch", "committed_at", "rolled_back")
            frame = frame.join(batches, on="batch", how="left", maintain_order="left") \
                .select("batch", "committed_at", pl.exclude("batch", "committed_at"))
        return frame

    def frame(self, task: str, department: str, team: str, start: date | None = None,
              end: date | None = None) -> pl.DataFrame:
        """The frame of one task, department and team (all factories); with `start` or
        `end`, only the rows of those days."""
        return self._read(f"teams/{team_frame_name(task, department, team)}", start, end)

    def team_frames(self) -> list[tuple[str, str, str]]:
        """(task, department, team) of every team frame, in order."""
        state = self.refresh()
        return sorted((task, department, team) for task, department, team in (
            name.removeprefix("teams/").split("_", 2) for name in state.frames
            if name.startswith("teams/")))

    def completion(self, start: date | None = None, end: date | None = None) -> pl.DataFrame:
        return self.table("completion", start, end)

    def settings(self) -> Settings:
        """The study settings in force: those the latest batch in effect recorded."""
        return settings_in_force(in_effect(self.log.entries()))

    def flags(self, start: date | None = None, end: date | None = None) -> pl.DataFrame:
        """The quality checks' findings (see `rmg_lake.derive.checks`), from `start` to `end`
        (from a `start`, the frames of those days and the week before are read, and the
        whole wip and observations for a machine's history and an observer's tasks)."""
        # (dates as literals: binding parameters makes duckdb import pandas)
        sql = (f"SELECT * FROM flags WHERE day <= {_sql(end)}" if start is None
               else flags_sql(self.settings(), (start, end or date.max)))
        return self._query(sql, FLAG_SCHEMA, "the quality checks cannot run", "flags")

    def pairs(self, start: date | None = None, end: date | None = None) -> pl.DataFrame:
        """The paired wip rounds (back-checks) of the days `start` to `end`, compared
        machine by machine: the `pairs` view's rows (see `rmg_lake.derive.pairs`; its
        query, so a catalog made before the view existed answers too)."""
        return self._query(pairs_sql(_days(start, end)), PAIR_SCHEMA,
                           "the paired rounds cannot be compared", "pairs")

    def agreement(self, start: date | None = None, end: date | None = None) -> pl.DataFrame:
        """Each observer's agreement in the paired rounds of the days `start` to `end`: the
        `agreement` view's rows (its query, as `pairs`)."""
        return self._query(agreement_sql(_days(start, end)), AGREEMENT_SCHEMA,
                           "the observers' agreement cannot be counted", "agreement")

    def _query(self, sql: str, schema: dict[str, Any], failing: str,
               view: str) -> pl.DataFrame:
        """The rows of `sql` over the catalog's views; `failing` says what could not be
        done if DuckDB refuses it, and `view` which view could not be read."""
        def query(_: Derived) -> pl.DataFrame:
            try:
                con = duckdb.connect(str(self.root / CATALOG), read_only=True)
            except duckdb.Error as err:  # a writer swapped the catalog meanwhile
                raise duckdb.IOException(str(err)) from err
            try:
                rows = con.execute(sql).fetchall()
            except duckdb.IOException:
                raise  # its files were replaced since it was opened
            except duckdb.Error as err:
                raise LakeError(f"{failing} ({err})",
                                hint="please report it, with the lake's version") from None
            finally:
                con.close()
            return pl.DataFrame(rows, schema=schema, orient="row")

        return self._reading(query, (duckdb.IOException,), LakeUnusable(
            f"the catalog's {view} cannot be read", file=str(self.root),
            hint="run `rmg-lake rebuild`"))

    def last_day_observed(self, before: date) -> date | None:
        """The last day with an observation before `before` (the day `check` looks at)."""
        days = self._read("observations", end=before - timedelta(days=1), columns=["day"])
        last: date | None = days["day"].max()  # type: ignore[assignment]
        return last

    def _read(self, name: str, start: date | None = None, end: date | None = None,
              columns: list[str] | None = None) -> pl.DataFrame:
        def read(state: Derived) -> pl.DataFrame:
            if name not in state.frames:
                raise _no_such_frame(name)
            files = state.files(name, start, end)
            if not files:  # no day in the range: the frame's columns, no rows
                return pl.read_parquet(self.root / state.files(name)[0], columns=columns,
                                       n_rows=0)
            frame = pl.read_parquet([self.root / f for f in files], columns=columns)
            if (start is None and end is None) or "day" not in frame.columns:
                return frame
            return frame.filter(pl.col("day").is_between(start or date.min, end or date.max))

        return self._reading(read, (OSError, pl.exceptions.PolarsError), LakeUnusable(
            "a derived frame is damaged", file=name, hint="run `rmg-lake rebuild`"))

    def _reading(self, read: Callable[[Derived], T], stale: tuple[type[Exception], ...],
                 damaged: LakeUnusable) -> T:
        """`read` the derived files; if it fails with `stale` (a writer swapped in new
        files since), bring them up to date and read once more, then say `damaged`."""
        for look in (self.refresh, self._latest):  # (a writer may swap files meanwhile)
            try:
                return read(look())
            except stale:
                pass
        raise damaged


_AS_OF = frozenset({"frames", CATALOG, f".{CATALOG}.new", "_derived.json"})


def _check_as_of_folder(folder: Path, lake: Path) -> None:
    """Refuse to write derived files over anything but earlier ones (they delete what they
    do not name), or anywhere in the lake but its as-of-* folders."""
    if folder.exists() and not folder.is_dir():
        raise LakeError("is a file, not a folder", file=str(folder),
                        hint="give --out a new folder")
    inside = folder == lake or (folder.is_relative_to(lake)
                                and not folder.relative_to(lake).parts[0].startswith("as-of-"))
    if inside or (folder.is_dir() and any(p.name not in _AS_OF for p in folder.iterdir())):
        raise LakeError("the folder is not empty", file=str(folder),
                        hint="give --out a new folder (or one an earlier --as-of wrote)")


def _effective(entries: list[LogEntry]) -> set[int]:
    """The ingests and corrections in effect."""
    return {e.batch for e in in_effect(entries)} | {
        e.batch for e in corrections_in_effect(entries)}


def _standing(entries: list[LogEntry], target: int) -> str:
    """Why rolling back `target` would change nothing: what stands in the way."""
    if (by := rolled_back_by(entries).get(target)) is not None:
        return f"batch {by} already rolled it back; roll back batch {by} to undo that"
    return ("other rollbacks in the log have the same effect as undoing it; see "
            "`rmg-lake log`")


def _cursor(entries: list[LogEntry], source: str) -> str | None:
    """The cursor the last batch of `source` that recorded one recorded."""
    return next((e.cursor for e in reversed(entries) if isinstance(e, Batch)
                 and e.source == source and e.cursor), None)


def _days(start: date | None, end: date | None) -> tuple[date, date] | None:
    """The days `start` to `end`, either open (None: every day)."""
    return None if start is None and end is None else (start or date.min, end or date.max)


def _sql(day: date | None) -> str:
    """`day` as a SQL date literal (None: any day)."""
    return f"DATE '{day.isoformat()}'" if day is not None else "day"


def _no_such_frame(relative: str) -> LakeError:
    return LakeError("no such frame in the lake", file=relative,
                     hint="see the names under frames/teams/, or `.tables` in duckdb")


def _lake_errors(root: Path) -> AbstractContextManager[None]:
    """What the file system (or DuckDB, polars) says while the lake is used, as the lake's
    error."""
    return boundary(file=root, kind=LakeUnusable, doing="use the lake folder")


def open_lake(path: str | Path = "lake", *, create: bool = False) -> Lake:
    """Open the lake at `path`; `create` makes a new one there if the folder is new or empty.

    Refused (`UnsupportedPlatform`) on a system rmg-lake does not run on (native Windows)."""
    check_platform()
    root = Path(path).expanduser().resolve()
    meta = root / "_meta.json"
    if root.exists() and not root.is_dir():
        raise LakeUnusable("is a file, not a lake folder", file=str(path))
    if not meta.is_file():
        if not create:
            raise LakeUnusable("no lake here", file=str(path),
                               hint="run `rmg-lake ingest` first, or pass --lake DIR")
        if root.is_dir() and any(p.name not in _OURS and not p.name.startswith(".")
                                 for p in root.iterdir()):  # others may be creating it too
            raise LakeUnusable("the folder is not empty and holds no lake", file=str(path),
                               hint="choose an empty or new folder for --lake")
        with _lake_errors(root):  # _meta.json first: it makes the folder a lake
            own_private_dir(root)  # (a folder made beforehand, too)
            write_once(meta, orjson.dumps(
                {"layout": LAYOUT, "created_at": datetime.now(UTC).isoformat()},
                option=orjson.OPT_INDENT_2), durable=True)
            make_private_dir(root / "_log")
            fsync_dir(root)
    said = _meta(root)
    if said["layout"] not in READABLE:
        raise LakeUnusable(f"layout {said['layout']} is not one this rmg-lake reads "
                           f"({', '.join(map(str, READABLE))})", file=str(path),
                           hint="upgrade rmg-lake")
    if not os.access(root, os.W_OK):
        raise LakeUnusable("the lake folder is not writable", file=str(path))
    return Lake(root)


def _meta(root: Path) -> dict[str, object]:
    """What the lake's _meta.json says (its layout, at least)."""
    try:
        said = orjson.loads((root / "_meta.json").read_bytes())
        if isinstance(said, dict) and "layout" in said:
            return said
    except (OSError, orjson.JSONDecodeError) as err:
        if passing(err):
            raise
    raise LakeUnusable("unreadable _meta.json", file=str(root / "_meta.json"))
