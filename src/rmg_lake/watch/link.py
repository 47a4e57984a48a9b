"""A link that comes and goes: how long to wait before trying again, and one line when it
goes and one when it is back."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from rmg_lake.errors import LakeError

__all__ = ["Backoff", "Link", "duration"]


class Backoff:
    """Waits that double from `first` seconds up to `cap`; `reset` after a success."""

    def __init__(self, first: float = 5.0, cap: float = 900.0) -> None:
        self.first, self.cap = first, cap
        self._tries = 0
        self._lock = threading.Lock()  # (the long-poll's thread and the watch share one)

    def next(self) -> float:
        """The next wait: `first`, twice that, … never more than `cap`."""
        with self._lock:
            self._tries += 1
            return min(self.cap, self.first * 2.0 ** min(self._tries - 1, 32))

    def reset(self) -> None:
        with self._lock:
            self._tries = 0


class Link:
    """Whether `where` (the source) can be reached: `say`s one line when it goes, one when
    it is back, whichever thread finds out."""

    def __init__(self, where: str, say: Callable[[str], None],
                 clock: Callable[[], datetime], backoff: Backoff) -> None:
        self.where, self.say, self.clock, self.backoff = where, say, clock, backoff
        self._down_since: datetime | None = None
        self._lock = threading.Lock()

    @property
    def down_since(self) -> datetime | None:
        return self._down_since

    def down(self, error: LakeError) -> float:
        """`error` (retryable) says it cannot be reached: the seconds to wait before the
        next try."""
        with self._lock:
            went, self._down_since = self._down_since is None, self._down_since or self.clock()
        if went:
            self.say(f"{self.where} cannot be reached ({error.message}); trying again, "
                     f"every {duration(self.backoff.cap)} at most, nothing is lost meanwhile")
        return self.backoff.next()

    def up(self) -> None:
        """It answered: the waits start short again, and if it was gone, say it is back."""
        self.backoff.reset()
        with self._lock:
            since, self._down_since = self._down_since, None
        if since is not None:
            gone = duration((self.clock() - since).total_seconds())
            self.say(f"{self.where} can be reached again, after {gone}")


def duration(seconds: float) -> str:
    """`45 s`, `12 min`, `3 h 5 min`."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    hours, minutes = divmod(seconds // 60, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"
