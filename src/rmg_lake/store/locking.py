"""One writer at a time: the lake's lock, and who holds it.

`lake/.lock` is an OS file lock (`filelock`): the kernel lets go of it when its process
ends, however it ends, so a killed run never leaves the lake locked. Beside it,
`lake/.lock.holder` names the run holding it (pid, host, since): a run that has to wait
can say whom for, and one that finds the file while the lock is free knows the run before
it was killed, and says so.

`lake/.watch.lock` (`WatchLock`), the same way, lets one `rmg-lake watch` at a time watch a
lake, for as long as it runs; the writer lock stays free between its ingests, so other
commands go on beside it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
from filelock import FileLock, Timeout

from rmg_lake._internal.files import PRIVATE_FILE, write_atomic
from rmg_lake.errors import LakeUnusable

__all__ = ["WAIT_VARIABLE", "Holder", "WatchLock", "WriterLock"]

WAIT_VARIABLE = "RMG_LAKE_LOCK_WAIT"  # seconds a writer waits for another; default 600


@dataclass(frozen=True, slots=True)
class Holder:
    """The run that holds (or held) the lock."""

    pid: int
    host: str
    since: datetime

    def __str__(self) -> str:
        return (f"pid {self.pid} on {self.host}, since "
                f"{self.since.astimezone():%Y-%m-%d %H:%M:%S %Z}")


class WriterLock:
    def __init__(self, root: Path, *, wait: float | None = None,
                 on_wait: Callable[[Holder | None], None] | None = None,
                 on_stale: Callable[[Holder], None] | None = None) -> None:
        self.root = root
        self.wait = wait if wait is not None else float(os.environ.get(WAIT_VARIABLE, 600))
        self.on_wait, self.on_stale = on_wait, on_stale
        self._lock = FileLock(root / ".lock", mode=PRIVATE_FILE, is_singleton=True)
        self._holder = root / ".lock.holder"

    def holder(self) -> Holder | None:
        return _holder(self._holder)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold the lock (re-entrant), waiting up to `wait` seconds for another run."""
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            holder = self.holder()
            if self.on_wait is not None:
                self.on_wait(holder)
            try:
                self._lock.acquire(timeout=self.wait)
            except Timeout:
                whom = f" ({holder})" if holder else ""
                raise LakeUnusable(f"another rmg-lake run is writing this lake{whom}",
                                   file=str(self.root), retryable=True,
                                   hint="wait for it to finish, then run this again") from None
        with self._holding():
            yield

    @contextmanager
    def taken(self) -> Iterator[bool]:
        """Hold the lock if no other run does (True), without waiting; else (False) go on
        without it."""
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            yield False
            return
        with self._holding():
            yield True

    @contextmanager
    def _holding(self) -> Iterator[None]:
        """The lock just acquired: this run is its holder until it lets go."""
        outermost = self._lock.lock_counter == 1
        try:
            if outermost:
                self._take_over()
            yield
        finally:
            if outermost:
                self._holder.unlink(missing_ok=True)
            self._lock.release()

    def _take_over(self) -> None:
        """Name this run as the holder, after saying so if a killed run was the last."""
        stale = self.holder()
        if stale is not None and self.on_stale is not None:
            self.on_stale(stale)
        _name_this_run(self._holder)


class WatchLock:
    """One `rmg-lake watch` per lake: held from `held()`'s start to its end."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = FileLock(root / ".watch.lock", mode=PRIVATE_FILE)
        self._holder = root / ".watch.lock.holder"

    def holder(self) -> Holder | None:
        return _holder(self._holder)

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold it, or refuse at once, naming the watcher that holds it."""
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            holder = self.holder()
            whom = f" ({holder})" if holder else ""
            raise LakeUnusable(f"another `rmg-lake watch` is watching this lake{whom}",
                               file=str(self.root),
                               hint="leave that one running, or stop it first") from None
        try:
            _name_this_run(self._holder)
            yield
        finally:
            self._holder.unlink(missing_ok=True)
            self._lock.release()


def _holder(path: Path) -> Holder | None:
    """The run a holder file names (None: none, or unreadable)."""
    try:
        raw = orjson.loads(path.read_bytes())
        return Holder(int(raw["pid"]), str(raw["host"]), datetime.fromisoformat(raw["since"]))
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def _name_this_run(path: Path) -> None:
    write_atomic(path, orjson.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                     "since": datetime.now(UTC).isoformat()}), sync=False)
