"""The lake's everyday commands: ingest, report, check, rebuild, verify, simulate."""

from __future__ import annotations

import sys
from datetime import date, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import polars as pl
import typer
from rich.text import Text

from rmg_lake._internal.files import write_atomic
from rmg_lake.cli.shell import (
    LISTED,
    LakeOption,
    TodayOption,
    about,
    app,
    day_option,
    err,
    lake_from,
    now_option,
    out,
    plural,
    sourced,
    track,
    warn,
)
from rmg_lake.config import CONFIG_FILE
from rmg_lake.deliver.completion import (
    TABLE_DAYS,
    completion_csv,
    completion_json,
    render_completion,
)
from rmg_lake.errors import LakeError, boundary, shown
from rmg_lake.lake import IngestResult, Lake
from rmg_lake.sources import Source
from rmg_lake.store.records import FileRecord

if TYPE_CHECKING:
    from rmg_lake.store.verify import Verified


@app.command()
def ingest(
    source: Annotated[str | None, typer.Option(
        "--source", help="Sync folder to read (default: `source` from rmg-lake.toml).")] = None,
    lake: LakeOption = None,
    workers: Annotated[int | None, typer.Option(
        min=1, max=64, help="Files read at once (default: 2 from a folder, 8 from "
                            "Dropbox, whose downloads wait on the network).")] = None,
    report: Annotated[bool, typer.Option(
        "--report", help="Then write the HTML report and the day's flags (CSV) under dated "
                         "names into LAKE/reports/, and into reports/ of `reports_to` in "
                         "rmg-lake.toml or else of a Dropbox source; each place keeps its "
                         "last 30 days'. With `publish` in rmg-lake.toml, also publish the "
                         "Delta tables there.")] = False,
) -> None:
    """Take every new file from the sync folder into the lake as one batch (more than
    50,000 new files: a batch per 50,000)."""
    config, _, root, files = sourced(source, lake)
    the_lake = lake_from(root, create=True)
    own = about(config, the_lake.root)
    settings = own.settings if own else None
    max_size = int((config.max_file_mb if config else 10) * 2**20)
    print_ingest(the_lake.ingest(files, settings=settings, track=track, workers=workers,
                                  max_size=max_size), the_lake)
    if report:
        _publish(the_lake, files, own.reports_to if own else None)
        if own is not None and own.publish is not None:
            _publish_delta(the_lake, own.publish, pseudonymise=own.publish_pseudonymise)


def _publish(lake: Lake, source: Source, reports_to: str | None) -> None:
    """Deliver the report into the lake and to `reports_to`, else a Dropbox source's
    folder; a place that cannot be reached is a warning (the lake has the report)."""
    from rmg_lake.deliver.publish import places, publish

    targets, unreached = places(source, reports_to)
    done = publish(lake, targets=targets)
    out.print(f"Wrote the report and {plural(done.flag_count, 'flag')} to "
              f"{lake.root / done.page}, {Path(done.flags).name} and "
              f"{Path(done.checks).name}"
              + "".join(f"; delivered to {place}/{Path(done.page).parent}"
                        for place in done.places[1:])
              + (f"; deleted {plural(done.deleted, 'older report file')}" if done.deleted
                 else "") + ".", highlight=False)
    for failure in [*unreached, *done.failed]:
        warn(f"the report did not reach {failure}; the next --report tries again")


def _publish_delta(lake: Lake, target: str, *, pseudonymise: bool) -> None:
    """Publish the Delta tables to `publish` of rmg-lake.toml; a failure is a warning (the
    next --report publishes what is left)."""
    from rmg_lake.cli.sharing import say_published
    from rmg_lake.deliver.delta import publish_delta
    from rmg_lake.deliver.secret import load_secret

    try:
        say_published(publish_delta(lake, target, secret=load_secret() if pseudonymise
                                    else None))
    except LakeError as error:
        warn(f"the Delta tables were not published: {error}; the next --report "
             "publishes the batches they lack")


