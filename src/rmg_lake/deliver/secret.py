"""The study secret: the key of the pseudonyms that replace people's codes in exports, and
of the encrypted backups (`rmg_lake.deliver.sealed`).

    p_3f9a0c7be1d24a56 = "p_" + HMAC-SHA256(secret, code), its first 16 hex digits

It is made once (`rmg-lake secret init`) and kept outside the lake and the repository, in
`<config dir>/rmg-lake/study-secret` (0600; `RMG_LAKE_SECRET` names another file). The
same code gets the same pseudonym on every computer holding the same secret, and without
the secret a pseudonym cannot be traced back. It is never printed: only its *key id*
(the start of its own hash) says which secret an export used.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import typer

from rmg_lake._internal.files import make_private_dir, open_to_others, read_file, write_once
from rmg_lake.errors import LakeError, boundary

__all__ = ["StudySecret", "existing_secret", "init_secret", "load_secret", "secret_path"]

_BYTES = 32
_DIGITS = 16  # hex digits of a pseudonym: 64 bits, so no two codes of a study share one


@dataclass(frozen=True, slots=True)
class StudySecret:
    key: bytes
    path: Path

    def __repr__(self) -> str:  # the key stays out of tracebacks and logs
        return f"StudySecret(key_id={self.key_id!r}, path={str(self.path)!r})"

    @property
    def key_id(self) -> str:
        """Which secret this is, safe to show: the start of its SHA-256."""
        return hashlib.sha256(b"rmg-lake key id\0" + self.key).hexdigest()[:12]

    def pseudonym(self, code: str) -> str:
        return "p_" + hmac.new(self.key, code.encode(), hashlib.sha256).hexdigest()[:_DIGITS]


def secret_path() -> Path:
    """Where the study secret is kept: RMG_LAKE_SECRET, else the user's config dir."""
    named = os.environ.get("RMG_LAKE_SECRET")
    return Path(named).expanduser() if named else \
        Path(typer.get_app_dir("rmg-lake")) / "study-secret"


def init_secret() -> StudySecret:
    """Make the study secret; refuses to replace one (its pseudonyms would all change)."""
    path = secret_path()
    if path.is_dir():
        raise LakeError("is a folder, not the study secret", file=str(path),
                        hint="RMG_LAKE_SECRET names the secret's file")
    if path.exists() and not path.is_file():
        raise LakeError("is a named pipe or a device, not the study secret", file=str(path),
                        hint="RMG_LAKE_SECRET names the secret's file")
    key = secrets.token_bytes(_BYTES)
    with boundary(file=path, doing="write the study secret"):
        make_private_dir(path.parent)  # (never a folder of the user's own: only made)
        made = write_once(path, key.hex().encode() + b"\n", durable=True)
    if not made:
        raise LakeError("there is a study secret already", file=str(path),
                        hint="keep it: every export's pseudonyms come from it (`rmg-lake "
                             "secret status` checks it)")
    return StudySecret(key, path)


def load_secret() -> StudySecret:
    """The study secret; a LakeError saying how to get one if there is none."""
    path = secret_path()
    with boundary(file=path, doing="read the study secret"):
        try:
            mode = path.stat().st_mode
            text = read_file(path).decode("ascii", errors="replace").strip()
        except FileNotFoundError:
            raise LakeError("no study secret on this computer", file=str(path),
                            hint="run `rmg-lake secret init` once for the study, or copy "
                                 "the file from the computer that made it (then chmod 600)"
                            ) from None
    if open_to_others(mode):
        raise LakeError("the study secret is readable by others", file=str(path),
                        hint=f"chmod 600 {path}")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != _BYTES:
        raise LakeError("the study secret is damaged", file=str(path),
                        hint="copy it again from where it was made")
    return StudySecret(key, path)


def existing_secret() -> StudySecret | None:
    """The study secret if this computer has one; None if it has none (a LakeError if it
    is there but unusable, or RMG_LAKE_SECRET names a file that is not there: a volume
    not mounted is no reason for a plain backup)."""
    named = os.environ.get("RMG_LAKE_SECRET")
    return load_secret() if named or os.path.lexists(secret_path()) else None
