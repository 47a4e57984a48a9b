"""`rmg-lake`: a thin shell over the library: parse, call, render, map errors to exit codes."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from rmg_lake.config import CONFIG_FILE, Config, load_config
from rmg_lake.errors import LakeError, shown
from rmg_lake.lake import IngestResult, Lake, open_lake
from rmg_lake.report import completion_csv, completion_json, render_completion
from rmg_lake.sources import open_source

if TYPE_CHECKING:
    from rmg_lake.backup import Target
    from rmg_lake.verify import Verified

__all__ = ["app", "main"]

T = TypeVar("T")
app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="An append-only lake for the RMG field study's observation files.")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

LakeOption = Annotated[Path | None, typer.Option(
    "--lake", help="Lake folder [default: `lake` from rmg-lake.toml, else ./lake].")]


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


def _track(items: Iterable[T], total: int, what: str, *,
           size: Callable[[T], int] | None = None, total_size: int = 0) -> Iterator[T]:
    """A progress bar on a terminal (files, and bytes when `size` is given); nothing in a
    pipe, where the command's own summary is the record."""
    if not err.is_terminal:
        yield from items
        return
    columns: list[str | ProgressColumn] = [
        TextColumn("{task.description}"), BarColumn(),
        TextColumn("{task.fields[done]:,}/{task.fields[files]:,} files")]
    if size is not None:
        columns += [DownloadColumn(), TransferSpeedColumn()]
    columns.append(TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(what, total=total_size if size else total, done=0, files=total)
        for done, item in enumerate(items, 1):
            yield item
            bar.update(task, advance=size(item) if size else 1, done=done)


def _lake_path(lake: Path | None, config: Config | None) -> Path:
    """The lake `--lake` names, else the one rmg-lake.toml names, else ./lake."""
    return (lake or (config.lake if config else Path("lake"))).expanduser().resolve()


def _lake(lake: Path | None, *, create: bool = False) -> Lake:
    """Open that lake; rmg-lake.toml is read only when `--lake` is not given."""
    the_lake = open_lake(_lake_path(lake, None if lake else load_config()), create=create)
    the_lake.on_wait = lambda: err.print("Another rmg-lake run is writing this lake; "
                                         "waiting for it to finish…")
    return the_lake


def _n(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 'es' if word.endswith('h') else 's'}"


@app.command()
def ingest(
    source: Annotated[str | None, typer.Option(
        "--source", help="Sync folder to read [default: `source` from rmg-lake.toml].")] = None,
    lake: LakeOption = None,
    workers: Annotated[int, typer.Option(
        min=1, max=64, help="Files read at once (downloads wait on the network).")] = 8,
) -> None:
    """Take every new file from the sync folder into the lake as one batch."""
    config = load_config()
    source = source or (config.source if config else None)
    if source is None:
        raise LakeError("no source given", hint="pass --source DIR or set `source` "
                        "in rmg-lake.toml")
    root = _lake_path(lake, config)
    files = open_source(source, exclude=[root])  # before the lake: a wrong source makes none
    the_lake = _lake(root, create=True)
    # rmg-lake.toml's study settings are about its own lake, not one named by --lake
    ours = config is not None and config.lake.resolve() == the_lake.root
    settings = config.settings if config and ours else None
    _print_ingest(the_lake.ingest(files, settings=settings, track=_track, workers=workers),
                  the_lake)


_LISTED = 10  # quarantined files listed after an ingest


def _print_ingest(result: IngestResult, lake: Lake) -> None:
    where = result.source.removeprefix("local:")
    if result.vanished:
        out.print(f"{_n(result.vanished, 'file')} went away while being read (a sync in "
                  "progress?); the next ingest takes them if they come back.")
    if result.relisted:
        out.print("The stored Dropbox cursor had expired: the whole folder was listed again "
                  "(files already in the lake are skipped).")
    if result.gone:
        out.print(f"{_n(len(result.gone), 'file')} deleted or moved away at the source; the "
                  "lake keeps everything it has.")
    if result.batch is None:
        n = len(lake.batches())
        out.print(f"Nothing new in {where}: the lake is unchanged ({_n(n, 'batch')} so far).")
        return
    c = result.counts
    if not c["seen"] and result.batch.batch == 1:
        out.print(f"Batch 1: no files in {where} yet; the lake is made, with its study "
                  "settings.")
        return
    if not c["seen"]:
        out.print(f"Batch {result.batch.batch}: no new files; the study settings in "
                  f"{CONFIG_FILE} changed and now shape the frames.")
        return
    out.print(f"Batch {result.batch.batch} from {where}: {_n(c['seen'], 'file')} seen")
    out.print(f"  {_n(c['added'], 'new event')} ({result.superseding:,} superseding earlier "
              f"versions), {_n(c['duplicate'], 'duplicate')}, {c['quarantined']:,} "
              f"quarantined, {_n(c['attachment'], 'attachment')}")
    if result.batch.settings is not None and result.batch.batch > 1:
        out.print(f"  The study settings in {CONFIG_FILE} changed with this batch.")
    if result.with_unknown_keys:
        out.print(f"  {result.with_unknown_keys:,} observations carry keys the contract does not "
                  "know (kept in raw; see extra_keys in observations)")
    bad = [f for f in result.batch.files if f.outcome == "quarantined"]
    for record in bad[:_LISTED]:
        field = f"{record.field}: " if record.field else ""
        out.print(Text.assemble("  ", ("quarantined", "yellow"),
                                shown(f" {record.path} — {field}{record.reason}")),
                  highlight=False)
    if len(bad) > _LISTED:
        out.print(f"  … and {len(bad) - _LISTED} more; the `quarantine` view lists them all")


@app.command()
def report(
    lake: LakeOption = None,
    start: Annotated[str | None, typer.Option("--from", help="First day, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day, YYYY-MM-DD.")] = None,
    format: Annotated[Format, typer.Option(help="table, csv or json.")] = Format.table,
) -> None:
    """Which tasks were completed on which days, against the protocol."""
    first, last = _day(start, "--from"), _day(end, "--to")
    frame = _lake(lake).completion(first, last)
    if format is Format.csv:
        sys.stdout.write(completion_csv(frame))
    elif format is Format.json:
        sys.stdout.write(completion_json(frame))
    elif frame.is_empty() and (first or last):
        out.print(f"No days between {first or 'the first day'} and {last or 'the last day'} "
                  "in the lake.")
    else:
        render_completion(frame, out)


def _day(text: str | None, option: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        raise LakeError(f"{text!r} is not a date", field=option,
                        hint="write it as YYYY-MM-DD") from None


@app.command()
def rebuild(lake: LakeOption = None) -> None:
    """Remake every derived file (Parquet frames, lake.duckdb) from raw + log alone."""
    the_lake = _lake(lake)
    the_lake.rebuild(track=_track)
    batches = _n(len(the_lake.batches()), "batch")
    out.print(f"Rebuilt the frames and lake.duckdb in {the_lake.root} from {batches}.")


@app.command()
def verify(
    lake: LakeOption = None,
    repair: Annotated[bool, typer.Option(
        "--repair", help="Delete orphans (files no log entry names); nothing else.")] = False,
) -> None:
    """Re-hash every file the log names; report damaged, missing and orphaned files."""
    the_lake = _lake(lake)
    _print_verified(the_lake.verify(repair=repair, track=_track), repaired=repair)


def _print_verified(verified: Verified, *, repaired: bool = False) -> None:
    """The findings, then one line; exit 1 if anything is wrong (orphans are not)."""
    for finding in verified.findings[:_LISTED] if verified.ok else verified.problems:
        style = "yellow" if finding.kind == "orphan" else "red"
        out.print(Text.assemble("  ", (finding.kind, style),
                                shown(f" {finding.file} — {finding.detail}")), highlight=False)
    orphans = len(verified.orphans)
    if orphans:
        out.print(f"{_n(orphans, 'orphan')} (left by a run that stopped before its commit; "
                  + ("deleted)." if repaired else "harmless; `rmg-lake verify --repair` "
                     "deletes them)."))
    entries = "entry" if verified.batches == 1 else "entries"
    summary = f"{verified.batches:,} log {entries} and {_n(verified.checked, 'file')} checked"
    if verified.ok:
        out.print(f"OK: {summary}; every file the log names is there, whole.")
        return
    err.print(Text.assemble(("error: ", "bold red"),
                            f"{_n(len(verified.problems), 'problem')} in {summary}"))
    raise typer.Exit(1)


def _target(spec: str) -> Target:
    """A backup folder: `dropbox:/path`, or a local one."""
    from rmg_lake.backup import FolderTarget

    if spec.startswith("dropbox:"):
        from rmg_lake.sources.dropbox import DropboxTarget, client_from_env

        return DropboxTarget(spec, client_from_env())
    return FolderTarget(spec)


@app.command()
def backup(
    to: Annotated[str, typer.Option(
        "--to", help="Backup folder: dropbox:/path, or a local one (a USB disk, say).")],
    lake: LakeOption = None,
    prune: Annotated[bool, typer.Option(
        "--prune", help="Then delete old versions: keep all of the last --days, then one a "
        "week for --weeks-days.")] = False,
    days: Annotated[int, typer.Option(min=0)] = 14,
    weeks_days: Annotated[int, typer.Option(min=0)] = 365,
) -> None:
    """Write a timestamped, verifiable version of the lake; only new files are copied."""
    from rmg_lake.backup import backup as run
    from rmg_lake.backup import prune as run_prune

    target = _target(to)
    result = run(_lake(lake), target, track=_track)
    out.print(f"Backed up {_n(result.objects, 'file')} ({result.uploaded:,} new) as "
              f"{result.manifest} in {to}.")
    if prune:
        pruned = run_prune(target, every_version_days=days, weekly_days=weeks_days)
        out.print(f"Kept {_n(len(pruned.kept), 'version')}; deleted "
                  f"{_n(len(pruned.deleted), 'version')} and "
                  f"{_n(pruned.objects_deleted, 'unused object')}.")


@app.command()
def restore(
    source: Annotated[str, typer.Argument(help="The backup folder (dropbox:/path or local).")],
    lake: Annotated[Path, typer.Option("--lake", help="A new, empty folder for the lake.")],
    version: Annotated[str | None, typer.Option(
        help="Which backup (part of its time stamp) [default: the newest].")] = None,
) -> None:
    """Make a lake again from a backup, and its frames and views from it."""
    from rmg_lake.backup import restore as run

    restored = run(_target(source), lake.expanduser().resolve(), version=version,
                   track=_track)
    out.print(f"Restored {_n(len(restored.batches()), 'batch')} into {restored.root}; "
              "`rmg-lake verify` finds every file whole.")


@app.command()
def auth(
    app_key: Annotated[str | None, typer.Option(
        "--app-key", help="The Dropbox app's key [default: DROPBOX_APP_KEY].")] = None,
    status: Annotated[bool, typer.Option(
        "--status", help="Say which account and folder are set up; change nothing.")] = False,
) -> None:
    """Sign in to Dropbox (OAuth 2, PKCE, offline access); the token stays private to you."""
    from rmg_lake.credentials import load_credentials, save_credentials, sign_in

    if status:
        credentials, config = load_credentials(), load_config()
        out.print(f"Dropbox: app {credentials.app_key}, account "
                  f"{credentials.account_id or 'not recorded'}, credentials from "
                  f"{credentials.origin}")
        out.print(f"Source: {config.source if config and config.source else 'not set'}")
        return
    key = app_key or os.environ.get("DROPBOX_APP_KEY")
    if not key:
        raise LakeError("no app key", hint="pass --app-key KEY (the key of the study's "
                        "Dropbox app; it is not a secret)")

    def ask(address: str) -> str:
        out.print("1. Open this address, sign in and allow the app:")
        out.print(address, highlight=False)
        answer: str = typer.prompt("2. Paste the code Dropbox shows")
        return answer

    credentials = sign_in(key, ask)
    path = save_credentials(credentials)
    out.print(f"Signed in (account {credentials.account_id}); the token is kept in {path}, "
              "readable by you only.")


@app.command()
def simulate(
    folder: Annotated[Path, typer.Argument(help="Folder to write the simulated files into.")],
    days: Annotated[int, typer.Option(min=1, help="Calendar days to simulate.")] = 21,
    observers: Annotated[int, typer.Option(min=1, help="Observers in the field.")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same files.")] = 0,
) -> None:
    """Write a realistic sync folder under the contract (for demos, tests and benchmarks)."""
    from rmg_lake.simulate import simulate as run

    manifest = run(folder, days=days, observers=observers, seed=seed)
    out.print(f"Wrote {manifest.files:,} files to {folder}: {manifest.observation_files:,} "
              f"observation files ({manifest.duplicates:,} duplicates, {manifest.superseded:,} "
              f"superseded versions), {manifest.photos:,} photos, {len(manifest.bad):,} bad "
              "files.")


def main() -> None:
    """Entry point: library errors become one line on stderr and exit code 1.

    (Typer already turns Ctrl-C into exit 130 and a closed pipe, as in `| head`, into a
    quiet exit.)
    """
    try:
        app()
    except LakeError as exc:
        err.print(Text.assemble(("error: ", "bold red"), str(exc)), highlight=False)
        sys.exit(1)
