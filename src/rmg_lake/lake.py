"""The lake as a library: open it, ingest into it, rebuild it, read its frames.

    >>> lake = open_lake("lake")
    >>> lake.frame("wip", "knitting", "treatment")        # a polars DataFrame
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import orjson
import polars as pl
from filelock import FileLock, Timeout

from rmg_lake.catalog import CATALOG, build_catalog
from rmg_lake.config import Settings
from rmg_lake.derive import FRAMES, build_frames, team_frame_name, write_frames
from rmg_lake.errors import LakeError, LakeUnusable
from rmg_lake.files import fsync_dir, make_private_dir, sync_all, write_atomic, write_once
from rmg_lake.ingest import Index, collect, new_batch
from rmg_lake.log import Batch, Log, settings_in_force
from rmg_lake.progress import Track
from rmg_lake.sources import Source, open_source
from rmg_lake.store import RawStore
from rmg_lake.verify import Verified, remove_orphans, verify

__all__ = ["LAYOUT", "IngestResult", "Lake", "open_lake"]

LAYOUT = 1  # version of the on-disk layout, kept in _meta.json
_DERIVED = "_derived.json"  # which log, in which folder, the derived files were built from
_OURS = frozenset({"_meta.json", "_log"})  # what a lake being created already holds


@dataclass(frozen=True, slots=True)
class IngestResult:
    source: str
    batch: Batch | None  # None when the source held nothing new and the settings were the same
    vanished: int = 0  # files that went away while being read; taken if they come back
    gone: tuple[str, ...] = ()  # deleted or moved away at the source: the lake keeps them
    relisted: bool = False  # the source's stored cursor had expired: listed whole again

    @property
    def counts(self) -> dict[str, int]:
        return self.batch.counts if self.batch else Batch.count(())

    @property
    def superseding(self) -> int:
        """New versions that replace the current version of an observation."""
        return sum(1 for f in self.batch.files if f.supersedes) if self.batch else 0

    @property
    def with_unknown_keys(self) -> int:
        return sum(1 for f in self.batch.files if f.extra_keys) if self.batch else 0


class Lake:
    """A lake folder: raw store, log, and the frames and catalog derived from them.

    One process at a time writes (an ingest, a rebuild, or a reader bringing the derived
    files up to date): the others wait for `lake/.lock`, up to `wait` seconds, calling
    `on_wait` once if they have to.
    """

    def __init__(self, root: Path, *, wait: float = 600,
                 on_wait: Callable[[], None] | None = None) -> None:
        self.root = root.resolve()
        self.log = Log(self.root)
        self.store = RawStore(self.root)
        self.wait, self.on_wait = wait, on_wait
        self._lock = FileLock(self.root / ".lock", mode=0o600, is_singleton=True)

    def ingest(self, source: Source | str | Path, *, settings: Settings | None = None,
               track: Track | None = None, workers: int = 8) -> IngestResult:
        """Take every new file from `source` into the lake as one batch.

        Up to `workers` files are read at once (downloads wait mostly on the network).

        `settings` (protocol, calendar, expected teams) are recorded with the batch when
        they differ from those in force (and always with the first), and shape the frames
        from then on; None keeps the lake's. New settings alone make a batch of no files.
        """
        if isinstance(source, str | Path):
            source = open_source(str(source), exclude=[self.root])
        with self._writing():
            batches = self.log.entries()
            if not batches:
                settings = settings or Settings()  # the first batch always records them
            elif settings == settings_in_force(batches):
                settings = None
            source.resume(next((b.cursor for b in reversed(batches)
                                if b.source == source.name and b.cursor), None))
            got = collect(source, self.store, Index.of(batches), track=track,
                          workers=workers)
            if not got.records and not got.deferred and settings is None:  # nothing to record
                self._refresh_locked(batches)
                return IngestResult(source.name, None, got.vanished, tuple(source.gone),
                                    source.relisted)
            batch = new_batch(len(batches) + 1, source, settings, got)
            sync_all()  # every file the entry names is on disk before the entry is
            self.log.commit(batch)
            self._derive([*batches, batch], track)
        return IngestResult(source.name, batch, got.vanished, tuple(source.gone),
                            source.relisted)

    def rebuild(self, *, track: Track | None = None) -> None:
        """Make every derived file again from the log and raw files alone.

        Nothing derived is read; the new frames and catalog replace the old ones whole.
        Readers of the library wait for it to finish, then read the new ones.
        """
        with self._writing():
            self._derive(self.log.entries(), track)

    def refresh(self) -> None:
        """Rebuild the derived files if they are missing, behind the log, or moved."""
        if not self._up_to_date(self.log.count()):
            with self._writing():
                self._refresh_locked(self.log.entries())

    def _up_to_date(self, batches: int) -> bool:
        try:
            built = orjson.loads((self.root / _DERIVED).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return False
        return built == {"root": str(self.root), "batches": batches} \
            and (self.root / "frames").is_dir() and (self.root / CATALOG).is_file()

    def _refresh_locked(self, batches: list[Batch]) -> None:
        if not self._up_to_date(len(batches)):  # another process may have done it meanwhile
            self._derive(batches, None)

    def _derive(self, batches: list[Batch], track: Track | None) -> None:
        (self.root / _DERIVED).unlink(missing_ok=True)
        write_frames(self.root, build_frames(self.root, batches, track))
        build_catalog(self.root)
        write_atomic(self.root / _DERIVED,  # last: it says the derived files are current
                     orjson.dumps({"root": str(self.root), "batches": len(batches)}))

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the lake's lock, and turn what the file system says into a lake error."""
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            if self.on_wait is not None:
                self.on_wait()
            try:
                self._lock.acquire(timeout=self.wait)
            except Timeout:
                raise LakeUnusable("another rmg-lake run is writing this lake",
                                   file=str(self.root),
                                   hint="wait for it to finish, then run this again") from None
        try:
            with _lake_errors(self.root):
                yield
        finally:
            self._lock.release()

    def verify(self, *, repair: bool = False, track: Track | None = None) -> Verified:
        """Re-hash every file the log names and look for orphans (see `rmg_lake.verify`);
        `repair` then deletes the orphans, and nothing else."""
        with self._writing():  # an ingest's files are orphans until its entry commits
            verified = verify(self.root, track=track)
            if repair:
                remove_orphans(self.root, verified)
        return verified

    def batches(self) -> list[Batch]:
        return self.log.entries()

    def table(self, name: str) -> pl.DataFrame:
        """A lake-wide frame: observations, roster, wip, interactions, completion, …"""
        if name not in FRAMES:
            raise LakeError(f"no frame called {name!r}", hint=f"one of {', '.join(FRAMES)}")
        return self._read(f"{name}.parquet")

    def frame(self, task: str, department: str, team: str) -> pl.DataFrame:
        """The frame of one task, department and team (all factories)."""
        return self._read(f"teams/{team_frame_name(task, department, team)}.parquet")

    def completion(self, start: date | None = None, end: date | None = None) -> pl.DataFrame:
        frame = self.table("completion")
        if start:
            frame = frame.filter(pl.col("day") >= start)
        if end:
            frame = frame.filter(pl.col("day") <= end)
        return frame

    def _read(self, relative: str) -> pl.DataFrame:
        self.refresh()
        path = self.root / "frames" / relative
        if not path.is_file() and self._up_to_date(self.log.count()):
            raise _no_such_frame(relative)
        try:
            return pl.read_parquet(path)
        except (OSError, pl.exceptions.PolarsError):
            pass  # a writer began swapping the frames in since `refresh`: wait, look again
        with self._writing():
            self._refresh_locked(self.log.entries())
            if not path.is_file():
                raise _no_such_frame(relative)
            try:
                return pl.read_parquet(path)
            except (OSError, pl.exceptions.PolarsError):
                raise LakeUnusable("a derived frame is damaged", file=str(path),
                                   hint="run `rmg-lake rebuild`") from None


