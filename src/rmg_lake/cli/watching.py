"""`rmg-lake watch`: the lake kept current as files arrive, the morning's work on time."""

from __future__ import annotations

import signal
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.status import Status

from rmg_lake.cli.shell import (
    LakeOption,
    about,
    app,
    lake_from,
    out,
    plural,
    sourced,
    warn,
)
from rmg_lake.config import CONFIG_FILE
from rmg_lake.contract.models import FACTORY_TZ
from rmg_lake.watch import QUIET

if TYPE_CHECKING:
    from rmg_lake.deliver.backup import BackupResult, Pruned
    from rmg_lake.deliver.publish import Published
    from rmg_lake.lake import IngestResult
    from rmg_lake.store.log import Batch


@app.command()
def watch(
    source: Annotated[str | None, typer.Option(
        "--source", help="Sync folder to watch (default: `source` from rmg-lake.toml).")] = None,
    lake: LakeOption = None,
    quiet: Annotated[float, typer.Option(
        min=0, help="Seconds with nothing arriving (and no file still growing) before one "
                    "ingest takes the new files in.")] = QUIET,
    install: Annotated[bool, typer.Option(
        "--install", help="Write a user service that runs this watch at login (systemd on "
                          "Linux, launchd on macOS), and say how to start, stop and read "
                          "it.")] = False,
    uninstall: Annotated[bool, typer.Option(
        "--uninstall", help="Remove that service.")] = False,
) -> None:
    """Take new files in as they arrive, and deliver the report and make the backup at the
    times `[schedule]` in rmg-lake.toml gives, until stopped (Ctrl-C, SIGTERM)."""
    from rmg_lake.watch.loop import Watcher

    if uninstall:
        _uninstall()
        return
    config, named, root, files = sourced(source, lake)
    if install:
        _install(named, root, quiet)
        return
    the_lake = lake_from(root, create=True)
    printer = _Printer()
    watcher = Watcher(the_lake, files, config=about(config, the_lake.root), listener=printer,
                      quiet=quiet)
    try:
        stopped = watcher.run()
    finally:
        printer.idle(None)
    out.print(_stamped(stopped.line), highlight=False)
    if stopped.signum == signal.SIGINT:
        raise typer.Exit(130)  # (as Ctrl-C ends any other command; SIGTERM is a clean stop)


class _Printer:
    """The watch's lines on stdout, one per batch, each with the time; on a terminal, a
    status line while it waits."""

    def __init__(self) -> None:
        self._status: Status | None = None

    def ingested(self, result: IngestResult) -> None:
        where = result.source.removeprefix("local:")
        for batch in (*result.reexamined, *result.batches):
            self._line(_batch_line(batch, where))

    def published(self, done: Published, unreached: list[str]) -> None:
        to = "".join(f", delivered to {place}" for place in done.places[1:])
        self._line(f"Report: {Path(done.page).name} and {plural(done.flag_count, 'flag')} in "
                   f"{done.places[0]}/reports{to}.")
        for failure in [*unreached, *done.failed]:
            warn(f"the report did not reach {failure}; the next report tries again")

    def backed_up(self, done: BackupResult, pruned: Pruned | None, to: str) -> None:
        how = f"encrypted, key id {done.key_id}" if done.key_id else "not encrypted"
        kept = "" if pruned is None else (f"; kept {plural(len(pruned.kept), 'version')}, "
                                          f"deleted {plural(len(pruned.deleted), 'version')}")
        self._line(f"Backup: {plural(done.objects, 'file')} ({done.uploaded:,} new) as "
                   f"{done.manifest} in {to} ({how}){kept}.")

    def note(self, text: str) -> None:
        self._line(text)

    def idle(self, status: str | None) -> None:
        if status is None:
            if self._status is not None:
                self._status.stop()
                self._status = None
        elif not out.is_terminal:
            return
        elif self._status is None:
            self._status = out.status(f"{status}. Ctrl-C stops.")
            self._status.start()
        else:
            self._status.update(f"{status}. Ctrl-C stops.")

    def _line(self, text: str) -> None:
        out.print(_stamped(text), highlight=False)


def _stamped(text: str) -> str:
    return f"{datetime.now(FACTORY_TZ):%Y-%m-%d %H:%M} {text}"


def _batch_line(batch: Batch, where: str) -> str:
    """One line: what a batch took in."""
    c = batch.counts
    if batch.examines:
        return (f"Batch {batch.batch}: what an older rmg-lake quarantined, examined again: "
                f"{plural(c['seen'], 'file')}, {c['quarantined']:,} still quarantined.")
    if not c["seen"]:
        return (f"Batch 1: no files in {where} yet; the lake is made, with its study "
                "settings." if batch.batch == 1 else
                f"Batch {batch.batch}: no new files; the study settings in {CONFIG_FILE} "
                "changed and now shape the frames.")
    deferred = f", {c['deferred']:,} deferred" if c.get("deferred") else ""
    look = f" (`rmg-lake show {batch.batch}`)" if c["quarantined"] else ""
    return (f"Batch {batch.batch} from {where}: {plural(c['seen'], 'file')}, "
            f"{plural(c['added'], 'new event')}, {plural(c['duplicate'], 'duplicate')}, "
            f"{c['quarantined']:,} quarantined{look}, {plural(c['attachment'], 'attachment')}"
            f"{deferred}.")


def _install(source: str, lake: Path, quiet: float) -> None:
    from rmg_lake.watch.service import executable, install

    where = source if source.startswith("dropbox:") else str(Path(source).expanduser()
                                                             .resolve())
    command = [*executable(), "watch", "--source", where, "--lake", str(lake)]
    if quiet != QUIET:
        command += ["--quiet", f"{quiet:g}"]
    service = install(command, Path.cwd())
    settings = f" (where its {CONFIG_FILE} is read)" if Path(CONFIG_FILE).is_file() else ""
    out.print(f"Wrote {service.path}: it runs `rmg-lake watch` on {lake} at login, in "
              f"{Path.cwd()}{settings}.", highlight=False)
    out.print(f"  start it, now and at every login: {service.start}", highlight=False)
    out.print(f"  stop it (and not at login):       {service.stop}", highlight=False)
    out.print(f"  read its log:                     {service.log}", highlight=False)
    if service.path.suffix == ".service":
        out.print("  (to keep it running while you are logged out: loginctl enable-linger)",
                  highlight=False)


def _uninstall() -> None:
    from rmg_lake.watch.service import service_file, uninstall

    removed = uninstall()
    if removed is None:
        out.print(f"No service to remove ({service_file()} is not there).", highlight=False)
        return
    out.print(f"Removed {removed.path}; if it still runs, stop it: {removed.stop}",
              highlight=False)
