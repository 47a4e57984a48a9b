"""Exports for sharing: the frames as files, with a data dictionary, people's codes
pseudonymised on request.

    <out>/observations.parquet, completion.parquet, roster_knitting_treatment.parquet, …
    <out>/README.txt        what was exported, and every column: type, meaning, values

(or .csv, .xlsx, or .dta for Stata: `rmg_lake.deliver.stata`)

Pseudonymised, every worker and supervisor code becomes `p_` and 16 hex digits of
HMAC-SHA256 keyed by the study secret (`rmg_lake.deliver.secret`), and what anyone could have
typed outside the contract's codes is left out: the observers' notes (unless kept on
purpose), the file's path in the sync folder, the device's and app's names and the keys
the contract lacks. Interlocutors stay: they are machines and roles, not people.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

import polars as pl

from rmg_lake._internal.files import own_private_dir, write_atomic
from rmg_lake._internal.progress import Track
from rmg_lake.contract.models import PERSONAL
from rmg_lake.deliver.cells import csv_safe
from rmg_lake.deliver.dictionary import column_rows
from rmg_lake.deliver.secret import StudySecret
from rmg_lake.deliver.stata import dta_bytes
from rmg_lake.derive.frames import DETAIL, team_frame_name
from rmg_lake.errors import LakeError, boundary, guarded
from rmg_lake.lake import Lake
from rmg_lake.store.tables import parquet_bytes

__all__ = ["FORMATS", "Exported", "export", "shareable"]

Format = Literal["parquet", "csv", "xlsx", "dta"]
FORMATS: tuple[Format, ...] = ("parquet", "csv", "xlsx", "dta")
FREE_TEXT = ("notes",)  # left out when pseudonymised, unless kept on purpose
UNCHECKED = ("source_path", "device", "app_version", "extra_keys")  # … and these, always
_TIME = "%Y-%m-%dT%H:%M:%S%.6fZ"  # UTC, as text in CSV and Excel
_EXCEL_ROWS = 1_048_575  # a worksheet's rows, the header aside


@dataclass(frozen=True, slots=True)
class Exported:
    folder: Path
    rows: dict[str, int]  # file name → its rows
    key_id: str | None  # the study secret's, if pseudonymised
    notes: bool  # whether the notes are in it


@guarded
def export(lake: Lake, out: str | Path, *, fmt: Format = "parquet",
           secret: StudySecret | None = None, keep_notes: bool = False,
           start: date | None = None, end: date | None = None,
           tasks: Collection[str] | None = None, track: Track | None = None) -> Exported:
    """Write the observations, completion and every team frame (of `tasks`, between
    `start` and `end`) into the new folder `out`, one file each, and README.txt.
    With `secret`, people's codes are pseudonymised and the notes left out (but for
    `keep_notes`)."""
    if fmt not in FORMATS:
        raise LakeError(f"no export format {fmt!r}", hint=f"one of {', '.join(FORMATS)}")
    wanted = set(tasks) if tasks else set(DETAIL)
    if unknown := sorted(wanted - set(DETAIL)):
        raise LakeError(f"no task {', '.join(unknown)}", hint=f"one of {', '.join(DETAIL)}")
    out = Path(out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise LakeError("is a file, not a folder", file=str(out),
                        hint="give --out a new folder")
    if out.is_relative_to(lake.root):
        raise LakeError("an export goes outside the lake", file=str(out),
                        hint="give --out a folder outside the lake's")
    if out.exists() and any(out.iterdir()):
        raise LakeError("the folder is not empty", file=str(out),
                        hint="give --out a new folder: an export is never mixed with another")
    keep = keep_notes or secret is None
    teams = [t for t in lake.team_frames() if t[0] in wanted]
    parts: Iterable[tuple[str, pl.DataFrame]] = _frames(lake, teams, wanted, start, end)
    if track is not None:
        parts = track(parts, len(teams) + 2, "Exporting")
    with boundary(file=out, doing="make the folder"):
        own_private_dir(out)  # (an empty folder made beforehand, too)
    rows, dictionary = {}, []
    for name, frame in parts:
        shared = shareable(frame, secret, keep)
        data, joined = _encode(shared, fmt, name)
        file = f"{name}.{fmt}"
        write_atomic(out / file, data, sync=False)
        rows[file] = shared.height
        dictionary.append((file, shared.height, column_rows(
            name, shared.schema, set(PERSONAL) & set(shared.columns) if secret else set(),
            joined)))
    readme = _readme(lake, dictionary, secret, keep, start, end, sorted(wanted))
    write_atomic(out / "README.txt", readme.encode(), sync=False)
    return Exported(out, rows, secret.key_id if secret else None, keep)


def _frames(lake: Lake, teams: list[tuple[str, str, str]], tasks: set[str],
            start: date | None, end: date | None) -> Iterator[tuple[str, pl.DataFrame]]:
    for name in ("observations", "completion"):
        yield name, lake.table(name, start, end).filter(pl.col("task").is_in(sorted(tasks)))
    for task, department, team in teams:
        yield team_frame_name(task, department, team), lake.frame(task, department, team,
                                                                  start, end)


def shareable(frame: pl.DataFrame, secret: StudySecret | None, keep_notes: bool,
              ) -> pl.DataFrame:
    """The frame with people's codes pseudonymised (with a secret), notes dropped unless
    kept."""
    if not keep_notes:
        frame = frame.drop(FREE_TEXT, strict=False)
    if secret is None:
        return frame
    frame = frame.drop(UNCHECKED, strict=False)
    for column in sorted(PERSONAL):
        if column in frame.columns:
            codes = frame[column].drop_nulls().unique().to_list()
            frame = frame.with_columns(pl.col(column).replace_strict(
                codes, [secret.pseudonym(c) for c in codes], default=None,
                return_dtype=pl.String))
    return frame


def _encode(frame: pl.DataFrame, fmt: Format, name: str) -> tuple[bytes, set[str]]:
    """The file's bytes, and the list columns written as text (CSV and Excel)."""
    if fmt == "parquet":
        return parquet_bytes(frame), set()
    joined = {c for c, dtype in frame.schema.items() if isinstance(dtype, pl.List)}
    flat = frame.with_columns(pl.col(c).list.eval(pl.element().cast(pl.String)).list.join(";")
                              for c in sorted(joined))
    if fmt == "dta":
        return dta_bytes(flat, name), joined
    if fmt == "csv":
        buffer = io.BytesIO()
        csv_safe(flat).write_csv(buffer, datetime_format=_TIME)
        return buffer.getvalue(), joined
    if flat.height > _EXCEL_ROWS:
        raise LakeError(f"{flat.height:,} rows are more than an Excel sheet holds",
                        file=name, hint="export as csv or parquet, or fewer days (--from/--to)")
    return _xlsx(flat), joined


