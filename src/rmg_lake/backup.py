"""Backups: timestamped, verifiable versions of the whole lake, sharing one object store.

    backups/<UTC timestamp>.json     a manifest: every file of the lake by path and sha256
    backups/objects/ab/cdef…         the files' bytes, by sha256, shared by all versions

Only what the log names is backed up (the log, `_meta.json`, and the raw, quarantined and
attachment files its entries name): derived files are remade by `restore`. Each backup
stores only objects the target lacks, yet every version restores on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import orjson

from rmg_lake.errors import LakeError, LakeUnusable
from rmg_lake.files import write_atomic, write_once
from rmg_lake.lake import Lake, open_lake
from rmg_lake.store import sha256

__all__ = ["BackupResult", "FolderTarget", "Target", "backup", "restore", "versions"]

FORMAT = 1


class Target(Protocol):
    """Where backups go: keys are `/`-separated paths below the target."""

    name: str

    def has(self, key: str) -> bool: ...

    def put(self, key: str, data: bytes) -> None:
        """Store `data` at `key`, checked after it is written."""
        ...

    def get(self, key: str) -> bytes: ...

    def keys(self, prefix: str) -> list[str]: ...


class FolderTarget:
    """A local folder: a USB disk, or the tests."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().absolute()
        self.name = str(self.root)

    def has(self, key: str) -> bool:
        return (self.root / key).is_file()

    def put(self, key: str, data: bytes) -> None:
        write_atomic(self.root / key, data)
        if sha256((self.root / key).read_bytes()) != sha256(data):
            raise LakeError("the backup copy does not match what was written", file=key)

    def get(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def keys(self, prefix: str) -> list[str]:
        folder = self.root / prefix
        return sorted(p.relative_to(self.root).as_posix() for p in folder.glob("*.json")) \
            if folder.is_dir() else []


@dataclass(frozen=True, slots=True)
class BackupResult:
    manifest: str  # its key in the target
    objects: int  # files in this version
    uploaded: int  # of them, new to the target


def _object_key(digest: str) -> str:
    return f"backups/objects/{digest[:2]}/{digest[2:]}"


def backup(lake: Lake, target: Target, *, now: datetime | None = None) -> BackupResult:
    """Write a new version of `lake` to `target`."""
    batches = lake.batches()
    paths = {"_meta.json", *(p.relative_to(lake.root).as_posix()
                             for p in sorted((lake.root / "_log").glob("[0-9]*.json")))}
    paths |= {f.stored for b in batches for f in b.files}
    objects, uploaded = [], 0
    for path in sorted(paths):
        data = (lake.root / path).read_bytes()
        digest = sha256(data)
        if not target.has(_object_key(digest)):
            target.put(_object_key(digest), data)
            uploaded += 1
        objects.append({"path": path, "sha256": digest, "size": len(data)})
    stamp = (now or datetime.now(UTC)).astimezone(UTC)
    key = f"backups/{stamp:%Y-%m-%dT%H%M%S.%fZ}.json"
    manifest = {"format": FORMAT, "created_at": stamp.isoformat(), "batches": len(batches),
                "objects": objects}
    target.put(key, orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
    return BackupResult(key, len(objects), uploaded)


def versions(target: Target) -> list[str]:
    """The manifests' keys, oldest first."""
    return target.keys("backups")


def restore(target: Target, lake_dir: Path, *, version: str | None = None) -> Lake:
    """Make a new lake at `lake_dir` from a version (default: the newest) and derive it."""
    found = versions(target)
    if not found:
        raise LakeError("no backup there", file=target.name)
    chosen = [k for k in found if version is None or version in k]
    if not chosen:
        raise LakeError(f"no backup version {version!r}", file=target.name,
                        hint=f"the newest is {found[-1]}")
    key = chosen[-1]
    manifest = orjson.loads(target.get(key))
    if lake_dir.exists() and any(lake_dir.iterdir()):
        raise LakeUnusable("the folder is not empty", file=str(lake_dir),
                           hint="restore into a new folder")
    for item in manifest["objects"]:
        data = target.get(_object_key(item["sha256"]))
        if sha256(data) != item["sha256"]:
            raise LakeError("a backed-up file is damaged", file=item["path"],
                            hint="restore an older version")
        write_once(lake_dir / item["path"], data)
    lake = open_lake(lake_dir)
    lake.rebuild()
    return lake
