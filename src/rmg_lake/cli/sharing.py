"""Sharing: exports for co-authors, pseudonymised with the study secret."""

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
    chosen = [t.strip() for item in tasks or [] for t in item.split(",") if t.strip()]
    if tasks and not chosen:
        raise LakeError("--tasks names no task", hint=f"e.g. --tasks {','.join(DETAIL)}")
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


secret_app = typer.Typer(cls=Commands, no_args_is_help=True, help="The study secret that keys the "
                         "pseudonyms of `export --pseudonymise`.")
app.add_typer(secret_app, name="secret")


@secret_app.command("init")
def secret_init() -> None:
    """Make the study secret, once: keep it, and copy it to the study's other computers."""
    made = init_secret()
    out.print(f"Made the study secret (key id {made.key_id}) in {shown(str(made.path))}, "
              "readable by you alone. Pseudonyms are the same wherever the same secret is: "
              "copy this file (never into the lake, the repository or Dropbox) to any other "
              "computer that exports for the study.", highlight=False)


@secret_app.command("status")
def secret_status() -> None:
    """Where the study secret is, and its key id (the secret itself is never shown)."""
    found = load_secret()
    out.print(f"Study secret: {shown(str(found.path))} (key id {found.key_id}).",
              highlight=False)
