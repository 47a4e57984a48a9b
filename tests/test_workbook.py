"""The checks workbook (`rmg-lake check --format xlsx`): what the field manager opens each
morning, read back with openpyxl and held against the lake's views."""

from __future__ import annotations

import io
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest
from conftest import Ingested, run_in
from openpyxl import load_workbook
from openpyxl.workbook import Workbook

from rmg_lake import open_lake, simulate
from rmg_lake.deliver.workbook import FILL_IN, checks_workbook
from rmg_lake.derive.checks import CHECKS

FIRST, LAST = date(2026, 11, 3), date(2026, 11, 9)


@pytest.fixture(scope="module")
def book(ingested: Ingested) -> tuple[Workbook, pl.DataFrame]:
    flags = ingested.lake.flags(FIRST, LAST)
    return load_workbook(io.BytesIO(checks_workbook(ingested.lake, flags, FIRST, LAST))), flags


def _rows(sheet: object, header: int = 1) -> list[dict[str, object]]:
    rows = list(sheet.iter_rows(min_row=header, values_only=True))  # type: ignore[attr-defined]
    return [dict(zip(rows[0], (_day(v) for v in row), strict=True)) for row in rows[1:]]


def _day(value: object) -> object:
    return value.date() if isinstance(value, datetime) else value


def test_a_sheet_per_check_that_fired_holds_its_flags_and_columns_to_fill_in(
        book: tuple[Workbook, pl.DataFrame]) -> None:
    workbook, flags = book
    fired = [c.name for c in CHECKS if c.name in set(flags["check_name"])]
    assert len(fired) >= 4
    assert workbook.sheetnames == ["summary", "tracking", "observers", "agreement", *fired]
    for check in fired:
        expected = flags.filter(pl.col("check_name") == check).drop(
            "check_name", "status", "settled_by").rows(named=True)
        rows = _rows(workbook[check])
        assert [{k: v for k, v in row.items() if k not in FILL_IN} for row in rows] == \
            expected
        assert all(row[c] is None for row in rows for c in FILL_IN)


def test_the_summary_counts_the_flags_and_names_the_days_and_the_last_batch(
        book: tuple[Workbook, pl.DataFrame], ingested: Ingested) -> None:
    workbook, flags = book
    sheet = workbook["summary"]
    assert sheet["B1"].value == f"{FIRST} to {LAST}"
    assert str(sheet["B2"].value).startswith(f"{ingested.lake.batches()[-1].batch}, committed ")
    assert sheet["B3"].value == f"{flags.height}: {flags.height} open, 0 corrected, 0 reviewed"
    counted = {(r["check_name"], r["severity"]): (r["flags"], r["open"], r["corrected"])
               for r in _rows(sheet, header=5)}
    assert counted == {(check, severity): (n, n, 0) for check, severity, n in
                       flags.group_by("check_name", "severity").len().iter_rows()}


def test_tracking_is_the_completion_of_those_days(book: tuple[Workbook, pl.DataFrame],
                                                  ingested: Ingested) -> None:
    workbook, _ = book
    completion = ingested.lake.completion(FIRST, LAST)
    rows = _rows(workbook["tracking"])
    assert len(rows) == completion.height > 0
    assert sorted(map(tuple, (r.values() for r in rows))) == sorted(completion.rows())


def test_each_observers_tasks_day_by_day_and_in_all(book: tuple[Workbook, pl.DataFrame],
                                                     ingested: Ingested) -> None:
    workbook, flags = book
    observations = ingested.lake.table("observations", FIRST, LAST)
    rows = _rows(workbook["observers"])
    in_all = {r["observer"]: r for r in rows if r["day"] == "all"}
    assert set(in_all) == set(observations["observer"])
    for observer, row in in_all.items():
        theirs = observations.filter(observer=observer)
        assert row["tasks"] == theirs.height
        assert row["complete"] == theirs.filter(status="complete").height
        assert row["days_worked"] == theirs["day"].n_unique()
        assert (row["first_day"], row["last_day"]) == (theirs["day"].min(), theirs["day"].max())
        assert row["late_files"] == flags.filter(observer=observer,
                                                 check_name="late_arrival").height
        assert sum(r["tasks"] for r in rows  # type: ignore[misc]
                   if r["observer"] == observer and r["day"] != "all") == theirs.height


def test_every_sheet_has_its_header_frozen_filters_and_no_persons_code(
        book: tuple[Workbook, pl.DataFrame], ingested: Ingested) -> None:
    workbook, _ = book
    codes = {c for frame in ("roster", "wip") for c in ingested.lake.table(frame)["worker_id"]
             if c} | {c for c in ingested.lake.table("observations")["supervisor"] if c}
    assert len(codes) > 10
    for sheet in workbook.worksheets:
        assert sheet.freeze_panes and sheet.auto_filter.ref
        cells = {str(v) for row in sheet.iter_rows(values_only=True) for v in row if v}
        assert not {c for c in codes for cell in cells if c in cell}, sheet.title


def test_a_file_name_like_a_formula_stays_text(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    simulate(tmp_path / "inbox", days=2, observers=1, seed=5)
    (tmp_path / "inbox" / "=HYPERLINK(1).json").write_text("{}")
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(tmp_path / "inbox")
    result = run_in(capsys, "check", "--all", "--format", "xlsx", "--out",
                    str(tmp_path / "checks.xlsx"), "--lake", str(lake.root))
    assert result.returncode == 0, result.stderr
    sheet = load_workbook(tmp_path / "checks.xlsx")["quarantined"]
    details = [c for c in sheet["H"] if str(c.value).startswith("=HYPERLINK")]
    assert details and all(c.data_type == "s" for c in details)  # text, not a formula
    assert run_in(capsys, "check", "--format", "xlsx", "--lake", str(lake.root)).stderr == \
        "error: a workbook needs a file to go to — pass --out FILE.xlsx\n"
