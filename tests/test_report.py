"""The completion report: tables that fit 80 columns, plain when piped; CSV and JSON round-trip."""

from __future__ import annotations

import datetime as dt
import io
import json
import re
from dataclasses import dataclass, field

import polars as pl
import pytest
from rich.console import Console

import rmg_lake.report as report
from rmg_lake.report import COLUMNS, EMPTY_MESSAGE, completion_csv, completion_json
from rmg_lake.report import render_completion as render

SCHEMA = {
    "day": pl.Date, "factory": pl.String, "task": pl.String, "department": pl.String,
    "team": pl.String, "expected": pl.Int64, "completed": pl.Int64, "attempted": pl.Int64,
    "status": pl.String,
}
EXPECTED = {"roster": 1, "wip": 4, "interactions": 1}
TEAMS = {"f01": ("treatment", "control", "same-floor"), "f02": ("treatment", "control")}
SAT = dt.date(2026, 10, 31)
WEEK = [SAT + dt.timedelta(days=n) for n in range(7)]  # Saturday to Friday
FRI, HOLIDAY = WEEK[6], WEEK[4]  # f02 is closed on Wednesday 4 November
LABELS = [
    "Sa 2026-10-31", "Su 2026-11-01", "Mo 2026-11-02", "Tu 2026-11-03", "We 2026-11-04",
    "Th 2026-11-05", "Fr 2026-11-06",
]
KEYS = ["day", "factory", "department", "team", "task"]
ABBREVIATION = {"rost": "roster", "wip": "wip", "int": "interactions"}

# (factory, department, team, task, day) -> (completed, attempted); every other cell is done
ODD = {
    ("f01", "knitting", "treatment", "wip", WEEK[3]): (2, 3),  # partial
    ("f01", "knitting", "control", "interactions", WEEK[2]): (0, 1),  # missing, one aborted
    ("f01", "linking", "same-floor", "roster", FRI): (1, 1),  # observed on a Friday
    ("f02", "linking", "treatment", "wip", SAT): (5, 5),  # an extra round
}


def completion_frame() -> pl.DataFrame:
    rows = []
    for factory, teams in TEAMS.items():
        for department in ("knitting", "linking"):
            for team in teams:
                for task, per_day in EXPECTED.items():
                    for day in WEEK:
                        off = day == FRI or (factory == "f02" and day == HOLIDAY)
                        expected = 0 if off else per_day
                        completed, attempted = ODD.get(
                            (factory, department, team, task, day), (expected, expected))
                        status = ("off" if off else "done" if completed >= expected
                                  else "partial" if completed else "missing")
                        rows.append({
                            "day": day, "factory": factory, "task": task,
                            "department": department, "team": team, "expected": expected,
                            "completed": completed, "attempted": attempted, "status": status,
                        })
    return pl.DataFrame(rows, schema=SCHEMA).sample(fraction=1.0, shuffle=True, seed=1)


@pytest.fixture(scope="module")
def completion() -> pl.DataFrame:
    return completion_frame()


def plain(frame: pl.DataFrame, width: int = 80) -> str:
    console = Console(record=True, width=width, force_terminal=False)
    render(frame, console)
    return console.export_text()


def styled(frame: pl.DataFrame, width: int = 120) -> str:
    console = Console(record=True, width=width, force_terminal=True, color_system="truecolor")
    render(frame, console)
    return console.export_text(styles=True)


@dataclass
class Block:
    """One ASCII table of the plain report, read back."""

    title: str
    columns: list[tuple[str, str]]  # (team, task)
    rows: dict[str, list[str]] = field(default_factory=dict)  # day label or "total" -> cells


