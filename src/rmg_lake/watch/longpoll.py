"""A Dropbox folder's arrivals, by the API's long-poll: nothing is listed to find them.

A thread waits on `files/list_folder/longpoll` with a cursor (at first the one the lake's
last batch of the folder committed). When Dropbox says something changed, the cursor moves
on to the latest (`list_folder/get_latest_cursor`) and the watch is woken; the watch's
ingest then lists the changes from the lake's own committed cursor, so nothing the thread
saw is lost if the watch stops before it commits. A dropped link is tried again with
back-off (`Link`); an error no wait will mend (the credentials refused) stops the watch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from dropbox.exceptions import ApiError
from dropbox.files import ListFolderLongpollError

from rmg_lake.errors import SourceError, converted
from rmg_lake.sources.dropbox import DropboxFolder
from rmg_lake.watch.link import Link

__all__ = ["JITTER", "DropboxArrivals"]

JITTER = 90  # seconds Dropbox may add to a long-poll's timeout


class DropboxArrivals:
    """Changes in `folder` since `cursor` (None: since now), waited for `timeout` seconds
    at a time (Dropbox takes 30 to 480)."""

    def __init__(self, folder: DropboxFolder, cursor: str | None, link: Link, *,
                 timeout: int = 30) -> None:
        self.folder, self.link, self.timeout = folder, link, timeout
        self._cursor = cursor
        self._changed = threading.Event()
        self._closed = threading.Event()
        self._failure: Exception | None = None
        self._wake: Callable[[], None] = lambda: None
        self._thread = threading.Thread(target=self._poll, name="rmg-lake-longpoll",
                                        daemon=True)  # (a held long-poll never delays an exit)

    def start(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        self._thread.start()

    def changed(self) -> bool:
        if self._failure is not None:
            raise self._failure
        changed = self._changed.is_set()
        self._changed.clear()
        return changed

    def unsettled(self) -> bool:
        return False  # Dropbox lists a file once its upload is whole

    def close(self) -> None:
        self._closed.set()

    def _poll(self) -> None:
        # the request may be held `timeout` seconds and the jitter: the client waits longer
        client = self.folder.client.clone(timeout=self.timeout + JITTER + 30)
        cursor = self._cursor
        while not self._closed.is_set():
            try:
                if cursor is None:  # the latest: anything before it may be new, so wake
                    cursor = self._latest(client)
                    self._arrived()
                result = client.files_list_folder_longpoll(cursor, timeout=self.timeout)
            except Exception as err:  # (the boundary decides what it is; a bug stops it)
                if isinstance(err, ApiError) and isinstance(err.error, ListFolderLongpollError) \
                        and err.error.is_reset():
                    cursor = None  # it expired: the latest, and an ingest to find what changed
                elif self._stop(err):
                    return
                continue
            self.link.up()
            if result.changes:
                cursor = None
            if result.backoff:  # Dropbox asks for a pause before the next long-poll
                self._closed.wait(result.backoff)

    def _latest(self, client: Any) -> str:
        """A cursor at the folder's present, listing nothing (the ingest's own listing
        is of the same folder, recursive alike)."""
        folder = self.folder.api_path("").removesuffix("/")  # ("" for the whole Dropbox)
        cursor: str = client.files_list_folder_get_latest_cursor(
            folder, recursive=self.folder.recursive).cursor
        return cursor

    def _arrived(self) -> None:
        self._changed.set()
        self._wake()

    def _stop(self, error: Exception) -> bool:
        """A retryable `error` waits out the back-off (False); any other is kept for the
        watch to raise, which is woken (True)."""
        mine = converted(error, file=self.folder.name, kind=SourceError)
        if mine is not None and mine.retryable:
            self._closed.wait(self.link.down(mine))
            return False
        self._failure = mine or error  # (a bug: raised as it is, its traceback kept)
        self._wake()
        return True
