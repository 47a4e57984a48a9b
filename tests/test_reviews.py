"""The checks workbook comes back: the field manager fills it in, `rmg-lake correct` takes
it, and each flag it settles (corrected, or reviewed with a resolution) leaves the next
day's checks; rolling the batch back opens them again."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
from conftest import REPO, run_in
from openpyxl import load_workbook

from rmg_lake import open_lake, simulate
from rmg_lake.derive.checks import FOUND
from rmg_lake.store.log import Correction
from rmg_lake.store.upgrade import LAYOUT

NOTE = "late: no internet at the factory that week"
OK = "checked with the observer: correct"


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    simulate(tmp_path / "inbox", days=3, observers=2, seed=41, start=date(2026, 11, 2))
    open_lake(tmp_path / "lake", create=True).ingest(tmp_path / "inbox")
    return tmp_path / "lake"


def _flags(lake: Path, where: str = "true") -> dict[str, tuple[str, int | None]]:
    """flag_id → (status, settled_by), from the `flags` view of lake.duckdb."""
    with duckdb.connect(str(lake / "lake.duckdb"), read_only=True) as con:
        return {flag: (status, by) for flag, status, by in con.execute(
            f"select flag_id, status, settled_by from flags where {where}").fetchall()}


def _workbook(capsys: pytest.CaptureFixture[str], lake: Path, to: Path) -> Path:
    made = run_in(capsys, "check", "--all", "--format", "xlsx", "--out", str(to),
                  "--lake", str(lake))
    assert made.returncode == 0, made.stderr
    return to


def _fill(book: Path, fills: dict[str, dict[str, str]]) -> list[tuple[str, int]]:
    """Fill in the rows of the flags `fills` names (flag_id → column → value), as the
    field manager does in Excel; where each is (sheet, row)."""
    workbook = load_workbook(book)
    where = []
    for sheet in workbook.worksheets:
        header = [cell.value for cell in sheet[1]]
        if "flag_id" not in header:
            continue  # not a check's sheet
        for row in sheet.iter_rows(min_row=2):
            flag = row[header.index("flag_id")].value
            for column, value in fills.get(flag, {}).items():
                row[header.index(column)].value = value
            if flag in fills:
                where.append((sheet.title, row[0].row))
    workbook.save(book)
    assert len(where) == len(fills)
    return where


def _choose(lake: Path) -> tuple[str, str, str]:
    """A late file's flag (its note is to be corrected: the flag stays found), its
    observation, and an `incomplete` flag (to be reviewed)."""
    with duckdb.connect(str(lake / "lake.duckdb"), read_only=True) as con:
        late, observation = con.execute(
            "select flag_id, observation_id from flags join observations using "
            "(observation_id) where check_name = 'late_arrival' and notes is null "
            "order by flag_id limit 1").fetchone() or ("", "")
        (short,) = con.execute("select flag_id from flags where check_name = 'incomplete' "
                               "order by flag_id limit 1").fetchone() or ("",)
    assert late and short
    return late, observation, short


def _listed(capsys: pytest.CaptureFixture[str], lake: Path, *more: str) -> str:
    checked = run_in(capsys, "check", "--all", "--format", "csv", "--lake", str(lake), *more)
    assert checked.returncode == 0, checked.stderr
    return checked.stdout


def test_a_filled_in_workbook_corrects_and_reviews_in_one_batch(
        lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    late, observation, short = _choose(lake)
    book = _workbook(capsys, lake, tmp_path / "checks.xlsx")
    (late_at, _), (short_at, _) = sorted(_fill(book, {
        late: {"field": "notes", "old_value": "", "new_value": NOTE,
               "reason": "asked the observer"},
        short: {"resolution": OK}}), key=lambda w: w[0] != "late_arrival")
    done = run_in(capsys, "correct", str(book), "--lake", str(lake), "--by", "manager")
    assert done.returncode == 0, done.stderr
    assert "Batch 2 corrects from checks.xlsx: 1 row applied, 1 flag reviewed." in done.stdout
    assert _flags(lake, f"flag_id in ('{late}', '{short}')") == {
        late: ("corrected", 2), short: ("reviewed", 2)}
    entry = open_lake(lake).entries()[1]
    assert isinstance(entry, Correction) and entry.by == "manager"
    [row], [review] = entry.rows, entry.reviews
    assert (row.worksheet, row.flag_id, row.observation_id, row.outcome) == (
        late_at, late, observation, "applied")
    assert (review.worksheet, review.flag_id, review.resolution, review.outcome) == (
        short_at, short, OK, "reviewed")
    notes = open_lake(lake).table("observations").filter(observation_id=observation)["notes"]
    assert notes.to_list() == [NOTE]  # the correction is in the frames
    told = run_in(capsys, "show", "2", "--lake", str(lake)).stdout
    assert f"  applied  {late_at} row " in told and f"  reviewed {short_at} row " in told
    assert f"flag {short}: {OK}" in told
    logged = json.loads(run_in(capsys, "log", "--json", "--lake", str(lake)).stdout)[1]
    assert (logged["applied"], logged["reviewed"], logged["refused"]) == (1, 1, 0)


def test_a_settled_flag_does_not_come_back_the_next_day_and_a_rollback_reopens_it(
        lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    late, _, short = _choose(lake)
    book = _workbook(capsys, lake, tmp_path / "checks.xlsx")
    _fill(book, {late: {"field": "notes", "old_value": "", "new_value": NOTE,
                        "reason": "asked the observer"}, short: {"resolution": OK}})
    assert run_in(capsys, "correct", str(book), "--lake", str(lake)).returncode == 0
    simulate(tmp_path / "next", days=1, observers=2, seed=42, start=date(2026, 11, 5))
    assert run_in(capsys, "ingest", "--source", str(tmp_path / "next"), "--lake",
                  str(lake)).returncode == 0  # the next day (batch 3)
    listed = _listed(capsys, lake)
    assert late not in listed and short not in listed
    assert f"{short},reviewed,2" in _listed(capsys, lake, "--settled")
    next_book = load_workbook(_workbook(capsys, lake, tmp_path / "next.xlsx"))
    in_sheets = {str(v) for sheet in next_book.worksheets
                 for row in sheet.iter_rows(values_only=True) for v in row}
    assert late not in in_sheets and short not in in_sheets
    assert "2 corrected" not in str(next_book["summary"]["B3"].value)  # 1 and 1
    assert ", 1 corrected, 1 reviewed" in str(next_book["summary"]["B3"].value)

    rolled = run_in(capsys, "rollback", "2", "--reason", "the wrong workbook", "--lake",
                    str(lake))
    assert rolled.returncode == 0, rolled.stderr
    assert _flags(lake, f"flag_id in ('{late}', '{short}')") == {
        late: ("open", None), short: ("open", None)}
    listed = _listed(capsys, lake)
    assert late in listed and short in listed

    again = run_in(capsys, "correct", str(book), "--lake", str(lake))  # applied again
    assert again.returncode == 0, again.stderr
    assert "Batch 5 corrects" in again.stdout
    assert _flags(lake, f"flag_id in ('{late}', '{short}')") == {
        late: ("corrected", 5), short: ("reviewed", 5)}
    assert run_in(capsys, "correct", str(book), "--lake", str(lake)).stdout.startswith(
        "checks.xlsx was applied as batch 5: nothing changes.")


def test_a_flag_is_known_by_the_same_id_every_day(lake: Path, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    before = open_lake(lake).flags()
    assert before["flag_id"].n_unique() == before.height  # one id per flag
    simulate(tmp_path / "next", days=1, observers=2, seed=42, start=date(2026, 11, 5))
    open_lake(lake).ingest(tmp_path / "next")
    after = open_lake(lake).flags()
    outlier = pl.col("check_name") == "wip_outlier"  # (a machine's history moves these)
    assert set(before.filter(~outlier)["flag_id"]) <= set(after["flag_id"])
    # an outlier still found keeps its id, though its detail ("usually about …") changed
    subject = pl.col("detail").str.split(": ").list.first()
    key = [*(c for c in FOUND if c != "detail"), "subject"]
    both = before.filter(outlier).with_columns(subject=subject).join(
        after.with_columns(subject=subject), on=key, suffix="_after", nulls_equal=True)
    assert (both["detail"] != both["detail_after"]).any()
    assert (both["flag_id"] == both["flag_id_after"]).all()


def test_a_refused_row_refuses_the_whole_workbook_unless_partial(
        lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    late, _, short = _choose(lake)
    book = _workbook(capsys, lake, tmp_path / "checks.xlsx")
    where = dict(_fill(book, {late: {"field": "notes", "old_value": "not what it says",
                                     "new_value": NOTE, "reason": "asked"},
                              short: {"resolution": OK}}))
    refused = run_in(capsys, "correct", str(book), "--lake", str(lake))
    assert refused.returncode == 1
    assert f"late_arrival row {where['late_arrival']}, " in refused.stderr
    assert "old_value is not the current value" in refused.stderr
    assert "Nothing applied: 0 rows could apply, 1 flag could be reviewed, 0 already so, " \
           "1 refused." in refused.stderr
    assert len(open_lake(lake).entries()) == 1
    partial = run_in(capsys, "correct", str(book), "--partial", "--lake", str(lake))
    assert partial.returncode == 0, partial.stderr
    assert _flags(lake, f"flag_id in ('{late}', '{short}')") == {
        late: ("open", None), short: ("reviewed", 2)}


def test_a_resolution_for_a_flag_the_lake_does_not_have_is_refused(
        lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, _, short = _choose(lake)
    book = _workbook(capsys, lake, tmp_path / "checks.xlsx")
    _fill(book, {short: {"resolution": OK, "flag_id": "0123456789abcdef"}})
    refused = run_in(capsys, "correct", str(book), "--lake", str(lake))
    assert refused.returncode == 1
    assert "flag 0123456789abcdef: no such flag in the lake now" in refused.stderr


def test_a_workbook_with_nothing_filled_in_says_so(
        lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = _workbook(capsys, lake, tmp_path / "checks.xlsx")
    said = run_in(capsys, "correct", str(book), "--lake", str(lake))
    assert said.returncode == 1
    assert "the checks workbook has no correction and no resolution filled in" in said.stderr


def _first_rows(book: Path) -> dict[str, dict[str, object]]:
    """Each check sheet's first flag (on its row 2), by the sheet's title."""
    workbook = load_workbook(book)
    return {sheet.title: dict(zip([c.value for c in sheet[1]], [c.value for c in sheet[2]],
                                  strict=True))
            for sheet in workbook.worksheets if sheet.cell(1, 1).value == "severity"
            and sheet.max_row > 1}


def test_a_row_settles_only_the_flag_of_its_sheet_and_observation(
        lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    late, observation, short = _choose(lake)
    book = _workbook(capsys, lake, tmp_path / "checks.xlsx")
    other = next(row for title, row in _first_rows(book).items()
                 if title not in ("late_arrival", "incomplete") and row["observation_id"]
                 and row["observation_id"] != observation)
    _fill(book, {late: {"field": "notes", "old_value": "", "new_value": NOTE,
                        "reason": "asked", "flag_id": str(other["flag_id"])},
                 short: {"resolution": OK, "flag_id": late}})
    refused = run_in(capsys, "correct", str(book), "--lake", str(lake))
    assert refused.returncode == 1 and len(open_lake(lake).entries()) == 1
    assert f"flag {other['flag_id']} is not of this sheet's check" in refused.stderr
    assert f"flag {late} is not of this sheet's check (it is a late_arrival flag)" \
        in refused.stderr
    book = _workbook(capsys, lake, tmp_path / "again.xlsx")  # a late file's own sheet,
    first = _first_rows(book)["late_arrival"]  # with the id of another late file's flag
    twin = next(flag for flag in _flags(lake, "check_name = 'late_arrival'")
                if flag != first["flag_id"])
    _fill(book, {str(first["flag_id"]): {"field": "notes", "old_value": "x",
                                         "new_value": NOTE, "reason": "asked",
                                         "flag_id": twin}})
    refused = run_in(capsys, "correct", str(book), "--lake", str(lake))
    assert f"flag {twin} is about another observation" in refused.stderr


def test_a_correction_no_longer_in_effect_opens_its_flag_again(
        lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    late, observation, _ = _choose(lake)
    book = _workbook(capsys, lake, tmp_path / "checks.xlsx")
    _fill(book, {late: {"field": "notes", "old_value": "", "new_value": NOTE,
                        "reason": "asked the observer"}})
    assert run_in(capsys, "correct", str(book), "--lake", str(lake)).returncode == 0
    assert _flags(lake, f"flag_id = '{late}'") == {late: ("corrected", 2)}
    # the tablet saves the observation again, with another note: the row (for a note
    # that was empty) no longer applies, and the finding is open again
    [(stored, path)] = open_lake(lake).table("history").filter(
        observation_id=observation, outcome="added").select("stored", "path").rows()
    newer = json.loads((lake / stored).read_text())
    newer["notes"] = "saved again"
    (tmp_path / "again").mkdir()
    (tmp_path / "again" / Path(path).name).write_text(json.dumps(newer))
    assert run_in(capsys, "ingest", "--source", str(tmp_path / "again"), "--lake",
                  str(lake)).returncode == 0
    with duckdb.connect(str(lake / "lake.duckdb"), read_only=True) as con:
        assert con.execute("select in_effect from corrections").fetchall() == [(False,)]
    assert _flags(lake, f"flag_id = '{late}'") == {late: ("open", None)}


def test_the_place_of_a_row_tells_which_rows_are_in_effect(
        lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Two rows on row 2 of two sheets: one applies, the other changes nothing."""
    book = _workbook(capsys, lake, tmp_path / "checks.xlsx")
    rows = _first_rows(book)
    observations = open_lake(lake).table("observations")
    (a, first), (b, second) = [(t, r) for t, r in rows.items() if r["observation_id"]][:2]
    notes = [observations.filter(observation_id=r["observation_id"])["notes"][0]
             for r in (first, second)]
    _fill(book, {str(first["flag_id"]): {"field": "notes", "old_value": notes[0] or "",
                                         "new_value": "checked", "reason": "asked"},
                 str(second["flag_id"]): {"field": "notes", "old_value": notes[1] or "",
                                          "new_value": notes[1] or "", "reason": "asked"}})
    assert run_in(capsys, "correct", str(book), "--lake", str(lake)).returncode == 0
    with duckdb.connect(str(lake / "lake.duckdb"), read_only=True) as con:
        assert sorted(con.execute("select worksheet, row, outcome, in_effect "
                                  "from corrections").fetchall()) == sorted([
            (a, 2, "applied", True), (b, 2, "already", False)])


