"""Observer agreement: two observers' wip rounds of a team begun within 15 minutes of each
other (a supervisor's back-check) are a pair, compared machine by machine in the `pairs`
view and summed per observer in `agreement`. A hand-made Tuesday and Wednesday with known
disagreements, written as the tablets write them, ingested, and read through DuckDB."""

from __future__ import annotations

import io
import os
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
import polars as pl
import pytest
from conftest import Ingested
from openpyxl import load_workbook

from rmg_lake import Lake, open_lake
from rmg_lake.contract.models import FACTORY_TZ
from rmg_lake.deliver.html import render_html, report_data
from rmg_lake.deliver.workbook import checks_workbook
from rmg_lake.derive.pairs import AGREEMENT_SCHEMA, PAIR_SCHEMA

TUESDAY, WEDNESDAY = date(2026, 11, 3), date(2026, 11, 4)
Machines = dict[str, dict[str, Any]]


def knitting(**changed: dict[str, Any]) -> Machines:
    """Ten knitting machines: KN1 to KN8 on bodies (5 backs, 6 fronts, 7 sleeves each),
    KN9 on collars (12), KN10 unmanned; `changed` overrides fields of a machine."""
    body = {"mc_status": "manned", "style": "st300", "component": "body", "back": 5,
            "front": 6, "sleeve": 7, "collar": None}
    machines = {f"KN{n}": {**body, "worker_id": f"w20{n:02d}"} for n in range(1, 9)}
    machines["KN9"] = {**body, "worker_id": "w2009", "component": "collar", "back": None,
                       "front": None, "sleeve": None, "collar": 12}
    machines["KN10"] = dict.fromkeys(body) | {"mc_status": "unmanned", "worker_id": None}
    return {code: {**row, **changed.get(code, {})} for code, row in machines.items()}


def linking(**changed: dict[str, Any]) -> Machines:
    """Four linking machines with 2.5, 4, 0 and 10.25 pieces; `changed` as `knitting`."""
    machines = {f"LI{n}": {"mc_status": "manned", "worker_id": f"w30{n:02d}",
                           "style": "st300", "wip": wip}
                for n, wip in enumerate((2.5, 4.0, 0.0, 10.25), 1)}
    return {code: {**row, **changed.get(code, {})} for code, row in machines.items()}


UNMANNED = {"mc_status": "unmanned", "worker_id": None, "style": None, "wip": None}


@dataclass
class Study:
    lake: Lake
    ids: dict[str, str]  # a round's name in this file -> its observation_id

    def sql(self, query: str) -> list[dict[str, Any]]:
        """`query` on lake.duckdb, as a DuckDB user runs it: rows as dicts."""
        con = duckdb.connect(str(self.lake.root / "lake.duckdb"), read_only=True)
        try:
            cursor = con.execute(query)
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            con.close()

    def pair(self, first: str, second: str) -> dict[str, Any]:
        (row,) = self.sql(f"SELECT * FROM pairs WHERE first_observation_id = "
                          f"'{self.ids[first]}' AND second_observation_id = '{self.ids[second]}'")
        return row

    def paired(self) -> set[tuple[str, str]]:
        names = {value: key for key, value in self.ids.items()}
        return {(names[r["first_observation_id"]], names[r["second_observation_id"]])
                for r in self.sql("SELECT * FROM pairs")}


