"""A corrections sheet, as researchers keep it: CSV or Excel, one row per fix.

    observation_id, field, old_value, new_value, reason

The first row names the columns (in any order; other columns are left alone). Every cell
is read as text, the way it shows in Excel: `12`, not `12.0`; an empty cell is "".
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

__all__ = ["COLUMNS", "SheetError", "SheetRow", "as_text", "read_sheet"]

COLUMNS = ("observation_id", "field", "old_value", "new_value", "reason")
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


def read_sheet(path: Path) -> tuple[bytes, list[SheetRow]]:
    """The sheet's bytes (kept as evidence) and its rows; SheetError if it is no sheet."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise SheetError("not a .csv or .xlsx file", file=str(path),
                         hint="save the corrections sheet as CSV (UTF-8) or Excel (.xlsx)")
    with boundary(file=path, kind=SheetError, doing="read it"):
        data = read_file(path, kind=SheetError)
    cells = _csv_cells(path, data) if suffix == ".csv" else _xlsx_cells(path, data)
    return data, _rows(path, cells)


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


def _xlsx_cells(path: Path, data: bytes) -> list[list[str]]:
    """The cells of the worksheet called `corrections`, else of the first one."""
    from openpyxl import load_workbook  # only a sheet in Excel needs it
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            sheet = book["corrections"] if "corrections" in book.sheetnames \
                else book.worksheets[0]
            return [[as_text(cell) for cell in row] for row in sheet.iter_rows(values_only=True)]
        finally:
            book.close()
    except (zipfile.BadZipFile, InvalidFileException, KeyError, IndexError, OSError,
            ValueError, SyntaxError):  # (a cut-off sheet: XML's ParseError is a SyntaxError)
        raise SheetError("not a readable Excel workbook", file=str(path),
                         hint="save it again from Excel as .xlsx, or as CSV UTF-8") from None


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


def _rows(path: Path, cells: list[list[str]]) -> list[SheetRow]:
    if not cells:
        raise SheetError("the sheet is empty", file=str(path),
                         hint=f"its first row names the columns: {', '.join(COLUMNS)}")
    header = [cell.strip().lower() for cell in cells[0]]
    missing = [column for column in COLUMNS if column not in header]
    if missing:
        raise SheetError(f"no column {', '.join(missing)} in the first row", file=str(path),
                         hint=f"its first row names the columns: {', '.join(COLUMNS)}")
    twice = sorted({c for c in COLUMNS if header.count(c) > 1})
    if twice:
        raise SheetError(f"two columns called {', '.join(twice)}", file=str(path))
    where = [header.index(column) for column in COLUMNS]
    rows = []
    for number, row in enumerate(cells[1:], start=2):
        values = [row[i].strip() if i < len(row) else "" for i in where]
        if any(values):  # blank lines between groups of rows are fine
            rows.append(SheetRow(number, *values))
    if not rows:
        raise SheetError("the sheet has no corrections below its header", file=str(path))
    return rows
