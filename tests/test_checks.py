"""The daily quality checks: a hand-made fortnight in which each check has something to
find, and something it must leave alone."""

from __future__ import annotations

import collections
import csv
import io
import json
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import orjson
import polars as pl
import pytest
from conftest import Ingested, run_cli

from rmg_lake import Lake, open_lake
from rmg_lake.derive.checks import CHECKS, COLUMNS

DHAKA = ZoneInfo("Asia/Dhaka")
MONDAY = date(2026, 11, 2)  # the week runs Saturday to Thursday; Friday is off
WORKERS = {"KN1": "w1101", "KN2": "w1102", "KN3": "w1103"}


@dataclass
class Field:
    """Writes contract files into an inbox as the tablets would."""

    inbox: Path

    def task(self, task: str, day: date, at: str, minutes: float, *, observer: str = "obs01",
             team: str = "treatment", synced_after: timedelta = timedelta(minutes=30),
             observation_id: str | None = None, **payload: object) -> str:
        """Write one observation started at `at` (factory time) on `day`; its id."""
        start = datetime.combine(day, time.fromisoformat(at), DHAKA)
        end = start + timedelta(minutes=minutes)
        observation_id = observation_id or str(uuid.uuid4())
        body: dict[str, object] = {
            "schema_version": 1, "task": task, "observation_id": observation_id,
            "observer": observer, "factory": "f01", "department": "knitting", "team": team,
            "started_at": start.isoformat(), "ended_at": end.isoformat(),
            "status": "complete", **payload}
        if task == "interactions":
            body.setdefault("supervisor", "s9001")
            body.setdefault("interactions", [])
            body.setdefault("left_floor_s", [])
        name = f"{task}_knitting_{team}_{observer}_{start:%Y%m%dT%H%M%S}.json"
        path = self.inbox / observer / name
        while path.exists():  # a second version of the same task: a clash copy
            path = path.with_name(path.stem + " (1).json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(body))
        synced = (end + synced_after).timestamp()
        os.utime(path, (synced, synced))
        return observation_id

    def roster(self, day: date, at: str = "08:00", *, unmanned: tuple[str, ...] = (),
               workers: dict[str, str] | None = None, **kw: object) -> str:
        machines = {code: {"mc_status": "unmanned", "worker_id": None} if code in unmanned
                    else {"mc_status": "manned", "worker_id": worker}
                    for code, worker in {**WORKERS, **(workers or {})}.items()}
        return self.task("roster", day, at, 10, machines=machines, **kw)

    def wip(self, day: date, at: str, counts: dict[str, int], *, minutes: float = 10,
            workers: dict[str, str] | None = None, **kw: object) -> str:
        """A knitting round: `counts` gives each manned machine's back panels."""
        workers = {**WORKERS, **(workers or {})}
        machines = {code: {"mc_status": "manned", "worker_id": workers[code], "style": "st1",
                           "component": "body", "back": counts[code], "front": 2, "sleeve": 2,
                           "collar": None} if code in counts
                    else {"mc_status": "unmanned", "worker_id": None, "style": None,
                          "component": None, "back": None, "front": None, "sleeve": None,
                          "collar": None}
                    for code in WORKERS}
        return self.task("wip", day, at, minutes, machines=machines, **kw)

    def interactions(self, day: date, at: str = "16:00", minutes: float = 60,
                     **kw: object) -> str:
        return self.task("interactions", day, at, minutes, **kw)

    def full_day(self, day: date, counts: tuple[int, int] = (6, 7)) -> None:
        """A day as the protocol wants it, with nothing to flag."""
        self.roster(day, unmanned=("KN3",))
        for at in ("09:00", "11:00", "13:00", "15:00"):
            counts = (counts[1], counts[0])  # rounds differ, as real ones do
            self.wip(day, at, {"KN1": counts[0], "KN2": counts[1]})
        self.interactions(day)


@dataclass
class Found:
    lake: Lake
    ids: dict[str, str]  # what was planted → its observation_id

    def flags(self) -> list[dict[str, object]]:
        con = duckdb.connect(str(self.lake.root / "lake.duckdb"), read_only=True)
        try:
            rows = con.execute("SELECT * FROM flags").fetchall()
        finally:
            con.close()
        return [dict(zip(COLUMNS, row, strict=True)) for row in rows]

    def of(self, check: str) -> list[dict[str, object]]:
        return [f for f in self.flags() if f["check_name"] == check]

    def flagged(self, check: str) -> set[object]:
        return {f["observation_id"] for f in self.of(check)}


@pytest.fixture(scope="module")
def found(tmp_path_factory: pytest.TempPathFactory) -> Found:
    root = tmp_path_factory.mktemp("checks")
    field = Field(root / "inbox")
    ids: dict[str, str] = {}
    start = MONDAY - timedelta(days=9)  # a week and a half of ordinary days first
    for n in range(9):
        day = start + timedelta(days=n)
        if day.weekday() != 4:  # Friday is off
            field.full_day(day, counts=(5 + n % 3, 9 + n % 2))
            field.wip(day, "10:00", {"KN1": 0, "KN2": 0}, team="flat")  # idle machines
    # Monday: a worker who is not the roster's, a machine the roster has unmanned,
    # a round copied from the one before, an interactions window that overflows
    field.roster(MONDAY, "07:30", workers={"KN1": "w1996"}, status="aborted")  # redone:
    field.roster(MONDAY, unmanned=("KN3",))  # the day's roster is its last complete one
    ids["plain round"] = field.wip(MONDAY, "09:00", {"KN1": 6, "KN2": 7})
    ids["blank note"] = field.wip(MONDAY, "10:00", {"KN1": 5, "KN2": 7},
                                  workers={"KN1": "w1997"}, notes=" ")
    field.wip(MONDAY, "10:20", {"KN1": 0, "KN2": 0}, team="flat")
    ids["other worker"] = field.wip(MONDAY, "11:00", {"KN1": 7, "KN2": 6},
                                    workers={"KN1": "w1999"})
    ids["noted worker"] = field.wip(MONDAY, "12:00", {"KN1": 5, "KN2": 6},
                                    workers={"KN1": "w1998"}, notes="KN1 covered by a helper")
    ids["manned KN3"] = field.wip(MONDAY, "13:00", {"KN1": 5, "KN2": 6, "KN3": 4})
    ids["copied round"] = field.wip(MONDAY, "15:00", {"KN1": 5, "KN2": 6, "KN3": 4})
    ids["overflow"] = field.interactions(
        MONDAY, minutes=30, left_floor_s=[600],
        interactions=[{"with": "KN1", "length_s": 900, "initiator": "supervisor",
                       "topic": "yarn"}, {"with": "FIC", "length_s": 400,
                                          "initiator": "interlocutor", "topic": "pattern"}])
    # Tuesday: late, a clock ahead, out of hours, overlapping, too short, too long, saved twice
    tuesday = MONDAY + timedelta(days=1)
    ids["late"] = field.roster(tuesday, synced_after=timedelta(days=5))
    ids["clock ahead"] = field.wip(tuesday, "09:00", {"KN1": 6, "KN2": 7},
                                   synced_after=timedelta(hours=-3))
    ids["early"] = field.wip(tuesday, "05:30", {"KN1": 7, "KN2": 6})
    ids["first of two"] = field.wip(tuesday, "11:00", {"KN1": 8, "KN2": 7}, minutes=20)
    ids["overlapping"] = field.wip(tuesday, "11:10", {"KN1": 7, "KN2": 6}, team="control")
    ids["short"] = field.wip(tuesday, "13:00", {"KN1": 6, "KN2": 7}, minutes=1)
    ids["short but aborted"] = field.wip(tuesday, "14:00", {"KN1": 5, "KN2": 7},
                                         minutes=1, status="aborted")
    ids["long"] = field.interactions(tuesday, "16:00", minutes=300)
    ids["outlier"] = field.wip(tuesday, "15:00", {"KN1": 60, "KN2": 7})
    ids["idle no more"] = field.wip(tuesday, "10:00", {"KN1": 40, "KN2": 0}, team="flat")
    field.wip(tuesday, "15:00", {"KN1": 6, "KN2": 7}, observation_id=ids["outlier"],
              synced_after=timedelta(minutes=15), notes="a first save, superseded")
    # Wednesday: obs03 follows a supervisor for three hours, with two rounds inside
    wednesday = MONDAY + timedelta(days=2)
    field.interactions(wednesday, "09:00", minutes=180, observer="obs03")
    ids["inside"] = field.wip(wednesday, "09:30", {"KN1": 6, "KN2": 9}, observer="obs03")
    ids["inside too"] = field.wip(wednesday, "10:30", {"KN1": 7, "KN2": 9}, observer="obs03")
    # Thursday: a count mistyped as large as the contract allows breaks no check
    field.wip(MONDAY + timedelta(days=3), "09:00", {"KN1": 2**63 - 1, "KN2": 1}, team="huge")
    # Friday is off; obs02 worked the week before, and not this Wednesday
    ids["off day"] = field.roster(MONDAY + timedelta(days=4))
    field.roster(MONDAY - timedelta(days=2), observer="obs02", team="control")
    field.roster(MONDAY + timedelta(days=3), observer="obs02", team="control")
    (field.inbox / "obs01" / "wip_knitting_treatment_obs01_20261103T170000.json").write_text(
        "{not json")
    lake = open_lake(root / "lake", create=True)
    lake.ingest(field.inbox)
    return Found(lake, ids)


def test_every_check_is_documented_and_named_once() -> None:
    names = [check.name for check in CHECKS]
    assert len(names) == len(set(names)) == 16
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in names)
    assert all(check.rule.strip() for check in CHECKS)