def print_ingest(result: IngestResult, lake: Lake) -> None:
    where = result.source.removeprefix("local:")
    for batch in result.reexamined:
        same = sum(1 for f in batch.files if f.outcome == "duplicate"
                   and f.stored.startswith("quarantine/"))  # refused for the same reason
        still = batch.counts["quarantined"] + same
        added = batch.counts["added"]
        examined = list(map(str, batch.examines or ()))
        which = f"batch {examined[0]}" if len(examined) == 1 else \
            f"batches {', '.join(examined[:-1])} and {examined[-1]}"
        out.print(f"Batch {batch.batch}: the quarantine of {which} examined "
                  f"again by this rmg-lake: {plural(len(batch.files), 'file')}, "
                  f"{len(batch.files) - still:,} taken in ({plural(added, 'new event')}"
                  f", {plural(batch.counts['attachment'], 'attachment')}), {still:,} "
                  f"still quarantined ({same:,} for the same reason)", highlight=False)
        _print_quarantined([f for f in batch.files if f.outcome == "quarantined"])
        if batch.source.startswith("legacy:") and added:
            out.print("  (its rounds taken in before stay as they were read: import the "
                      "pilot's folder again to read them all as this rmg-lake does)",
                      highlight=False)
    for failed in result.unexamined:
        warn(f"{failed}; please report it")
    if result.vanished:
        out.print(f"{plural(result.vanished, 'file')} went away while being read (a sync in "
                  "progress?); the next ingest takes them if they come back.")
    if result.relisted:
        out.print("The stored Dropbox cursor had expired: the whole folder was listed again "
                  "(files already in the lake are skipped).")
    if result.gone:
        out.print(f"{plural(len(result.gone), 'file')} deleted or moved away at the source; the "
                  "lake keeps everything it has.")
    if result.batch is None:
        n = lake.log.count()
        out.print(f"Nothing new in {where}" + (
            "." if result.reexamined else
            f": the lake is unchanged ({plural(n, 'log entry')} so far)."))
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
    first, last = result.batches[0].batch, result.batch.batch
    name = f"Batch {last}" if first == last else f"Batches {first}–{last}"
    out.print(f"{name} from {where}: {plural(c['seen'], 'file')} seen")
    out.print(f"  {plural(c['added'], 'new event')} ({result.superseding:,} superseding earlier "
              f"versions), {plural(c['duplicate'], 'duplicate')}, {c['quarantined']:,} "
              f"quarantined, {plural(c['attachment'], 'attachment')}")
    if result.batches[0].settings is not None and first > 1:
        out.print(f"  The study settings in {CONFIG_FILE} changed with batch {first}.")
    if result.with_unknown_keys:
        out.print(f"  {result.with_unknown_keys:,} observations carry keys the contract does not "
                  "know (kept in raw; see extra_keys in observations)")
    _print_quarantined(result.quarantined)


def _print_quarantined(bad: list[FileRecord]) -> None:
    for record in bad[:LISTED]:
        field = f"{record.field}: " if record.field else ""
        out.print(Text.assemble("  ", ("quarantined", "yellow"),
                                shown(f" {record.path} — {field}{record.reason}")),
                  highlight=False)
    if len(bad) > LISTED:
        out.print(f"  … and {len(bad) - LISTED} more; the `quarantine` view lists them all")


class ReportFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    html = "html"


@app.command()
def report(
    lake: LakeOption = None,
    start: Annotated[str | None, typer.Option("--from", help=(
        "First day, YYYY-MM-DD (html: by default four weeks before the last day)."))] = None,
    end: Annotated[str | None, typer.Option("--to", help=(
        "Last day, YYYY-MM-DD (html: by default the last day observed)."))] = None,
    format: Annotated[ReportFormat, typer.Option(
        help="table, csv, json, or html (a page to read on a phone too).")
    ] = ReportFormat.table,
    to: Annotated[Path | None, typer.Option("--out", help="The HTML file to write.")] = None,
    every_day: Annotated[bool, typer.Option(
        "--all", help=f"Every day (table: by default the last {TABLE_DAYS} days observed; "
                      "csv and json always give every day).")] = False,
    today: TodayOption = None,
) -> None:
    """Which tasks were completed on which days, against the protocol."""
    first, last = day_option(start, "--from"), day_option(end, "--to")
    now = now_option(today)
    if format is ReportFormat.html:
        _html_report(lake_from(lake), to, first, last, now)
        return
    the_lake = lake_from(lake)
    frame = the_lake.completion(first, last)
    if format is ReportFormat.table and not (every_day or first or last) and frame.height:
        earliest: date = frame["day"].min()  # type: ignore[assignment]
        tomorrow = now.date() + timedelta(days=1)
        latest = the_lake.last_day_observed(tomorrow) or earliest  # (not a clock ahead's)
        first = latest - timedelta(days=TABLE_DAYS - 1)
        if earliest < first or frame["day"].max() > latest:  # type: ignore[operator]
            frame = frame.filter(pl.col("day").is_between(first, latest))
            err.print(f"The last {TABLE_DAYS} days, from {first} to {latest}: --all for every "
                      "day, or --from and --to.")
    if format is ReportFormat.csv:
        sys.stdout.write(completion_csv(frame))
    elif format is ReportFormat.json:
        sys.stdout.write(completion_json(frame))
    elif frame.is_empty() and (first or last):
        out.print(f"No days between {first or 'the first day'} and {last or 'the last day'} "
                  "in the lake.")
    else:
        render_completion(frame, out)


class CheckFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    xlsx = "xlsx"


@app.command()
def check(
    lake: LakeOption = None,
    day: Annotated[str | None, typer.Option(
        "--day", help="The day to check, YYYY-MM-DD (default: the last day observed "
                      "before today, factory time, and any later flags, such as today's "
                      "quarantined files).")] = None,
    every_day: Annotated[bool, typer.Option("--all", help="Every day's flags.")] = False,
    settled: Annotated[bool, typer.Option(
        "--settled", help="Also the flags a checks workbook corrected or reviewed (their "
                          "status says so).")] = False,
    format: Annotated[CheckFormat, typer.Option(
        help="table, csv, json, or xlsx: the checks workbook for the field manager (summary, "
             "tracking, observers, and a sheet per check with columns to fill in); needs "
             "--out.")] = CheckFormat.table,
    to: Annotated[Path | None, typer.Option("--out", help="The workbook's file.")] = None,
    rules: Annotated[bool, typer.Option(
        "--list", help="List the checks and their rules; check nothing.")] = False,
    today: TodayOption = None,
) -> None:
    """The daily quality checks: what to ask the field team about (flags a checks
    workbook corrected or reviewed are left out)."""
    from rmg_lake.deliver.flags import flags_csv, flags_json, render_flags
    from rmg_lake.derive.checks import rules as check_rules

    if format is CheckFormat.xlsx and to is None:
        raise LakeError("a workbook needs a file to go to", hint="pass --out FILE.xlsx")
    the_lake = lake_from(lake)
    if rules:
        for name, rule in check_rules(the_lake.settings()).items():
            out.print(Text.assemble((name, "bold"), f": {rule}"), highlight=False)
        return
    first = last = day_option(day, "--day")
    if first is None and not every_day:  # today's tasks are not all done yet
        now = now_option(today).date()
        first = the_lake.last_day_observed(now)
        if first is not None and the_lake.settings().calendar.working_days(first, now):
            err.print(f"Nothing observed since {first} ({(now - first).days} days ago): "
                      "has the sync stopped?", style="bold red")
    flags = the_lake.flags(first, last)
    if format is CheckFormat.xlsx and to is not None:
        _workbook(the_lake, flags, to, first, last)
        return
    hidden = 0 if settled else int((flags["status"] != "open").sum())
    if hidden:
        flags = flags.filter(pl.col("status") == "open")
    if format is CheckFormat.csv:
        sys.stdout.write(flags_csv(flags))
    elif format is CheckFormat.json:
        sys.stdout.write(flags_json(flags))
    else:
        render_flags(flags, out)
    if hidden:
        err.print(f"{plural(hidden, 'flag')} corrected or reviewed not shown (--settled "
                  "shows them).", highlight=False)


def _workbook(lake: Lake, flags: pl.DataFrame, to: Path, first: date | None,
              last: date | None) -> None:
    """The checks workbook of `flags` (the days `first` to `last`, else those they are of)."""
    from rmg_lake.deliver.workbook import checked_days, checks_workbook

    start, end = checked_days(flags, first, last)
    data = checks_workbook(lake, flags, start, end)
    with boundary(file=to, doing="write the workbook"):
        write_atomic(to.expanduser(), data, sync=False)
    out.print(f"Wrote the checks of {start} to {end} ({plural(flags.height, 'flag')}) to {to}.",
              highlight=False)


