"""The checks workbook: the day's quality checks as Excel, for the field manager.

    summary         the days checked, the lake's last batch, and flags by check and
                    severity: open, corrected and reviewed
    tracking        factory × department × team × task × day: expected, completed,
                    attempted, status (as `completion`)
    observers       per observer, per day and in all: tasks and their status, durations,
                    first and last day, days worked, late files and clock warnings
    agreement       per observer, each paired round (back-check) and in all: the machines
                    compared and the shares agreeing, the mean difference of the counts
    <check>         one sheet per check with open flags, a row per flag (its `flag_id`
                    last), with empty `field`, `old_value`, `new_value`, `reason` and
                    `resolution` columns to fill in

Filled in, it goes back into the lake with `rmg-lake correct FILE.xlsx`
(`rmg_lake.corrections.sheet`): a row with a change is a correction of its flag, a row
with only a resolution reviews it; either settles the flag, which the next day's checks
leave out.

Each sheet has its header row frozen, filters on and columns wide enough to read; no cell
is a formula (a text starting with `=` stays text), and no worker's or supervisor's code
is in it (the flags never hold one).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date
from typing import Any

import polars as pl

from rmg_lake.derive.checks import CHECKS, SEVERITIES, STATUSES
from rmg_lake.errors import LakeError
from rmg_lake.lake import Lake

__all__ = ["FILL_IN", "checked_days", "checks_workbook"]

FILL_IN = ("field", "old_value", "new_value", "reason", "resolution")  # for the field team
_WIDEST = 60  # characters: a longer text wraps in its cell instead


def checks_workbook(lake: Lake, flags: pl.DataFrame, first: date, last: date) -> bytes:
    """The workbook of `flags` (of `lake.flags`, for the days `first` to `last`: the
    summary counts them all, the check sheets hold the open ones)."""
    from openpyxl import Workbook  # only the workbook needs it

    book = Workbook()
    book.remove(book.worksheets[0])  # (a new workbook's empty sheet)
    batches = lake.batches()
    _summary(book, flags, first, last,
             f"{batches[-1].batch}, committed {batches[-1].committed_at:%Y-%m-%d %H:%M} UTC"
             if batches else "none")
    _sheet(book, "tracking", lake.completion(first, last).sort(
        "day", "factory", "department", "team", "task"))
    _sheet(book, "observers", _observers(lake.table("observations", first, last), flags))
    _sheet(book, "agreement", _agreement(lake, first, last))
    open_flags = flags.filter(pl.col("status") == "open").drop("status", "settled_by")
    fired = {name for name in open_flags["check_name"].unique() if name is not None}
    for check in (c.name for c in CHECKS if c.name in fired):
        rows = open_flags.filter(pl.col("check_name") == check).drop("check_name")
        _sheet(book, check, rows.with_columns(pl.lit(None, pl.String).alias(c)
                                              for c in FILL_IN))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def checked_days(flags: pl.DataFrame, *days: date | None) -> tuple[date, date]:
    """The first and last day of the workbook of `flags`: those of the flags and `days`."""
    found = sorted({*(d for d in flags["day"] if d is not None),
                    *(d for d in days if d is not None)})
    if not found:
        raise LakeError("no day to check: the lake holds no observation and no flag yet")
    return found[0], found[-1]


def _summary(book: Any, flags: pl.DataFrame, first: date, last: date, batch: str) -> None:
    """The days, the last batch, then the flags counted by check and severity, and how
    many of them are open, corrected and reviewed."""
    counts = flags.group_by("check_name", "severity").agg(
        pl.len().alias("flags"), *((pl.col("status") == s).sum().alias(s) for s in STATUSES)
    ).with_columns(
        pl.col("severity").replace_strict(list(SEVERITIES), range(len(SEVERITIES)),
                                          return_dtype=pl.Int64).alias("order")
    ).sort("order", "check_name").drop("order")
    sheet = _sheet(book, "summary", counts, above=[("days checked", f"{first} to {last}"),
                                                    ("the lake's last batch", batch),
                                                    ("flags", _tally(flags))])
    sheet.column_dimensions["A"].width = max(sheet.column_dimensions["A"].width, 24)


def _tally(flags: pl.DataFrame) -> str:
    """`12: 9 open, 2 corrected, 1 reviewed`."""
    return f"{flags.height}: " + ", ".join(
        f"{(flags['status'] == status).sum()} {status}" for status in STATUSES)


def _observers(observations: pl.DataFrame, flags: pl.DataFrame) -> pl.DataFrame:
    """Per observer and day, then per observer in all: their tasks, how they ended, how
    long they took, the days worked, and the late files and clock warnings of `flags`."""
    minutes = ((pl.col("ended_at") - pl.col("started_at")).dt.total_seconds() / 60)
    flagged = flags.filter(pl.col("observer").is_not_null()).group_by("observer", "day").agg(
        (pl.col("check_name") == "late_arrival").sum().alias("late_files"),
        (pl.col("check_name") == "clock_ahead").sum().alias("clock_warnings"))
    tasks = [pl.len().alias("tasks"),
             *((pl.col("status") == s).sum().alias(s) for s in ("complete", "partial",
                                                                "aborted")),
             minutes.median().round(1).alias("median_minutes"),
             minutes.min().round(1).alias("min_minutes"),
             minutes.max().round(1).alias("max_minutes")]
    per_day = observations.group_by("observer", "day").agg(tasks).join(
        flagged, on=["observer", "day"], how="left").with_columns(
        pl.col("late_files", "clock_warnings").fill_null(0))
    in_all = observations.group_by("observer").agg(
        *tasks, pl.col("day").min().alias("first_day"), pl.col("day").max().alias("last_day"),
        pl.col("day").n_unique().alias("days_worked")
    ).join(per_day.group_by("observer").agg(pl.col("late_files", "clock_warnings").sum()),
           on="observer")
    return pl.concat([
        per_day.with_columns(pl.col("day").cast(pl.String), first_day=None, last_day=None,
                             days_worked=None),
        in_all.with_columns(day=pl.lit("all"))], how="diagonal_relaxed").select(
        "observer", "day", "tasks", "complete", "partial", "aborted", "median_minutes",
        "min_minutes", "max_minutes", "first_day", "last_day", "days_worked", "late_files",
        "clock_warnings").sort("observer", pl.col("day") == "all", "day")


def _agreement(lake: Lake, first: date, last: date) -> pl.DataFrame:
    """Per observer, each of their paired rounds (the other observer's beside it), then
    their pairs in all (`day` "all"): the `pairs` and `agreement` views, shares rounded."""
    pairs = lake.pairs(first, last).with_columns(pl.col("day").cast(pl.String))
    sides = [pairs.rename({f"{mine}_observer": "observer",
                           f"{mine}_observation_id": "observation_id",
                           f"{other}_observer": "other_observer",
                           f"{other}_observation_id": "other_observation_id"})
             for mine, other in (("first", "second"), ("second", "first"))]
    in_all = lake.agreement(first, last).with_columns(day=pl.lit("all"))
    return pl.concat([*sides, in_all], how="diagonal_relaxed").select(
        "observer", "day", "factory", "department", "team", "observation_id",
        "other_observer", "other_observation_id", "minutes_apart", "pairs", "machines",
        pl.col("^.*_agree$").round(3), "counts_compared", pl.col("mean_abs_diff").round(3),
    ).sort("observer", pl.col("day") == "all", "day", "factory", "department", "team",
           "observation_id")


def _sheet(book: Any, title: str, frame: pl.DataFrame,
           above: Sequence[tuple[str, str]] = ()) -> Any:
    """`frame` as the sheet `title` (after the lines `above`): its header frozen, filters
    on, each column as wide as its longest value (up to `_WIDEST`), no formula."""
    from openpyxl.utils import get_column_letter

    sheet = book.create_sheet(title)
    for line in above:
        _append(sheet, line)
    if above:
        sheet.append([])
    header = sheet.max_row + 1 if above else 1
    sheet.append(list(frame.columns))
    for row in frame.iter_rows():
        _append(sheet, row)
    sheet.freeze_panes = f"A{header + 1}"
    last = get_column_letter(max(len(frame.columns), 1))
    sheet.auto_filter.ref = f"A{header}:{last}{header + frame.height}"
    for number, column in enumerate(frame.columns, 1):
        longest = max([len(column), *(len(str(v)) for v in frame[column] if v is not None)])
        sheet.column_dimensions[get_column_letter(number)].width = min(longest + 2, _WIDEST)
    return sheet


def _append(sheet: Any, values: Sequence[object]) -> None:
    """A row of values; a text starting with `=` stays text (Excel would run a formula)."""
    sheet.append(list(values))
    for cell in sheet[sheet.max_row]:
        if cell.data_type == "f":
            cell.data_type = "s"
