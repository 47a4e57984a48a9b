"""The 2014 pilot's files as its design documents had them: kept as they are, each round
an observation of the contract.

The fixtures in tests/data/legacy/pilot are written as the design documents say (Python
2's `json.dump`): per-task wip files of both departments (with "null", "" and "WIP"), an
operator-ID file, master files that grew round by round, coded interactions, and a file
that is none of these. The app's own output is tests/test_pilot_app.py's.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

import polars as pl
import pytest
from conftest import REPO, run_cli, run_in

from rmg_lake import open_lake
from rmg_lake.sources.legacy import PilotFiles
from rmg_lake.sources.pilot import IMPORTER, Study

PILOT = REPO / "tests" / "data" / "legacy" / "pilot"
STUDY = ("--factory", "f01", "--observer", "obs01", "--team", "treatment")


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    lake = tmp_path_factory.mktemp("legacy") / "lake"
    result = run_cli("import-legacy", str(PILOT), *STUDY, "--lake", str(lake))
    assert result.returncode == 0, result.stderr
    (lake / "first-run.txt").write_text(result.stdout)
    return lake


def test_every_file_is_kept_and_every_round_accounted_for(imported: Path) -> None:
    said = (imported / "first-run.txt").read_text()
    assert "18 files seen" in said  # 8 files, and 10 rounds in them
    assert "9 new events" in said and "1 quarantined" in said and "8 attachments" in said
    lake = open_lake(imported)
    history = lake.table("history")
    kept = {row["path"]: row["sha256"] for row in history.iter_rows(named=True)
            if row["outcome"] == "attachment"}
    assert kept == {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                    for p in PILOT.iterdir()}  # notes.txt too: kept as it is
    for path, digest in kept.items():  # byte for byte: the evidence
        (stored,) = history.filter(history["path"] == path)["stored"]
        assert (imported / stored).read_bytes() == (PILOT / path).read_bytes()
        assert hashlib.sha256((imported / stored).read_bytes()).hexdigest() == digest


def test_rounds_become_observations_of_the_contract(imported: Path) -> None:
    lake = open_lake(imported)
    observations = lake.table("observations").sort("started_at")
    assert observations.select("task", "department", "status").rows() == [
        ("wip", "knitting", "complete"), ("wip", "linking", "complete"),
        ("wip", "knitting", "partial"),  # Style "" and sleeve "null" on a manned machine
        ("roster", "linking", "complete"), ("wip", "linking", "complete"),
        ("wip", "knitting", "partial"),  # no operator-ID file of knitting: worker not known
        ("interactions", "knitting", "complete"), ("wip", "linking", "complete"),
        ("wip", "linking", "partial")]  # no operator-ID file that day: workers not known
    assert set(observations["factory"]) == {"f01"} and set(observations["team"]) == {
        "treatment"}
    assert str(observations["started_at"][0]) == "2014-01-14 08:36:00+00:00"  # 14:36 Dhaka
    wip = lake.table("wip")
    # a master file's rounds take their workers from the day's operator-ID file
    ids = json.loads((PILOT / "Linking_id-2014_01_15_07_55").read_bytes())
    master = wip.filter(wip["day"].cast(str) == "2014-01-15", wip["mc_status"] == "manned",
                        wip["department"] == "linking")
    assert {(m, w) for m, w in master.select("machine", "worker_id").rows()} == {
        (code, ids[code]["worker_id"]) for code in ("LI1", "LI2")} | {("LI1", "qux")}
    assert sorted(master["wip"]) == [2.5, 4.25, 6.0]
    knitting = wip.filter(wip["department"] == "knitting", wip["wip"].is_not_null())
    assert knitting.select("machine", "worker_id", "component", "wip").rows() == [
        ("KN1", None, None, 31.0)]  # contract 1.1: one number, and a worker not known
    (window,) = lake.table("interactions").group_by("observation_id").len()["len"]
    assert window == 2


def test_what_cannot_be_mapped_is_quarantined_with_its_reason(imported: Path) -> None:
    quarantine = open_lake(imported).table("quarantine")
    reasons = dict(quarantine.select("source_path", "reason").rows())
    assert reasons.keys() == {"Knitting_interact.json/round 2"}
    assert "topic 1–6" in reasons["Knitting_interact.json/round 2"]
    (stored,) = quarantine["stored"]  # the round as the pilot wrote it, and the reason
    assert json.loads((imported / stored).read_bytes().split(b"\n}")[0] + b"\n}")[
        "date_time"] == "2014_01_15_14_00"


def test_importing_again_adds_nothing(
        imported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    again = run_in(capsys, "import-legacy", str(PILOT), *STUDY, "--lake", str(imported))
    assert again.returncode == 0 and "Nothing new" in again.stdout
    moved = tmp_path / "elsewhere"  # the same files, from another folder: seen already
    shutil.copytree(PILOT, moved)
    copied = run_in(capsys, "import-legacy", str(moved), *STUDY, "--lake", str(imported))
    assert copied.returncode == 0 and "Nothing new" in copied.stdout
    (moved / "Linking_wip.json").rename(moved / "Linking_wip (copy).json")  # read again:
    renamed = run_in(capsys, "import-legacy", str(moved), *STUDY, "--lake", str(imported))
    assert renamed.returncode == 0, renamed.stderr  # the same rounds, the same bytes;
    assert "0 new events" in renamed.stdout and "3 duplicates" in renamed.stdout  # the
    assert "1 attachment" in renamed.stdout  # file itself: a pilot file's name says what it is
    assert open_lake(imported).table("observations").height == 9


def test_a_round_s_id_is_what_it_is_so_a_grown_master_file_adds_its_new_rounds(
    imported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    namespace = uuid.UUID("0f05c5dc-8d91-4ba3-ac88-60518f5d5054")
    observations = open_lake(imported).table("observations")
    first = observations.filter(observations["source_path"].str.starts_with(
        "Linking_wip.json/round 1/"))
    assert list(first["observation_id"]) == [str(uuid.uuid5(
        namespace, "f01/obs01/linking/treatment/wip/2014-01-15T10:02:00+06:00"))]
    grown = json.loads((PILOT / "Linking_wip.json").read_bytes())  # a round later that day
    grown["date_time"].append("2014_01_15_15_00")
    for values, value in zip((grown[m] for m in ("LI1", "LI2", "LI3")),
                             ((["Manned"], ["bar"], [5]), (["Unmanned"], [None], [None]),
                              (["Unmanned"], [None], [None])), strict=True):
        for key, more in zip(("Attendance", "Style", "WIP"), value, strict=True):
            values[key] += more
    later = tmp_path / "later"
    later.mkdir()
    (later / "Linking_wip.json").write_text(json.dumps(grown))
    shutil.copy(PILOT / "Linking_id-2014_01_15_07_55", later)
    result = run_in(capsys, "import-legacy", str(later), *STUDY, "--lake", str(imported))
    assert result.returncode == 0, result.stderr
    assert "1 new event " in result.stdout and "0 superseding" in result.stdout


def test_the_batch_records_the_importer_and_its_options(imported: Path) -> None:
    source = open_lake(imported).table("batches")["source"][0]
    assert f"importer {IMPORTER}" in source
    assert "factory=f01 observer=obs01 team=treatment" in source


def test_no_worker_code_is_printed(imported: Path) -> None:
    said = (imported / "first-run.txt").read_text()
    assert not any(code in said for code in ("foo", "baz", "qux", "quux", "sup1"))


def test_the_frames_are_rebuilt_the_same(imported: Path, tmp_path: Path) -> None:
    lake = open_lake(imported)
    before = lake.table("wip")
    lake.rebuild()
    assert lake.table("wip").equals(before)


def _one_file(tmp_path: Path, name: str, document: object) -> tuple[str, str]:
    """Import one pilot file through the lake: (outcome, status or reason) of its round."""
    folder = tmp_path / "pilot"
    folder.mkdir()
    data = json.dumps(document)  # NaN and Infinity as Python 2 wrote them
    (folder / name).write_text(data)
    lake = open_lake(tmp_path / "lake", create=True)
    records = [r for r in lake.ingest(PilotFiles(folder, Study("f01", "obs01", "t"))).files
               if r.path != name or r.outcome == "quarantined"]
    (record,) = records
    if record.outcome == "added":
        return "added", lake.table("observations")["status"][0]
    return record.outcome, record.reason or ""


MANNED = {"mc_status": "Manned", "worker_id": "w", "Style": "s"}


@pytest.mark.parametrize(("document", "outcome", "said"), [
    ({"DateTime": "01/14/2014 09:00", "LI1": {**MANNED, "wip": "3.5"}}, "added", "complete"),
    ({"DateTime": "01/14/2014 09:00", "li1": {**MANNED, "WIP": 2, "Style": "null"}},
     "added", "partial"),
    ({"DateTime": "01/14/2014 09:00", "KN1": {**MANNED, "component": "body", "back": 3,
                                              "front": "", "sleeve": 2}}, "added", "partial"),
    ({"DateTime": "01/14/2014 09:00", "LI1": {**MANNED, "WIP": float("nan")}},
     "quarantined", "LI1 is manned but its wip is empty"),
    ({"DateTime": "01/14/2014 09:00", "LI1": {**MANNED, "WIP": float("inf")}},
     "quarantined", "LI1.wip: not a number"),
    ({"DateTime": "01/14/2014 09:00", "LI1": {**MANNED, "worker_id": "", "wip": 2}},
     "added", "partial"),  # contract 1.1: a worker not known
    ({"DateTime": "01/14/2014 09:00", "LI1": {**MANNED, "worker_id": "w"}},
     "quarantined", "LI1 is manned but its wip is empty"),
    ({"DateTime": "01/14/2014 09:00", "KN1": {**MANNED, "WIP": 2.75}}, "added", "complete"),
    ({"DateTime": "01/14/2014 09:00", "KN1": {**MANNED, "component": "body", "back": 1,
                                              "front": 1, "sleeve": 1, "wip": 2}},
     "quarantined", "KN1 has both panels and WIP counted"),
    ({"DateTime": "01/14/2014 09:00", "LI1": {"mc_status": "Unmanned", "worker_id": "w"}},
     "quarantined", "LI1 is unmanned but has worker_id written"),
    ({"DateTime": "01/14/2014 09:00", "KN1": {**MANNED, "component": "body", "collar": 4}},
     "quarantined", "KN1 knits a body but has collar counted"),
    ({"DateTime": "14/01/2014 09:00", "LI1": MANNED}, "quarantined", "MM/DD/YYYY"),
    ({"DateTime": "01/14/2014 09:00", "LI1": {"mc_status": "1"}}, "quarantined",
     "neither Manned nor Unmanned"),
    ({"DateTime": "01/14/2014 09:00", "supervisor": "s", "left_floor": [5],
      "interactions": [{"interaction_id": "FIC", "interaction_length": 5, "initiator": [1],
                        "topic": 1}]}, "quarantined", "initiator must be 1–3"),
    ({"DateTime": "01/14/2014 09:00", "supervisor": "s",
      "interactions": [{"interaction_id": "li1", "interaction_length": "5", "initiator": 2,
                        "topic": 6}]}, "added", "partial"),  # no left_floor written
    ({"date_time": ["2014_01_14_09_00", "2014_01_14_10_00"],
      "LI1": {"Attendance": ["Unmanned"], "Style": [None, None], "WIP": [None, None]}},
     "quarantined", "LI1's Attendance has 1 values for 2 times"),
    ({"date_time": ["2014_01_14_09_00"], "LI1": ["Manned"]}, "quarantined",
     "LI1: not an object of values"),
])
def test_a_pilot_file_through_the_lake(document: dict[str, object], outcome: str, said: str,
                                       tmp_path: Path) -> None:
    name = "interact_linking.json" if "supervisor" in document else "round_linking.json" \
        if "LI1" in document or "li1" in document else "round.json"
    found, what = _one_file(tmp_path, name, document)
    assert found == outcome
    assert what == said if outcome == "added" else said in what


def test_keys_the_contract_does_not_know_are_kept(tmp_path: Path) -> None:
    document = {"DateTime": "01/14/2014 09:00", "Comment": "power cut",
                "LI1": {**MANNED, "wip": 1, "Speed": "slow"}}
    assert _one_file(tmp_path, "wip_linking.json", document) == ("added", "complete")
    lake = open_lake(tmp_path / "lake")
    assert list(lake.table("observations")["extra_keys"][0]) == ["machines.LI1.Speed",
                                                                 "pilot"]
    (stored,) = lake.table("history").filter(pl.col("outcome") == "added")["stored"]
    payload = json.loads((tmp_path / "lake" / stored).read_bytes())
    assert payload["pilot"] == {"Comment": "power cut"}
    assert payload["machines"]["LI1"]["Speed"] == "slow"


def test_two_rounds_of_one_minute_are_both_kept(tmp_path: Path) -> None:
    document = {"date_time": ["2014_01_14_09_00", "2014_01_14_09_00"],
                "LI1": {"Attendance": ["Unmanned", "Unmanned"], "Style": [None, None],
                        "WIP": [None, None], "Note": ["first", "second"]}}
    folder = tmp_path / "pilot"
    folder.mkdir()
    (folder / "Linking_wip.json").write_text(json.dumps(document))
    lake = open_lake(tmp_path / "lake", create=True)
    result = lake.ingest(PilotFiles(folder, Study("f01", "obs01", "t")))
    assert result.counts["added"] == 2 and result.superseding == 1  # one observation, twice
    assert lake.table("observations")["versions"].to_list() == [2]


def test_another_department_is_left_out_and_links_are_not_followed(tmp_path: Path) -> None:
    folder = tmp_path / "pilot"
    folder.mkdir()
    (folder / "Linking_wip.json").write_text(json.dumps({"date_time": []}))
    (folder / "Knitting_wip.json").write_text(json.dumps({"date_time": []}))
    (folder / "link").symlink_to(folder / "Linking_wip.json")
    (folder / "linked-folder").symlink_to(tmp_path)
    (folder / "unreadable.json").write_text("{}")
    (folder / "unreadable.json").chmod(0)
    lake = open_lake(tmp_path / "lake", create=True)
    files = PilotFiles(folder, Study("f01", "obs01", "t", department="knitting"))
    records = {r.path: r for r in lake.ingest(files).files}
    assert "Linking_wip.json" not in records and files.left_out == ["Linking_wip.json"]
    assert records["Knitting_wip.json"].outcome == "attachment"
    assert records["link"].reason == records["linked-folder"].reason == \
        "a symbolic link: not followed"
    if os.geteuid() != 0:  # root reads any file
        assert "cannot be read" in (records["unreadable.json"].reason or "")


@pytest.mark.parametrize(("args", "message"), [
    (["--factory", "F01", "--observer", "obs01", "--team", "t"], "--factory: must be"),
    (["--factory", "f01", "--observer", "obs01", "--team", "t", "--department", "sewing"],
     "sewing"),
])
def test_wrong_options_are_one_line(
        args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_in(capsys, "import-legacy", str(PILOT), *args, "--lake", str(tmp_path / "lake"))
    assert result.returncode != 0 and message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "lake").exists()


def test_a_missing_path_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run_in(capsys, "import-legacy", str(tmp_path / "nowhere"), *STUDY,
                     "--lake", str(tmp_path / "lake"))
    assert result.returncode == 1 and "no such file or folder" in result.stderr
    assert not (tmp_path / "lake").exists()


def _quarantine(lake: Path) -> list[tuple[object, ...]]:
    return open_lake(lake).table("quarantine").select(
        "batch", "source_path", "resolved_by", "resolution").sort("batch").rows()


def _flags(lake: Path) -> list[tuple[object, ...]]:
    flags = open_lake(lake).flags().filter(check_name="quarantined")
    return flags.select("severity", "detail").rows()


def test_a_file_of_no_department_is_taken_in_with_department(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "pilot"
    folder.mkdir()
    (folder / "interact.json").write_text(json.dumps({
        "DateTime": "01/14/2014 09:00", "supervisor": "s", "left_floor": [5],
        "interactions": [{"interaction_id": "FIC", "interaction_length": 5, "initiator": 1,
                          "topic": 2}]}))
    lake = tmp_path / "lake"
    first = run_in(capsys, "import-legacy", str(folder), *STUDY, "--lake", str(lake))
    assert "interact.json — (file): its department cannot be told" in first.stdout
    assert "import it with --department" in first.stdout
    hinted = run_in(capsys, "import-legacy", str(folder), *STUDY, "--department", "knitting",
                     "--lake", str(lake))  # what the hint says: now the file is read
    assert hinted.returncode == 0 and "1 new event" in hinted.stdout, hinted.stdout
    assert _quarantine(lake) == [(1, "interact.json", 2, "added")]  # its round is
    (severity, detail), = _flags(lake)
    assert severity == "info" and detail.endswith("(taken in by batch 2)")


def test_roll_back_and_import_again_keeps_the_quarantine(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lake = tmp_path / "lake"
    wrong = run_in(capsys, "import-legacy", str(PILOT), "--factory", "f01", "--observer", "obs01",
                    "--team", "control", "--lake", str(lake))
    assert wrong.returncode == 0, wrong.stderr
    refused = run_in(capsys, "import-legacy", str(PILOT), *STUDY, "--lake", str(lake))
    assert refused.returncode == 1 and "--instead-of 1" in refused.stderr  # (it'd double)
    assert run_in(capsys, "rollback", "1", "--reason", "wrong team", "--lake", str(lake)
                   ).returncode == 0
    again = run_in(capsys, "import-legacy", str(PILOT), *STUDY, "--lake", str(lake))
    assert again.returncode == 0, again.stderr
    assert "9 new events" in again.stdout and "8 attachments" in again.stdout
    assert _quarantine(lake) == [(3, "Knitting_interact.json/round 2", None, None)]
    (severity, detail), = _flags(lake)
    assert severity == "error" and detail.startswith("Knitting_interact.json/round 2")
    assert set(open_lake(lake).table("observations")["team"]) == {"treatment"}
    instead = run_in(capsys, "import-legacy", str(PILOT), *STUDY[:-1], "other", "--instead-of",
                      "3", "--lake", str(lake))  # and so, in one command
    assert instead.returncode == 0, instead.stderr
    assert _quarantine(lake) == [(5, "Knitting_interact.json/round 2", None, None)]
    assert set(open_lake(lake).table("observations")["team"]) == {"other"}


def test_a_quarantined_round_taken_in_later_is_resolved(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "pilot"
    shutil.copytree(PILOT, folder)
    lake = tmp_path / "lake"
    assert run_in(capsys, "import-legacy", str(folder), *STUDY, "--lake", str(lake)).returncode == 0
    windows = json.loads((folder / "Knitting_interact.json").read_bytes())
    windows["interactions"][1][0]["topic"] = 4  # the observer's code 9, put right
    (folder / "Knitting_interact.json").write_text(json.dumps(windows))
    fixed = run_in(capsys, "import-legacy", str(folder), *STUDY, "--lake", str(lake))
    assert fixed.returncode == 0 and "1 new event " in fixed.stdout, fixed.stdout
    assert _quarantine(lake) == [(1, "Knitting_interact.json/round 2", 2, "added")]
    (severity, detail), = _flags(lake)
    assert severity == "info" and detail.endswith("(taken in by batch 2)")


def test_a_photo_ends_its_own_round_only(tmp_path: Path) -> None:
    folder = tmp_path / "pilot"
    folder.mkdir()
    (folder / "Knitting_wip.json").write_text(json.dumps({
        "date_time": ["2014_02_10_09_00", "2014_02_10_09_30"],
        "KN1": {"Attendance": ["Present", "Absent"], "Style": ["a", "a"],  # (absent, and
                "WIP": [2.5, 3]}}))                              # a count: refused)
    for stamp in ("2014_02_10_09_05", "2014_02_10_09_33", "2014_02_10_11_00"):
        (folder / f"Knitting_wip_{stamp}.jpg").write_bytes(b"\xff\xd8" + stamp.encode())
    lake = open_lake(tmp_path / "lake", create=True)
    records = {r.path: r for r in lake.ingest(PilotFiles(folder, Study(
        "f01", "obs01", "t"))).files}
    first = records["Knitting_wip_2014_02_10_09_05.jpg"]
    assert first.observation_id is not None and first.reason == \
        "the photo that ended Knitting_wip.json/round 1 (at 09:05)"
    second = records["Knitting_wip_2014_02_10_09_33.jpg"]
    assert second.observation_id is None and second.reason == \
        "the photo that ended Knitting_wip.json/round 2 (at 09:33), which is quarantined"
    late = records["Knitting_wip_2014_02_10_11_00.jpg"]
    assert late.observation_id is None and "no round of it started in the hour" in (
        late.reason or "")
    (ended,) = lake.table("observations")["ended_at"]
    assert ended.isoformat() == "2014-02-10T03:05:00+00:00"
    fixed = json.loads((folder / "Knitting_wip.json").read_bytes())  # round 2 put right:
    fixed["KN1"]["Attendance"][1] = "Present"  # its photo is listed again, attached
    (folder / "Knitting_wip.json").write_text(json.dumps(fixed))
    again = {r.path: r for r in lake.ingest(PilotFiles(folder, Study(
        "f01", "obs01", "t"))).files}
    relinked = again["Knitting_wip_2014_02_10_09_33.jpg"]
    assert relinked.outcome == "duplicate" and relinked.observation_id is not None
    (row,) = lake.table("observations").filter(observation_id=relinked.observation_id
                                               ).iter_rows(named=True)
    assert row["ended_at"].isoformat() == "2014-02-10T03:33:00+00:00"


def test_what_would_break_a_reading_is_refused_with_its_reason(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "pilot"
    folder.mkdir()
    (folder / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (folder / "Linking_wip.json").write_text(json.dumps({  # a key it knows not, too big
        "date_time": ["2014_02_10_09_00"], "LI1": {"Attendance": ["Present"],
                                                   "Style": ["a"], "WIP": [2],
                                                   "Speed": [2**70]}}))
    os.mkfifo(folder / "pipe")  # read, it would wait for ever
    result = run_in(capsys, "import-legacy", str(folder), *STUDY, "--lake", str(tmp_path / "lake"))
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    reasons = dict(open_lake(tmp_path / "lake").table("quarantine").select(
        "source_path", "reason").rows())
    assert reasons["deep.json"] == "not JSON the pilot wrote (nested too deeply)"
    assert "a value the contract does not know cannot be written" in reasons[
        "Linking_wip.json/round 1"]
    assert reasons["pipe"].startswith("not a regular file")


def test_a_round_of_year_one_is_refused_for_its_time_not_its_name(tmp_path: Path) -> None:
    document = {"DateTime": "01/01/0001 00:05", "LI1": {**MANNED, "wip": 1}}
    outcome, reason = _one_file(tmp_path, "round_linking.json", document)
    assert outcome == "quarantined" and "valid datetime" in reason  # (before 1 AD in UTC)
    (record,) = [r for r in open_lake(tmp_path / "lake").table("quarantine").iter_rows(
        named=True)]
    assert record["source_path"].endswith("_00010101T000500.json")
    assert record["field"] == "started_at"
