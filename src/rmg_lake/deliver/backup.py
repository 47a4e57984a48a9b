"""Backups: timestamped, verifiable versions of the whole lake, sharing one object store.

    backups/<UTC timestamp>.json     a manifest: every file of the lake by path and sha256
    backups/objects/ab/cdef…         the files' bytes, by sha256, shared by all versions

or, encrypted with the study secret (`rmg_lake.deliver.sealed`), what Dropbox cannot read:

    backups/encrypted.json           says the target is encrypted, and by which key ids
    backups/<UTC timestamp>.enc      the manifest, sealed
    backups/objects/ab/cdef…         each file sealed, named by a keyed hash of its sha256

A target holds one kind or the other, never both. Only what the log names is backed up
(the log, `_meta.json`, and the raw, quarantined, attachment and events files and the
corrections sheets its entries name): derived files are remade by `restore`. Each backup
stores only objects the target lacks, yet every version restores on its own.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from rmg_lake._internal.files import own_private_dir, write_once
from rmg_lake._internal.progress import Track
from rmg_lake.deliver.sealed import Sealer
from rmg_lake.deliver.secret import StudySecret, existing_secret, secret_path
from rmg_lake.deliver.targets import FolderTarget, Target
from rmg_lake.errors import LakeError, LakeUnusable, guarded
from rmg_lake.lake import Lake, open_lake
from rmg_lake.store.log import Batch, Correction
from rmg_lake.store.raw import sha256

__all__ = [
    "BackupResult", "Pruned", "backup", "prune", "restore", "versions",
]

FORMAT = 1
ENCRYPTED = "backups/encrypted.json"  # an encrypted target's mark
_VERSION = re.compile(r"backups/\d{4}-\d\d-\d\dT\d{6}\.\d{6}Z\.(json|enc)")  # a manifest


@dataclass(frozen=True, slots=True)
class BackupResult:
    manifest: str  # its key in the target
    objects: int  # files in this version
    uploaded: int  # of them, new to the target
    key_id: str | None = None  # the study secret's that encrypted it; None: plain


def _object_key(digest: str, sealer: Sealer | None = None) -> str:
    """Where the file of sha256 `digest` is kept (encrypted: under its keyed name)."""
    name = sealer.name(digest) if sealer else digest
    return f"backups/objects/{name[:2]}/{name[2:]}"


@guarded
def backup(lake: Lake, target: Target, *, now: datetime | None = None,
           track: Track | None = None, secret: StudySecret | None = None,
           plain: bool = False) -> BackupResult:
    """Write a new version of `lake` to `target`, uploading only objects it lacks:
    encrypted with `secret` (default: the study secret, if this computer has one), or
    plain with `plain` or without a secret. A target never holds both kinds."""
    if isinstance(target, FolderTarget) and target.root.resolve().is_relative_to(lake.root):
        raise LakeError("a backup goes outside the lake", file=target.name,
                        hint="give --to a folder outside the lake (on another disk, best)")
    secret = None if plain else secret or existing_secret()
    sealer = Sealer(secret) if secret else None
    lake.upgrade()  # (its one rewrite of the log's entries is not to happen meanwhile)
    entries = lake.entries()  # read once: a batch committed meanwhile waits for next time
    batches = [e for e in entries if isinstance(e, Batch)]
    known: dict[str, tuple[str | None, int | None]] = {
        path: (digest, None) for b in entries if isinstance(b, Batch | Correction)
        for path, digest in b.named().items()}
    for b in batches:  # (a file kept: the log says its size too)
        kept = b.frame(["stored", "sha256", "size"])
        known |= dict(zip(kept["stored"], zip(kept["sha256"], kept["size"], strict=True),
                          strict=True))
    known |= {name: (None, None) for name in
              ("_meta.json", *(f"_log/{e.batch:06d}.json" for e in entries))}
    present = set(target.objects())  # one listing, not one question per object
    _one_kind(target, sealer, bool(present))
    objects, missing = [], []
    for path, (digest, size) in sorted(known.items()):
        with _named_by_the_log(path):
            if digest is None:  # the log's own files
                data = (lake.root / path).read_bytes()
                digest, size = sha256(data), len(data)
            elif size is None:  # events files and sheets: the log names no size
                size = (lake.root / path).stat().st_size
        if _object_key(digest, sealer) not in present:
            missing.append((path, digest, size))
            present.add(_object_key(digest, sealer))
        objects.append({"path": path, "sha256": digest, "size": size})
    uploads: Iterable[tuple[str, str, int]] = missing
    if track is not None:
        uploads = track(missing, len(missing), "Backing up", size=lambda item: item[2],
                        total_size=sum(item[2] for item in missing))
    for path, digest, _ in uploads:
        with _named_by_the_log(path):
            data = (lake.root / path).read_bytes()
        if sha256(data) != digest:  # no manifest is written: no version names it
            raise LakeError("a file of the lake is damaged", file=path,
                            hint="run `rmg-lake verify`, and restore it from a backup")
        key = _object_key(digest, sealer)
        target.put(key, sealer.seal(data, key) if sealer else data)
    stamp = (now or datetime.now(UTC)).astimezone(UTC)
    key = f"backups/{stamp:%Y-%m-%dT%H%M%S.%fZ}.{'enc' if sealer else 'json'}"
    manifest = orjson.dumps({"format": FORMAT, "created_at": stamp.isoformat(),
                             "batches": len(entries), "objects": objects},
                            option=orjson.OPT_INDENT_2)
    target.put(key, sealer.seal(manifest, key) if sealer else manifest)
    return BackupResult(key, len(objects), len(missing), sealer.key_id if sealer else None)


def _one_kind(target: Target, sealer: Sealer | None, has_objects: bool) -> None:
    """Refuse to mix encrypted and plain versions in `target`; mark a new encrypted one
    (and a new key id in it) before its first object."""
    keys = target.keys("backups")
    if ENCRYPTED not in keys and sealer is None:
        return
    if sealer is None:
        raise LakeError("holds encrypted backups: a plain one is not mixed in",
                        file=target.name, hint="back up without --plain (this computer "
                        "needs the study secret), or to another folder")
    if ENCRYPTED not in keys and (has_objects or any(map(_VERSION.fullmatch, keys))):
        raise LakeError("holds plain (unencrypted) backups: an encrypted one is not mixed "
                        "in", file=target.name, hint="back up to a new folder (best: then "
                        "delete the plain one), or pass --plain to add a plain version")
    ids = _key_ids(target) if ENCRYPTED in keys else []
    if sealer.key_id not in ids:
        target.put(ENCRYPTED, orjson.dumps(
            {"format": FORMAT, "cipher": "AES-256-GCM", "names": "HMAC-SHA256",
             "key_ids": [*ids, sealer.key_id]}, option=orjson.OPT_INDENT_2))


def _key_ids(target: Target) -> list[str]:
    """The key ids an encrypted target's mark names."""
    try:
        ids = orjson.loads(target.get(ENCRYPTED)).get("key_ids")
        if isinstance(ids, list) and all(isinstance(i, str) for i in ids):
            return ids
    except (orjson.JSONDecodeError, AttributeError):
        pass
    raise LakeError("the mark of an encrypted backup folder is damaged",
                    file=f"{target.name}/{ENCRYPTED}", hint="check the backup folder")


