"""Corrections: a sheet fixes values without touching the evidence — guarded, logged, and
replayed with the log like everything else."""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import orjson
import polars as pl
import pytest
from conftest import run_cli, run_main
from openpyxl import Workbook

from rmg_lake import Lake, open_lake, simulate
from rmg_lake.derive.partitions import load_state

HEADER = ("observation_id", "field", "old_value", "new_value", "reason")
DETAIL = ("observations", "roster", "wip", "interactions")
UNKNOWN = "00000000-0000-4000-8000-000000000000"


def frames(root: Path, *, but: tuple[str, ...] = ()) -> dict[str, str]:
    """Every derived Parquet file under `root`, by path and sha256."""
    state = load_state(root)
    assert state is not None
    return {f: hashlib.sha256((root / f).read_bytes()).hexdigest()
            for name, parts in state.frames.items() if name not in but
            for f in parts.values()}


def write_sheet(path: Path, rows: list[tuple[str, ...]]) -> Path:
    if path.suffix == ".xlsx":
        book = Workbook()
        sheet = book.active
        assert sheet is not None
        for row in [HEADER, *rows]:
            sheet.append(list(row))
        book.save(path)
    else:
        with path.open("w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows([HEADER, *rows])
    return path


@pytest.fixture(scope="module")
def inbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two working days of two factories (every task, both departments)."""
    root = tmp_path_factory.mktemp("corrections") / "inbox"
    simulate(root, days=2, seed=5, observers=2, start=date(2026, 11, 2))
    return root


@pytest.fixture
def lake(inbox: Path, tmp_path: Path) -> Lake:
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(inbox)
    return lake


@dataclass
class Chosen:
    """The observations the big sheet corrects, and their values before."""

    roster: dict[str, Any]  # R: a roster; `manned` a machine with its wip rounds, `empty` not
    manned: str
    empty: str
    wip: dict[str, Any]  # W: a knitting round's body machine
    linking: dict[str, Any]  # L: a linking round's manned machine
    talk: dict[str, Any]  # I: an interactions window's first interaction
    moved: dict[str, Any]  # T: a team-day's only complete roster, moved to `to_team`
    to_team: str
    dropped: str  # D: withdrawn
    kept: str  # E: a DROP guarded by a stale status
    department: str  # X: a department change that breaks the contract
    collar: dict[str, Any]  # X2: a body machine given a collar count


def choose(lake: Lake) -> Chosen:
    """Pick distinct observations for each kind of row, from the lake's own frames."""
    obs, roster, wip = lake.table("observations"), lake.table("roster"), lake.table("wip")
    used: set[str] = set()

    def take(frame: pl.DataFrame) -> dict[str, Any]:
        row = frame.filter(~pl.col("observation_id").is_in(list(used))).row(0, named=True)
        used.add(row["observation_id"])
        return row

    # R: a knitting team-day's only roster, with a machine manned in its wip rounds
    rounds = wip.filter(pl.col("mc_status") == "manned", pl.col("department") == "knitting")
    single = roster.group_by("day", "factory", "department", "team").agg(
        pl.col("observation_id").n_unique().alias("n")).filter(pl.col("n") == 1)
    matched = roster.join(single, on=["day", "factory", "department", "team"]).join(
        rounds.select("day", "factory", "team", "machine", "worker_id"),
        on=["day", "factory", "team", "machine", "worker_id"]).filter(
        pl.col("department") == "knitting")
    r = take(matched)
    empty = roster.filter(pl.col("observation_id") == r["observation_id"],
                          pl.col("mc_status") == "unmanned")["machine"][0]
    complete_rosters = obs.filter(pl.col("task") == "roster", pl.col("status") == "complete",
                                  pl.col("department") == "knitting")
    only = complete_rosters.group_by("day", "factory", "team").len().filter(pl.col("len") == 1)
    t = take(complete_rosters.join(only, on=["day", "factory", "team"]))
    to_team = next(team for team in ("control", "treatment", "same-floor", "other-floor")
                   if team != t["team"])
    bodies = wip.filter(pl.col("component") == "body", pl.col("sleeve").is_not_null(),
                        pl.col("mc_status") == "manned")
    return Chosen(
        roster=r, manned=r["machine"], empty=empty, wip=take(bodies),
        linking=take(wip.filter(pl.col("department") == "linking",
                                pl.col("mc_status") == "manned", pl.col("wip") <= 40)),
        talk=take(lake.table("interactions").filter(pl.col("seq") == 0)),
        moved=t, to_team=to_team,
        dropped=take(obs.filter(pl.col("task") == "wip"))["observation_id"],
        kept=take(obs.filter(pl.col("status") == "complete"))["observation_id"],
        department=take(obs.filter(pl.col("task") == "wip",
                                   pl.col("department") == "knitting"))["observation_id"],
        collar=take(bodies))


def big_sheet(c: Chosen) -> list[tuple[tuple[str, ...], str, str | None]]:
    """23 rows (sheet rows 2–24): each with the outcome and the reason it must have."""
    r, w, li, i, t = c.roster, c.wip, c.linking, c.talk, c.moved
    rid, wid = r["observation_id"], w["observation_id"]
    kn, wk = f"machines.{c.manned}", f"machines.{w['machine']}"
    return [
        ((rid, f"{kn}.worker_id", r["worker_id"], "W-NEW", "typo"), "applied", None),
        ((rid, f"machines.{c.empty}.mc_status", "unmanned", "manned", "was manned"),
         "applied", None),
        ((rid, f"machines.{c.empty}.worker_id", "", "W-NEW2", "was manned"), "applied", None),
        ((rid, f"{kn}.worker_id", r["worker_id"], "W-OTHER", "stale"), "refused",
         "old_value is not the current value"),
        ((rid, f"{kn}.worker_id", r["worker_id"], "W-NEW", "typed twice"), "already", None),
        ((wid, f"{wk}.back", str(w["back"]), str(w["back"] + 5), "miscounted"),
         "applied", None),
        ((wid, f"{wk}.front", str(w["front"]), "seven", "words"), "refused",
         "new_value is not a whole number"),
        ((wid, f"{wk}.sleeve", "999", "1", "stale"), "refused",
         "old_value is not the current value"),
        ((wid, "machines.KN999.back", "1", "2", "no such machine"), "refused",
         "no such field in this observation"),
        ((wid, "machines", "", "", "not a value"), "refused", "not one value"),
        ((li["observation_id"], f"machines.{li['machine']}.wip", f"{li['wip']:g}",
          f"{li['wip'] + 0.5:g}", "half a piece more"), "applied", None),
        ((i["observation_id"], "interactions.0.topic", i["topic"],
          "yarn" if i["topic"] != "yarn" else "pattern", "misheard"), "applied", None),
        ((i["observation_id"], "interactions.0.length_s", str(i["length_s"]),
          str(i["length_s"] + 30), "stopwatch"), "applied", None),
        ((i["observation_id"], "supervisor", i["supervisor"], "SUP-NEW", "wrong person"),
         "applied", None),
        ((t["observation_id"], "team", t["team"], c.to_team, "wrong team picked"),
         "applied", None),
        ((c.dropped, "", "", "DROP", "observer was not there"), "applied", None),
        ((c.kept, "status", "aborted", "DROP", "only if aborted"), "refused",
         "old_value is not the current value"),
        ((c.department, "department", "knitting", "linking", "wrong section"), "refused",
         "breaks the contract"),
        ((c.collar["observation_id"], f"machines.{c.collar['machine']}.collar", "", "3",
          "collar"), "refused", "breaks the contract"),
        ((UNKNOWN, "team", "control", "treatment", "who?"), "refused",
         "no observation with this id"),
        (("not-an-id", "team", "control", "treatment", "who?"), "refused",
         "no observation with this id"),
        ((rid, "observation_id", rid, UNKNOWN, "renumber"), "refused", "cannot be corrected"),
        ((t["observation_id"], "status", "complete", "partial", ""), "refused",
         "needs a reason"),
    ]


def rows_of(sheet: list[tuple[tuple[str, ...], str, str | None]]) -> list[tuple[str, ...]]:
    return [row for row, _, _ in sheet]


def test_a_sheet_of_every_kind_of_row(lake: Lake, tmp_path: Path) -> None:
    c = choose(lake)
    sheet = big_sheet(c)
    assert len(sheet) >= 20
    path = write_sheet(tmp_path / "fixes.csv", rows_of(sheet))
    before = {name: lake.table(name) for name in (*DETAIL, "completion")}
    flags_before = lake.flags()
    entries = len(lake.entries())
    evidence = {p: p.read_bytes() for p in (lake.root / "raw").rglob("*.json")}

    # refused rows: nothing is applied, nothing is logged
    tried = lake.correct(path, by="researcher")
    assert tried.entry is None and len(lake.entries()) == entries
    assert [(r.outcome, r.row) for r in tried.rows] == [
        (outcome, n) for n, (_, outcome, _) in enumerate(sheet, start=2)]
    assert lake.table("roster").equals(before["roster"])

    done = lake.correct(path, by="researcher", partial=True)
    assert done.entry is not None and done.entry.batch == entries + 1
    for got, (_, outcome, detail) in zip(done.rows, sheet, strict=True):
        assert got.outcome == outcome, got
        assert got.detail is None if detail is None else detail in str(got.detail), got
    assert done.rows[3].current == "W-NEW"  # a stale row shows the value it found
    assert done.rows[16].current == "complete"
    kept = lake.root / done.entry.stored  # the sheet is evidence, byte for byte
    assert kept.read_bytes() == path.read_bytes() and done.entry.by == "researcher"

    # the corrections view: every row, with its batch and whether it is in effect
    view = lake.table("corrections")
    assert view.select("batch", "row", "outcome", "in_effect").rows() == [
        (done.entry.batch, n, outcome, outcome == "applied")
        for n, (_, outcome, _) in enumerate(sheet, start=2)]

    # the DuckDB views, as the researcher queries them
    con = duckdb.connect(str(lake.root / "lake.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT row, outcome, in_effect FROM corrections ORDER BY row"
                           ).fetchall() == [(n, outcome, outcome == "applied") for n, (
                               _, outcome, _) in enumerate(sheet, start=2)]
        assert con.execute("SELECT worker_id, corrected, corrections FROM roster WHERE "
                           "observation_id = ? AND machine = ?",
                           [c.roster["observation_id"], c.manned]).fetchall() == [
            ("W-NEW", True, 1)]
        assert con.execute("SELECT count(*) FROM observations WHERE observation_id = ?",
                           [c.dropped]).fetchall() == [(0,)]
        team_view = f"roster_knitting_{c.to_team}".replace("-", "_")
        assert con.execute(f"SELECT count(DISTINCT observation_id) FROM {team_view} "
                           "WHERE observation_id = ?",
                           [c.moved["observation_id"]]).fetchall() == [(1,)]
    finally:
        con.close()

    # the frames: corrected values, and how many corrections changed each row
    after = {name: lake.table(name) for name in (*DETAIL, "completion")}
    changed = [c.roster["observation_id"], c.wip["observation_id"],
               c.linking["observation_id"], c.talk["observation_id"],
               c.moved["observation_id"], c.dropped]
    for name in DETAIL:  # every other row is as it was
        untouched = ~pl.col("observation_id").is_in(changed)
        assert after[name].filter(untouched).equals(before[name].filter(untouched)), name
    r = after["roster"].filter(pl.col("observation_id") == c.roster["observation_id"])
    assert {m: (s, w, n) for m, s, w, n in r.select(
        "machine", "mc_status", "worker_id", "corrections").rows() if n} == {
        c.manned: ("manned", "W-NEW", 1), c.empty: ("manned", "W-NEW2", 2)}
    assert r["corrected"].sum() == 2
    obs = after["observations"].filter(pl.col("corrected"))
    assert dict(obs.select("observation_id", "corrections").rows()) == {
        c.roster["observation_id"]: 3, c.wip["observation_id"]: 1,
        c.linking["observation_id"]: 1, c.talk["observation_id"]: 3,
        c.moved["observation_id"]: 1}
    w = after["wip"].filter(pl.col("observation_id") == c.wip["observation_id"],
                            pl.col("machine") == c.wip["machine"]).row(0, named=True)
    assert (w["back"], w["front"], w["sleeve"], w["corrections"]) == (
        c.wip["back"] + 5, c.wip["front"], c.wip["sleeve"], 1)
    li = after["wip"].filter(pl.col("observation_id") == c.linking["observation_id"],
                             pl.col("machine") == c.linking["machine"])
    assert li["wip"].to_list() == [c.linking["wip"] + 0.5]
    talk = after["interactions"].filter(pl.col("observation_id") == c.talk["observation_id"])
    assert set(talk["supervisor"]) == {"SUP-NEW"}
    assert talk.select("seq", "corrections").rows()[0] == (0, 3)
    assert set(talk["corrections"][1:]) <= {1}
    assert talk["length_s"][0] == c.talk["length_s"] + 30
    assert c.dropped not in after["observations"]["observation_id"].to_list()
    moved = after["observations"].filter(pl.col("observation_id") == c.moved["observation_id"])
    assert moved["team"].to_list() == [c.to_team]
    assert c.moved["observation_id"] in lake.frame("roster", "knitting", c.to_team)[
        "observation_id"].to_list()

    # completion: the moved roster counts for its new team, the dropped round for nobody
    def completed(table: pl.DataFrame, team: str, task: str) -> int:
        m = c.moved
        cell = table.filter(pl.col("day") == m["day"], pl.col("factory") == m["factory"],
                            pl.col("department") == "knitting", pl.col("team") == team,
                            pl.col("task") == task)
        return int(cell["completed"].sum())

    assert completed(after["completion"], c.moved["team"], "roster") == \
        completed(before["completion"], c.moved["team"], "roster") - 1 == 0
    assert completed(after["completion"], c.to_team, "roster") == \
        completed(before["completion"], c.to_team, "roster") + 1
    assert after["completion"]["completed"].sum() == before["completion"]["completed"].sum() \
        - (before["observations"].filter(pl.col("observation_id") == c.dropped)["status"][0]
           == "complete")

    # the checks: a team-day left without its roster, a roster that now disagrees
    flags = lake.flags()
    incomplete = (pl.col("check_name") == "incomplete") & (pl.col("day") == c.moved["day"]) \
        & (pl.col("team") == c.moved["team"]) & pl.col("detail").str.starts_with("roster:")
    assert flags_before.filter(incomplete).is_empty() and flags.filter(incomplete).height == 1
    mismatch = (pl.col("check_name") == "roster_mismatch") \
        & (pl.col("day") == c.roster["day"]) & (pl.col("team") == c.roster["team"]) \
        & (pl.col("detail") == f"{c.manned}: another worker than in the roster")
    assert flags_before.filter(mismatch).is_empty() and not flags.filter(mismatch).is_empty()

    # the raw files are as they arrived: not one byte or file more or less
    assert {p: p.read_bytes() for p in (lake.root / "raw").rglob("*.json")} == evidence

    # the same sheet again changes nothing, and says so
    again = lake.correct(path, by="researcher", partial=True)
    assert again.entry is None and again.same_as == done.entry.batch

    # rebuilt from the log: the same bytes
    state = frames(lake.root)
    lake.rebuild()
    assert frames(lake.root) == state


def test_an_excel_sheet_is_read_as_the_csv(lake: Lake, tmp_path: Path) -> None:
    sheet = big_sheet(choose(lake))
    as_csv = lake.correct(write_sheet(tmp_path / "a.csv", rows_of(sheet)), by="x")
    as_xlsx = lake.correct(write_sheet(tmp_path / "a.xlsx", rows_of(sheet)), by="x")
    assert as_csv.rows == as_xlsx.rows and as_xlsx.entry is None
    good = [row for row, outcome, _ in sheet if outcome == "applied"]
    done = lake.correct(write_sheet(tmp_path / "good.xlsx", good), by="x")
    assert done.entry is not None and done.entry.stored.endswith(".xlsx")
    assert [r.outcome for r in done.rows] == ["applied"] * len(good)


def test_rolling_back_a_correction_restores_the_values(lake: Lake, tmp_path: Path) -> None:
    c = choose(lake)
    before = frames(lake.root, but=("batches", "corrections"))
    path = write_sheet(tmp_path / "team.csv", [
        (c.moved["observation_id"], "team", c.moved["team"], c.to_team, "wrong team")])
    done = lake.correct(path, by="r")
    assert done.entry is not None
    corrected = frames(lake.root, but=("batches", "corrections"))
    assert corrected != before
    undo = lake.rollback(done.entry.batch, "the team was right after all")
    assert undo.removed == [done.entry.batch]
    assert frames(lake.root, but=("batches", "corrections")) == before
    assert lake.table("corrections")["in_effect"].to_list() == [False]
    lake.rollback(undo.entry.batch, "it was wrong")  # the correction is back
    assert frames(lake.root, but=("batches", "corrections")) == corrected
    as_of = lake.rebuild(as_of=done.entry.batch, out=tmp_path / "then")
    assert frames(as_of, but=("batches", "corrections")) == corrected
    assert frames(lake.rebuild(as_of=undo.entry.batch, out=tmp_path / "undone"),
                  but=("batches", "corrections")) == before


def _new_version(inbox: Path, lake: Lake, observation_id: str, edit: dict[str, Any]) -> Path:
    """A later save of an observation (the tablet's fix), `edit` applied, in a new folder."""
    record = next(f for b in lake.batches() for f in b.files
                  if f.observation_id == observation_id and f.outcome == "added")
    payload = orjson.loads((lake.root / record.stored).read_bytes())
    for path, value in edit.items():
        *parents, last = path.split(".")
        node = payload
        for part in parents:
            node = node[part]
        node[last] = value
    folder = inbox.parent / f"resaved-{observation_id[:8]}-{len(edit)}-{abs(hash(str(edit)))}"
    target = folder / Path(record.path).name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(orjson.dumps(payload))
    later = record.modified.timestamp() + 3600
    os.utime(target, (later, later))
    return folder


def test_a_correction_follows_new_versions_while_its_old_value_holds(
        lake: Lake, inbox: Path, tmp_path: Path) -> None:
    c = choose(lake)
    rid = c.roster["observation_id"]
    path = write_sheet(tmp_path / "fix.csv", [
        (rid, f"machines.{c.manned}.worker_id", c.roster["worker_id"], "W-NEW", "typo")])
    assert lake.correct(path, by="r").entry is not None

    def worker() -> str:
        return str(lake.table("roster").filter(pl.col("observation_id") == rid,
                                               pl.col("machine") == c.manned)["worker_id"][0])

    # a re-save with a note: the value it corrects is the same, the correction holds
    lake.ingest(_new_version(inbox, lake, rid, {"notes": "re-saved"}))
    assert worker() == "W-NEW" and lake.table("corrections")["in_effect"].to_list() == [True]
    # the tablet's own fix: another value, which the row was not written for
    lake.ingest(_new_version(inbox, lake, rid, {f"machines.{c.manned}.worker_id": "W-TAB",
                                                "notes": "fixed"}))
    assert worker() == "W-TAB" and lake.table("corrections")["in_effect"].to_list() == [False]
    state = frames(lake.root)
    lake.rebuild()
    assert frames(lake.root) == state


def test_replaying_ingests_and_corrections_step_by_step_equals_rebuilding(
        inbox: Path, tmp_path: Path) -> None:
    files = sorted(p for p in inbox.rglob("*") if p.is_file())
    lake = open_lake(tmp_path / "lake", create=True)
    part = tmp_path / "part"
    steps: list[tuple[int, dict[str, str]]] = []

    def arrive(chunk: list[Path]) -> None:
        for path in chunk:
            (part / path.relative_to(inbox)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, part / path.relative_to(inbox))
        lake.ingest(part)
        steps.append((len(lake.entries()), frames(lake.root)))

    arrive(files[: len(files) // 2])
    c = choose(lake)
    lake.correct(write_sheet(tmp_path / "one.csv", [
        (c.moved["observation_id"], "team", c.moved["team"], c.to_team, "wrong team"),
        (c.wip["observation_id"], "started_at", "", "", "x"),  # refused: partial
        (c.dropped, "", "", "DROP", "not there")]), by="r", partial=True)
    steps.append((len(lake.entries()), frames(lake.root)))
    arrive(files[len(files) // 2:])
    lake.correct(write_sheet(tmp_path / "two.csv", [
        (c.moved["observation_id"], "team", c.to_team, c.moved["team"], "it was right"),
        (c.roster["observation_id"], f"machines.{c.manned}.worker_id", c.roster["worker_id"],
         "W-NEW", "typo")]), by="r")
    steps.append((len(lake.entries()), frames(lake.root)))
    lake.rollback(steps[1][0], "the first sheet was wrong")
    steps.append((len(lake.entries()), frames(lake.root)))
    undo = lake.rollback(1, "the first files came from the wrong folder")
    steps.append((len(lake.entries()), frames(lake.root)))
    lake.rollback(undo.entry.batch, "they were right")
    steps.append((len(lake.entries()), frames(lake.root)))
    for entries, then in steps:
        assert frames(lake.rebuild(as_of=entries, out=tmp_path / f"as-of-{entries}")) == then


def test_a_correction_may_move_an_observation_to_another_day(
        lake: Lake, tmp_path: Path) -> None:
    c = choose(lake)
    t = c.moved
    raw = next(f for b in lake.batches() for f in b.files
               if f.observation_id == t["observation_id"] and f.outcome == "added")
    payload = orjson.loads((lake.root / raw.stored).read_bytes())
    start, end = payload["started_at"], payload["ended_at"]
    path = write_sheet(tmp_path / "day.csv", [
        (t["observation_id"], "started_at", start, start.replace("2026-11-0", "2026-10-2"),
         "tablet date"),
        (t["observation_id"], "ended_at", end, end.replace("2026-11-0", "2026-10-2"),
         "tablet date")])
    assert lake.correct(path, by="r").entry is not None
    moved = lake.table("observations").filter(pl.col("observation_id") == t["observation_id"])
    assert moved["day"].to_list() == [date(2026, 10, 20 + t["day"].day)]
    state = frames(lake.root)
    lake.rebuild()
    assert frames(lake.root) == state


@pytest.mark.parametrize(("content", "name", "message"), [
    (b"observation_id,field,old_value,new_value\nx,y,z,w\n", "a.csv", "no column reason"),
    (b"\xff\xfeo\x00b\x00", "a.csv", "not UTF-8 text"),
    (b"observation_id,field,old_value,new_value,reason\n", "a.csv", "no corrections"),
    (b"not a workbook", "a.xlsx", "not a readable Excel workbook"),
    (b"a\tb", "a.txt", "not a .csv or .xlsx file"),
])
def test_a_sheet_that_is_no_sheet_is_one_line_of_error(
        lake: Lake, tmp_path: Path, content: bytes, name: str, message: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / name).write_bytes(content)
    code, _, err = run_main(capsys, "correct", str(tmp_path / name), "--lake", str(lake.root))
    assert code == 1 and message in err and err.startswith("error: ")
    assert len(err.strip().splitlines()) == 1
    assert len(lake.entries()) == 1


def test_the_commands(lake: Lake, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        code, stdout, stderr = run_main(capsys, *args)
        return subprocess.CompletedProcess(args, code, stdout, stderr)

    c = choose(lake)
    sheet = big_sheet(c)
    path = write_sheet(tmp_path / "fixes.csv", rows_of(sheet))
    root = str(lake.root)
    code = c.roster["worker_id"]
    shifted = run("correct", str(write_sheet(tmp_path / "shifted.csv", [
        (c.roster["observation_id"], code, "", "", "a row shifted by a cell"),
        (code, "team", "a", "b", "an id column holding a worker's code")])), "--lake", root)
    assert shifted.returncode == 1 and "row 3, <not an id>, team" in shifted.stderr
    assert code not in shifted.stderr + shifted.stdout
    refused = run("correct", str(path), "--lake", root, "--by", "researcher")
    assert refused.returncode == 1 and "Nothing applied" in refused.stderr
    assert "--partial" in refused.stderr and "row 5," in refused.stderr
    assert "W-NEW" not in refused.stderr + refused.stdout  # a worker's code, never shown
    assert c.roster["worker_id"] not in refused.stderr + refused.stdout
    applied = run("correct", str(path), "--lake", root, "--by", "researcher", "--partial")
    assert applied.returncode == 0, applied.stderr
    assert "Batch 2 corrects from fixes.csv: 10 rows applied, 1 already so, 12 refused" \
        in applied.stdout
    again = run("correct", str(path), "--lake", root, "--partial")
    assert again.returncode == 0 and "applied as batch 2: nothing changes" in again.stdout
    log = " ".join(run("log", "--lake", root).stdout.split())  # as wrapped on 80 columns
    assert "sheet fixes.csv" in log and "10 applied, 12 refused" in log
    listed = run("show", "2", "--lake", root)
    assert listed.returncode == 0 and "by researcher" in listed.stdout
    assert listed.stdout.count("\n  ") == len(sheet)
    assert "W-NEW" not in listed.stdout
    as_json = run("show", "2", "--lake", root, "--json").stdout
    assert "W-NEW" not in as_json and code not in as_json
    assert len(orjson.loads(as_json)["rows"]) == len(sheet)
    story = run("show", c.roster["observation_id"][:8], "--lake", root)
    assert story.returncode == 0, story.stderr
    assert f"Observation {c.roster['observation_id']}: corrected" in story.stdout
    assert "in effect; by researcher" in story.stdout and '"W-NEW"' in story.stdout
    told = orjson.loads(run("show", c.dropped, "--lake", root, "--json").stdout)
    assert told["state"] == "withdrawn" and told["values"] is None
    assert [f["outcome"] for f in told["corrections"]] == ["applied"]
    unknown = run("show", UNKNOWN, "--lake", root)
    assert unknown.returncode == 1 and "no observation with this id" in unknown.stderr


def test_the_kept_sheet_is_verified_and_backed_up(lake: Lake, tmp_path: Path) -> None:
    c = choose(lake)
    path = write_sheet(tmp_path / "team.csv", [
        (c.moved["observation_id"], "team", c.moved["team"], c.to_team, "wrong team")])
    entry = lake.correct(path, by="r").entry
    assert entry is not None and lake.verify().ok
    from rmg_lake import backup, open_target, restore

    target = open_target(str(tmp_path / "backups"))
    backup(lake, target)
    again = restore(target, tmp_path / "restored")
    assert again.table("corrections").drop("committed_at").equals(
        lake.table("corrections").drop("committed_at"))
    assert frames(again.root, but=("batches", "corrections")) == frames(
        lake.root, but=("batches", "corrections"))
    (lake.root / entry.stored).write_bytes(b"edited by hand")
    assert [f.kind for f in lake.verify().problems] == ["damaged"]



def test_a_note_may_be_added_from_a_semicolon_sheet(lake: Lake, tmp_path: Path) -> None:
    """Excel in many locales saves CSV with `;`; an absent optional key counts as null."""
    obs = lake.table("observations").filter(pl.col("notes").is_null()).row(0, named=True)
    raw = next(f for b in lake.batches() for f in b.files
               if f.observation_id == obs["observation_id"] and f.outcome == "added")
    assert "notes" not in orjson.loads((lake.root / raw.stored).read_bytes())
    path = tmp_path / "notes.csv"
    path.write_text(f"{';'.join(HEADER)}\n"
                    f"{obs['observation_id']};notes;;machine KN4 was being repaired;"
                    "from the observer's notebook\n", encoding="utf-8")
    assert [r.outcome for r in lake.correct(path, by="r").rows] == ["applied"]
    now = lake.table("observations").filter(pl.col("observation_id") == obs["observation_id"])
    assert now.select("notes", "corrections").rows() == [("machine KN4 was being repaired", 1)]


def test_values_that_are_no_values_are_refused_not_a_crash(
        lake: Lake, inbox: Path, tmp_path: Path) -> None:
    c = choose(lake)
    w, i = c.wip, c.talk
    rows = [
        (w["observation_id"], f"machines.{w['machine']}.back", str(w["back"]), "9" * 25, "big"),
        (i["observation_id"], "interactions.².topic", i["topic"], "yarn", "superscript"),
        (i["observation_id"], "interactions.0.length_s", str(i["length_s"]), "-5", "negative"),
    ]
    done = lake.correct(write_sheet(tmp_path / "odd.csv", rows), by="r", partial=True)
    assert [(r.outcome, r.detail) for r in done.rows] == [
        ("refused", "the corrected observation breaks the contract (machines."
                    f"{w['machine']}.back: Input should be less than or equal to "
                    "9223372036854775807 (got a number of 25 digits))"),
        ("refused", "no such field in this observation"),
        ("refused", "the corrected observation breaks the contract (interactions.0.length_s: "
                    "Input should be greater than or equal to 0 (got -5))")]
    assert done.entry is None


def test_a_key_the_contract_lacks_may_hold_what_json_allows(
        lake: Lake, inbox: Path, tmp_path: Path) -> None:
    """Ingest keeps unknown keys as they are (here 1e400 and 2**70): corrections read the
    raw file as ingest did, so such a file never stops the lake from deriving."""
    c = choose(lake)
    rid = c.moved["observation_id"]
    folder = _new_version(inbox, lake, rid, {"notes": "re-saved"})
    (saved,) = folder.rglob("*.json")
    saved.write_bytes(saved.read_bytes()[:-1] + b', "future": 1e400, "big": '
                      + str(2**70).encode() + b"}")
    os.utime(saved, (saved.stat().st_mtime + 10,) * 2)
    assert lake.ingest(folder).counts["added"] == 1
    done = lake.correct(write_sheet(tmp_path / "t.csv", [
        (rid, "team", c.moved["team"], c.to_team, "wrong team")]), by="r")
    assert done.entry is not None
    assert lake.table("observations").filter(pl.col("observation_id") == rid)[
        "team"].to_list() == [c.to_team]
    told = run_cli("show", rid, "--lake", str(lake.root), "--json")
    assert told.returncode == 0, told.stderr
    assert b'"big": 1180591620717411303424' in told.stdout.encode()
    state = frames(lake.root)
    lake.rebuild()
    assert frames(lake.root) == state


def test_a_damaged_workbook_is_one_line_of_error(lake: Lake, tmp_path: Path) -> None:
    import zipfile

    whole = write_sheet(tmp_path / "whole.xlsx", [(UNKNOWN, "team", "a", "b", "c")])
    cut = tmp_path / "cut.xlsx"
    with zipfile.ZipFile(whole) as src, zipfile.ZipFile(cut, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            dst.writestr(item, data[: len(data) // 2] if "worksheets/" in item.filename
                         else data)
    done = run_cli("correct", str(cut), "--lake", str(lake.root))
    assert done.returncode == 1 and "not a readable Excel workbook" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_row_found_already_so_still_guards_its_value(lake: Lake, tmp_path: Path) -> None:
    """Two sheets make the same fix: the second finds it done. Rolling back the first
    leaves the second's fix in effect: it is replayed, guarded as ever."""
    c = choose(lake)
    t = c.moved
    row = (t["observation_id"], "team", t["team"], c.to_team, "wrong team")
    first = lake.correct(write_sheet(tmp_path / "one.csv", [row]), by="a").entry
    second = lake.correct(write_sheet(tmp_path / "two.csv", [(*row[:4], "also")]), by="b")
    assert first is not None and second.entry is None  # nothing to change: not logged
    second = lake.correct(write_sheet(tmp_path / "three.csv", [
        (*row[:4], "also"), (c.dropped, "", "", "DROP", "not there")]), by="b")
    assert [r.outcome for r in second.rows] == ["already", "applied"]
    lake.rollback(first.batch, "undo the first")

    def team() -> str:
        return str(lake.table("observations").filter(
            pl.col("observation_id") == t["observation_id"])["team"][0])

    assert team() == c.to_team
    assert lake.table("corrections").select("batch", "outcome", "in_effect").rows() == [
        (first.batch, "applied", False), (second.entry.batch if second.entry else 0,
                                          "already", True),
        (second.entry.batch if second.entry else 0, "applied", True)]


def test_a_withdrawn_observation_stays_withdrawn_in_new_versions(
        lake: Lake, inbox: Path, tmp_path: Path) -> None:
    c = choose(lake)
    lake.correct(write_sheet(tmp_path / "drop.csv", [
        (c.dropped, "", "", "DROP", "observer not there")]), by="r")
    lake.ingest(_new_version(inbox, lake, c.dropped, {"notes": "re-saved"}))
    assert c.dropped not in lake.table("observations")["observation_id"].to_list()
    told = orjson.loads(run_cli("show", c.dropped, "--lake", str(lake.root), "--json").stdout)
    assert told["state"] == "withdrawn" and len(told["files"]) == 2
    assert [f["shown"] for f in told["files"]] == [False, True]


def test_an_id_that_starts_with_digits_is_no_batch_number(
        lake: Lake, inbox: Path, tmp_path: Path) -> None:
    c = choose(lake)
    folder = _new_version(inbox, lake, c.dropped, {})
    (saved,) = folder.rglob("*.json")
    numeric = "12345678-1234-4234-8234-123456789012"
    saved.write_bytes(saved.read_bytes().replace(c.dropped.encode(), numeric.encode()))
    lake.ingest(folder)
    told = run_cli("show", numeric[:8], "--lake", str(lake.root))
    assert told.returncode == 0 and f"Observation {numeric}: current" in told.stdout