def blocks(text: str) -> list[Block]:
    """The tables of a plain report: a title line, then an ASCII box."""
    lines, found = text.splitlines(), []
    for i, line in enumerate(lines[:-1]):
        if line[:1] in "+|" or not lines[i + 1].startswith("+"):
            continue
        rows, j = [], i + 2
        while not lines[j].startswith("+"):
            if not lines[j].startswith("|-"):
                rows.append([cell.strip() for cell in lines[j].strip("|").split("|")])
            j += 1
        (_, *teams), (_, *tasks), *body = rows
        columns = [(team, ABBREVIATION[task]) for team, task in zip(teams, tasks, strict=True)]
        found.append(Block(line, columns, {label: cells for label, *cells in body}))
    return found


def cells(text: str) -> dict[tuple[str, str, str, str], str]:
    """(`f01 - knitting`, row label, team, task) -> cell text, across the split tables."""
    out = {}
    for block in blocks(text):
        title = re.sub(r" \(\d+/\d+\)$", "", block.title)
        for label, row in block.rows.items():
            for (team, task), cell in zip(block.columns, row, strict=True):
                out[title, label, team, task] = cell
    return out


@pytest.mark.parametrize("width", [60, 80, 100])
def test_plain_report_fits_the_width_and_is_clean_ascii(completion: pl.DataFrame, width: int):
    text = plain(completion, width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert text.isascii()
    assert "\x1b" not in text
    assert all(line == line.rstrip() for line in text.splitlines())


def test_narrow_report_splits_tables_and_keeps_teams_together(completion: pl.DataFrame):
    found = blocks(plain(completion, 80))
    assert [b.title for b in found] == [
        *(f"f01 - knitting ({n}/3)" for n in (1, 2, 3)),
        *(f"f01 - linking ({n}/3)" for n in (1, 2, 3)),
        *(f"f02 - knitting ({n}/2)" for n in (1, 2)),
        *(f"f02 - linking ({n}/2)" for n in (1, 2)),
    ]
    assert [b.columns for b in found[:3]] == [
        [(team, task) for task in EXPECTED] for team in ("control", "same-floor", "treatment")
    ]


def test_a_wider_console_packs_teams_into_one_table(completion: pl.DataFrame):
    found = blocks(plain(completion, 100))
    assert [b.title for b in found[:2]] == ["f01 - knitting (1/2)", "f01 - knitting (2/2)"]
    assert found[0].columns == [
        (team, task) for team in ("control", "same-floor") for task in EXPECTED
    ]
    assert found[2].title == "f01 - linking (1/2)"
    assert found[4].title == "f02 - knitting"
    assert found[4].columns == [
        (team, task) for team in ("control", "treatment") for task in EXPECTED
    ]


def test_wide_report_is_one_table_per_factory_and_department(completion: pl.DataFrame):
    found = blocks(plain(completion, 200))
    assert [b.title for b in found] == [
        "f01 - knitting", "f01 - linking", "f02 - knitting", "f02 - linking",
    ]
    assert all(list(b.rows) == [*LABELS, "total"] for b in found)


def test_cells_show_completed_over_expected(completion: pl.DataFrame):
    got = cells(plain(completion))
    assert got["f01 - knitting", "Tu 2026-11-03", "treatment", "wip"] == "2/4"
    assert got["f01 - knitting", "Mo 2026-11-02", "control", "interactions"] == "0/1"
    assert got["f01 - knitting", "Mo 2026-11-02", "control", "wip"] == "4/4"
    assert got["f02 - linking", "Sa 2026-10-31", "treatment", "wip"] == "5/4"
    assert got["f02 - knitting", "Th 2026-11-05", "control", "roster"] == "1/1"


def test_off_days_are_marked_unless_something_was_observed(completion: pl.DataFrame):
    got = cells(plain(completion))
    assert got["f01 - linking", "Fr 2026-11-06", "same-floor", "roster"] == "1/0"
    assert got["f01 - linking", "Fr 2026-11-06", "same-floor", "wip"] == "-"
    assert got["f02 - knitting", "We 2026-11-04", "treatment", "interactions"] == "-"
    assert got["f01 - knitting", "We 2026-11-04", "treatment", "interactions"] == "1/1"


def test_totals_sum_each_column(completion: pl.DataFrame):
    got = cells(plain(completion))
    sums = completion.group_by("factory", "department", "team", "task").agg(
        pl.col("completed").sum(), pl.col("expected").sum())
    assert len(sums) == 30
    for row in sums.iter_rows(named=True):
        key = (f"{row['factory']} - {row['department']}", "total", row["team"], row["task"])
        assert got[key] == f"{row['completed']}/{row['expected']}"
    assert got["f01 - knitting", "total", "treatment", "wip"] == "22/24"
    assert got["f02 - knitting", "total", "treatment", "wip"] == "20/20"


def test_legend_names_the_abbreviations(completion: pl.DataFrame):
    last = plain(completion).splitlines()[-1]
    assert "rost = roster" in last
    assert "int = interactions" in last
    assert "- = off day" in last


def test_terminal_report_colours_cells_by_status(completion: pl.DataFrame):
    text = styled(completion)
    assert re.search(r"\x1b\[31m *0/1\x1b\[0m", text)  # missing: red
    assert re.search(r"\x1b\[33m *2/4\x1b\[0m", text)  # partial: yellow
    assert re.search(r"\x1b\[32m *4/4\x1b\[0m", text)  # done: green
    assert re.search(r"\x1b\[2m *·\x1b\[0m", text)  # off: dim
    assert "\x1b[2mFr 2026-11-06\x1b[0m" in text
    assert "f01 · knitting" in text


def test_terminal_report_fits_its_width(completion: pl.DataFrame):
    console = Console(record=True, width=120, force_terminal=True, color_system="truecolor")
    render(completion, console)
    assert max(len(line) for line in console.export_text().splitlines()) <= 120


def test_plain_report_has_no_styles_even_with_a_forced_colour_system(completion: pl.DataFrame):
    console = Console(record=True, width=80, force_terminal=False, color_system="truecolor")
    render(completion, console)
    assert "\x1b" not in console.export_text(styles=True)


def test_csv_round_trips(completion: pl.DataFrame):
    text = completion_csv(completion)
    lines = text.splitlines()
    assert lines[0] == ",".join(COLUMNS)
    assert len(lines) == len(completion) + 1
    assert lines[1].startswith("2026-10-31,f01,roster,knitting,control,1,1,1,done")
    back = pl.read_csv(io.StringIO(text), schema=SCHEMA)
    assert back.sort(KEYS).equals(completion.select(COLUMNS).sort(KEYS))


def test_json_round_trips(completion: pl.DataFrame):
    rows = json.loads(completion_json(completion))
    assert len(rows) == len(completion)
    assert [row["task"] for row in rows[:3]] == ["roster", "wip", "interactions"]
    assert rows[0] == {
        "day": "2026-10-31", "factory": "f01", "task": "roster", "department": "knitting",
        "team": "control", "expected": 1, "completed": 1, "attempted": 1, "status": "done",
    }
    back = pl.DataFrame(rows, schema={**SCHEMA, "day": pl.String}).with_columns(
        pl.col("day").str.to_date())
    assert back.sort(KEYS).equals(completion.select(COLUMNS).sort(KEYS))


def test_empty_frame():
    empty = pl.DataFrame(schema=SCHEMA)
    assert plain(empty).strip() == EMPTY_MESSAGE
    assert styled(empty).strip() == EMPTY_MESSAGE
    assert completion_csv(empty) == ",".join(COLUMNS) + "\n"
    assert json.loads(completion_json(empty)) == []


def test_a_frame_without_a_column_is_refused(completion: pl.DataFrame):
    with pytest.raises(ValueError, match="attempted"):
        completion_csv(completion.drop("attempted"))


def test_public_names():
    assert sorted(report.__all__) == [
        "COLUMNS", "EMPTY_MESSAGE", "completion_csv", "completion_json", "render_completion",
    ]
    assert all(hasattr(report, name) for name in report.__all__)