def test_a_worker_other_than_the_rosters_is_flagged_unless_noted(found: Found) -> None:
    flagged = found.flagged("roster_mismatch")
    assert found.ids["other worker"] in flagged and found.ids["manned KN3"] in flagged
    assert found.ids["noted worker"] not in flagged and found.ids["plain round"] not in flagged
    assert found.ids["blank note"] in flagged  # a blank note says nothing
    details = {f["observation_id"]: f["detail"] for f in found.of("roster_mismatch")}
    assert details[found.ids["other worker"]] == "KN1: another worker than in the roster"
    assert details[found.ids["manned KN3"]] == "KN3: manned in the round, unmanned in the roster"


def test_a_copied_round_is_flagged(found: Found) -> None:
    assert found.flagged("wip_repeated") == {found.ids["copied round"]}


def test_interactions_that_do_not_fit_their_window(found: Found) -> None:
    [flag] = found.of("interactions_overflow")
    assert flag["observation_id"] == found.ids["overflow"]
    assert flag["detail"] == "1300 s of interactions and 600 s off the floor in a 1800 s window"


def test_tablet_clocks_and_arrival(found: Found) -> None:
    assert found.flagged("late_arrival") == {found.ids["late"]}
    assert found.flagged("clock_ahead") == {found.ids["clock ahead"]}
    assert found.flagged("outside_hours") == {found.ids["early"], found.ids["long"]}
    assert found.flagged("off_day") == {found.ids["off day"]}
    overlapping = found.flagged("overlap")
    assert found.ids["overlapping"] in overlapping
    assert {found.ids["inside"], found.ids["inside too"]} <= overlapping  # both, not one