def write_round(inbox: Path, day: date, at: str, observer: str, machines: Machines, *,
                department: str = "knitting", team: str = "treatment",
                status: str = "complete") -> str:
    """A wip round as the tablet saves it, begun at `at` (factory time); its id."""
    start = datetime.combine(day, time.fromisoformat(at), FACTORY_TZ)
    observation_id = str(uuid.uuid4())
    payload = {"schema_version": 1, "task": "wip", "observation_id": observation_id,
               "observer": observer, "factory": "f01", "department": department,
               "team": team, "started_at": start.isoformat(),
               "ended_at": (start + timedelta(minutes=10)).isoformat(), "status": status,
               "machines": machines}
    path = inbox / f"wip_{department}_{team}_{observer}_{start:%Y%m%dT%H%M%S}.json"
    path.write_bytes(orjson.dumps(payload))
    os.utime(path, (start.timestamp() + 3600,) * 2)
    return observation_id


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Study:
    inbox = tmp_path_factory.mktemp("pairs") / "inbox"
    inbox.mkdir()
    rounds: dict[str, tuple[date, str, str, Machines, dict[str, str]]] = {
        # knitting treatment: obs02 back-checks obs01 seven minutes later, and finds KN2's
        # backs 8, not 5, and another worker at KN5
        "checked": (TUESDAY, "10:00", "obs01", knitting(), {}),
        "back-check": (TUESDAY, "10:07", "obs02",
                       knitting(KN2={"back": 8}, KN5={"worker_id": "w2099"}), {}),
        # knitting control: 16 minutes apart, then 15 (obs03 records only KN1 to KN5)
        "at 10:30": (TUESDAY, "10:30", "obs01", knitting(), {"team": "control"}),
        "16 minutes later": (TUESDAY, "10:46", "obs03", knitting(), {"team": "control"}),
        "at 12:00": (TUESDAY, "12:00", "obs01", knitting(), {"team": "control"}),
        "15 minutes later": (TUESDAY, "12:15", "obs03",
                             {f"KN{n}": knitting()[f"KN{n}"] for n in range(1, 6)},
                             {"team": "control", "status": "partial"}),
        # knitting same-floor: the same observer twice, five minutes apart
        "at 14:00": (TUESDAY, "14:00", "obs02", knitting(), {"team": "same-floor"}),
        "again at 14:05": (TUESDAY, "14:05", "obs02", knitting(), {"team": "same-floor"}),
        # linking treatment: obs01 finds LI1 with 2.75 pieces, not 2.5, and LI4 unmanned
        "linking": (TUESDAY, "11:00", "obs04", linking(), {"department": "linking"}),
        "linking back-check": (TUESDAY, "11:05", "obs01",
                               linking(LI1={"wip": 2.75}, LI4=UNMANNED),
                               {"department": "linking"}),
        # Wednesday: a back-check that agrees everywhere, and a round copied two hours on
        "wednesday": (WEDNESDAY, "09:00", "obs01", knitting(), {}),
        "wednesday back-check": (WEDNESDAY, "09:10", "obs02", knitting(), {}),
        "copied": (WEDNESDAY, "11:00", "obs01", knitting(), {}),
    }
    ids = {name: write_round(inbox, day, at, observer, machines, **options)
           for name, (day, at, observer, machines, options) in rounds.items()}
    lake = open_lake(inbox.parent / "lake", create=True)
    lake.ingest(inbox)
    return Study(lake, ids)


def test_a_back_check_is_compared_machine_by_machine(study: Study) -> None:
    row = study.pair("checked", "back-check")
    assert row == {
        "day": TUESDAY, "factory": "f01", "department": "knitting", "team": "treatment",
        "first_observation_id": study.ids["checked"], "first_observer": "obs01",
        "second_observation_id": study.ids["back-check"], "second_observer": "obs02",
        "minutes_apart": 7.0, "machines": 10,
        "manned_agree": 1.0,  # KN10 unmanned in both: agrees
        "worker_agree": 0.9,  # KN5
        "style_agree": 1.0,
        "counts_agree": 0.9,  # KN2
        "all_agree": 0.8,
        "counts_compared": 8 * 3 + 1,  # three panels at KN1 to KN8, collars at KN9
        "mean_abs_diff": pytest.approx(3 / 25),
    }


def test_only_the_machines_in_both_rounds_are_compared(study: Study) -> None:
    row = study.pair("at 12:00", "15 minutes later")  # 15 minutes apart is a pair
    assert (row["machines"], row["counts_compared"]) == (5, 15)
    assert (row["all_agree"], row["mean_abs_diff"]) == (1.0, 0.0)


def test_a_machine_found_unmanned_disagrees_and_its_count_is_not_differenced(
        study: Study) -> None:
    row = study.pair("linking", "linking back-check")
    assert (row["first_observer"], row["second_observer"]) == ("obs04", "obs01")
    assert row["machines"] == 4
    assert [row[f"{name}_agree"] for name in ("manned", "worker", "style", "counts", "all")
            ] == [0.75, 0.75, 0.75, 0.5, 0.5]
    assert row["counts_compared"] == 3  # LI4's count is null in the back-check
    assert row["mean_abs_diff"] == pytest.approx(0.25 / 3)


