"""Backups Dropbox cannot read: every object and manifest sealed with the study secret.

    sealed file   b"rmg-lake sealed 1\\n" + key id (12 hex digits) + b"\\n"
                  + nonce (12 bytes) + AES-256-GCM of (length, bytes, zero padding), tag
    object name   backups/objects/ab/cdef…: HMAC-SHA256 of the file's SHA-256

Two keys come from the study secret by HKDF-SHA256: one encrypts, the other names the
objects. A name keyed so says nothing to whoever lacks the secret (a backup cannot be
asked whether it holds a file one has), yet the same file has the same name in every
version, so each backup still uploads only what is new. The bytes are padded (Padmé: at
most 12% more) so that a sealed file's size does not single out the file either. A sealed
file is bound to its name (authenticated with it): bytes damaged, or moved to another
name, fail to open. The key id in each file says which secret sealed it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from typing import TYPE_CHECKING

from rmg_lake.deliver.secret import StudySecret
from rmg_lake.errors import LakeError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["LARGEST", "MAGIC", "Sealer", "key_id_of", "padded"]

MAGIC = b"rmg-lake sealed 1\n"
LARGEST = 2**31 - 2**20  # bytes one AES-GCM call seals (the library's limit, less padding)
_KEY_ID = re.compile(rb"[0-9a-f]{12}\n")
_HEADER = len(MAGIC) + 13
_NONCE, _LENGTH = 12, 8
_AGAIN = "restore another version, or check the backup folder"


def _derived(secret: StudySecret, purpose: bytes) -> bytes:
    """A key of its own for `purpose`, from the study secret."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"rmg-lake backups: " + purpose).derive(secret.key)


def padded(size: int) -> int:
    """Padmé (Nikitin et al., 2019): `size` rounded up so that only O(log log size) bits
    of it show, at most 12% more."""
    if size < 2:
        return size
    exponent = size.bit_length() - 1  # ⌊log2 size⌋
    mask = (1 << (exponent - exponent.bit_length())) - 1  # the low bits made zero
    return (size + mask) & ~mask


def key_id_of(blob: bytes) -> str | None:
    """The key id a sealed file names (None: not a sealed file, or a damaged header)."""
    if not blob.startswith(MAGIC) or not _KEY_ID.fullmatch(blob[len(MAGIC):_HEADER]):
        return None
    return blob[len(MAGIC):_HEADER - 1].decode("ascii")


class Sealer:
    """Seals and opens a backup's files with the keys of one study secret."""

    def __init__(self, secret: StudySecret) -> None:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # (only a backup's)

        self.key_id = secret.key_id
        self._cipher: AESGCM = AESGCM(_derived(secret, b"encryption"))
        self._names = _derived(secret, b"object names")

    def __repr__(self) -> str:  # the keys stay out of tracebacks and logs
        return f"Sealer(key_id={self.key_id!r})"

    def name(self, digest: str) -> str:
        """The object name of the file whose SHA-256 is `digest`."""
        return hmac.new(self._names, digest.encode(), hashlib.sha256).hexdigest()

    def seal(self, data: bytes, name: str) -> bytes:
        """`data` padded, encrypted and authenticated, bound to `name` (its key in the
        target)."""
        if len(data) > LARGEST:
            raise LakeError(f"is {len(data) / 2**30:.1f} GiB: an encrypted backup holds "
                            "files of up to 2 GiB", file=name,
                            hint="keep such a file out of the sync folder, or back up "
                                 "--plain to a folder of its own")
        inner = len(data).to_bytes(_LENGTH, "big") + data
        inner += bytes(padded(len(inner)) - len(inner))
        header = MAGIC + self.key_id.encode() + b"\n"
        nonce = os.urandom(_NONCE)
        return header + nonce + self._cipher.encrypt(nonce, inner, header + name.encode())

    def open(self, blob: bytes, name: str, *, where: str,
             key_ids: tuple[str, ...] | None = None) -> bytes:
        """The bytes sealed in `blob` at `name`. A LakeError naming `where` if it was
        sealed with another secret (one of the folder's `key_ids`, when they are known),
        or is damaged: not a sealed file, or failing authentication."""
        from cryptography.exceptions import InvalidTag

        found = key_id_of(blob)
        if found not in (None, self.key_id) and (key_ids is None or found in key_ids):
            raise LakeError(f"was encrypted with another study secret (key id {found}; "
                            f"this computer's is {self.key_id})", file=where,
                            hint="copy the study's secret here from the computer that "
                                 "made it (`rmg-lake secret status` names it)")
        header, nonce = blob[:_HEADER], blob[_HEADER:_HEADER + _NONCE]
        try:
            if found != self.key_id:
                raise InvalidTag  # (a damaged header, or no sealed file at all)
            inner = self._cipher.decrypt(nonce, blob[_HEADER + _NONCE:],
                                         header + name.encode())
        except InvalidTag:
            raise LakeError("is damaged, or is not the file of that name (it fails "
                            "authentication)", file=where, hint=_AGAIN) from None
        size = int.from_bytes(inner[:_LENGTH], "big")
        return inner[_LENGTH:_LENGTH + size]
