"""The completion report: which tasks each team completed each day, as tables, CSV or JSON.

The input is the completion frame, one row per day x factory x task x department x team:
`day`, `factory`, `task`, `department`, `team`, `expected`, `completed`, `attempted`, `status`
(`done`, `partial`, `missing` or `off`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import polars as pl
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from rmg_lake.deliver.cells import csv_safe

__all__ = ["COLUMNS", "EMPTY_MESSAGE", "TABLE_DAYS", "completion_csv", "completion_json",
           "render_completion"]

TABLE_DAYS = 14  # the terminal table's days (up to the last one observed) unless told

COLUMNS = (
    "day", "factory", "task", "department", "team", "expected", "completed", "attempted", "status",
)
EMPTY_MESSAGE = "No observations in the lake yet."

_TASK_ORDER = ("roster", "wip", "interactions")
_ABBREVIATION = {"roster": "rost", "wip": "wip", "interactions": "int"}
_STATUS_STYLE = {"done": "green", "partial": "yellow", "missing": "red", "off": "dim"}
_WEEKDAY = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")


@dataclass(frozen=True, slots=True)
class _Cell:
    completed: int
    expected: int
    attempted: int
    status: str


@dataclass(frozen=True, slots=True)
class _Glyphs:
    """What differs between a terminal and a pipe: styles and non-ASCII characters."""

    plain: bool

    @property
    def dot(self) -> str:
        return "-" if self.plain else "·"

    def style(self, name: str) -> str:
        return "" if self.plain else name


_Column = tuple[str, str]  # (team, task)
_Grid = dict[tuple[dt.date, str, str], _Cell]  # (day, team, task) -> cell


def render_completion(completion: pl.DataFrame, console: Console) -> None:
    """Print the completion tables, one per factory and department, split to fit the console.

    On a console that is not a terminal the tables use ASCII boxes and carry no styles.
    """
    frame = _checked(completion)
    if frame.is_empty():
        console.print(Text(EMPTY_MESSAGE))
        return
    glyphs = _Glyphs(plain=not console.is_terminal)
    for number, (title, table) in enumerate(_tables(frame, console, glyphs)):
        if number:
            console.print()
        console.print(Text(title, style=glyphs.style("bold")))  # not Table.title: it pads lines
        console.print(table)
    legend = _legend(glyphs, sorted(set(frame["task"].to_list()), key=_task_rank))
    lines = legend.wrap(console, console.width)
    for line in lines:
        line.rstrip()  # rich keeps the space where it wraps
    console.print(Text("\n").join(lines))


def completion_csv(completion: pl.DataFrame) -> str:
    """The completion rows as CSV with a header line, days as YYYY-MM-DD, in report order
    (a text a spreadsheet would run as a formula quoted: `rmg_lake.deliver.cells`)."""
    return csv_safe(_sorted(_checked(completion))).write_csv()


def completion_json(completion: pl.DataFrame) -> str:
    """The completion rows as a JSON array of objects (one per line), days as YYYY-MM-DD."""
    rows = [
        {**row, "day": row["day"].isoformat()}
        for row in _sorted(_checked(completion)).iter_rows(named=True)
    ]
    if not rows:
        return "[]\n"
    return "[\n" + ",\n".join(json.dumps(row, ensure_ascii=False) for row in rows) + "\n]\n"


def _checked(completion: pl.DataFrame) -> pl.DataFrame:
    missing = [name for name in COLUMNS if name not in completion.columns]
    if missing:
        raise ValueError(f"completion frame lacks column(s) {', '.join(missing)}")
    if completion.schema["day"] != pl.Date:
        raise ValueError(f"completion frame's `day` is {completion.schema['day']}, not Date")
    return completion.select(COLUMNS)


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    rank = pl.col("task").replace_strict(
        {task: i for i, task in enumerate(_TASK_ORDER)}, default=len(_TASK_ORDER),
        return_dtype=pl.Int8,
    )
    return frame.sort(["day", "factory", "department", "team", rank, "task"])


def _count(value: int | None) -> int:
    return 0 if value is None else int(value)


def _task_rank(task: str) -> tuple[int, str]:
    return (_TASK_ORDER.index(task) if task in _TASK_ORDER else len(_TASK_ORDER), task)


def _column_key(column: _Column) -> tuple[str, tuple[int, str]]:
    team, task = column
    return team, _task_rank(task)


def _tables(
    frame: pl.DataFrame, console: Console, glyphs: _Glyphs,
) -> Iterator[tuple[str, Table]]:
    """A titled table per factory and department, or per chunk of its columns if too wide."""
    grids: dict[tuple[str, str], _Grid] = {}
    for row in frame.iter_rows(named=True):
        cell = _Cell(_count(row["completed"]), _count(row["expected"]),
                     _count(row["attempted"]), row["status"])
        grids.setdefault((row["factory"], row["department"]), {})[
            row["day"], row["team"], row["task"]] = cell
    for (factory, department), grid in sorted(grids.items()):
        days = sorted({day for day, _, _ in grid})
        columns = sorted({(team, task) for _, team, task in grid}, key=_column_key)
        chunks = _chunks(console, glyphs, days, columns, grid)
        for number, chunk in enumerate(chunks, start=1):
            part = f" ({number}/{len(chunks)})" if len(chunks) > 1 else ""
            yield f"{factory} {glyphs.dot} {department}{part}", _table(glyphs, days, chunk, grid)


def _chunks(
    console: Console, glyphs: _Glyphs, days: Sequence[dt.date], columns: Sequence[_Column],
    grid: _Grid,
) -> list[list[_Column]]:
    """Columns split into runs whose table fits the console, keeping a team's tasks together
    when they fit at all."""

    def fits(chunk: list[_Column]) -> bool:
        table = _table(glyphs, days, chunk, grid)
        unbounded = console.options.update_width(10_000)  # measure() clamps to the width
        return console.measure(table, options=unbounded).maximum <= console.width

    teams: dict[str, list[_Column]] = {}
    for column in columns:
        teams.setdefault(column[0], []).append(column)
    chunks: list[list[_Column]] = []
    current: list[_Column] = []
    for group in teams.values():
        if fits(current + group):
            current += group
            continue
        if current:
            chunks.append(current)
            current = []
        for column in group:  # a team too wide on its own is split by task
            if current and not fits([*current, column]):
                chunks.append(current)
                current = []
            current.append(column)
    if current:
        chunks.append(current)
    return chunks


def _table(
    glyphs: _Glyphs, days: Sequence[dt.date], columns: Sequence[_Column], grid: _Grid,
) -> Table:
    """Days down, a column per team; each cell holds the team's tasks side by side."""
    table = Table(
        box=box.ASCII if glyphs.plain else box.SQUARE, header_style=glyphs.style("bold"),
        highlight=False,
    )
    table.add_column(Text("day"), no_wrap=True)
    teams: dict[str, list[str]] = {}
    for team, task in columns:
        teams.setdefault(team, []).append(task)
    totals = {column: [0, 0] for column in columns}
    for day in days:
        for column in columns:
            if (cell := grid.get((day, *column))) is not None:
                totals[column][0] += cell.completed
                totals[column][1] += cell.expected
    width = {
        (team, task): max(len(_ABBREVIATION.get(task, task)), len(f"{done}/{expected}"))
        for (team, task), (done, expected) in totals.items()
    }
    for team, tasks in teams.items():
        abbreviations = " ".join(_ABBREVIATION.get(t, t).rjust(width[team, t]) for t in tasks)
        table.add_column(Text(f"{team}\n{abbreviations}"), justify="right", no_wrap=True)
    for day in days:
        cells = {column: grid.get((day, *column)) for column in columns}
        all_off = all(cell is None or cell.status == "off" for cell in cells.values())
        label = Text(f"{_WEEKDAY[day.weekday()]} {day.isoformat()}",
                     style=glyphs.style("dim") if all_off else "")
        table.add_row(label, *(
            Text(" ").join(_cell_text(glyphs, cells[team, task], width[team, task])
                           for task in tasks)
            for team, tasks in teams.items()))
    table.add_section()
    table.add_row(Text("total", style=glyphs.style("bold")), *(
        Text(" ").join(Text(f"{totals[team, t][0]}/{totals[team, t][1]}".rjust(width[team, t]),
                            style=glyphs.style("bold")) for t in tasks)
        for team, tasks in teams.items()))
    return table


def _cell_text(glyphs: _Glyphs, cell: _Cell | None, width: int) -> Text:
    if cell is None:
        return Text(" " * width)
    style = glyphs.style(_STATUS_STYLE.get(cell.status, ""))
    if cell.status == "off" and cell.attempted == 0 and cell.completed == 0:
        return Text(glyphs.dot.rjust(width), style=style)
    return Text(f"{cell.completed}/{cell.expected}".rjust(width), style=style)


def _legend(glyphs: _Glyphs, tasks: Iterable[str]) -> Text:
    names = [f"{_ABBREVIATION[task]} = {task}" for task in tasks
             if _ABBREVIATION.get(task, task) != task]
    legend = Text("; ".join([*names, "cell = completed/expected"]) + "; ")
    if glyphs.plain:
        return legend.append(f"{glyphs.dot} = off day")
    for status in ("done", "partial", "missing"):
        legend.append(status, style=_STATUS_STYLE[status]).append(" ")
    return legend.append(f"{glyphs.dot} off", style=_STATUS_STYLE["off"])
