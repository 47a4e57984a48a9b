"""Backups and reports in a Dropbox folder, through the official SDK, checked on arrival."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dropbox
import requests
from dropbox.content_hash import content_hash
from dropbox.exceptions import ApiError, HttpError
from tenacity import RetryError

from rmg_lake.errors import SourceError
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
        try:
            metadata = call(self._upload, self._path(key), data, attempts=self.attempts)
        except ApiError as err:
            raise SourceError(f"Dropbox refused the upload ({err.error})", file=key) from None
        except (requests.exceptions.RequestException, HttpError, RetryError):
            raise SourceError("cannot upload it to Dropbox", file=key,
                              hint="check the internet connection, then run again") from None
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
            if "not_found" in str(err):
                return []
            raise

    def delete(self, key: str) -> None:
        try:
            call(self.client.files_delete_v2, self._path(key), attempts=self.attempts)
        except ApiError as err:
            if "not_found" not in str(err.error):
                raise SourceError(f"Dropbox cannot delete it ({err.error})", file=key) from err
        except (requests.exceptions.RequestException, HttpError, RetryError):
            raise SourceError("cannot reach Dropbox to delete it", file=key,
                              hint="check the internet connection, then run again") from None
