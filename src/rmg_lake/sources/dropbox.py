"""A Dropbox folder through the official SDK: listed with a cursor, read hash-checked.

The listing starts from the cursor the last committed batch of this source recorded, so
a run sees what changed since; the lake records the new cursor only when its batch
commits, so a run that dies re-lists from the old one (and dedupe makes that safe).
Every download is checked against Dropbox's `content_hash` before it counts; dropped
connections, cut-short bodies and wrong bytes are retried, and a file that still fails
is *deferred*: listed in the batch with the reason and tried again by the next run.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Any

import dropbox
from dropbox.content_hash import DropboxContentHasher
from dropbox.exceptions import ApiError
from dropbox.files import DeletedMetadata, FileMetadata, ListFolderContinueError
from tenacity import RetryError

from rmg_lake.errors import SourceError, boundary, dropbox_not_found
from rmg_lake.sources.base import FileDeferred, FileGone, SourceFile, ours
from rmg_lake.sources.dropbox_client import DROPPED, Retry, call

__all__ = ["SCHEME", "DropboxFolder"]

SCHEME = "dropbox:"


class DropboxFolder:
    """The folder `dropbox:/path` of the account the client is signed in to."""

    readers = 8

    def __init__(self, spec: str, client: dropbox.Dropbox, *, attempts: int = 5,
                 recursive: bool = True) -> None:
        self.root = "/" + spec.removeprefix(SCHEME).strip("/")
        self.client = client
        self.attempts = attempts
        self.recursive = recursive
        self.start_cursor: str | None = None
        self.cursor: str | None = None  # where the listing ended: recorded on commit
        self.relisted = False  # the stored cursor had expired: a full listing was made
        self.gone: list[str] = []  # reported, never acted on: the lake is append-only

    @property
    def name(self) -> str:
        return f"{SCHEME}{self.root}"

    def resume(self, cursor: str | None) -> None:
        """List only what changed since `cursor` (from the last committed batch); what
        an earlier listing found is forgotten (the same folder may be ingested again)."""
        self.start_cursor = cursor
        self.cursor, self.relisted, self.gone = None, False, []

    def list(self) -> Iterator[SourceFile]:
        for entry in self._entries():
            path = self._relative(entry.path_display)
            if ours(path):  # backups and reports rmg-lake put there
                continue
            if isinstance(entry, FileMetadata):
                yield SourceFile(path=path, size=entry.size,
                                 modified=_utc(entry.server_modified),
                                 fingerprint=entry.content_hash)
            elif isinstance(entry, DeletedMetadata):
                self.gone.append(path)

    def _entries(self) -> Iterator[Any]:
        with boundary(file=self.name, kind=SourceError, doing="list it"):
            page = None
            if self.start_cursor is not None:
                try:
                    page = self._call(self.client.files_list_folder_continue,
                                      self.start_cursor)
                except ApiError as err:
                    if not (isinstance(err.error, ListFolderContinueError)
                            and err.error.is_reset()):
                        raise
                    self.relisted = True
            if page is None:
                page = self._call(self.client.files_list_folder, self._api_root(),
                                  recursive=self.recursive)
            yield from page.entries
            while page.has_more:
                page = self._call(self.client.files_list_folder_continue, page.cursor)
                yield from page.entries
            self.cursor = page.cursor

    def read(self, file: SourceFile) -> bytes:
        buffer = io.BytesIO()
        self._fetching(file, self._fetch_into, file, buffer)
        return buffer.getvalue()

    def chunks(self, file: SourceFile) -> Iterator[bytes]:
        """Downloaded whole into a temporary file and hash-checked, then given 1 MiB at a
        time: memory stays small, and no byte counts before all of them are right."""
        with tempfile.TemporaryFile() as spool:
            self._fetching(file, self._fetch_into, file, spool)
            spool.seek(0)
            yield from iter(lambda: spool.read(1 << 20), b"")

    def _fetching(self, file: SourceFile, function: Any, *args: Any) -> Any:
        try:
            return self._call(function, *args)
        except RetryError as err:
            raise FileDeferred(f"not fetched whole after {self.attempts} tries "
                               f"({err.last_attempt.exception()})", file=file.path) from None
        except ApiError as err:
            if dropbox_not_found(err):
                raise FileGone("the file went away before it was read",
                               file=file.path) from None
            raise FileDeferred(f"Dropbox refused it ({err.error})", file=file.path) from None

    def _fetch_into(self, file: SourceFile, spool: IO[bytes]) -> None:
        """Download into `spool` (emptied first: this is what is tried again), checking
        the size and the content hash Dropbox gives."""
        spool.seek(0)
        spool.truncate()
        hasher, size = DropboxContentHasher(), 0
        try:
            metadata, response = self.client.files_download(self.api_path(file.path))
            with response:
                for chunk in response.iter_content(1 << 20):
                    hasher.update(chunk)
                    spool.write(chunk)
                    size += len(chunk)
        except DROPPED as err:
            raise Retry(type(err).__name__) from err
        if size != metadata.size or hasher.hexdigest() != metadata.content_hash:
            raise Retry("the bytes do not match Dropbox's content hash")

    def _call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        return call(function, *args, attempts=self.attempts, **kwargs)

    def _api_root(self) -> str:
        return "" if self.root == "/" else self.root

    def api_path(self, relative: str) -> str:
        """The path the API knows the file `relative` (to this folder) by."""
        return f"{self._api_root()}/{relative}"

    def _relative(self, path_display: str) -> str:
        prefix = self._api_root().lower() + "/"
        return path_display[len(prefix):] if path_display.lower().startswith(prefix) \
            else path_display.lstrip("/")


def _utc(value: datetime) -> datetime:
    """The SDK gives Dropbox's times as naive UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