def _no_such_frame(relative: str) -> LakeError:
    return LakeError("no such frame in the lake", file=relative,
                     hint="see the names under frames/teams/")


@contextmanager
def _lake_errors(root: Path) -> Iterator[None]:
    """The one place where the file system's errors become a researcher's errors."""
    try:
        yield
    except OSError as err:
        raise LakeUnusable(f"cannot use the lake folder ({err.strerror or err})",
                           file=str(err.filename or root)) from None
    except (pl.exceptions.PolarsError, duckdb.Error) as err:  # e.g. a full disk
        raise LakeUnusable(f"cannot write the derived files ({err})", file=str(root),
                           hint="free disk space, then run `rmg-lake rebuild`") from None


def open_lake(path: str | Path = "lake", *, create: bool = False) -> Lake:
    """Open the lake at `path`; `create` makes a new one there if the folder is new or empty."""
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
            make_private_dir(root)
            write_once(meta, orjson.dumps(
                {"layout": LAYOUT, "created_at": datetime.now(UTC).isoformat()},
                option=orjson.OPT_INDENT_2), durable=True)
            make_private_dir(root / "_log")
            fsync_dir(root)
    try:
        layout = orjson.loads(meta.read_bytes())["layout"]
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
        raise LakeUnusable("unreadable _meta.json", file=str(meta)) from None
    if layout != LAYOUT:
        raise LakeUnusable(f"layout {layout} is not one this rmg-lake reads ({LAYOUT})",
                           file=str(path), hint="upgrade rmg-lake")
    if not os.access(root, os.W_OK):
        raise LakeUnusable("the lake folder is not writable", file=str(path))
    return Lake(root)
