"""The raw store: every file received, kept byte-for-byte under its sha256, written once.

    raw/date=YYYY-MM-DD/<sha256>.json   valid observations, by factory-local day
    quarantine/<sha256><suffix>         files that break the contract (reason in the log)
    attachments/<sha256><suffix>        files that are not observations (photos)
    corrections/<sha256><suffix>        the corrections sheets applied (rmg_lake.corrections.apply)
    events/v<n>/<frame>/<sha256>.parquet   the rows of a batch's new events (rmg_lake.store.events)
    records/<sha256>.parquet            a batch's file records (rmg_lake.store.records)

A stored file means nothing until a committed log entry names it. Writes are not synced
one by one: the ingest syncs once before it commits the entry that names them.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable
from datetime import date
from pathlib import Path, PurePosixPath
from typing import NamedTuple

from rmg_lake._internal.faults import reached
from rmg_lake._internal.files import (
    make_private_dir,
    make_private_file,
    write_atomic,
    write_new,
)

__all__ = ["Kept", "RawStore", "file_sha256", "sha256"]


class Kept(NamedTuple):
    stored: str  # where the bytes are, relative to the lake
    created: bool  # whether this call wrote them (else they were there, whole)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str | None:
    """The sha256 of a file, read a piece at a time; None if it is not there."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    except FileNotFoundError:
        return None
    return digest.hexdigest()


def _suffix(source_path: str) -> str:
    suffix = PurePosixPath(source_path).suffix.lower()
    return suffix if suffix.isascii() and suffix[1:].isalnum() and len(suffix) <= 8 else ""


class RawStore:
    def __init__(self, lake: Path) -> None:
        self.lake = lake

    def put_raw(self, day: date, digest: str, data: bytes) -> Kept:
        return self._put(f"raw/date={day.isoformat()}/{digest}.json", digest, data)

    def put_quarantine(self, source_path: str, digest: str, data: bytes) -> Kept:
        return self._put(f"quarantine/{digest}{_suffix(source_path)}", digest, data)

    def put_attachment(self, source_path: str, digest: str, data: bytes) -> Kept:
        return self._put(f"attachments/{digest}{_suffix(source_path)}", digest, data)

    def put_sheet(self, name: str, digest: str, data: bytes) -> Kept:
        return self._put(f"corrections/{digest}{_suffix(name)}", digest, data)

    def put_events(self, folder: str, digest: str, data: bytes) -> Kept:
        return self._put(f"events/{folder}/{digest}.parquet", digest, data)

    def put_records(self, digest: str, data: bytes) -> Kept:
        return self._put(f"records/{digest}.parquet", digest, data)

    def take_back(self, kept: Kept) -> None:
        """Delete a file this run kept, that its batch names no more (nothing else)."""
        if kept.created:
            (self.lake / kept.stored).unlink(missing_ok=True)

    def put_stream(self, folder: str, source_path: str, chunks: Iterable[bytes],
                   ) -> tuple[str, str, int]:
        """Keep a file too large to hold whole, in `quarantine` or `attachments`, hashing it
        as it is written: (where it is kept, its sha256, its size)."""
        make_private_dir(self.lake / folder)
        digest, size = hashlib.sha256(), 0
        with tempfile.NamedTemporaryFile(dir=self.lake / folder, prefix=".tmp-",
                                         delete=False) as temp:
            try:
                for chunk in chunks:
                    digest.update(chunk)
                    temp.write(chunk)
                    size += len(chunk)
            except BaseException:
                Path(temp.name).unlink()
                raise
        stored = f"{folder}/{digest.hexdigest()}{_suffix(source_path)}"
        kept = self.lake / stored
        if kept.exists() and file_sha256(kept) == digest.hexdigest():  # kept before, whole
            Path(temp.name).unlink()
        else:  # new, or left empty or cut short by a run that died: the right bytes now
            make_private_file(Path(temp.name))
            Path(temp.name).replace(self.lake / stored)
        reached("raw-written")
        return stored, digest.hexdigest(), size

    def _put(self, stored: str, digest: str, data: bytes) -> Kept:
        """Keep `data` at `stored` unless it is there already, whole.

        A new file is written where it belongs (three system calls: the cost of a raw
        file is most of an ingest's); until a committed entry names it, it means nothing.
        One left by a run that died before its commit may be empty or cut short: its
        content is checked, and a wrong one is replaced by the right bytes in one step.
        """
        path = self.lake / stored
        created = True
        try:
            write_new(path, data)
        except FileExistsError:
            created = file_sha256(path) != digest
            if created:  # (two workers keeping the same bytes at once: harmless)
                write_atomic(path, data, sync=False)
        reached("raw-written")
        return Kept(stored, created)
