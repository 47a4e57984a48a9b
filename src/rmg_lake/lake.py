"""The lake as a library: open it, ingest into it, rebuild it, read its frames.

    >>> lake = open_lake("lake")
    >>> lake.frame("wip", "knitting", "treatment")        # a polars DataFrame
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import orjson
import polars as pl

from rmg_lake.catalog import CATALOG, build_catalog, catalog_root
from rmg_lake.config import Config
from rmg_lake.derive import FRAMES, build_frames, team_frame_name, write_frames
from rmg_lake.errors import LakeUnusable
from rmg_lake.files import make_private_dir, sync_all, write_once
from rmg_lake.ingest import Index, collect, new_batch
from rmg_lake.log import Batch, Log
from rmg_lake.progress import Track
from rmg_lake.sources import Source, open_source
from rmg_lake.store import RawStore

__all__ = ["LAYOUT", "IngestResult", "Lake", "open_lake"]

LAYOUT = 1  # version of the on-disk layout, kept in _meta.json


@dataclass(frozen=True, slots=True)
class IngestResult:
    source: str
    batch: Batch | None  # None when the source held nothing new

    @property
    def counts(self) -> dict[str, int]:
        return self.batch.counts if self.batch else Batch.count(())

    @property
    def superseding(self) -> int:
        """New versions of observations the lake already had (or that came earlier)."""
        return sum(1 for f in self.batch.files if f.supersedes) if self.batch else 0

    @property
    def with_unknown_keys(self) -> int:
        return sum(1 for f in self.batch.files if f.extra_keys) if self.batch else 0


class Lake:
    """A lake folder: raw store, log, and the frames and catalog derived from them."""

    def __init__(self, root: Path, config: Config) -> None:
        self.root = root.absolute()
        self.config = config
        self.log = Log(self.root)
        self.store = RawStore(self.root)

    def ingest(self, source: Source | str | Path, *, track: Track | None = None,
               ) -> IngestResult:
        """Take every new file from `source` into the lake as one batch."""
        src = source if not isinstance(source, str | Path) else open_source(str(source))
        batches = self.log.entries()
        records = collect(src, self.store, Index.of(batches), track=track)
        if not records:
            self.ensure_catalog()
            return IngestResult(src.name, None)
        batch = new_batch(len(batches) + 1, src, records)
        sync_all()  # every file the entry names is on disk before the entry is
        self.log.commit(batch)
        self._derive([*batches, batch], track)
        return IngestResult(src.name, batch)

    def rebuild(self, *, track: Track | None = None) -> None:
        """Delete every derived file and make it again from the log and raw files alone."""
        shutil.rmtree(self.root / "frames", ignore_errors=True)
        (self.root / CATALOG).unlink(missing_ok=True)
        self._derive(self.log.entries(), track)

    def _derive(self, batches: list[Batch], track: Track | None) -> None:
        write_frames(self.root, build_frames(self.root, batches, self.config, track))
        build_catalog(self.root)

    def ensure_catalog(self) -> None:
        """Rebuild derived files if missing, and the catalog if the lake has moved."""
        if not (self.root / "frames").is_dir():
            self.rebuild()
        elif catalog_root(self.root) != str(self.root):
            build_catalog(self.root)

    def batches(self) -> list[Batch]:
        return self.log.entries()

    def table(self, name: str) -> pl.DataFrame:
        """A lake-wide frame: observations, roster, wip, interactions, completion, …"""
        if name not in FRAMES:
            raise LakeUnusable(f"no frame called {name!r}", hint=f"one of {', '.join(FRAMES)}")
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
        path = self.root / "frames" / relative
        if not path.is_file():
            if not (self.root / "frames").is_dir():
                raise LakeUnusable("the derived frames are missing", file=str(self.root),
                                   hint="run `rmg-lake rebuild`")
            raise LakeUnusable("no such frame in the lake", file=relative,
                               hint="see the names under frames/teams/")
        return pl.read_parquet(path)


def open_lake(path: str | Path = "lake", *, config: Config | None = None,
              create: bool = False) -> Lake:
    """Open the lake at `path`; `create` makes a new one there if the folder is new or empty."""
    root = Path(path).expanduser().absolute()
    meta = root / "_meta.json"
    if root.exists() and not root.is_dir():
        raise LakeUnusable("is a file, not a lake folder", file=str(path))
    if not meta.is_file():
        if not create:
            raise LakeUnusable("no lake here", file=str(path),
                               hint="run `rmg-lake ingest` first, or pass --lake DIR")
        if root.is_dir() and any(root.iterdir()):
            raise LakeUnusable("the folder is not empty and holds no lake", file=str(path),
                               hint="choose an empty or new folder for --lake")
        try:
            make_private_dir(root)
            write_once(meta, orjson.dumps(
                {"layout": LAYOUT, "created_at": datetime.now(UTC).isoformat()},
                option=orjson.OPT_INDENT_2), durable=True)
        except OSError as err:
            raise LakeUnusable(f"cannot create the lake ({err.strerror})",
                               file=str(path)) from None
    try:
        layout = orjson.loads(meta.read_bytes())["layout"]
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError):
        raise LakeUnusable("unreadable _meta.json", file=str(meta)) from None
    if layout != LAYOUT:
        raise LakeUnusable(f"layout {layout} is not one this rmg-lake reads ({LAYOUT})",
                           file=str(path), hint="upgrade rmg-lake")
    if not os.access(root, os.W_OK):
        raise LakeUnusable("the lake folder is not writable", file=str(path))
    return Lake(root, config or Config())