def test_rounds_16_minutes_apart_or_by_the_same_observer_are_no_pair(study: Study) -> None:
    assert study.paired() == {("checked", "back-check"), ("at 12:00", "15 minutes later"),
                              ("linking", "linking back-check"),
                              ("wednesday", "wednesday back-check")}


def test_each_observer_s_agreement_sums_their_pairs(study: Study) -> None:
    tuesday = study.lake.agreement(TUESDAY, TUESDAY)
    assert tuesday["observer"].to_list() == ["obs01", "obs02", "obs03", "obs04"]
    obs01 = tuesday.row(0, named=True)  # in all three of Tuesday's pairs: 10 + 5 + 4 machines
    assert obs01 == {
        "observer": "obs01", "pairs": 3, "machines": 19, "manned_agree": 18 / 19,
        "worker_agree": 17 / 19, "style_agree": 18 / 19, "counts_agree": 16 / 19,
        "all_agree": 15 / 19, "counts_compared": 25 + 15 + 3,
        "mean_abs_diff": pytest.approx(3.25 / 43)}
    back_check = study.pair("checked", "back-check")
    obs02 = tuesday.row(1, named=True)
    assert obs02 == {**{k: v for k, v in back_check.items() if k in obs02},
                     "observer": "obs02", "pairs": 1}
    every_day = study.sql("SELECT observer, pairs FROM agreement")  # and Wednesday's
    assert {r["observer"]: r["pairs"] for r in every_day} == {
        "obs01": 4, "obs02": 2, "obs03": 1, "obs04": 1}


def test_the_library_reads_the_views(study: Study) -> None:
    lake = study.lake
    for name, schema, read in (("pairs", PAIR_SCHEMA, lake.pairs),
                               ("agreement", AGREEMENT_SCHEMA, lake.agreement)):
        rows = study.sql(f"SELECT * FROM {name}")
        assert read().rows(named=True) == rows and list(read().schema) == list(schema)
    tuesday = lake.pairs(TUESDAY, TUESDAY)
    assert tuesday.rows(named=True) == study.sql(
        f"SELECT * FROM pairs WHERE day = DATE '{TUESDAY}'")
    assert tuesday.height == 3 and lake.pairs(end=TUESDAY).equals(tuesday)
    assert lake.pairs(WEDNESDAY + timedelta(days=1)).is_empty()
    assert lake.agreement(WEDNESDAY + timedelta(days=1)).is_empty()


def test_a_catalog_made_before_the_views_answers_the_library_too(tmp_path: Path) -> None:
    """(An existing lake's lake.duckdb gains the views at its next ingest or rebuild.)"""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    checked = write_round(inbox, TUESDAY, "10:00", "obs01", knitting())
    write_round(inbox, TUESDAY, "10:05", "obs02", knitting(KN1={"front": 7}))
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(inbox)
    con = duckdb.connect(str(lake.root / "lake.duckdb"))
    con.execute("DROP VIEW pairs; DROP VIEW agreement")
    con.close()
    assert lake.pairs()["first_observation_id"].to_list() == [checked]
    assert lake.agreement()["counts_agree"].to_list() == [0.9, 0.9]


def test_a_back_check_that_agrees_is_no_copy(study: Study) -> None:
    """The `wip_repeated` check leaves a pair alone (Tuesday's identical rounds 16 minutes
    apart, or by the same observer, are flagged)."""
    copies = study.sql("SELECT observation_id FROM flags WHERE check_name = 'wip_repeated' "
                       f"AND day = DATE '{WEDNESDAY}'")
    assert [row["observation_id"] for row in copies] == [study.ids["copied"]]
    assert study.pair("wednesday", "wednesday back-check")["all_agree"] == 1.0


