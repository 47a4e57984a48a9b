"""`rmg-lake watch` as a library: files taken in soon after they arrive, and the morning's
work at its times, until stopped.

    watcher = Watcher(open_lake("lake"), open_source("~/Dropbox/RMG"), config=load_config())
    watcher.run()    # until SIGTERM, Ctrl-C, or watcher.stop() from another thread

Arrivals wake it (`rmg_lake.watch.arrivals`); it waits for the uploads to settle (`quiet`
seconds with nothing arriving, and no file still changing size), then one ingest takes
them in as a batch. At the times of `[schedule]` it delivers the report (as `ingest
--report`) and makes the backup (as `backup --prune`); when each last ran is kept in the
lake (`rmg_lake.watch.schedule`). A source that cannot be reached is tried again with
back-off; an error no wait will mend ends the watch.

A signal stops it where it is, as a kill would: mid-ingest, the batch exists if its log
entry was committed, and the line `run` returns says which.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NoReturn, Protocol

from rmg_lake.config import Config
from rmg_lake.deliver.backup import BackupResult, Pruned, backup, prune
from rmg_lake.deliver.publish import Published, places, publish
from rmg_lake.deliver.targets import open_target
from rmg_lake.errors import LakeError
from rmg_lake.lake import IngestResult, Lake
from rmg_lake.sources import LocalFolder, Source
from rmg_lake.store.ingest import MAX_SIZE
from rmg_lake.store.locking import WatchLock
from rmg_lake.watch import QUIET
from rmg_lake.watch.arrivals import Arrivals, FolderArrivals
from rmg_lake.watch.link import Backoff, Link, duration
from rmg_lake.watch.schedule import Timetable

__all__ = ["QUIET", "SIGNALS", "Listener", "Stopped", "Watcher", "arrivals_of"]

SETTLE_MOST = 10  # quiet periods at most from the first arrival to the ingest
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Listener(Protocol):
    """What the watch tells whoever runs it (the CLI prints it)."""

    def ingested(self, result: IngestResult) -> None:
        """An ingest ran (it may have found nothing new)."""

    def published(self, done: Published, unreached: list[str]) -> None:
        """The scheduled report was delivered (`unreached`: places it could not go to)."""

    def backed_up(self, done: BackupResult, pruned: Pruned | None, to: str) -> None:
        """The scheduled backup was made in `to`, and old versions pruned (None: they
        could not be, which a note said)."""

    def note(self, text: str) -> None:
        """One line: the link gone or back, a scheduled run that failed (from any thread)."""

    def idle(self, status: str) -> None:
        """What it waits for, until the next call of any other method."""


class _Silent:
    def ingested(self, result: IngestResult) -> None: pass
    def published(self, done: Published, unreached: list[str]) -> None: pass
    def backed_up(self, done: BackupResult, pruned: Pruned | None, to: str) -> None: pass
    def note(self, text: str) -> None: pass
    def idle(self, status: str) -> None: pass


class Interrupted(BaseException):
    """A signal (or `stop()`: no signal) stopping the watch, raised wherever it is, as
    Ctrl-C's KeyboardInterrupt is."""

    def __init__(self, signum: int | None) -> None:
        super().__init__(signum)
        self.signum = signum
        self.doing: tuple[str, int] | None = None  # the work it stopped, the log's length


@dataclass(frozen=True, slots=True)
class Stopped:
    line: str  # how it stopped, and what became of the work in hand
    signum: int | None  # the signal that stopped it (None: `stop()`)


def _now() -> datetime:
    return datetime.now(UTC)


