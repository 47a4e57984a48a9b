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

import rmg_lake.deliver.completion as report
from rmg_lake.deliver.completion import COLUMNS, EMPTY_MESSAGE, completion_csv, completion_json
from rmg_lake.deliver.completion import render_completion as render

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


def completion_frame(
    teams: dict[str, tuple[str, ...]] = TEAMS,
    odd: dict[tuple[str, str, str, str, dt.date], tuple[int, int]] = ODD,
) -> pl.DataFrame:
    rows = []
    for factory, names in teams.items():
        for department in ("knitting", "linking"):
            for team in names:
                for task, per_day in EXPECTED.items():
                    for day in WEEK:
                        off = day == FRI or (factory == "f02" and day == HOLIDAY)
                        expected = 0 if off else per_day
                        completed, attempted = odd.get(
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
    teams: list[tuple[str, list[str]]]  # one table column per team: (team, its tasks in order)
    rows: dict[str, list[list[str]]] = field(default_factory=dict)  # label -> parts per team

    @property
    def columns(self) -> list[tuple[str, str]]:
        """(team, task) in the order the table shows them."""
        return [(team, task) for team, tasks in self.teams for task in tasks]


def parts(header: str, cell: str) -> list[str]:
    """A team cell cut into its task parts, in the header's task order.

    The parts are the cell's whitespace-separated words. Each part is right-justified under its
    task's abbreviation, and the parts are joined by single spaces. So a part ends in the same
    column as its abbreviation, which also lets a blank (unobserved) part be read as "".
    """
    assert len(cell) == len(header)
    ends = [match.end() for match in re.finditer(r"\S+", header)]
    starts = [0, *(end + 1 for end in ends[:-1])]
    assert all(cell[end] == " " for end in ends[:-1]), (header, cell)  # single-space joins
    pieces = [cell[start:end] for start, end in zip(starts, ends, strict=True)]
    assert all(p == p.rstrip() or not p.strip() for p in pieces), (header, cell)  # rjust
    assert not cell[ends[-1]:].strip(), (header, cell)  # nothing right of the last task
    found = [piece.strip() for piece in pieces]
    assert [p for p in found if p] == cell.split(), (header, cell)
    return found


def blocks(text: str) -> list[Block]:
    """The tables of a plain report: a title line, then an ASCII box."""
    lines, found = text.splitlines(), []
    for i, line in enumerate(lines[:-1]):
        if line[:1] in "+|" or not lines[i + 1].startswith("+"):
            continue
        rows, j = [], i + 2
        while not lines[j].startswith("+"):
            if not lines[j].startswith("|-"):
                rows.append(lines[j].strip("|").split("|"))
            j += 1
        (_, *names), (day, *headers), *body = rows
        assert day.strip() == "day"
        tasks = [[ABBREVIATION[word] for word in header.split()] for header in headers]
        teams = [(name.strip(), ts) for name, ts in zip(names, tasks, strict=True)]
        found.append(Block(line, teams, {
            label.strip(): [parts(h, cell) for h, cell in zip(headers, cells, strict=True)]
            for label, *cells in body
        }))
    return found


def cells(text: str) -> dict[tuple[str, str, str, str], str]:
    """(`f01 - knitting`, row label, team, task) -> cell text, across the split tables."""
    out = {}
    for block in blocks(text):
        title = re.sub(r" \(\d+/\d+\)$", "", block.title)
        for label, row in block.rows.items():
            for (team, tasks), team_parts in zip(block.teams, row, strict=True):
                for task, part in zip(tasks, team_parts, strict=True):
                    key = (title, label, team, task)
                    assert key not in out, key  # each cell is shown once
                    out[key] = part
    return out


@pytest.mark.parametrize("width", [60, 80, 100])
def test_plain_report_fits_the_width_and_is_clean_ascii(completion: pl.DataFrame, width: int):
    text = plain(completion, width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert text.isascii()
    assert "\x1b" not in text
    assert all(line == line.rstrip() for line in text.splitlines())


def test_80_columns_fit_three_teams_in_one_table(completion: pl.DataFrame):
    found = blocks(plain(completion, 80))
    assert [b.title for b in found] == [
        "f01 - knitting", "f01 - linking", "f02 - knitting", "f02 - linking",
    ]
    assert found[0].teams == [
        (team, list(EXPECTED)) for team in ("control", "same-floor", "treatment")
    ]
    assert found[2].teams == [(team, list(EXPECTED)) for team in ("control", "treatment")]
    assert all(list(b.rows) == [*LABELS, "total"] for b in found)


def test_narrow_report_splits_tables_and_keeps_teams_together(completion: pl.DataFrame):
    found = blocks(plain(completion, 60))
    assert [b.title for b in found] == [
        *(f"f01 - knitting ({n}/2)" for n in (1, 2)),
        *(f"f01 - linking ({n}/2)" for n in (1, 2)),
        "f02 - knitting", "f02 - linking",
    ]
    assert [b.teams for b in found[:2]] == [
        [(team, list(EXPECTED)) for team in ("control", "same-floor")],
        [("treatment", list(EXPECTED))],
    ]
    assert found[4].teams == [(team, list(EXPECTED)) for team in ("control", "treatment")]
    assert all(list(b.rows) == [*LABELS, "total"] for b in found)


SIX = {"f01": ("control", "other-floor", "pure-control", "same-floor", "spillover", "treatment")}


def test_six_teams_split_at_80_columns_a_team_per_column():
    frame = completion_frame(SIX)
    text = plain(frame, 80)
    assert max(len(line) for line in text.splitlines()) <= 80
    found = blocks(text)
    assert [b.title for b in found] == [
        "f01 - knitting (1/2)", "f01 - knitting (2/2)",
        "f01 - linking (1/2)", "f01 - linking (2/2)",
    ]
    for block in found:
        assert [tasks for _, tasks in block.teams] == [list(EXPECTED)] * 3
    assert [team for b in found[:2] for team, _ in b.teams] == list(SIX["f01"])
    got = cells(text)
    assert got["f01 - knitting", "Tu 2026-11-03", "treatment", "wip"] == "2/4"
    assert got["f01 - knitting", "Mo 2026-11-02", "control", "interactions"] == "0/1"
    assert got["f01 - knitting", "Mo 2026-11-02", "spillover", "interactions"] == "1/1"
    assert got["f01 - linking", "Fr 2026-11-06", "same-floor", "roster"] == "1/0"
    assert got["f01 - linking", "Fr 2026-11-06", "pure-control", "roster"] == "-"
    assert got["f01 - knitting", "total", "treatment", "wip"] == "22/24"
    assert got["f01 - knitting", "total", "other-floor", "wip"] == "24/24"
    assert len(got) == 2 * 6 * 3 * (len(WEEK) + 1)


def test_a_team_too_wide_on_its_own_is_split_by_task(completion: pl.DataFrame):
    frame = completion.filter(pl.col("factory") == "f02", pl.col("department") == "linking")
    text = plain(frame, 30)
    assert max(len(line) for line in text.splitlines()) <= 30
    found = blocks(text)
    assert [b.title for b in found] == [f"f02 - linking ({n}/4)" for n in (1, 2, 3, 4)]
    assert [b.teams for b in found] == [
        [("control", ["roster", "wip"])], [("control", ["interactions"])],
        [("treatment", ["roster", "wip"])], [("treatment", ["interactions"])],
    ]
    got = cells(text)
    assert got["f02 - linking", "Sa 2026-10-31", "treatment", "wip"] == "5/4"
    assert got["f02 - linking", "We 2026-11-04", "treatment", "interactions"] == "-"
    assert got["f02 - linking", "total", "treatment", "wip"] == "21/20"


def test_wide_report_is_one_table_per_factory_and_department(completion: pl.DataFrame):
    found = blocks(plain(completion, 200))
    assert [b.title for b in found] == [
        "f01 - knitting", "f01 - linking", "f02 - knitting", "f02 - linking",
    ]
    assert all(list(b.rows) == [*LABELS, "total"] for b in found)


def test_an_unobserved_cell_is_blank_and_keeps_the_others_in_place(completion: pl.DataFrame):
    gone = (pl.col("factory") == "f02") & (pl.col("department") == "knitting") & (
        pl.col("team") == "control") & (pl.col("task") == "wip") & (pl.col("day") == SAT)
    got = cells(plain(completion.filter(~gone), 80))
    assert got["f02 - knitting", "Sa 2026-10-31", "control", "roster"] == "1/1"
    assert got["f02 - knitting", "Sa 2026-10-31", "control", "wip"] == ""
    assert got["f02 - knitting", "Sa 2026-10-31", "control", "interactions"] == "1/1"
    assert got["f02 - knitting", "Su 2026-11-01", "control", "wip"] == "4/4"
    assert got["f02 - knitting", "total", "control", "wip"] == "16/16"


@pytest.mark.parametrize("width", [60, 80])  # split tables, and not
def test_cells_show_completed_over_expected(completion: pl.DataFrame, width: int):
    got = cells(plain(completion, width))
    assert got["f01 - knitting", "Tu 2026-11-03", "treatment", "wip"] == "2/4"
    assert got["f01 - knitting", "Mo 2026-11-02", "control", "interactions"] == "0/1"
    assert got["f01 - knitting", "Mo 2026-11-02", "control", "wip"] == "4/4"
    assert got["f02 - linking", "Sa 2026-10-31", "treatment", "wip"] == "5/4"
    assert got["f02 - knitting", "Th 2026-11-05", "control", "roster"] == "1/1"


@pytest.mark.parametrize("width", [60, 80])  # split tables, and not
def test_off_days_are_marked_unless_something_was_observed(completion: pl.DataFrame, width: int):
    got = cells(plain(completion, width))
    assert got["f01 - linking", "Fr 2026-11-06", "same-floor", "roster"] == "1/0"
    assert got["f01 - linking", "Fr 2026-11-06", "same-floor", "wip"] == "-"
    assert got["f02 - knitting", "We 2026-11-04", "treatment", "interactions"] == "-"
    assert got["f01 - knitting", "We 2026-11-04", "treatment", "interactions"] == "1/1"


@pytest.mark.parametrize("width", [60, 80])  # split tables, and not
def test_totals_sum_each_column(completion: pl.DataFrame, width: int):
    got = cells(plain(completion, width))
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
    # a team's tasks share one cell, each part coloured on its own, in the header's task order
    assert "\x1b[32m 1/1\x1b[0m \x1b[32m  4/4\x1b[0m \x1b[31m0/1\x1b[0m" in text
    assert "\x1b[32m 1/1\x1b[0m \x1b[33m  2/4\x1b[0m \x1b[32m1/1\x1b[0m" in text
    assert "\x1b[2m 1/0\x1b[0m \x1b[2m    ·\x1b[0m \x1b[2m  ·\x1b[0m" in text
    assert "\x1b[1m 6/6\x1b[0m \x1b[1m22/24\x1b[0m \x1b[1m6/6\x1b[0m" in text  # bold totals
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
        "COLUMNS", "EMPTY_MESSAGE", "TABLE_DAYS", "completion_csv", "completion_json",
        "render_completion",
    ]
    assert all(hasattr(report, name) for name in report.__all__)
