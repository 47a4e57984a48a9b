"""Backups Dropbox cannot read: every object and manifest sealed with the study secret.

    sealed file   b"rmg-lake sealed 1\\n" + key id (12 hex digits) + b"\\n"
                  + nonce (12 bytes) + AES-256-GCM ciphertext and tag
    object name   backups/objects/ab/cdef…: HMAC-SHA256 of the file's SHA-256

Two keys come from the study secret by HKDF-SHA256: one encrypts, the other names the
objects. A name keyed so says nothing to whoever lacks the secret (a backup cannot be
asked whether it holds a file one has), yet the same file has the same name in every
version, so each backup still uploads only what is new. A sealed file is bound to its
name (authenticated with it): bytes damaged, or moved to another name, fail to open.
The key id in each file says which secret sealed it, so a study that later adds a secret
still opens the versions the first one sealed.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from rmg_lake.deliver.secret import StudySecret
from rmg_lake.errors import LakeError

__all__ = ["MAGIC", "Sealer", "key_id_of"]

MAGIC = b"rmg-lake sealed 1\n"
_ID = 12  # hex digits of a key id
_NONCE = 12
_HEADER = len(MAGIC) + _ID + 1


def _derived(secret: StudySecret, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"rmg-lake backups: " + purpose).derive(secret.key)


def key_id_of(blob: bytes) -> str | None:
    """The key id a sealed file names (None: not a sealed file)."""
    if not blob.startswith(MAGIC) or len(blob) < _HEADER + _NONCE:
        return None
    return blob[len(MAGIC):len(MAGIC) + _ID].decode("ascii", errors="replace")


class Sealer:
    """Seals and opens a backup's files with the keys of one study secret."""

    def __init__(self, secret: StudySecret) -> None:
        self.key_id = secret.key_id
        self._cipher = AESGCM(_derived(secret, b"encryption"))
        self._names = _derived(secret, b"object names")

    def __repr__(self) -> str:  # the keys stay out of tracebacks and logs
        return f"Sealer(key_id={self.key_id!r})"

    def name(self, digest: str) -> str:
        """The object name of the file whose SHA-256 is `digest`."""
        return hmac.new(self._names, digest.encode(), hashlib.sha256).hexdigest()

    def seal(self, data: bytes, name: str) -> bytes:
        """`data` encrypted and authenticated, bound to `name` (its key in the target)."""
        header = MAGIC + self.key_id.encode() + b"\n"
        nonce = os.urandom(_NONCE)
        return header + nonce + self._cipher.encrypt(nonce, data, header + name.encode())

    def open(self, blob: bytes, name: str, *, where: str) -> bytes:
        """The bytes sealed in `blob` at `name`; a LakeError naming `where` if it is not
        a sealed file, was sealed with another secret, or fails authentication."""
        found = key_id_of(blob)
        if found is None:
            raise LakeError("is not an encrypted backup file", file=where,
                            hint="restore another version, or check the backup folder")
        if found != self.key_id:
            raise LakeError(f"was encrypted with another study secret (key id {found}; "
                            f"this computer's is {self.key_id})", file=where,
                            hint="copy the study's secret here, as `rmg-lake secret status` "
                                 "names it")
        header, nonce = blob[:_HEADER], blob[_HEADER:_HEADER + _NONCE]
        try:
            return self._cipher.decrypt(nonce, blob[_HEADER + _NONCE:], header + name.encode())
        except InvalidTag:
            raise LakeError("is damaged, or is not the file of that name (it fails "
                            "authentication)", file=where,
                            hint="restore another version, or check the backup folder") from None
