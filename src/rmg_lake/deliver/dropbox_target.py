"""Backups and reports in a Dropbox folder, through the official SDK, checked on arrival."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dropbox
from dropbox.content_hash import content_hash
from dropbox.exceptions import ApiError

from rmg_lake.errors import SourceError, boundary, dropbox_not_found
from rmg_lake.sources.base import SourceFile
from rmg_lake.sources.dropbox import DropboxFolder
from rmg_lake.sources.dropbox_client import call

__all__ = ["DropboxTarget"]


class DropboxTarget:
    """Backups and reports in a Dropbox folder (`dropbox:/path`), under `backups/` and
    `reports/`: the only places rmg-lake writes there."""

    CHUNK = 8 * 1024 * 1024  # files larger than this go up in an upload session

    def __init__(self, spec: str, client: dropbox.Dropbox, *, attempts: int = 5) -> None:
        self.folder = DropboxFolder(spec, client, attempts=attempts)
        self.client = client
        self.attempts = attempts
        self.name = self.folder.name

    def _path(self, key: str) -> str:
        return self.folder.api_path(key)

    def put(self, key: str, data: bytes) -> None:
        """Upload `data` and check the content hash Dropbox reports for what it stored."""
        with boundary(file=key, kind=SourceError, doing="upload it to Dropbox"):
            metadata = call(self._upload, self._path(key), data, attempts=self.attempts)
        if metadata.content_hash != content_hash(data):
            raise SourceError("Dropbox stored other bytes than were sent", file=key)

    def _upload(self, path: str, data: bytes) -> Any:
        mode = dropbox.files.WriteMode.overwrite
        if len(data) <= self.CHUNK:
            return self.client.files_upload(data, path, mode=mode)
        session = self.client.files_upload_session_start(data[:self.CHUNK])
        offset = self.CHUNK
        while len(data) - offset > self.CHUNK:
            cursor = dropbox.files.UploadSessionCursor(session.session_id, offset)
            self.client.files_upload_session_append_v2(data[offset:offset + self.CHUNK], cursor)
            offset += self.CHUNK
        cursor = dropbox.files.UploadSessionCursor(session.session_id, offset)
        commit = dropbox.files.CommitInfo(path=path, mode=mode)
        return self.client.files_upload_session_finish(data[offset:], cursor, commit)

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
