"""Which kind of backups a folder holds: plain or encrypted, never both.

A folder is encrypted if it has the mark (`backups/encrypted.json`, naming the key ids
of the secrets that sealed it) or any sealed version (`.enc`); plain if it has a plain
version (`.json`), or objects without the mark (a first plain backup cut short). A folder
with both kinds of version is refused whole: someone put them there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import orjson

from rmg_lake.deliver.sealed import Sealer
from rmg_lake.deliver.secret import StudySecret, load_secret, secret_path
from rmg_lake.deliver.targets import Target
from rmg_lake.errors import LakeError

__all__ = ["ENCRYPTED", "VERSION", "Kind", "kind_of", "mark", "opener"]

ENCRYPTED = "backups/encrypted.json"  # an encrypted folder's mark
_KEY_ID = re.compile(r"[0-9a-f]{12}")
VERSION = re.compile(r"backups/\d{4}-\d\d-\d\dT\d{6}\.\d{6}Z\.(json|enc)")  # a manifest


@dataclass(frozen=True, slots=True)
class Kind:
    encrypted: bool | None  # None: nothing there yet
    versions: list[str]  # the manifests' keys, oldest first
    key_ids: tuple[str, ...] | None  # the mark's (encrypted); None: no mark, or damaged


def kind_of(target: Target, *, has_objects: bool = False) -> Kind:
    """What `target` holds (`has_objects`: whether it has objects, if the caller knows)."""
    keys = target.keys("backups")
    versions = [key for key in keys if VERSION.fullmatch(key)]
    sealed = ENCRYPTED in keys or any(key.endswith(".enc") for key in versions)
    plain = any(key.endswith(".json") for key in versions)
    if sealed and plain:
        raise LakeError("holds both plain and encrypted backup versions: someone put one "
                        "kind there", file=target.name, hint="check the backup folder; "
                        "back up to a new one")
    if sealed:
        return Kind(True, versions, _key_ids(target) if ENCRYPTED in keys else None)
    return Kind(False if plain or has_objects else None, versions, None)


def _key_ids(target: Target) -> tuple[str, ...] | None:
    """The key ids the mark names (None if it is damaged: anything but key ids)."""
    try:
        ids = orjson.loads(target.get(ENCRYPTED)).get("key_ids")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    if isinstance(ids, list) and ids and all(isinstance(i, str) and _KEY_ID.fullmatch(i)
                                             for i in ids):
        return tuple(ids)
    return None


def mark(target: Target, key_ids: tuple[str, ...]) -> None:
    """Mark `target` as encrypted, by the secrets of `key_ids`."""
    target.put(ENCRYPTED, orjson.dumps({"format": 1, "cipher": "AES-256-GCM",
                                        "names": "HMAC-SHA256", "key_ids": list(key_ids)},
                                       option=orjson.OPT_INDENT_2))


def opener(target: Target, kind: Kind, secret: StudySecret | None) -> Sealer | None:
    """What opens the versions of `target` (None: plain ones), with `secret` (default:
    the study secret of this computer)."""
    if not kind.encrypted:
        return None
    if secret is None and secret_path().exists():
        secret = load_secret()
    if secret is None:
        raise LakeError("this backup is encrypted, and this computer has no study secret "
                        "to open it", file=target.name, hint=f"copy the study's secret to "
                        f"{secret_path()} (then chmod 600), or name it in RMG_LAKE_SECRET")
    return Sealer(secret)
