"""A corrections sheet, as researchers keep it: CSV or Excel, one row per fix.

    observation_id, field, old_value, new_value, reason

The first row names the columns (in any order; other columns are left alone). Every cell
is read as text, the way it shows in Excel: `12`, not `12.0`; an empty cell is "".

A checks workbook (`rmg_lake.deliver.workbook`) filled in by the field manager is one
too: each of its sheets whose header has `resolution` is read (and must have `flag_id`).
A row that says a change (`field`, `old_value` or `new_value`) is a correction of its
flag (its `reason`, else its `resolution`, says why); a row with only a `resolution` (or
only a `reason`) reviews its flag ("checked with the observer: correct"); a row left
empty is a flag not yet looked at.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path

from rmg_lake._internal.files import read_file
from rmg_lake.errors import LakeError, boundary

__all__ = ["COLUMNS", "Sheet", "SheetError", "SheetReview", "SheetRow", "as_text",
           "read_sheet"]

COLUMNS = ("observation_id", "field", "old_value", "new_value", "reason")
FLAGGED = ("flag_id", "resolution")  # the columns a checks workbook's sheets add
SUFFIXES = (".csv", ".xlsx")


class SheetError(LakeError):
    """The sheet cannot be read as a corrections sheet (nothing of it is applied)."""


@dataclass(frozen=True, slots=True)
class SheetRow:
    row: int  # as Excel numbers it: the header is row 1
    observation_id: str
    field: str
    old_value: str
    new_value: str
    reason: str
    worksheet: str | None = None  # a checks workbook's: the sheet it is on
    flag_id: str | None = None  # a checks workbook's: the flag it is about


@dataclass(frozen=True, slots=True)
class SheetReview:
    """A checks workbook's row with a resolution and no change."""

    worksheet: str
    row: int
    flag_id: str
    resolution: str


@dataclass(frozen=True, slots=True)
class Sheet:
    data: bytes  # as it was read (kept as evidence)
    rows: list[SheetRow]  # the corrections
    reviews: list[SheetReview]  # a checks workbook's flags reviewed


def read_sheet(path: Path) -> Sheet:
    """The sheet (or checks workbook) at `path`; SheetError if it is neither."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise SheetError("not a .csv or .xlsx file", file=str(path),
                         hint="save the corrections sheet as CSV (UTF-8) or Excel (.xlsx)")
    with boundary(file=path, kind=SheetError, doing="read it"):
        data = read_file(path, kind=SheetError)
    if suffix == ".csv":
        cells = _csv_cells(path, data)
        if cells and "resolution" in _header(cells):
            raise SheetError("a sheet of a checks workbook, saved as CSV", file=str(path),
                             hint="send back the whole workbook, as .xlsx")
        return Sheet(data, _rows(path, cells), [])
    sheets = _xlsx_sheets(path, data)
    flagged = {title: cells for title, cells in sheets.items()
               if cells and "resolution" in _header(cells)}
    if lacking := [title for title, cells in flagged.items() if "flag_id" not in _header(cells)]:
        raise SheetError(f"sheet {lacking[0]} has no column flag_id", file=str(path),
                         hint="keep the flag_id column of each check's sheet as rmg-lake "
                              "wrote it")
    if not flagged:
        title = "corrections" if "corrections" in sheets else next(iter(sheets), "")
        return Sheet(data, _rows(path, sheets.get(title, [])), [])
    return _workbook(path, data, flagged)


def _csv_cells(path: Path, data: bytes) -> list[list[str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SheetError("not UTF-8 text", file=str(path),
                         hint="in Excel, save as “CSV UTF-8”, or give the .xlsx") from None
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","  # Excel in some locales
    try:
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as err:
        raise SheetError(f"not a readable CSV file ({err})", file=str(path)) from None


def _xlsx_sheets(path: Path, data: bytes) -> dict[str, list[list[str]]]:
    """Each worksheet's cells, by its title, in order."""
    from openpyxl import load_workbook  # only a sheet in Excel needs it
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            return {sheet.title: [[as_text(cell) for cell in row]
                                  for row in sheet.iter_rows(values_only=True)]
                    for sheet in book.worksheets}
        finally:
            book.close()
    except (zipfile.BadZipFile, InvalidFileException, KeyError, IndexError, OSError,
            ValueError, SyntaxError):  # (a cut-off sheet: XML's ParseError is a SyntaxError)
        raise SheetError("not a readable Excel workbook", file=str(path),
                         hint="save it again from Excel as .xlsx, or as CSV UTF-8") from None