@contextmanager
def _named_by_the_log(path: str) -> Iterator[None]:
    """Reading a file the log names (`path`, relative to the lake): gone, it is a finding."""
    try:
        yield
    except FileNotFoundError:
        raise LakeError("a file the log names is missing from the lake", file=path,
                        hint="run `rmg-lake verify`") from None


def _manifest(target: Target, key: str, sealer: Sealer | None) -> dict[str, Any]:
    """The manifest `key` of `target`: the objects of one version."""
    data = target.get(key)
    if sealer is not None:
        data = sealer.open(data, key, where=f"{target.name}/{key}")
    try:
        manifest = orjson.loads(data)
        if isinstance(manifest, dict) and isinstance(manifest.get("objects"), list):
            return manifest
    except orjson.JSONDecodeError:
        pass
    raise LakeError("this backup version's manifest is damaged", file=f"{target.name}/{key}",
                    hint="restore another version (--version), or check the backup folder")


@guarded
def versions(target: Target) -> list[str]:
    """The manifests' keys, oldest first (other files there are not versions)."""
    return [key for key in target.keys("backups") if _VERSION.fullmatch(key)]


@guarded
def restore(target: Target, lake_dir: str | Path, *, version: str | None = None,
            track: Track | None = None, secret: StudySecret | None = None) -> Lake:
    """Make a new lake at `lake_dir` from a version (default: the newest), derive it, and
    verify it; an encrypted version is opened with `secret` (default: the study secret),
    every file checked for authentication and by its sha256."""
    found = versions(target)
    if not found:
        raise LakeError("no backup there", file=target.name)
    chosen = [k for k in found if version is None or version in k]
    if not chosen:
        raise LakeError(f"no backup version {version!r}", file=target.name,
                        hint=f"the newest is {found[-1]}")
    key = chosen[-1]
    sealer = _opener(target, key, secret)
    manifest = _manifest(target, key, sealer)
    lake_dir = Path(lake_dir)
    if lake_dir.exists() and any(lake_dir.iterdir()):
        raise LakeUnusable("the folder is not empty", file=str(lake_dir),
                           hint="restore into a new folder")
    existed = lake_dir.exists()
    own_private_dir(lake_dir)  # (an empty folder made beforehand, too)
    try:
        return _restore(target, manifest, lake_dir, track, sealer)
    except BaseException:  # what it wrote goes: no half-made lake is left to be taken for one
        for path in lake_dir.iterdir():
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        if not existed:
            lake_dir.rmdir()
        raise


