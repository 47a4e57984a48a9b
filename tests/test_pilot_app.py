"""The 2014 pilot app's own output (tests/data/pilot, written by the app's last commit
under Python 2.7: see drive.py and transcript.txt) reaches the lake, every round of it.

The folder is synced day by day as Dropbox had it, and imported after each day, as a
researcher would; the expectations are read from the app's files themselves.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import PILOT_APP, pilot_day, run_cli, run_in

from rmg_lake import Lake, open_lake
from rmg_lake.contract.models import FACTORY_TZ

STUDY = ("--factory", "f01", "--observer", "obs01")
LAST = PILOT_APP / "day-3"


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Lake, Path, list[str]]:
    """A lake of the three days, each imported after its sync; what each import said."""
    root = tmp_path_factory.mktemp("pilot")
    said = []
    for day in (1, 2, 3):
        pilot_day(day, root / "Dropbox")
        result = run_cli("import-legacy", str(root / "Dropbox"), *STUDY, "--team",
                         "treatment", "--lake", str(root / "lake"))
        assert result.returncode == 0, result.stderr
        said.append(result.stdout)
    return open_lake(root / "lake"), root / "Dropbox", said


def _app(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((LAST / name).read_bytes())
    return document


def _at(stamp: str) -> datetime:
    """A time the app wrote (factory time) as the frames hold it (UTC)."""
    return datetime.strptime(stamp, "%Y_%m_%d_%H_%M").replace(tzinfo=FACTORY_TZ).astimezone(UTC)


def _operator_ids(department: str, day: str) -> dict[str, Any]:
    """The day's operator-ID file of a department, as the app saved it."""
    (path,) = LAST.glob(f"{department.capitalize()}_id-{day.replace('-', '_')}_*")
    found: dict[str, Any] = json.loads(path.read_bytes())
    return found


@pytest.mark.parametrize("department", ["knitting", "linking"])
def test_every_wip_round_the_app_recorded_is_one_observation(
        imported: tuple[Lake, Path, list[str]], department: str) -> None:
    lake, _, _ = imported
    master = _app(f"{department.capitalize()}_wip.json")
    wip = lake.table("wip").filter(department=department)
    rounds = wip.group_by("observation_id").agg(pl.col("started_at").first())
    assert sorted(rounds["started_at"]) == sorted(_at(t) for t in master["date_time"])
    for i, stamp in enumerate(master["date_time"]):
        rows = wip.filter(pl.col("started_at") == _at(stamp)).sort("machine")
        ids = _operator_ids(department, stamp[:10].replace("_", "-"))
        for row in rows.iter_rows(named=True):
            written = master[row["machine"]]
            present = written["Attendance"][i] == "Present"
            assert row["mc_status"] == ("manned" if present else "unmanned")
            assert row["wip"] == (written["WIP"][i] if present else None)  # one number
            assert row["style"] == (written["Style"][i] if present else None)
            assert row["component"] is row["back"] is None if department == "knitting" \
                else True
            known = ids[row["machine"]]
            assert row["worker_id"] == (known["worker_id"] if present and known[
                "mc_status"] == "Manned" else None)
        assert rows.height == len([k for k in master if k != "date_time"])


def test_a_late_arrival_is_manned_with_its_worker_not_known(
        imported: tuple[Lake, Path, list[str]]) -> None:
    lake, _, _ = imported
    ids = _operator_ids("knitting", "2014-02-11")
    assert ids["KN2"] == {"mc_status": "Unmanned", "worker_id": "null"}  # came late
    late = lake.table("wip").filter(started_at=_at("2014_02_11_11_00")).sort("machine")
    assert late.select("machine", "mc_status", "status").rows() == [
        ("KN1", "manned", "partial"), ("KN2", "manned", "partial"),
        ("KN3", "unmanned", "partial"), ("KN4", "manned", "partial")]
    assert late["worker_id"].to_list() == [ids["KN1"]["worker_id"], None, None,
                                           ids["KN4"]["worker_id"]]
    flags = lake.flags().filter(check_name="roster_mismatch")
    assert set(flags["observation_id"]) == set(late["observation_id"]) | set(
        lake.table("wip").filter(started_at=_at("2014_02_11_15_00"))["observation_id"])
    assert set(flags["detail"]) == {"KN2: manned in the round, unmanned in the roster"}


