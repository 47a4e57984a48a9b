"""Lakes of an older layout, brought to this one by the first run that writes to them.

    layout 1   each ingest's file records inline in its log entry
    layout 2   each ingest's file records in `records/<sha256>.parquet`, which its entry
               names (`rmg_lake.store.records`)
    layout 3   a correction may come from a checks workbook: its rows name their sheet
               and flag, and it records the flags reviewed (`Review`); its entries are
               those of layout 2, which layout 3 reads as they are

An upgrade says the same things in the new form: every entry keeps its number, header and
records (the one time an entry is written again; from layout 2 to 3 none is: an older
rmg-lake, which would not read a review, refuses the lake by its `_meta.json`). Each step
can be interrupted: `_meta.json` says the new layout first (an older rmg-lake then
refuses the lake as too new), the records files are on disk before an entry names them,
each entry is replaced in one step (readers see the old one or the new one, both
readable), and `_meta.json` says the upgrade is done last; the next run that writes
finishes it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson

from rmg_lake._internal.files import fsync_dir, sync_all, write_atomic
from rmg_lake.store.log import Batch, Log, read_entry
from rmg_lake.store.raw import RawStore, sha256
from rmg_lake.store.records import record_bytes, records_frame

__all__ = ["LAYOUT", "READABLE", "needed", "upgrade"]

LAYOUT = 3  # the on-disk layout this rmg-lake writes, kept in _meta.json
READABLE = (1, 2, 3)  # the layouts it reads (and upgrades at its first write)


def needed(meta: dict[str, object]) -> bool:
    """Whether a lake whose `_meta.json` says `meta` is to be upgraded (or an upgrade of
    it, interrupted, finished)."""
    return meta["layout"] != LAYOUT or "upgrading" in meta


def upgrade(root: Path, meta: dict[str, object]) -> None:
    """Bring the lake at `root`, whose `_meta.json` says `meta`, to LAYOUT (hold its lock).

    `_meta.json` says the new layout first, and that the upgrade is under way, so that an
    older rmg-lake refuses the lake as too new rather than an entry as unreadable; it
    says the upgrade is done last."""
    since = meta.get("upgrading") or {"from": meta["layout"], "to": LAYOUT,
                                      "at": datetime.now(UTC).isoformat()}
    _say(root, {**meta, "layout": LAYOUT, "upgrading": since})
    log, store = Log(root), RawStore(root)
    moved: list[tuple[Path, Batch]] = []
    for path in log.paths():
        entry = read_entry(path.read_bytes(), root)
        if isinstance(entry, Batch) and entry.inline and entry.records is None:
            data = record_bytes(records_frame(entry.inline))
            kept = store.put_records(sha256(data), data)
            moved.append((path, entry.model_copy(update={"records": kept.stored})))
    sync_all()  # every records file is on disk before an entry names it
    for path, entry in moved:
        write_atomic(path, entry.as_json())
    fsync_dir(log.dir)
    done = {k: v for k, v in meta.items() if k != "upgrading"}
    _say(root, {**done, "layout": LAYOUT,
                "upgrades": [*meta.get("upgrades", []), since]})  # type: ignore[misc]


def _say(root: Path, meta: dict[str, object]) -> None:
    write_atomic(root / "_meta.json", orjson.dumps(meta, option=orjson.OPT_INDENT_2))
    fsync_dir(root)
