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
from pathlib import Path, PurePosixPath
from typing import Any

import orjson

from rmg_lake._internal.files import own_private_dir, write_once
from rmg_lake._internal.progress import Track
from rmg_lake.deliver.backup_kind import kind_of, mark, opener
from rmg_lake.deliver.sealed import Sealer
from rmg_lake.deliver.secret import StudySecret, existing_secret
from rmg_lake.deliver.targets import FolderTarget, Target
from rmg_lake.errors import LakeError, LakeUnusable, guarded
from rmg_lake.lake import Lake, open_lake
from rmg_lake.store.log import Batch, Correction
from rmg_lake.store.raw import sha256

__all__ = [
    "BackupResult", "Pruned", "backup", "prune", "restore", "versions",
]

FORMAT = 1
_SHA256 = re.compile(r"[0-9a-f]{64}")


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
    _one_kind(target, sealer, plain, bool(present))
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


def _one_kind(target: Target, sealer: Sealer | None, plain: bool, has_objects: bool) -> None:
    """Refuse to mix encrypted and plain versions in `target`, or secrets in an encrypted
    one; mark a new encrypted one before its first object."""
    kind = kind_of(target, has_objects=has_objects)
    if sealer is None:
        if kind.encrypted:
            raise LakeError("holds encrypted backups: a plain one is not mixed in",
                            file=target.name, hint="leave out --plain, or back up to "
                            "another folder" if plain else "copy the study's secret to "
                            "this computer (`rmg-lake secret status` names it where it was "
                            "made), or back up to another folder")
        return
    if kind.encrypted is False:
        raise LakeError("holds plain (unencrypted) backups: an encrypted one is not mixed "
                        "in", file=target.name, hint="back up to a new folder (then delete "
                        "the plain one), or pass --plain (`backup_plain = true` in "
                        "rmg-lake.toml) to add plain versions")
    if kind.key_ids is not None and sealer.key_id in kind.key_ids:
        return
    if kind.key_ids:  # another secret's folder (the mark says so)
        raise LakeError(f"holds backups encrypted with another study secret (key id "
                        f"{', '.join(kind.key_ids)}; this computer's is {sealer.key_id})",
                        file=target.name, hint="copy the study's secret here from the "
                        "computer that made it, or back up to another folder")
    for key in kind.versions[-1:]:  # no mark, or a damaged one: the newest version says
        sealer.open(target.get(key), key, where=f"{target.name}/{key}")
    mark(target, (sealer.key_id,))


@contextmanager
def _named_by_the_log(path: str) -> Iterator[None]:
    """Reading a file the log names (`path`, relative to the lake): gone, it is a finding."""
    try:
        yield
    except FileNotFoundError:
        raise LakeError("a file the log names is missing from the lake", file=path,
                        hint="run `rmg-lake verify`") from None


def _manifest(target: Target, key: str, sealer: Sealer | None,
              key_ids: tuple[str, ...] | None = None) -> dict[str, Any]:
    """The manifest `key` of `target`, opened with `sealer` if it is sealed: the objects
    of one version, each a lake path (relative, never leaving the lake), a sha256 and a
    size."""
    where = f"{target.name}/{key}"
    data = target.get(key)
    if sealer is not None:
        data = sealer.open(data, key, where=where, key_ids=key_ids)
    try:
        manifest = orjson.loads(data)
    except orjson.JSONDecodeError:
        manifest = None
    if isinstance(manifest, dict) and isinstance(manifest.get("objects"), list) \
            and all(map(_sound, manifest["objects"])):
        return manifest
    raise LakeError("this backup version's manifest is damaged", file=where,
                    hint="restore another version (--version), or check the backup folder")


def _sound(item: object) -> bool:
    """Whether a manifest's item names a file inside a lake, its sha256 and size."""
    if not isinstance(item, dict):
        return False
    path, digest, size = item.get("path"), item.get("sha256"), item.get("size")
    if not isinstance(path, str) or not isinstance(digest, str) or not isinstance(size, int):
        return False
    within = PurePosixPath(path)
    return (bool(within.parts) and not within.is_absolute() and ".." not in within.parts
            and _SHA256.fullmatch(digest) is not None and size >= 0)


@guarded
def versions(target: Target) -> list[str]:
    """The manifests' keys, oldest first (other files there are not versions); refused
    for a folder holding both plain and encrypted ones."""
    return kind_of(target).versions


@guarded
def restore(target: Target, lake_dir: str | Path, *, version: str | None = None,
            track: Track | None = None, secret: StudySecret | None = None) -> Lake:
    """Make a new lake at `lake_dir` from a version (default: the newest), derive it, and
    verify it; an encrypted version is opened with `secret` (default: the study secret),
    every file checked for authentication and by its sha256."""
    kind = kind_of(target)
    found = kind.versions
    if not found:
        raise LakeError("no backup there", file=target.name)
    chosen = [k for k in found if version is None or version in k]
    if not chosen:
        raise LakeError(f"no backup version {version!r}", file=target.name,
                        hint=f"the newest is {found[-1]}")
    key = chosen[-1]
    sealer = opener(target, kind, secret)
    manifest = _manifest(target, key, sealer, kind.key_ids)
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
    kind = kind_of(target)
    found = kind.versions
    kept: set[str] = set(found[-1:])
    weeks: set[tuple[int, int]] = set()
    for key in reversed(found):  # newest first: the first of a week is its newest
        age = (now - _when(key)).days
        week = _when(key).isocalendar()[:2]
        if age <= every_version_days or (age <= weekly_days and week not in weeks):
            kept.add(key)
        if age > every_version_days:
            weeks.add(week)
    sealer = opener(target, kind, secret) if found else None
    named = {_object_key(item["sha256"], sealer) for key in sorted(kept)  # (each opened
             for item in _manifest(target, key, sealer, kind.key_ids)["objects"]}  # first)
    deleted = [key for key in found if key not in kept]
    for key in deleted:
        target.delete(key)
    unused = [key for key in target.objects() if key not in named]
    for key in unused:
        target.delete(key)
    return Pruned(sorted(kept), deleted, len(unused))