def _header(cells: list[list[str]]) -> list[str]:
    return [cell.strip().lower() for cell in cells[0]]


def _workbook(path: Path, data: bytes, sheets: dict[str, list[list[str]]]) -> Sheet:
    """A checks workbook's corrections and reviews, sheet by sheet."""
    rows, reviews = [], []
    for title, cells in sheets.items():
        for row, flag_id, resolution in _filled(path, title, cells):
            if row.field or row.old_value or row.new_value:
                rows.append(SheetRow(row.row, row.observation_id, row.field, row.old_value,
                                     row.new_value, row.reason or resolution, title,
                                     flag_id or None))
            elif resolution or row.reason:  # (the reason is the resolution, if alone)
                reviews.append(SheetReview(title, row.row, flag_id, resolution or row.reason))
    if not rows and not reviews:
        raise SheetError("the checks workbook has no correction and no resolution filled in",
                         file=str(path),
                         hint="fill in new_value (with field, old_value and reason) to "
                              "correct a flag, or resolution to say it was checked")
    return Sheet(data, rows, reviews)


def _filled(path: Path, title: str, cells: list[list[str]],
            ) -> list[tuple[SheetRow, str, str]]:
    """A workbook sheet's rows (as a corrections sheet's, empty ones too), each with its
    flag and resolution."""
    found = []
    header = _header(cells)
    at = {column: header.index(column) for column in FLAGGED}
    for row in _rows(path, cells, empty_ok=True, sheet=title):
        line = cells[row.row - 1]
        flag_id, resolution = (line[at[c]].strip() if at[c] < len(line) else ""
                               for c in FLAGGED)
        found.append((row, flag_id, resolution))
    return found


def as_text(cell: object) -> str:
    """A value as a sheet shows it: "" for null, 12 for 12.0, 0.25, ISO 8601 for dates and
    times (a cell's, and a payload's value compared with one)."""
    if cell is None:
        return ""
    if isinstance(cell, bool):
        return "true" if cell else "false"
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, datetime | date | time):
        return cell.isoformat()
    return str(cell)


def _rows(path: Path, cells: list[list[str]], *, empty_ok: bool = False,
          sheet: str | None = None) -> list[SheetRow]:
    where_said = f"{path} (sheet {sheet})" if sheet else str(path)
    if not cells:
        raise SheetError("the sheet is empty", file=where_said,
                         hint=f"its first row names the columns: {', '.join(COLUMNS)}")
    header = _header(cells)
    missing = [column for column in COLUMNS if column not in header]
    if missing:
        raise SheetError(f"no column {', '.join(missing)} in the first row", file=where_said,
                         hint=f"its first row names the columns: {', '.join(COLUMNS)}")
    twice = sorted({c for c in (*COLUMNS, *FLAGGED) if header.count(c) > 1})
    if twice:
        raise SheetError(f"two columns called {', '.join(twice)}", file=where_said)
    where = [header.index(column) for column in COLUMNS]
    rows = []
    for number, row in enumerate(cells[1:], start=2):
        values = [row[i].strip() if i < len(row) else "" for i in where]
        if any(values) or empty_ok:  # blank lines between groups of rows are fine
            rows.append(SheetRow(number, *values))
    if not rows and not empty_ok:
        raise SheetError("the sheet has no corrections below its header", file=where_said)
    return rows
