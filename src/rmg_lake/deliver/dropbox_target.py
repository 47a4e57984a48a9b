"""Backups and reports in a Dropbox folder, through the official SDK, checked on arrival.

Every upload sends the content hash of its bytes, so Dropbox refuses what arrives damaged
(`content_hash_mismatch`), and the hash Dropbox reports for the stored file is checked
again. Bytes damaged on the way are a passing fault, like a dropped connection: they are
sent again. A large file goes up in parts of an upload session, each part tried again on
its own; a session that lost its place is resumed where Dropbox says it stands, one that
is gone is started again.
"""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

import dropbox
from dropbox.content_hash import content_hash
from dropbox.exceptions import ApiError
from dropbox.files import CommitInfo, UploadSessionCursor, UploadSessionFinishError, WriteMode
from tenacity import RetryError

from rmg_lake.errors import SourceError, boundary, dropbox_not_found
from rmg_lake.sources.base import SourceFile
from rmg_lake.sources.dropbox import DropboxFolder
from rmg_lake.sources.dropbox_client import Retry, call

__all__ = ["DropboxTarget"]


class DropboxTarget:
    """Backups and reports in a Dropbox folder (`dropbox:/path`), under `backups/` and
    `reports/`: the only places rmg-lake writes there."""

    CHUNK = 8 * 1024 * 1024  # files larger than this go up in an upload session

    def __init__(self, spec: str, client: dropbox.Dropbox, *, attempts: int = 5,
                 chunk: int = CHUNK) -> None:
        self.folder = DropboxFolder(spec, client, attempts=attempts)
        self.client = client
        self.attempts = attempts
        self.chunk = chunk  # the size of one part of an upload session
        self.name = self.folder.name

    def _path(self, key: str) -> str:
        return self.folder.api_path(key)

    def put(self, key: str, data: bytes) -> None:
        """Upload `data`, sent again (up to `attempts` times) when it arrives damaged or
        the connection drops; an error naming `key` when it never arrives whole."""
        with boundary(file=key, kind=SourceError, doing="upload it to Dropbox"):
            try:
                call(self._upload, self._path(key), data, attempts=self.attempts)
            except RetryError as err:
                last = err.last_attempt.exception()
                if not isinstance(last, Retry):
                    raise  # (the boundary words a dropped connection)
                raise SourceError(f"cannot upload it to Dropbox: {last} (sent "
                                  f"{self.attempts} times)", file=key, retryable=True,
                                  hint="check the connection, then run the same command "
                                       "again") from None

    def _upload(self, path: str, data: bytes) -> Any:
        """One try at the whole file; `Retry` when Dropbox stored other bytes than were
        sent (the wrong file is deleted first: no later backup takes it for the object)."""
        mode = WriteMode.overwrite
        if len(data) <= self.chunk:
            metadata = self._checked(self.client.files_upload, data, path, mode=mode)
        else:
            metadata = self._session(path, data, CommitInfo(path=path, mode=mode))
        if metadata.content_hash != content_hash(data):
            with suppress(ApiError):  # (changed meanwhile: not ours to delete)
                call(self.client.files_delete_v2, path, parent_rev=metadata.rev,
                     attempts=self.attempts)
            raise Retry("Dropbox stored other bytes than were sent")
        return metadata

    def _session(self, path: str, data: bytes, commit: CommitInfo) -> Any:
        """`data` in parts of `chunk` bytes, each sent again on its own when it fails."""
        first = data[:self.chunk]
        started = self._part(self.client.files_upload_session_start, first)
        offset, moved = len(first), 0
        while True:
            piece = data[offset:offset + self.chunk]
            cursor = UploadSessionCursor(started.session_id, offset)
            try:
                if offset + len(piece) == len(data):
                    return self._part(self.client.files_upload_session_finish, piece,
                                      cursor, commit)
                self._part(self.client.files_upload_session_append_v2, piece, cursor)
                offset += len(piece)
            except ApiError as err:
                found = _lookup(err)
                if found is None or not (found.is_incorrect_offset() or found.is_not_found()):
                    raise
                if found.is_not_found():  # (a finish that went through unanswered, say)
                    raise Retry("the upload session was lost") from err
                # A part went through unanswered (or short): go on where Dropbox stands.
                offset = found.get_incorrect_offset().correct_offset
                moved += 1
                if moved > self.attempts or not 0 < offset <= len(data):
                    raise Retry("the upload session lost its place") from err

    def _part(self, function: Any, piece: bytes, *args: Any) -> Any:
        """One call of an upload session, tried again when it fails on the way."""
        return call(self._checked, function, piece, *args, attempts=self.attempts)

    @staticmethod
    def _checked(function: Any, piece: bytes, *args: Any, **kwargs: Any) -> Any:
        """`function(piece, ...)` with `piece`'s content hash, which Dropbox checks the
        bytes against on arrival: `Retry` when they arrived damaged."""
        try:
            return function(piece, *args, content_hash=content_hash(piece), **kwargs)
        except ApiError as err:
            if getattr(err.error, "is_content_hash_mismatch", lambda: False)():
                raise Retry("the bytes arrived damaged") from err
            raise

    def get(self, key: str) -> bytes:
        listed = SourceFile(key, 0, datetime.now(UTC), "")
        return self.folder.read(listed)

    def keys(self, prefix: str) -> list[str]:
        return sorted(self._below(prefix, recursive=False))

    def objects(self) -> list[str]:
        return sorted(self._below("backups/objects", recursive=True))

    def _below(self, prefix: str, *, recursive: bool) -> list[str]:
        """The files under `prefix` (none if the folder is not there yet)."""
        folder = DropboxFolder(f"{self.name}/{prefix}", self.client, recursive=recursive)
        try:
            return [f"{prefix}/{f.path}" for f in folder.list()]
        except SourceError as err:
            if dropbox_not_found(err.__cause__):
                return []
            raise

    def delete(self, key: str) -> None:
        with boundary(file=key, kind=SourceError, doing="delete it in Dropbox"):
            try:
                call(self.client.files_delete_v2, self._path(key), attempts=self.attempts)
            except ApiError as err:
                if not dropbox_not_found(err):  # (gone already: as good as deleted)
                    raise


def _lookup(error: ApiError) -> Any:
    """An upload session's error as the union that says where the session stands
    (`incorrect_offset`, `not_found`, ...), or None for any other error."""
    found = error.error
    if isinstance(found, UploadSessionFinishError):
        return found.get_lookup_failed() if found.is_lookup_failed() else None
    return found if hasattr(found, "is_incorrect_offset") else None