def _opener(target: Target, key: str, secret: StudySecret | None) -> Sealer | None:
    """What opens the version `key` (None: a plain one)."""
    if not key.endswith(".enc"):
        return None
    secret = secret or existing_secret()
    if secret is None:
        raise LakeError("this backup is encrypted, and this computer has no study secret "
                        "to open it", file=target.name, hint=f"copy the study's secret to "
                        f"{secret_path()} (then chmod 600), or name it in RMG_LAKE_SECRET")
    return Sealer(secret)


def _restore(target: Target, manifest: dict[str, Any], lake_dir: Path,
             track: Track | None, sealer: Sealer | None) -> Lake:
    """Write the manifest's objects into the empty `lake_dir`, derive and verify the lake."""
    items: Iterable[dict[str, Any]] = manifest["objects"]
    if track is not None:
        items = track(items, len(manifest["objects"]), "Restoring",
                      size=lambda item: item["size"],
                      total_size=sum(item["size"] for item in manifest["objects"]))
    for item in items:
        key = _object_key(item["sha256"], sealer)
        data = target.get(key)
        if sealer is not None:
            data = sealer.open(data, key, where=f"{target.name}/{key} ({item['path']})")
        if sha256(data) != item["sha256"]:
            raise LakeError("a backed-up file is damaged", file=item["path"],
                            hint="restore an older version")
        write_once(lake_dir / item["path"], data)
    lake = open_lake(lake_dir)
    lake.rebuild(track=track)
    verified = lake.verify(track=track)
    if not verified.ok:
        raise LakeUnusable(f"the restored lake fails verification ({verified.problems[0].file}"
                           f": {verified.problems[0].detail})", file=str(lake_dir),
                           hint="restore an older version")
    return lake


@dataclass(frozen=True, slots=True)
class Pruned:
    kept: list[str]
    deleted: list[str]  # manifests
    objects_deleted: int


def _when(key: str) -> datetime:
    stamp = key.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return datetime.strptime(stamp, "%Y-%m-%dT%H%M%S.%fZ").replace(tzinfo=UTC)


@guarded
def prune(target: Target, *, now: datetime | None = None, every_version_days: int = 14,
          weekly_days: int = 365, secret: StudySecret | None = None) -> Pruned:
    """Keep every version of the last `every_version_days`, then the newest of each week
    for `weekly_days`, and always the newest of all; delete the other manifests first,
    then the objects no kept manifest names (encrypted: read with `secret`, by default
    the study secret)."""
    now = now or datetime.now(UTC)
    found = versions(target)
    kept: set[str] = set(found[-1:])
    weeks: set[tuple[int, int]] = set()
    for key in reversed(found):  # newest first: the first of a week is its newest
        age = (now - _when(key)).days
        week = _when(key).isocalendar()[:2]
        if age <= every_version_days or (age <= weekly_days and week not in weeks):
            kept.add(key)
        if age > every_version_days:
            weeks.add(week)
    deleted = [key for key in found if key not in kept]
    for key in deleted:
        target.delete(key)
    sealer = _opener(target, found[-1], secret) if found else None  # (one kind per target)
    named = {_object_key(item["sha256"], sealer) for key in kept
             for item in _manifest(target, key, sealer)["objects"]}
    unused = [key for key in target.objects() if key not in named]
    for key in unused:
        target.delete(key)
    return Pruned(sorted(kept), deleted, len(unused))