def test_a_reason_alone_is_a_resolution(lake: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    _, _, short = _choose(lake)
    book = _workbook(capsys, lake, tmp_path / "checks.xlsx")
    _fill(book, {short: {"reason": "the team was on leave"}})
    assert run_in(capsys, "correct", str(book), "--lake", str(lake)).returncode == 0
    [review] = open_lake(lake).entries()[1].reviews  # type: ignore[union-attr]
    assert (review.flag_id, review.resolution) == (short, "the team was on leave")


def test_a_check_sheet_without_its_flag_id_or_saved_as_csv_is_refused(
        lake: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, _, short = _choose(lake)
    book = _workbook(capsys, lake, tmp_path / "checks.xlsx")
    _fill(book, {short: {"resolution": OK}})
    workbook = load_workbook(book)
    sheet = workbook["incomplete"]
    sheet.delete_cols([c.value for c in sheet[1]].index("flag_id") + 1)
    workbook.save(book)
    said = run_in(capsys, "correct", str(book), "--lake", str(lake))
    assert said.returncode == 1
    assert said.stderr.startswith(f"error: {book}: sheet incomplete has no column flag_id")
    csv = tmp_path / "incomplete.csv"
    csv.write_text("severity,day,observation_id,detail,flag_id,field,old_value,new_value,"
                   f"reason,resolution\nerror,2026-11-02,,roster,{short},,,,,{OK}\n")
    said = run_in(capsys, "correct", str(csv), "--lake", str(lake))
    assert said.returncode == 1 and "a sheet of a checks workbook, saved as CSV" in said.stderr
    assert len(open_lake(lake).entries()) == 1


def test_a_file_quarantined_twice_on_one_day_is_two_flags(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "inbox").mkdir()
    lake = open_lake(tmp_path / "lake", create=True)
    for bad in ("{not json", "{still not json"):  # saved again, as bad
        (tmp_path / "inbox" / "wip_bad.json").write_text(bad)
        lake.ingest(tmp_path / "inbox")
    quarantined = lake.flags().filter(check_name="quarantined")
    assert quarantined.height == 2 and quarantined["flag_id"].n_unique() == 2


# A lake the release before wrote (layout 2: no reviews; tests/data/lake-3)
OLD = REPO / "tests" / "data" / "lake-3" / "lake"


def test_a_lake_of_the_release_before_takes_a_workbook_back(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lake = tmp_path / "lake"
    shutil.copytree(OLD, lake)
    for path in [lake, *lake.rglob("*")]:
        path.chmod(0o700 if path.is_dir() else 0o600)  # (git keeps no such modes)
    said = [e.model_dump(mode="json", exclude={"inline", "records"})
            for e in open_lake(lake).entries()]
    assert [e["kind"] for e in said] == ["ingest", "correction", "ingest", "rollback"]
    assert json.loads((lake / "_meta.json").read_text())["layout"] == 2  # read as it is
    flags = open_lake(lake).flags()  # the first derive writes: it upgrades the lake
    assert flags.height > 10 and set(flags["status"]) == {"open"}
    meta = json.loads((lake / "_meta.json").read_text())
    assert meta["layout"] == LAYOUT == 3 and meta["upgrades"][0]["from"] == 2
    assert "upgrading" not in meta

    _, _, short = _choose(lake)
    book = _workbook(capsys, lake, tmp_path / "checks.xlsx")
    _fill(book, {short: {"resolution": OK}})
    done = run_in(capsys, "correct", str(book), "--lake", str(lake))
    assert done.returncode == 0, done.stderr
    entries = open_lake(lake).entries()
    assert [e.model_dump(mode="json", exclude={"inline", "records"})
            for e in entries[:4]] == said  # its entries say what they said
    assert _flags(lake, f"flag_id = '{short}'") == {short: ("reviewed", 5)}
    with duckdb.connect(str(lake / "lake.duckdb"), read_only=True) as con:
        assert con.execute("select batch, worksheet, flag_id, outcome, in_effect "
                           "from corrections").fetchall() == [
            (2, None, None, "applied", True)]  # the old correction, still in effect
    assert run_in(capsys, "verify", "--lake", str(lake)).returncode == 0
