"""Knowing that files arrived without listing the folder again and again.

A local folder is watched through the operating system's file events (`watchdog`:
inotify, FSEvents, ReadDirectoryChangesW); a Dropbox folder through the API's long-poll
(`rmg_lake.watch.longpoll`). Either wakes the watch, which waits for the uploads to
settle before it ingests.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from watchdog.events import (
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from rmg_lake.errors import SourceError, boundary
from rmg_lake.sources import ours
from rmg_lake.sources.local import NOT_OURS

__all__ = ["Arrivals", "FolderArrivals"]

# What a file arriving or growing gives rise to; never what reading one does (opened,
# closed without writing), or an ingest would wake the watch that made it.
_ARRIVING: list[type[FileSystemEvent]] = [FileCreatedEvent, FileModifiedEvent, FileMovedEvent,
                                          FileClosedEvent, DirMovedEvent]


class Arrivals(Protocol):
    def start(self, wake: Callable[[], None]) -> None:
        """Begin noticing arrivals, calling `wake` (from any thread) at each."""
        ...

    def changed(self) -> bool:
        """Whether anything arrived since the last call; raises the error the watch
        cannot go on from, if one came."""
        ...

    def unsettled(self) -> bool:
        """Whether a file seen arriving has changed size since."""
        ...

    def close(self) -> None: ...


class FolderArrivals:
    """A local folder's file events, but those of the sync client's and the system's own
    files, of rmg-lake's folders at the top (`backups/`, `reports/`) and of `exclude`d
    folders (a lake inside the sync folder)."""

    def __init__(self, root: Path, *, exclude: Sequence[Path] = ()) -> None:
        self.root = root
        self.exclude = [p.expanduser().resolve() for p in exclude]
        self._lock = threading.Lock()
        self._changed = False
        self._sizes: dict[Path, int] = {}  # each file seen arriving → its size then
        self._wake: Callable[[], None] = lambda: None
        self._observer = Observer()

    def start(self, wake: Callable[[], None]) -> None:
        self._wake = wake
        with boundary(file=self.root, kind=SourceError, doing="watch the folder"):
            self._observer.schedule(_Handler(self._seen), self.root, recursive=True,
                                    event_filter=_ARRIVING)
            self._observer.start()

    def _seen(self, event: FileSystemEvent) -> None:
        path = Path(os.fsdecode(event.dest_path or event.src_path))
        if not self._listed(path):
            return
        with self._lock:
            self._changed = True
            if not event.is_directory:
                self._sizes[path] = _size(path)
        self._wake()

    def _listed(self, path: Path) -> bool:
        """Whether `path` is a file the folder's ingest would list."""
        if not path.is_relative_to(self.root) or any(path.is_relative_to(p)
                                                     for p in self.exclude):
            return False
        relative = path.relative_to(self.root)
        return not any(part in NOT_OURS for part in relative.parts) \
            and not ours(relative.as_posix())

    def changed(self) -> bool:
        with self._lock:
            changed, self._changed = self._changed, False
        return changed

    def unsettled(self) -> bool:
        """Each file seen arriving is looked at again: those whose size held are
        forgotten, the others kept with their new size."""
        with self._lock:
            seen = dict(self._sizes)
        now = {path: _size(path) for path in seen}
        grown = {path for path, size in seen.items() if now[path] != size}
        with self._lock:
            for path, size in seen.items():
                if path in grown:
                    self._sizes[path] = now[path]
                elif self._sizes.get(path) == size:  # (no event since: else looked at again)
                    del self._sizes[path]
        return bool(grown)

    def close(self) -> None:
        if self._observer.is_alive():
            self._observer.stop()
            self._observer.join()


class _Handler(FileSystemEventHandler):
    """Hands each event to `seen` (on the observer's thread)."""

    def __init__(self, seen: Callable[[FileSystemEvent], None]) -> None:
        self.seen = seen

    def on_any_event(self, event: FileSystemEvent) -> None:
        self.seen(event)


def _size(path: Path) -> int:
    """Its size now (-1: gone, or not to be looked at)."""
    try:
        return path.lstat().st_size
    except OSError:
        return -1