def _xlsx(frame: pl.DataFrame) -> bytes:
    from openpyxl import Workbook  # only Excel exports need it
    from openpyxl.cell import WriteOnlyCell

    book = Workbook(write_only=True)
    sheet = book.create_sheet("data")
    sheet.append(frame.columns)
    times = [c for c, dtype in frame.schema.items() if isinstance(dtype, pl.Datetime)]
    plain = frame.with_columns(pl.col(c).dt.strftime(_TIME) for c in times)

    def text(value: object) -> object:  # "=…" stays text: Excel would run it as a formula
        if isinstance(value, str) and value.startswith("="):
            cell = WriteOnlyCell(sheet, value=value)
            cell.data_type = "s"
            return cell
        return value

    for row in plain.iter_rows():
        sheet.append([text(value) for value in row])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _readme(lake: Lake, files: list[tuple[str, int, list[tuple[str, str, str, str]]]],
            secret: StudySecret | None, notes: bool, start: date | None, end: date | None,
            tasks: list[str]) -> str:
    days = f"days {start or 'from the first'} to {end or 'the last'}" if start or end \
        else "every day"
    lines = [
        "RMG field study: exported frames",
        "",
        f"Exported {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by rmg-lake, from a lake of "
        f"{lake.log.count()} log entries; {days}; tasks {', '.join(tasks)}.",
        "Corrected values throughout (see `corrected` and `corrections`); days are factory "
        "days (Asia/Dhaka), times are UTC.",
        ("Worker and supervisor codes are pseudonymised: p_ and 16 hex digits of "
         f"HMAC-SHA256 keyed by the study secret (key id {secret.key_id}): the same code "
         "has the same pseudonym in every export with this key id, and without the secret "
         "none can be traced back." if secret else
         "Worker and supervisor codes are the factory's own: they identify people. Share "
         "this export only as the study's ethics approval allows."),
        "The observers' notes are " + ("included." if notes else "left out (people write "
                                                                 "names in them)."),
        *(["Also left out, as anyone may have typed anything there: "
           f"{', '.join(UNCHECKED)}."] if secret else []),
        "", "Files", "",
    ]
    width = max(len(name) for name, _, _ in files)
    lines += [f"  {name:<{width}}  {rows:>9,} rows" for name, rows, _ in files]
    for name, _, columns in files:
        lines += ["", name, "-" * len(name)]
        for column, kind, meaning, allowed in columns:
            lines.append(f"{column} ({kind}): {meaning}".rstrip()
                         + (f" Values: {allowed}." if allowed else ""))
    return "\n".join(lines) + "\n"
