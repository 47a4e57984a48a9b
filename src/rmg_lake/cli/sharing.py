"""Sharing: exports for co-authors and Delta tables for a data team, pseudonymised with the
study secret."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from rmg_lake.cli.shell import (
    Commands,
    LakeOption,
    app,
    day_option,
    lake_from,
    out,
    plural,
    track,
)
from rmg_lake.deliver.delta import DeltaPublished, publish_delta
from rmg_lake.deliver.export import export as export_frames
from rmg_lake.deliver.secret import init_secret, load_secret
from rmg_lake.derive.frames import DETAIL
from rmg_lake.errors import LakeError, shown


class ExportFormat(StrEnum):
    parquet = "parquet"
    csv = "csv"
    xlsx = "xlsx"
    dta = "dta"  # Stata 118


@app.command()
def export(
    to: Annotated[Path, typer.Option("--out", help="A new folder for the files.",
                                     show_default=False)],
    lake: LakeOption = None,
    fmt: Annotated[ExportFormat, typer.Option("--format", help="The files' format.")] =
    ExportFormat.parquet,
    pseudonymise: Annotated[bool, typer.Option(
        "--pseudonymise", help="Replace every worker and supervisor code by its keyed hash "
                               "(needs the study secret: `rmg-lake secret init`), and leave "
                               "out the notes.")] = False,
    keep_notes: Annotated[bool, typer.Option(
        "--keep-notes", help="Keep the observers' free-text notes even when pseudonymising "
                             "(people write names in them).")] = False,
    start: Annotated[str | None, typer.Option("--from", help="First day (YYYY-MM-DD).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last day (YYYY-MM-DD).")] = None,
    tasks: Annotated[list[str] | None, typer.Option(
        "--tasks", help=f"Only these tasks ({', '.join(DETAIL)}): repeat the option, or "
                        "separate them by commas.")] = None,
) -> None:
    """Write the frames for sharing (observations, completion and each task's frame per
    department and team), one file each, with a README.txt data dictionary."""
    first, last = day_option(start, "--from"), day_option(end, "--to")
    if first and last and last < first:
        raise LakeError("--to is before --from")
    chosen = _tasks(tasks)
    secret = load_secret() if pseudonymise else None
    done = export_frames(lake_from(lake), to, fmt=fmt.value, secret=secret,
                         keep_notes=keep_notes, start=first, end=last, tasks=chosen,
                         track=track)
    privacy = (f"worker and supervisor codes pseudonymised (key id {done.key_id})"
               if done.key_id else "worker and supervisor codes as the factory wrote them: "
               "share only as the ethics approval allows (or use --pseudonymise)")
    out.print(f"Wrote {plural(len(done.rows), 'file')} ({sum(done.rows.values()):,} rows) and "
              f"README.txt to {shown(str(done.folder))}: {privacy}; notes "
              f"{'included' if done.notes else 'left out'}.", highlight=False)


@app.command()
def publish(
    delta: Annotated[str, typer.Option(
        "--delta", help="Where the Delta tables go: a folder (new, or one published before), "
                        "or an s3://, az:// or gs:// address.", show_default=False)],
    lake: LakeOption = None,
    tasks: Annotated[list[str] | None, typer.Option(
        "--tasks", help=f"Only these tasks ({', '.join(DETAIL)}) in a new target: repeat the "
                        "option, or separate them by commas (default: all, or the "
                        "target's).")] = None,
    pseudonymise: Annotated[bool, typer.Option(
        "--pseudonymise", help="Replace every worker and supervisor code by its keyed hash, "
                               "as `export --pseudonymise` does (a target is published "
                               "always so, or never).")] = False,
    storage_option: Annotated[list[str] | None, typer.Option(
        "--storage-option", help="KEY=VALUE for an object store, passed to deltalake as it "
                                 "is (repeat the option), e.g. AWS_REGION=eu-west-1.")] = None,
) -> None:
    """Publish the frames as Delta Lake tables for a data team: a commit per lake batch not
    published yet, so that version N of each table is the lake right after batch N."""
    options = dict(_option(text) for text in storage_option or [])
    chosen = _tasks(tasks)
    secret = load_secret() if pseudonymise else None
    say_published(publish_delta(lake_from(lake), delta, tasks=chosen, secret=secret,
                                storage_options=options or None, track=track))


def say_published(done: DeltaPublished) -> None:
    """What a publish did, in one line."""
    privacy = (f"worker and supervisor codes pseudonymised (key id {done.key_id})"
               if done.key_id else "worker and supervisor codes as the factory wrote them")
    if not done.batches:
        out.print(f"Nothing to publish: the {plural(len(done.tables), 'Delta table')} in "
                  f"{shown(done.target)} hold batch {done.batch}, the lake's last.",
                  highlight=False)
        return
    first, last = done.batches[0], done.batches[-1]
    which = f"batch {first}" if first == last else f"batches {first} to {last}"
    out.print(f"Published {which} to {shown(done.target)}: "
              f"{plural(len(done.tables), 'Delta table')}, version {last} of each the lake "
              f"right after batch {last}; {privacy}.", highlight=False)


def _tasks(tasks: list[str] | None) -> list[str]:
    """The tasks `--tasks` names (repeated, or separated by commas)."""
    chosen = [t.strip() for item in tasks or [] for t in item.split(",") if t.strip()]
    if tasks and not chosen:
        raise LakeError("--tasks names no task", hint=f"e.g. --tasks {','.join(DETAIL)}")
    return chosen


def _option(text: str) -> tuple[str, str]:
    """`KEY=VALUE` of --storage-option."""
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise LakeError("a value is not KEY=VALUE (not shown: it may hold a secret)",
                        field="--storage-option", hint="e.g. --storage-option "
                                                       "AWS_REGION=eu-west-1")
    return key.strip(), value


secret_app = typer.Typer(cls=Commands, no_args_is_help=True, help="The study secret that keys the "
                         "pseudonyms of `export --pseudonymise`.")
app.add_typer(secret_app, name="secret")


@secret_app.command("init")
def secret_init() -> None:
    """Make the study secret, once: keep it, and copy it to the study's other computers."""
    made = init_secret()
    out.print(f"Made the study secret (key id {made.key_id}) in {shown(str(made.path))}, "
              "readable by you alone. Pseudonyms are the same wherever the same secret is, "
              "and backups are encrypted with it from now on: copy this file (never into "
              "the lake, the repository or Dropbox) to any other computer that exports or "
              "restores for the study, and keep a copy somewhere safe (a password manager): "
              "without it, no encrypted backup can be restored.", highlight=False)


@secret_app.command("status")
def secret_status() -> None:
    """Where the study secret is, and its key id (the secret itself is never shown)."""
    found = load_secret()
    out.print(f"Study secret: {shown(str(found.path))} (key id {found.key_id}).",
              highlight=False)