def test_no_worker_code_is_shown(study: Study) -> None:
    lake = study.lake
    codes = set(lake.table("wip")["worker_id"].drop_nulls())
    assert {"w2005", "w2099"} <= codes
    book = load_workbook(io.BytesIO(checks_workbook(
        lake, lake.flags(TUESDAY, WEDNESDAY), TUESDAY, WEDNESDAY)))
    sheet = book["agreement"]
    shown = {
        "pairs": str(study.sql("SELECT * FROM pairs")),
        "agreement": str(study.sql("SELECT * FROM agreement")),
        "workbook": str(list(sheet.iter_rows(values_only=True))),
        "page": render_html(lake, report_data(lake, now=datetime(2026, 11, 5, 9, 0,
                                                                  tzinfo=FACTORY_TZ))),
    }
    assert study.ids["back-check"] in shown["workbook"] and "obs04" in shown["page"]
    assert {(where, code) for where, text in shown.items() for code in codes
            if code in text} == set()


def test_the_workbook_shows_each_observer_s_pairs_and_in_all(study: Study) -> None:
    lake = study.lake
    book = load_workbook(io.BytesIO(checks_workbook(
        lake, lake.flags(TUESDAY, TUESDAY), TUESDAY, TUESDAY)))
    rows = list(book["agreement"].iter_rows(values_only=True))
    header, body = rows[0], [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert header[:3] == ("observer", "day", "factory")
    obs01 = [row for row in body if row["observer"] == "obs01"]
    assert [(r["day"], r["other_observer"]) for r in obs01] == [
        (str(TUESDAY), "obs03"), (str(TUESDAY), "obs02"), (str(TUESDAY), "obs04"),
        ("all", None)]  # by team: knitting control, knitting treatment, linking treatment
    assert obs01[1]["observation_id"] == study.ids["checked"]
    assert obs01[1]["other_observation_id"] == study.ids["back-check"]
    assert (obs01[1]["all_agree"], obs01[1]["mean_abs_diff"]) == (0.8, 0.12)
    assert (obs01[-1]["pairs"], obs01[-1]["machines"], obs01[-1]["all_agree"]) == (
        3, 19, round(15 / 19, 3))
    assert len(body) == 2 * 3 + 4  # each pair under both observers, then each in all


def test_the_page_shows_each_observer_s_agreement(study: Study) -> None:
    lake = study.lake
    page = render_html(lake, report_data(lake, now=datetime(2026, 11, 5, 9, 0,
                                                            tzinfo=FACTORY_TZ)))
    assert page == render_html(lake, report_data(lake, now=datetime(2026, 11, 5, 9, 0,
                                                                    tzinfo=FACTORY_TZ)))
    table = page[page.index('data-view="agreement"'):].split("</table>")[0]
    # obs01's four pairs: 8 + 5 + 2 + 10 of 10 + 5 + 4 + 10 machines agree; 3.25 pieces
    # apart over 25 + 15 + 3 + 25 counts
    assert "<td>obs01</td><td>4</td><td>29</td><td>86.2%</td><td>0.05</td>" in table


def test_the_simulator_s_back_checks_are_the_pairs(ingested: Ingested) -> None:
    made = {(checked, check) for check, checked in ingested.manifest.back_checks.items()}
    assert len(made) == len(ingested.manifest.days)  # one a working day
    pairs = ingested.lake.pairs()
    assert set(zip(pairs["first_observation_id"], pairs["second_observation_id"],
                   strict=True)) == made
    assert set(pairs["second_observer"]) == {"obs00"}  # the field supervisor
    # mostly agreeing; now and then a count off by a little, or another worker
    agree = pairs["machines"].dot(pairs["all_agree"]) / pairs["machines"].sum()
    assert 0.8 < agree < 1
    assert pairs.filter(pl.col("all_agree") == 1).height > pairs.height / 4
    assert 0 < pairs["mean_abs_diff"].max() < 1  # type: ignore[operator]


def test_a_back_check_is_not_a_round_of_the_protocol(study: Study) -> None:
    """Completion counts the rounds the protocol asks for: a second observer's round
    within 15 minutes of a team's round measures agreement, and is not one of them."""
    counted = {(r["department"], r["team"]): r["attempted"] for r in study.sql(
        f"SELECT * FROM completion WHERE task = 'wip' AND day = DATE '{TUESDAY}'")}
    assert counted[("knitting", "treatment")] == 1  # checked (its back-check is not)
    assert counted[("knitting", "control")] == 3  # 16 minutes apart: both count
    assert counted[("knitting", "same-floor")] == 2  # the same observer: both count
    assert counted[("linking", "treatment")] == 1