def test_every_operator_id_file_is_one_roster_of_its_day(
        imported: tuple[Lake, Path, list[str]]) -> None:
    lake, _, _ = imported
    history = lake.table("history")
    files = sorted(p.name for p in LAST.iterdir() if "_id-" in p.name)
    assert len(files) == 6
    for name in files:
        stamp = name.lower().split("_id-")[1]
        (observation_id,) = history.filter(
            pl.col("path").str.starts_with(f"{name}/round 1/"))["observation_id"]
        rows = lake.table("roster").filter(observation_id=observation_id).sort("machine")
        written = json.loads((LAST / name).read_bytes())
        assert rows.select("machine", "mc_status", "worker_id").rows() == [
            (m, written[m]["mc_status"].lower(),
             None if written[m]["worker_id"] == "null" else written[m]["worker_id"])
            for m in sorted(k for k in written if k != "date_time")]
        assert set(rows["started_at"]) == {_at(stamp)} and set(rows["team"]) == {"treatment"}
    # three days of the same linking roster: the same bytes, three files of three days
    linking = history.filter(pl.col("path").str.starts_with("Linking_id-"),
                             ~pl.col("path").str.contains("/"))
    assert len(set(linking["sha256"])) == 1
    assert linking["outcome"].to_list() == ["attachment"] * 3


def test_the_start_of_day_form_is_a_roster_per_group_per_version(
        imported: tuple[Lake, Path, list[str]]) -> None:
    lake, _, _ = imported
    times = json.loads((PILOT_APP / "mtimes.json").read_bytes())
    rosters = lake.table("roster").join(
        lake.table("observations").select("observation_id", "extra_keys"),
        on="observation_id").filter(pl.col("extra_keys").list.contains("pilot"))
    for day in (1, 2, 3):
        form = json.loads((PILOT_APP / f"day-{day}" / "rmg_machine_operators.json").read_bytes())
        at = datetime.fromtimestamp(times[f"day-{day}/rmg_machine_operators.json"], UTC)
        version = rosters.filter(started_at=at)
        assert version["observation_id"].n_unique() == 6  # a roster per group
        for group, codes in form.items():
            department, team = group.split("_", 1)
            team = {"same_floor": "same-floor", "different": "other-floor"}.get(team, team)
            rows = version.filter(department=department, team=team).sort(
                pl.col("machine").str.slice(2).cast(pl.Int64))
            prefix = "KN" if department == "knitting" else "LI"
            assert rows.select("machine", "mc_status", "worker_id").rows() == [
                (f"{prefix}{n}", "manned" if code else "unmanned", code or None)
                for n, code in enumerate(codes, start=1)]
    assert rosters["observation_id"].n_unique() == 18  # day 3: the same bytes, a new time


def test_nothing_of_the_app_s_output_is_quarantined_and_every_file_is_kept(
        imported: tuple[Lake, Path, list[str]]) -> None:
    lake, folder, said = imported
    assert lake.table("quarantine").is_empty()
    assert all(" 0 quarantined" in s for s in said)
    history = lake.table("history").filter(pl.col("outcome") == "attachment")
    kept = {row["path"]: row for row in history.iter_rows(named=True)}
    for path in folder.iterdir():  # byte for byte, every version of every file
        rows = history.filter(path=path.name)
        assert any((lake.root / s).read_bytes() == path.read_bytes() for s in rows["stored"])
    notes = {name: kept[name]["reason"] for name in (
        "Knitting_interact.json", "Linking_other.json", "Linking_interact.json",
        "Knitting_other.json", "top_level_data.json")}
    assert notes["Knitting_interact.json"].startswith("holds nothing (null)")  # (day 2's)
    assert notes["Linking_other.json"].startswith("holds nothing (null)")
    assert notes["Linking_interact.json"].startswith("no rounds yet")
    assert notes["top_level_data.json"] == "the app's settings: machine counts (4 knitting, " \
                                           "3 linking)"