class Watcher:
    """Watches `source` for `lake`; `config` is rmg-lake.toml's, if it is about this lake
    (its study settings, `[schedule]`, `backup`, `reports_to`, `max_file_mb`).

    `clock` (UTC-aware) decides when scheduled runs are due; `tick` is the longest wait
    before it looks at the clock again (a laptop waking from sleep is noticed within it).
    The quiet period and the waits to try again (back-off) are timed by `timer` (seconds,
    the monotonic clock).
    """

    def __init__(self, lake: Lake, source: Source, *, config: Config | None = None,
                 listener: Listener | None = None, quiet: float = QUIET,
                 backoff: Backoff | None = None, clock: Callable[[], datetime] = _now,
                 tick: float = 60.0, arrivals: Arrivals | None = None,
                 timer: Callable[[], float] = time.monotonic) -> None:
        self.lake, self.source, self.config = lake, source, config or Config()
        self.listener: Listener = listener or _Silent()
        self.quiet, self.clock, self.tick, self.timer = quiet, clock, tick, timer
        self.backoff = backoff or Backoff()
        self.where = source.name.removeprefix("local:")
        self.link = Link(self.where, self.listener.note, clock, self.backoff)
        self.timetable = Timetable(lake.root, self.config.schedule)
        self.arrivals = arrivals or arrivals_of(source, lake, self.link)
        self._settings = config.settings if config is not None else None
        self._max_size = int(config.max_file_mb * 2**20) if config is not None else MAX_SIZE
        self._wake = threading.Event()
        self._stopping = False
        # (monotonic) when to try an ingest again (a dropped link, deferred files), and a
        # scheduled run that failed
        self._retry_at: float | None = None
        self._deferred = Backoff(first=60, cap=self.backoff.cap)
        self._job_retry: dict[str, float] = {}

    def run(self) -> Stopped:
        """Watch until stopped; how it stopped. Refuses (LakeUnusable) if another watch
        has the lake; raises what no wait will mend (refused credentials, a lost folder)."""
        with WatchLock(self.lake.root).held(), self._signals():
            try:
                self.arrivals.start(self._wake.set)
                self._watch()
            except Interrupted as stop:
                return Stopped(self._stopped(stop), stop.signum)
            finally:
                self.arrivals.close()

    def stop(self) -> None:
        """Stop the watch (from another thread) once the work in hand is done."""
        self._stopping = True
        self._wake.set()

    def _watch(self) -> NoReturn:
        self._ingest()  # what arrived while no watch ran
        while True:
            self._run_due()
            if self._wait(self._timeout(), f"Watching {self.where} for new files"):
                self._settle()
                self._ingest()
            elif self._retry_at is not None and self.timer() >= self._retry_at:
                self._ingest()

    def _wait(self, seconds: float, status: str) -> bool:
        """Wait up to `seconds` for arrivals; whether any came."""
        jobs = ", ".join(f"{job} at {at:%H:%M}" for job, at in self.timetable.times.items())
        self.listener.idle(status + (f"; {jobs} (factory time)" if jobs else ""))
        self._wake.wait(max(seconds, 0))
        self._wake.clear()
        if self._stopping:
            raise Interrupted(None)
        return self.arrivals.changed()

    def _timeout(self) -> float:
        """Seconds until the next thing to do, `tick` at most."""
        waits = [self.tick]
        wall = self.clock()
        if (next_run := self.timetable.next(wall)) is not None:
            waits.append((next_run - wall).total_seconds())
        now = self.timer()
        waits += [at - now for at in (self._retry_at, *self._job_retry.values())
                  if at is not None]
        return min(waits)

    def _settle(self) -> None:
        """Wait for the uploads to settle: `quiet` seconds with nothing arriving and no
        file seen arriving still changing size; `SETTLE_MOST` quiet periods at most (files
        may come for hours: meanwhile the lake takes what is whole)."""
        started = self.timer()
        end = started + self.quiet
        while (now := self.timer()) < started + SETTLE_MOST * self.quiet:
            if now < end:
                if self._wait(end - now, f"Files arriving in {self.where}; waiting for "
                                         "them to settle"):
                    end = self.timer() + self.quiet  # more came: quiet starts again
            elif self.arrivals.unsettled():
                end = now + self.quiet  # a file still growing
            else:
                return

    def _ingest(self) -> None:
        """Take in what is new as one batch (a dropped link: try again later)."""
        try:
            with self._busy("ingest"):
                result = self.lake.ingest(self.source, settings=self._settings,
                                          max_size=self._max_size)
        except LakeError as error:
            if not error.retryable:
                raise
            self._retry_at = self.timer() + self.link.down(error)
            return
        self.link.up()
        self._retry_at = None
        if result.counts["deferred"]:  # files not fetched whole: tried again later
            self._retry_at = self.timer() + self._deferred.next()
        else:
            self._deferred.reset()
        self.listener.ingested(result)

    def _run_due(self) -> None:
        """Run the scheduled jobs that are due (a missed one once), and record each."""
        now = self.clock()
        for job in self.timetable.due(now):
            if self._job_retry.get(job, 0) > self.timer():
                continue
            try:
                if job == "report":
                    self._report()
                else:
                    self._backup()
            except LakeError as error:
                wait = self.backoff.cap
                if job not in self._job_retry:
                    self.listener.note(f"The scheduled {job} failed: {error} (tried again "
                                       f"every {duration(wait)} until it works)")
                self._job_retry[job] = self.timer() + wait
                continue
            self._job_retry.pop(job, None)
            self.timetable.ran(job, now)

    def _report(self) -> None:
        """As `ingest --report`: take in what is whole, then deliver the report."""
        with self._busy("report"):
            self._ingest()
            targets, unreached = places(self.source, self.config.reports_to)
            done = publish(self.lake, targets=targets, now=self.clock())
        self.listener.published(done, unreached)
        if self.config.publish is not None:
            self._publish_delta(self.config.publish)

    def _publish_delta(self, target: str) -> None:
        """As `ingest --report` with `publish` in rmg-lake.toml: the Delta tables; a
        failure is a note (the next report publishes the batches they lack)."""
        from rmg_lake.deliver.delta import publish_delta  # (only a study that publishes)
        from rmg_lake.deliver.secret import load_secret

        try:
            with self._busy("publish"):
                done = publish_delta(self.lake, target, secret=load_secret()
                                     if self.config.publish_pseudonymise else None)
        except LakeError as error:
            self.listener.note(f"The Delta tables were not published: {error} (the next "
                               "report publishes the batches they lack)")
            return
        if done.batches:
            self.listener.note(f"Published batches {done.batches[0]} to {done.batches[-1]} "
                               f"to the Delta tables in {done.target}.")

    def _backup(self) -> None:
        """As `backup --prune`, to `backup` of rmg-lake.toml."""
        assert self.config.backup is not None  # (a Config with a scheduled backup has one)
        with self._busy("backup"):
            target = open_target(self.config.backup)
            done = backup(self.lake, target, now=self.clock(),
                          plain=self.config.backup_plain)
            try:
                pruned: Pruned | None = prune(target, now=self.clock())
            except LakeError as error:  # the backup is made: it is not made again
                self.listener.note(f"Old backup versions were not pruned: {error}")
                pruned = None
        self.listener.backed_up(done, pruned, self.config.backup)

    @contextmanager
    def _busy(self, what: str) -> Iterator[None]:
        """Work in hand: a stop meanwhile says which (the innermost)."""
        before = self.lake.log.count()
        try:
            yield
        except Interrupted as stop:
            stop.doing = stop.doing or (what, before)
            raise

    def _stopped(self, stop: Interrupted) -> str:
        """The line saying how the watch stopped, and what became of the work in hand."""
        by = f" ({signal.Signals(stop.signum).name})" if stop.signum is not None else ""
        if stop.doing is None:
            return f"Stopped{by}."
        what, before = stop.doing
        if what != "ingest":
            return (f"Stopped{by} during the scheduled {what}, which did not finish: it "
                    "runs when the watch starts again.")
        after = self.lake.log.count()
        if after == before:
            return (f"Stopped{by} mid-ingest: its batch was not committed; the next run "
                    "takes its files in.")
        which = f"batch {after} was" if after == before + 1 else \
            f"batches {before + 1}–{after} were"
        return f"Stopped{by} mid-ingest: {which} committed, and stays."

    @contextmanager
    def _signals(self) -> Iterator[None]:
        """SIGTERM and SIGINT stop the watch where it is (`Interrupted`); a second one
        stops the process at once, as a kill. (Only the main thread receives signals.)"""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def stop(signum: int, frame: object) -> None:
            for each in SIGNALS:
                signal.signal(each, signal.SIG_DFL)
            raise Interrupted(signum)

        before = {each: signal.signal(each, stop) for each in SIGNALS}
        try:
            yield
        finally:
            for each, handler in before.items():
                signal.signal(each, handler)


def arrivals_of(source: Source, lake: Lake, link: Link) -> Arrivals:
    """How to know that files arrived in `source`: a folder's file events, a Dropbox
    folder's long-poll from the cursor the lake committed."""
    if isinstance(source, LocalFolder):
        return FolderArrivals(source.root, exclude=[lake.root])
    from rmg_lake.sources.dropbox import DropboxFolder
    from rmg_lake.watch.longpoll import DropboxArrivals

    if isinstance(source, DropboxFolder):
        return DropboxArrivals(source, lake.cursor(source.name), link)
    raise LakeError("this source cannot be watched", file=source.name,
                    hint="watch a folder or a dropbox: folder")