def test_durations(found: Found) -> None:
    assert found.flagged("too_short") == {found.ids["short"]}  # aborted ones are short
    assert found.flagged("too_long") == {found.ids["long"]}


def test_wip_outliers_and_jumps(found: Found) -> None:
    assert found.flagged("wip_outlier") == {found.ids["outlier"], found.ids["idle no more"]}
    assert found.ids["outlier"] in found.flagged("wip_jump")
    assert found.flagged("superseded") == {found.ids["outlier"]}


def test_completion_absence_and_quarantine(found: Found) -> None:
    tuesday = MONDAY + timedelta(days=1)
    incomplete = {(f["day"], f["team"], str(f["detail"]).split(":")[0])
                  for f in found.of("incomplete")}
    assert (tuesday, "treatment", "roster") not in incomplete  # late, but it came
    assert (tuesday, "treatment", "wip") not in incomplete
    incomplete_details = {(f["day"], f["detail"]) for f in found.of("incomplete")}
    assert (MONDAY + timedelta(days=3), "wip: 0 of 4 complete (0 attempted)") in incomplete_details
    absent = {(f["day"], f["observer"]) for f in found.of("observer_absent")}
    assert (MONDAY + timedelta(days=2), "obs02") in absent
    assert (MONDAY + timedelta(days=3), "obs02") not in absent
    [bad] = found.of("quarantined")
    assert bad["severity"] == "error" and "20261103T170000" in str(bad["detail"])