def test_a_photo_ends_its_round_and_is_attached_to_it(
        imported: tuple[Lake, Path, list[str]]) -> None:
    lake, folder, _ = imported
    history = lake.table("history").filter(pl.col("path").str.ends_with(".jpg"),
                                           pl.col("outcome") == "attachment")
    observations = lake.table("observations")
    photos = sorted(folder.glob("*_wip_*.jpg"))
    assert len(photos) == 18
    for photo in photos:
        (row,) = history.filter(path=photo.name).iter_rows(named=True)
        department, _, stamp = photo.stem.split("_", 2)
        (ended,) = observations.filter(observation_id=row["observation_id"]).iter_rows(
            named=True)
        assert ended["department"] == department.lower()
        assert ended["ended_at"] == _at(stamp) > ended["started_at"]
        assert (ended["ended_at"] - ended["started_at"]).total_seconds() < 3600
    rosters = observations.filter(task="roster")
    assert (rosters["ended_at"] == rosters["started_at"]).all()  # no photo: one time
    others = history.filter(~pl.col("path").str.contains("_wip_"))
    assert others["observation_id"].to_list() == [None, None]
    assert "which the app saved no round of" in others["reason"][0]


def test_show_links_the_photo_to_its_round(
        imported: tuple[Lake, Path, list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    lake, _, _ = imported
    (photo,) = lake.table("history").filter(
        path="Linking_wip_2014_02_11_11_33.jpg")["observation_id"]
    shown = run_in(capsys, "show", photo[:8], "--lake", str(lake.root))
    assert shown.returncode == 0, shown.stderr
    assert "Linking_wip.json/round 5/wip_linking_treatment_obs01_20140211T113000.json" in \
        shown.stdout
    assert "Attached (kept as evidence):" in shown.stdout
    assert "from Linking_wip_2014_02_11_11_33.jpg — the photo that ended Linking_wip.json/" \
           "round 5 (at 11:33)" in shown.stdout
    as_json = json.loads(run_in(capsys, "show", photo, "--lake", str(lake.root), "--json").stdout)
    assert [a["path"] for a in as_json["attached"]] == ["Linking_wip_2014_02_11_11_33.jpg"]


def test_a_day_s_import_adds_that_day_and_nothing_twice(
        imported: tuple[Lake, Path, list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    lake, folder, said = imported
    observations = lake.table("observations")
    assert observations["versions"].max() == 1  # a grown master file: new rounds only
    by_batch = observations.group_by("batch").len().sort("batch")["len"].to_list()
    assert by_batch == [14, 14, 14]  # each day: 6 rounds, 2 operator-ID files, the form
    again = run_in(capsys, "import-legacy", str(folder), *STUDY, "--team", "treatment",
                    "--lake", str(lake.root))
    assert again.returncode == 0 and "Nothing new" in again.stdout
    assert not any(code in "".join(said) for code in ("1201", "1204", "2301", "2521"))


def test_importing_again_as_another_team_is_refused_naming_the_batches(
        imported: tuple[Lake, Path, list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    lake, folder, _ = imported
    before = len(lake.entries())
    again = run_in(capsys, "import-legacy", str(folder), *STUDY, "--team", "control",
                    "--lake", str(lake.root))
    assert again.returncode == 1 and "Traceback" not in again.stderr
    assert again.stderr.startswith("error: 24 of these rounds were imported already, in "
                                   "batches 1, 2 and 3 (factory=f01 observer=obs01 "
                                   "team=treatment department=(from files)): imported again "
                                   "as factory=f01 observer=obs01 team=control")
    assert "add --instead-of 1,2,3 (those batches are rolled back" in again.stderr
    assert len(lake.entries()) == before


def test_one_department_at_a_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = pilot_day(3, tmp_path / "Dropbox")
    lake = tmp_path / "lake"
    knitting = run_in(capsys, "import-legacy", str(folder), *STUDY, "--team", "treatment",
                       "--department", "knitting", "--lake", str(lake))
    assert knitting.returncode == 0, knitting.stderr
    assert " 0 quarantined" in knitting.stdout
    assert "Left out, of another department than knitting: Linking_id-2014_02_10_08_03" in \
        knitting.stdout and "(import them with --department linking)" in knitting.stdout
    observations = open_lake(lake).table("observations")
    assert set(observations["department"]) == {"knitting"}
    linking = run_in(capsys, "import-legacy", str(folder), *STUDY, "--team", "treatment",
                      "--department", "linking", "--lake", str(lake))
    assert linking.returncode == 0, linking.stderr
    assert " 0 quarantined" in linking.stdout
    whole = run_in(capsys, "import-legacy", str(folder), *STUDY, "--team", "treatment",
                    "--lake", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    both, once = (open_lake(p).table("observations").sort("observation_id")
                  for p in (lake, tmp_path / "whole"))
    assert both.drop("batch").equals(once.drop("batch"))
    assert open_lake(lake).table("quarantine").is_empty()


def test_a_wrong_team_rolled_back_and_imported_again_loses_nothing(
        imported: tuple[Lake, Path, list[str]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The folder holds only the last start-of-day form: the lake's copies of the
    earlier ones are read again with the rest."""
    lake = tmp_path / "lake"
    for day in (1, 2):
        pilot_day(day, tmp_path / "Dropbox")
        wrong = run_in(capsys, "import-legacy", str(tmp_path / "Dropbox"), *STUDY, "--team",
                        "same-floor", "--lake", str(lake))
        assert wrong.returncode == 0, wrong.stderr
    pilot_day(3, tmp_path / "Dropbox")
    refused = run_in(capsys, "import-legacy", str(tmp_path / "Dropbox"), *STUDY, "--team",
                      "treatment", "--lake", str(lake))
    assert refused.returncode == 1 and "batches 1 and 2" in refused.stderr
    assert "--instead-of 1,2" in refused.stderr
    again = run_in(capsys, "import-legacy", str(tmp_path / "Dropbox"), *STUDY, "--team",
                    "treatment", "--instead-of", "1,2", "--lake", str(lake))
    assert again.returncode == 0, again.stderr
    columns = [c for c in imported[0].table("observations").columns if c != "batch"]
    now, day_by_day = (open_lake(p).table("observations").select(columns).sort(
        "observation_id") for p in (lake, imported[0].root))
    assert now.equals(day_by_day)  # the forms of the first two days too
    reasons = open_lake(lake).table("batches").filter(kind="rollback")["reason"]
    assert reasons.to_list() == ["imported again as factory=f01 observer=obs01 "
                                 "team=treatment department=(from files)"] * 2


def test_a_folder_rolled_back_stays_out(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Files of a rolled-back import are not read again, even when the same folder later
    holds others: only --instead-of reads what a batch kept."""
    lake = tmp_path / "lake"
    folder = pilot_day(3, tmp_path / "Dropbox")
    assert run_in(capsys, "import-legacy", str(folder), *STUDY, "--team", "treatment", "--lake",
                   str(lake)).returncode == 0
    assert run_in(capsys, "rollback", "1", "--reason", "wrong folder", "--lake", str(lake)
                   ).returncode == 0
    for path in folder.iterdir():
        path.unlink()
    pilot_day(1, folder)  # what the folder held on the first day
    again = run_in(capsys, "import-legacy", str(folder), *STUDY, "--team", "treatment",
                    "--lake", str(lake))
    assert again.returncode == 0, again.stderr
    observations = open_lake(lake).table("observations")  # (day 1's rounds, unchanged,
    assert set(observations["day"].cast(str)) == {"2014-02-10"}  # stay out too: only the
    assert set(observations["task"]) == {"roster"}  # form of day 1 is new, as its time)
    bad = run_in(capsys, "import-legacy", str(folder), *STUDY, "--team", "control",
                  "--instead-of", "9", "--lake", str(lake))
    assert bad.returncode == 1 and "--instead-of: batch 9 is no import of" in bad.stderr


def test_a_file_imported_on_its_own_is_read_with_what_the_lake_knows(
        imported: tuple[Lake, Path, list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    lake, folder, _ = imported
    alone = run_in(capsys, "import-legacy", str(folder / "Knitting_wip.json"), *STUDY, "--team",
                    "treatment", "--lake", str(lake.root))
    assert alone.returncode == 0, alone.stderr
    assert "Nothing new" in alone.stdout  # the same rounds: workers, ends and all


def test_pandas_reads_the_frames(imported: tuple[Lake, Path, list[str]]) -> None:
    lake, _, _ = imported
    wip = lake.frame("wip", "knitting", "treatment").to_pandas()
    manned = wip[wip["mc_status"] == "manned"]
    assert str(wip["wip"].dtype) == "float64" and manned["wip"].notna().all()
    assert str(wip["started_at"].dt.tz) == "UTC"
    assert len(wip) == 9 * 4  # nine rounds of four machines


def test_a_photo_ends_the_round_not_the_roster_of_the_same_minute(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = pilot_day(2, tmp_path / "Dropbox")
    (folder / "Knitting_id-2014_02_11_08_00").rename(folder / "Knitting_id-2014_02_11_08_01")
    result = run_in(capsys, "import-legacy", str(folder), *STUDY, "--team", "treatment",
                     "--lake", str(tmp_path / "lake"))
    assert result.returncode == 0, result.stderr
    lake = open_lake(tmp_path / "lake")
    (row,) = lake.table("history").filter(
        path="Knitting_wip_2014_02_11_08_03.jpg").iter_rows(named=True)
    assert row["reason"] == "the photo that ended Knitting_wip.json/round 4 (at 08:03)"
    rosters = lake.table("observations").filter(task="roster")
    assert (rosters["ended_at"] == rosters["started_at"]).all()


def test_instead_of_an_import_with_the_same_options_reads_it_all_again(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = pilot_day(1, tmp_path / "Dropbox")
    lake = tmp_path / "lake"
    first = run_in(capsys, "import-legacy", str(folder / "Knitting_wip.json"), *STUDY,
                   "--team", "control", "--lake", str(lake))
    assert first.returncode == 0, first.stderr
    refused = run_in(capsys, "import-legacy", str(folder), *STUDY, "--team", "treatment",
                     "--lake", str(lake))
    assert refused.returncode == 1 and "--instead-of 1 " in refused.stderr  # (a file
    again = run_in(capsys, "import-legacy", str(folder), *STUDY, "--team", "treatment",
                   "--instead-of", "1", "--lake", str(lake))  # imported alone, a folder)
    assert again.returncode == 0, again.stderr
    back = run_in(capsys, "import-legacy", str(folder), *STUDY, "--team", "treatment",
                  "--instead-of", "3", "--lake", str(lake))  # its own options again
    assert back.returncode == 0, back.stderr
    observations = open_lake(lake).table("observations")
    assert observations.height == 14 and set(observations["batch"]) == {5}


def test_a_round_put_right_and_imported_alone_is_resolved(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = pilot_day(1, tmp_path / "Dropbox")
    lake = tmp_path / "lake"
    master = json.loads((folder / "Knitting_wip.json").read_bytes())
    master["KN1"]["Attendance"][1] = "Maybe"  # a slip: round 2 cannot be read
    (folder / "Knitting_wip.json").write_text(json.dumps(master))
    assert run_in(capsys, "import-legacy", str(folder), *STUDY, "--team", "treatment",
                  "--lake", str(lake)).returncode == 0
    master["KN1"]["Attendance"][1] = "Present"
    (folder / "Knitting_wip.json").write_text(json.dumps(master))
    alone = run_in(capsys, "import-legacy", str(folder / "Knitting_wip.json"), *STUDY,
                   "--team", "treatment", "--lake", str(lake))
    assert alone.returncode == 0 and "1 new event " in alone.stdout, alone.stdout
    quarantine = open_lake(lake).table("quarantine")
    assert quarantine.select("source_path", "resolved_by", "resolution").rows() == [
        ("Knitting_wip.json/round 2", 2, "added")]
