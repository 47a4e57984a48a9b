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
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import dropbox
import requests
from dropbox.content_hash import DropboxContentHasher, content_hash
from dropbox.exceptions import ApiError, AuthError, BadInputError, HttpError
from dropbox.files import DeletedMetadata, FileMetadata, ListFolderContinueError
from requests.adapters import HTTPAdapter
from tenacity import (
    RetryError,
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from rmg_lake.credentials import load_credentials
from rmg_lake.errors import SourceError
from rmg_lake.sources.base import FileDeferred, FileGone, SourceFile, ours

__all__ = ["CA_CERTS_VARIABLE", "DropboxFolder", "DropboxTarget", "client_from_env",
           "http_session"]

SCHEME = "dropbox:"
CA_CERTS_VARIABLE = "RMG_LAKE_DROPBOX_CA_CERTS"


class _Retry(Exception):
    """A fetch worth trying again: the connection dropped, the body was cut, bytes differ."""


_DROPPED = (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
            requests.exceptions.Timeout, HttpError)


class _TrustOnly(HTTPAdapter):
    """Verifies servers against one CA bundle, whatever `REQUESTS_CA_BUNDLE` says."""

    def __init__(self, ca_certs: str, pool: int) -> None:
        super().__init__(pool_maxsize=pool)
        self.ca_certs = ca_certs

    def send(self, request: requests.PreparedRequest, stream: bool = False,
             timeout: Any = None, verify: Any = True, cert: Any = None,
             proxies: Any = None) -> requests.Response:
        return super().send(request, stream=stream, timeout=timeout,
                            verify=self.ca_certs if verify else verify, cert=cert,
                            proxies=proxies)


def http_session(pool: int = 16) -> requests.Session:
    """HTTPS connections for the SDK, `pool` of them kept open for parallel downloads.

    A testing aid: `RMG_LAKE_DROPBOX_CA_CERTS` names the only CA bundle to trust, for a
    loopback Dropbox (with `DROPBOX_API_HOST` and `DROPBOX_API_CONTENT_HOST`, which the SDK
    reads).
    """
    ca_certs = os.environ.get(CA_CERTS_VARIABLE)
    if not ca_certs:
        session: requests.Session = dropbox.create_session(max_connections=pool)
        return session
    if not Path(ca_certs).is_file():
        raise SourceError("no such CA bundle", file=ca_certs,
                          hint=f"unset {CA_CERTS_VARIABLE}, or point it at a PEM file")
    session = requests.Session()
    session.mount("https://", _TrustOnly(ca_certs, pool))
    return session


def client_from_env(session: requests.Session | None = None) -> dropbox.Dropbox:
    """A client with the user's credentials (environment, else `rmg-lake auth`'s file)."""
    credentials = load_credentials()
    return dropbox.Dropbox(oauth2_refresh_token=credentials.refresh_token,
                           app_key=credentials.app_key, session=session or http_session(),
                           max_retries_on_error=4, max_retries_on_rate_limit=8, timeout=60)


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
        """List only what changed since `cursor` (from the last committed batch)."""
        self.start_cursor = cursor

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
        try:
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
        except (AuthError, BadInputError) as err:
            raise SourceError("Dropbox refused the credentials", file=self.name,
                              hint="run `rmg-lake auth` again (or check DROPBOX_APP_KEY and "
                              "DROPBOX_REFRESH_TOKEN)") from err
        except ApiError as err:
            raise SourceError(f"Dropbox cannot list it ({err.error})", file=self.name) from err
        except (requests.exceptions.RequestException, HttpError, RetryError) as err:
            raise SourceError("cannot reach Dropbox", file=self.name,
                              hint="check the internet connection, then run again") from err

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
            if "not_found" in str(err.error):
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
            metadata, response = self.client.files_download(self._api_path(file.path))
            with response:
                for chunk in response.iter_content(1 << 20):
                    hasher.update(chunk)
                    spool.write(chunk)
                    size += len(chunk)
        except _DROPPED as err:
            raise _Retry(type(err).__name__) from err
        if size != metadata.size or hasher.hexdigest() != metadata.content_hash:
            raise _Retry("the bytes do not match Dropbox's content hash")

    def _call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        """Call the SDK, trying again on a dropped connection or a bad body."""
        caller = retry(
            retry=retry_if_exception_type((_Retry, requests.exceptions.ConnectionError,
                                           requests.exceptions.ChunkedEncodingError)),
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=0.05, max=2),
        )(function)
        return caller(*args, **kwargs)

    def _api_root(self) -> str:
        return "" if self.root == "/" else self.root

    def _api_path(self, relative: str) -> str:
        return f"{self._api_root()}/{relative}"

    def _relative(self, path_display: str) -> str:
        prefix = self._api_root().lower() + "/"
        return path_display[len(prefix):] if path_display.lower().startswith(prefix) \
            else path_display.lstrip("/")


def _utc(value: datetime) -> datetime:
    """The SDK gives Dropbox's times as naive UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class DropboxTarget:
    """Backups and reports in a Dropbox folder (`dropbox:/path`), under `backups/` and
    `reports/`: the only places rmg-lake writes there."""

    CHUNK = 8 * 1024 * 1024  # files larger than this go up in an upload session

    def __init__(self, spec: str, client: dropbox.Dropbox, *, attempts: int = 5) -> None:
        self.folder = DropboxFolder(spec, client, attempts=attempts)
        self.client = client
        self.name = self.folder.name

    def _path(self, key: str) -> str:
        return self.folder._api_path(key)

    def put(self, key: str, data: bytes) -> None:
        """Upload `data` and check the content hash Dropbox reports for what it stored."""
        try:
            metadata = self.folder._call(self._upload, self._path(key), data)
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
            self.folder._call(self.client.files_delete_v2, self._path(key))
        except ApiError as err:
            if "not_found" not in str(err.error):
                raise SourceError(f"Dropbox cannot delete it ({err.error})", file=key) from err
        except (requests.exceptions.RequestException, HttpError, RetryError):
            raise SourceError("cannot reach Dropbox to delete it", file=key,
                              hint="check the internet connection, then run again") from None
