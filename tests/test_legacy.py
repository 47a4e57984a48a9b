"""The 2014 pilot's files: kept as they are, each round an observation of the contract.

The fixtures in tests/data/legacy/pilot are written as the pilot wrote them (Python 2's
`json.dump`): per-task wip files of both departments (with "null", "" and "WIP"), an
operator-ID file, master files that grew round by round, coded interactions, and a file
that is none of these.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from pathlib import Path

import pytest
from conftest import REPO, run_cli

from rmg_lake import open_lake
from rmg_lake.legacy import IMPORTER, Problem, Round, Study, read_legacy

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
    assert "7 new events" in said and "4 quarantined" in said and "7 attachments" in said
    lake = open_lake(imported)
    history = lake.table("history")
    kept = {row["path"]: row["sha256"] for row in history.iter_rows(named=True)
            if row["outcome"] == "attachment"}
    assert kept == {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                    for p in PILOT.iterdir() if p.name != "notes.txt"}
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
        ("interactions", "knitting", "complete"), ("wip", "linking", "complete")]
    assert set(observations["factory"]) == {"f01"} and set(observations["team"]) == {
        "treatment"}
    assert str(observations["started_at"][0]) == "2014-01-14 08:36:00+00:00"  # 14:36 Dhaka
    wip = lake.table("wip")
    # a master file's rounds take their workers from the day's operator-ID file
    ids = json.loads((PILOT / "Linking_id-2014_01_15_07_55").read_bytes())
    master = wip.filter(wip["day"].cast(str) == "2014-01-15", wip["mc_status"] == "manned")
    assert {(m, w) for m, w in master.select("machine", "worker_id").rows()} == {
        (code, ids[code]["worker_id"]) for code in ("LI1", "LI2")} | {("LI1", "qux")}
    assert sorted(master["wip"]) == [2.5, 4.25, 6.0]
    (window,) = lake.table("interactions").group_by("observation_id").len()["len"]
    assert window == 2


def test_what_cannot_be_mapped_is_quarantined_with_its_reason(imported: Path) -> None:
    quarantine = open_lake(imported).table("quarantine")
    reasons = dict(quarantine.select("source_path", "reason").rows())
    assert reasons.keys() == {"Linking_wip.json/round 3", "Knitting_wip.json/round 1",
                              "Knitting_interact.json/round 2", "notes.txt"}
    assert "no operator-ID file of linking on 2014-01-16" in reasons["Linking_wip.json/round 3"]
    assert "knitting WIP is one number" in reasons["Knitting_wip.json/round 1"]
    assert "topic 1–6" in reasons["Knitting_interact.json/round 2"]
    assert "not a file of the pilot app" in reasons["notes.txt"]
    (stored,) = quarantine.filter(quarantine["source_path"] == "Linking_wip.json/round 3")[
        "stored"]
    assert json.loads((imported / stored).read_bytes())["date_time"] == "2014_01_16_10_00"


def test_importing_again_adds_nothing(imported: Path, tmp_path: Path) -> None:
    again = run_cli("import-legacy", str(PILOT), *STUDY, "--lake", str(imported))
    assert again.returncode == 0 and "Nothing new" in again.stdout
    moved = tmp_path / "elsewhere"  # the same files, from another folder: seen already
    shutil.copytree(PILOT, moved)
    copied = run_cli("import-legacy", str(moved), *STUDY, "--lake", str(imported))
    assert copied.returncode == 0 and "Nothing new" in copied.stdout
    (moved / "Linking_wip.json").rename(moved / "Linking_wip (copy).json")  # read again:
    renamed = run_cli("import-legacy", str(moved), *STUDY, "--lake", str(imported))
    assert renamed.returncode == 0, renamed.stderr  # the same rounds, the same bytes
    assert "0 new events" in renamed.stdout and "4 duplicates" in renamed.stdout  # and
    # the file itself, and its unmappable round (the same bytes, the same reason)
    assert open_lake(imported).table("observations").height == 7


def test_ids_are_made_from_the_file_and_the_round(imported: Path) -> None:
    data = (PILOT / "Linking_wip.json").read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    namespace = uuid.UUID("0f05c5dc-8d91-4ba3-ac88-60518f5d5054")
    expected = {str(uuid.uuid5(namespace, f"{digest}:{i}")) for i in (0, 1)}
    observations = open_lake(imported).table("observations")
    from_master = observations.filter(observations["source_path"].str.starts_with(
        "Linking_wip.json/"))
    assert set(from_master["observation_id"]) == expected


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


@pytest.mark.parametrize(("document", "expected"), [
    ({"DateTime": "01/14/2014 09:00", "LI1": {"mc_status": "Manned", "worker_id": "w",
                                              "Style": "s", "wip": "3.5"}}, "complete"),
    ({"DateTime": "01/14/2014 09:00", "LI1": {"mc_status": "Manned", "worker_id": "w",
                                              "Style": "null", "WIP": 2}}, "partial"),
    ({"DateTime": "01/14/2014 09:00", "LI1": {"mc_status": "Manned", "worker_id": "w",
                                              "Style": "s", "WIP": float("nan")}}, "partial"),
    ({"DateTime": "14/01/2014 09:00", "LI1": {"mc_status": "Manned"}}, "MM/DD/YYYY"),
    ({"DateTime": "01/14/2014 09:00", "LI1": {"mc_status": "Sleeping"}}, "Manned nor"),
    ({"DateTime": "01/14/2014 09:00", "LI1": {"mc_status": "Manned", "worker_id": "w",
                                              "wip": "lots"}}, "wip: not a number"),
])
def test_a_per_task_file(document: dict[str, object], expected: str) -> None:
    data = json.dumps(document).encode()  # NaN as Python 2 wrote it
    (found,) = read_legacy("round.json", data, Study("f01", "obs01", "treatment")).rounds
    if isinstance(found, Round):
        assert json.loads(found.payload)["status"] == expected
    else:
        assert isinstance(found, Problem) and expected in found.reason


@pytest.mark.parametrize(("args", "message"), [
    (["--factory", "F01", "--observer", "obs01", "--team", "t"], "--factory: must be"),
    (["--factory", "f01", "--observer", "obs01", "--team", "t", "--department", "sewing"],
     "sewing"),
])
def test_wrong_options_are_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    result = run_cli("import-legacy", str(PILOT), *args, "--lake", str(tmp_path / "lake"))
    assert result.returncode != 0 and message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "lake").exists()


def test_a_missing_path_is_one_line(tmp_path: Path) -> None:
    result = run_cli("import-legacy", str(tmp_path / "nowhere"), *STUDY,
                     "--lake", str(tmp_path / "lake"))
    assert result.returncode == 1 and "no such file or folder" in result.stderr
    assert not (tmp_path / "lake").exists()