def _html_report(lake: Lake, to: Path | None, first: date | None, last: date | None,
                 now: datetime) -> None:
    from rmg_lake.deliver.html import render_html, report_data

    if to is None:
        raise LakeError("an HTML report needs a file to go to", hint="pass --out FILE")
    page = render_html(lake, report_data(lake, start=first, end=last, now=now))
    with boundary(file=to, doing="write the report"):
        write_atomic(to.expanduser(), page.encode(), sync=False)
    out.print(f"Wrote the report to {to} ({len(page) // 1024:,} kB).")


@app.command()
def rebuild(
    lake: LakeOption = None,
    as_of: Annotated[int | None, typer.Option(
        "--as-of", min=1, help="Make the frames as they stood right after this batch.")] = None,
    to: Annotated[Path | None, typer.Option(
        "--out", help="Folder for the --as-of frames (default: LAKE/as-of-NNNNNN).")] = None,
) -> None:
    """Remake every derived file (Parquet frames, lake.duckdb) from the log and the files
    it names."""
    if to is not None and as_of is None:
        raise LakeError("--out goes with --as-of", hint="the lake's own frames stay in it")
    the_lake = lake_from(lake)
    folder = the_lake.rebuild(track=track, as_of=as_of, out=to)
    if as_of is None:
        entries = plural(len(the_lake.entries()), "log entry")
        out.print(f"Rebuilt the frames and lake.duckdb in {the_lake.root} from {entries}.")
    else:
        out.print(f"Wrote the frames and lake.duckdb as they stood right after batch {as_of} "
                  f"to {folder} (the lake itself is unchanged): duckdb {folder}/lake.duckdb")


@app.command()
def verify(
    lake: LakeOption = None,
    repair: Annotated[bool, typer.Option(
        "--repair", help="Delete orphans (files no log entry names) and make every file "
                         "private to you; nothing else.")] = False,
) -> None:
    """Re-hash every file the log names; report damaged, missing and orphaned files, and
    files other users may read."""
    the_lake = lake_from(lake)
    _print_verified(the_lake.verify(repair=repair, track=track), repaired=repair)


def _print_verified(verified: Verified, *, repaired: bool = False) -> None:
    """The findings, then one line; exit 1 if anything is wrong (orphans are not)."""
    for finding in verified.findings[:LISTED] if verified.ok else verified.problems:
        style = "yellow" if finding.kind == "orphan" else "red"
        out.print(Text.assemble("  ", (finding.kind, style),
                                shown(f" {finding.file} — {finding.detail}")), highlight=False)
    orphans = len(verified.orphans)
    if orphans:
        out.print(f"{plural(orphans, 'orphan')} (left by a run that stopped before its commit; "
                  + ("deleted)." if repaired else "harmless; `rmg-lake verify --repair` "
                     "deletes them)."))
    entries = "entry" if verified.batches == 1 else "entries"
    summary = f"{verified.batches:,} log {entries} and {plural(verified.checked, 'file')} checked"
    if verified.ok:
        out.print(f"OK: {summary}; every file the log names is there, whole.")
        return
    err.print(Text.assemble(("error: ", "bold red"),
                            f"{plural(len(verified.problems), 'problem')} in {summary}"))
    raise typer.Exit(1)


@app.command()
def simulate(
    folder: Annotated[Path, typer.Argument(help="Folder to write the simulated files into.")],
    days: Annotated[int, typer.Option(min=1, help="Calendar days to simulate.")] = 21,
    observers: Annotated[int, typer.Option(min=1, help="Observers in the field.")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same files.")] = 0,
) -> None:
    """Write a realistic sync folder under the contract (for demos, tests and benchmarks)."""
    from rmg_lake.sample.simulate import simulate as run

    manifest = run(folder, days=days, observers=observers, seed=seed)
    out.print(f"Wrote {manifest.files:,} files to {folder}: {manifest.observation_files:,} "
              f"observation files ({manifest.duplicates:,} duplicates, {manifest.superseded:,} "
              f"superseded versions, {len(manifest.back_checks):,} back-checks), "
              f"{manifest.photos:,} photos, {len(manifest.bad):,} bad files.")