def test_an_ordinary_day_raises_nothing(found: Found) -> None:
    ordinary = MONDAY - timedelta(days=8)
    assert [f for f in found.flags() if f["day"] == ordinary and f["team"] == "treatment"] == []


def test_no_personal_code_is_in_a_flag(found: Found) -> None:
    text = json.dumps(found.flags(), default=str)
    for code in [*WORKERS.values(), "w1999", "w1998", "w1997", "w1996", "s9001"]:
        assert code not in text


def test_check_command_shows_a_day_in_every_format(found: Found) -> None:
    tuesday = (MONDAY + timedelta(days=1)).isoformat()
    lake = str(found.lake.root)
    table = run_cli("check", "--lake", lake, "--day", tuesday)
    assert table.returncode == 0, table.stderr
    assert "clock_ahead" in table.stdout and "too_long" in table.stdout
    as_csv = run_cli("check", "--lake", lake, "--day", tuesday, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert rows and {row["day"] for row in rows} == {tuesday}
    assert tuple(rows[0]) == COLUMNS
    as_json = json.loads(run_cli("check", "--lake", lake, "--day", tuesday,
                                 "--format", "json").stdout)
    assert [(r["check_name"], r["observation_id"] or "", r["detail"]) for r in as_json] == [
        (r["check_name"], r["observation_id"], r["detail"]) for r in rows]


def test_check_shows_the_last_day_observed_and_later_by_default(found: Found) -> None:
    friday = MONDAY + timedelta(days=4)  # the last day observed
    monday = friday + timedelta(days=3)  # today, pinned (a test must not hang on the clock)
    result = run_cli("check", "--lake", str(found.lake.root), "--format", "json",
                     "--today", monday.isoformat())
    assert result.returncode == 0, result.stderr
    shown = {(r["check_name"], r["day"]) for r in json.loads(result.stdout)}
    assert ("off_day", friday.isoformat()) in shown
    ingested = found.lake.batches()[0].committed_at.astimezone(DHAKA).date()
    assert ("quarantined", ingested.isoformat()) in shown
    assert all(day >= friday.isoformat() for _, day in shown)
    assert f"Nothing observed since {friday} (3 days ago)" in result.stderr  # a stopped sync
    every = run_cli("check", "--lake", str(found.lake.root), "--all", "--format", "json")
    assert len(json.loads(every.stdout)) == len(found.flags()) > len(shown)
    on_friday = run_cli("check", "--lake", str(found.lake.root), "--format", "json",
                        "--today", friday.isoformat())  # that morning: Thursday's flags
    days = {r["day"] for r in json.loads(on_friday.stdout)}
    assert min(days) == (friday - timedelta(days=1)).isoformat()
    assert "Nothing observed" not in on_friday.stderr


def test_the_duckdb_cli_reads_the_flags_view(found: Found) -> None:
    """`duckdb lake/lake.duckdb` sees the same findings (factory time needs ICU: built in)."""
    duckdb_cli = shutil.which("duckdb")
    assert duckdb_cli is not None, "the duckdb CLI comes with the dev extra"
    result = subprocess.run([duckdb_cli, str(found.lake.root / "lake.duckdb"), "-csv", "-c",
                             "SELECT check_name, count(*) AS n FROM flags GROUP BY ALL "
                             "ORDER BY ALL"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    by_check = collections.Counter(str(f["check_name"]) for f in found.flags())
    assert result.stdout.splitlines()[1:] == [f"{c},{n}" for c, n in sorted(by_check.items())]


def test_check_list_names_every_rule(found: Found) -> None:
    listed = run_cli("check", "--lake", str(found.lake.root), "--list")
    assert listed.returncode == 0, listed.stderr
    for check in CHECKS:
        assert check.name in listed.stdout
    assert "[calendar]" in listed.stdout  # shown as written, not read as markup


def test_thresholds_come_from_the_settings(tmp_path: Path) -> None:
    from rmg_lake import Settings
    from rmg_lake.config import Checks

    field = Field(tmp_path / "inbox")
    late = field.roster(MONDAY, synced_after=timedelta(days=3))
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(field.inbox)
    assert Found(lake, {}).flagged("late_arrival") == {late}
    lake.ingest(field.inbox, settings=Settings(checks=Checks(late_after_days=5)))
    assert Found(lake, {}).flagged("late_arrival") == set()


def test_synced_at_is_the_files_saved_time(found: Found) -> None:
    row = found.lake.table("observations").filter(
        observation_id=found.ids["late"]).row(0, named=True)
    assert row["synced_at"] - row["ended_at"] == timedelta(days=5)
    assert row["synced_at"].utcoffset() == timedelta(0)
    first_save = found.lake.table("observations").filter(
        observation_id=found.ids["outlier"]).row(0, named=True)  # saved twice
    assert first_save["synced_at"] - first_save["ended_at"] == timedelta(minutes=15)


def test_a_days_flags_are_the_views_of_that_day(found: Found) -> None:
    """Flags asked for some days read only their frames (and the week before them), and
    are the same as the view's of those days: every check, including those that look
    at a machine's whole history or an observer's earlier tasks."""
    every = found.flags()
    days = sorted({f["day"] for f in every if f["day"] is not None})
    assert {f["check_name"] for f in every} >= {"wip_outlier", "overlap", "incomplete",
                                                "observer_absent", "quarantined"}
    for day in days:
        one = [dict(zip(COLUMNS, row, strict=True))
               for row in found.lake.flags(day, day).rows()]
        assert one == [f for f in every if f["day"] == day], day
    later = [dict(zip(COLUMNS, row, strict=True))
             for row in found.lake.flags(days[len(days) // 2]).rows()]
    assert later == [f for f in every if f["day"] >= days[len(days) // 2]]


def test_a_wip_outlier_is_far_from_the_machines_whole_history(ingested: Ingested) -> None:
    """`wip_outlier` flags exactly the counts whose robust z-score against the machine's
    every round (median; 1.4826 × the median deviation, or 1.253314 × the mean one when
    that is 0) is over 3.5, counted here again with polars from the `wip` frame."""
    panels = ("back", "front", "sleeve", "collar", "wip")
    machine = ["factory", "department", "team", "machine", "panel"]
    counts = (ingested.lake.table("wip").filter(mc_status="manned")
              .unpivot(panels, index=["observation_id", *machine[:4]], variable_name="panel",
                       value_name="pieces")
              .drop_nulls("pieces").with_columns(pl.col("pieces").cast(pl.Float64)))
    deviation = (pl.col("pieces") - pl.col("pieces").median().over(machine)).abs()
    scale = pl.when(deviation.median().over(machine) > 0).then(
        1.4826 * deviation.median().over(machine)).otherwise(
        1.253314 * deviation.mean().over(machine))
    far = counts.filter(pl.len().over(machine) >= 10, scale > 0, deviation / scale > 3.5)
    flags = [f for f in ingested.lake.flags().iter_rows(named=True)
             if f["check_name"] == "wip_outlier"]
    assert 0 < len(flags) < counts.height // 20  # some, and rare
    assert sorted(f["observation_id"] for f in flags) == sorted(far["observation_id"])
