"""A lake written by the release before contract 1.1 (tests/data/old-lake: see its
README) heals on upgrade: the next ingest examines again what that release quarantined,
takes in what this one reads, and changes nothing else.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import polars as pl
import pytest
from conftest import REPO, pilot_day, run_cli, run_in

from rmg_lake import Lake, open_lake
from rmg_lake.store.events import keep_events

OLD = REPO / "tests" / "data" / "old-lake"


def _private(root: Path) -> None:
    """As rmg-lake keeps a lake (git keeps no such modes)."""
    root.chmod(0o700)
    for path in root.rglob("*"):
        path.chmod(0o700 if path.is_dir() else 0o600)


def _files(lake: Path) -> dict[str, str]:
    """Every file the old release wrote, by path → sha256."""
    return {p.relative_to(lake).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in ("_log", "raw", "quarantine", "attachments", "events", "_meta.json")
            for p in ([lake / folder] if (lake / folder).is_file()
                      else sorted((lake / folder).rglob("*"))) if p.is_file()}


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Lake, Path, str]:
    """The old lake before (as of its last batch) and after the next ingest."""
    root = tmp_path_factory.mktemp("upgrade")
    shutil.copytree(OLD / "lake", root / "lake")
    _private(root)
    (root / "inbox").mkdir()
    lake = open_lake(root / "lake")
    assert len(lake.entries()) == 4
    before = lake.rebuild(as_of=4, out=root / "before")  # what the old release showed
    (root / "old-files.json").write_text(json.dumps(_files(root / "lake")))
    result = run_cli("ingest", "--source", str(root / "inbox"), "--lake", str(root / "lake"))
    assert result.returncode == 0, result.stderr
    return lake, before, result.stdout


def test_what_the_old_release_quarantined_is_taken_in(upgraded: tuple[Lake, Path, str]) -> None:
    lake, _, said = upgraded
    assert "Batch 5: the quarantine of batch 1 examined again by this rmg-lake: 4 files, " \
           "2 taken in (2 new events, 0 attachments), 2 still quarantined (1 for the same " \
           "reason)" in said
    assert "Batch 6: the quarantine of batches 2, 3 and 4 examined again by this " \
           "rmg-lake: 48 files, 48 taken in (21 new events, 26 attachments), 0 still " \
           "quarantined" in said  # every pilot import of the folder: one batch
    assert "import the pilot's folder again to read them all" in said
    assert "Nothing new" in said
    quarantine = lake.table("quarantine")
    still = quarantine.filter(pl.col("resolved_by").is_null())
    assert sorted(still["source_path"]) == [
        "wip_linking_treatment_obs03_20261124T103500.json",  # complete: a worker not known
        "wip_linking_treatment_obs03_20261124T140000.json"]  # not JSON
    (again,) = still.filter(batch=5)["reason"]
    assert "null (the worker not known) only in a partial observation" in again
    knitting = lake.table("wip").filter(department="knitting", team="treatment",
                                        factory="f01", observer="obs01")
    assert knitting["observation_id"].n_unique() == 9  # every knitting round of the pilot
    assert knitting.filter(mc_status="manned")["wip"].null_count() == 0
    assert lake.table("observations").filter(pl.col("app_version") == "tablet 1.1").height == 3


def test_nothing_else_changes(upgraded: tuple[Lake, Path, str]) -> None:
    lake, before, _ = upgraded
    old = json.loads((before.parent / "old-files.json").read_text())
    assert {path: sha for path, sha in _files(lake.root).items() if path in old} == old
    was = pl.read_parquet(before / "frames" / "observations" / "*.parquet")
    now = lake.table("observations")
    kept = now.filter(pl.col("event_id").is_in(was["event_id"].to_list()))
    columns = [c for c in was.columns if c not in ("batch",)]
    assert kept.select(columns).sort("event_id").equals(was.select(columns).sort("event_id"))
    new = now.filter(~pl.col("event_id").is_in(was["event_id"].to_list()))
    assert set(new["batch"]) == {5, 6} and new["versions"].max() == 1


def test_the_heal_happens_once(upgraded: tuple[Lake, Path, str], tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    lake, _, _ = upgraded
    again = run_in(capsys, "ingest", "--source", str(tmp_path), "--lake", str(lake.root))
    assert again.returncode == 0 and "examined again" not in again.stdout
    assert "Nothing new" in again.stdout and len(lake.entries()) == 6
    assert run_in(capsys, "verify", "--lake", str(lake.root)).returncode == 0


def test_a_heal_rolled_back_is_not_made_again(tmp_path: Path) -> None:
    shutil.copytree(OLD / "lake", tmp_path / "lake")
    _private(tmp_path)
    lake = open_lake(tmp_path / "lake")
    healed = lake.ingest(_empty(tmp_path))
    assert [b.examines for b in healed.reexamined] == [(1,), (2, 3, 4)]
    lake.rollback(5, "not yet")
    again = lake.ingest(_empty(tmp_path))
    assert again.reexamined == () and again.batch is None
    quarantine = lake.table("quarantine").filter(batch=1)
    assert quarantine["resolved_by"].null_count() == 4  # as the old release had it


def _empty(root: Path) -> Path:
    (root / "inbox").mkdir(exist_ok=True)
    return root / "inbox"


class _Broken:
    """A source whose listing fails: what an examination meeting a bug would do."""

    name, readers, cursor, relisted, gone = "broken", 1, None, False, []

    def resume(self, cursor: str | None) -> None:
        pass

    def list(self) -> list[object]:
        raise ValueError("nothing to list")


def test_an_examination_that_fails_leaves_the_ingest_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(OLD / "lake", tmp_path / "lake")
    _private(tmp_path)
    monkeypatch.setattr("rmg_lake.store.reexamine.reexaminations",
                        lambda root, entries: [((1,), _Broken())])
    inbox = _empty(tmp_path)
    (inbox / "notes.txt").write_text("a file the ingest still takes")
    result = open_lake(tmp_path / "lake").ingest(inbox)
    assert result.unexamined == ("the quarantine of batch 1 could not be examined again "
                                 "(ValueError: nothing to list)",)
    assert result.counts["attachment"] == 1


def test_a_name_that_is_not_utf8_is_examined_again_as_it_is(tmp_path: Path) -> None:
    inbox = _empty(tmp_path)
    folder = inbox / os.fsdecode(b"caf\xe9 back\\slash")  # (a folder of such a name too)
    folder.mkdir()
    (folder / os.fsdecode(b"roster_\xffknitting.json")).write_text("{}")
    lake = open_lake(tmp_path / "lake", create=True)
    assert lake.ingest(inbox).counts["quarantined"] == 1
    (refused,) = lake.batches()[0].files
    entry = tmp_path / "lake" / "_log" / "000001.json"  # as a release before it wrote it
    written = json.loads(entry.read_bytes())
    del written["reader"]
    entry.write_text(json.dumps(written))
    again = lake.ingest(inbox)
    (examined,) = again.reexamined
    (record,) = examined.files  # under its own name, refused for the same reason
    assert record.outcome == "duplicate" and record.path == refused.path
    assert lake.table("quarantine")["source_path"].to_list() == [
        "caf\\xe9 back\\\\slash/roster_\\xffknitting.json"]
    assert lake.ingest(inbox).reexamined == ()  # once


def test_an_examination_that_fails_half_way_leaves_no_trace(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """It decided files before it failed: the ingest after it knows nothing of them."""
    shutil.copytree(OLD / "lake", tmp_path / "lake")
    _private(tmp_path)
    inbox = _empty(tmp_path)
    name = "wip_knitting_treatment_obs03_20261124T101500"
    shutil.copy(OLD / "inbox" / f"{name}.json", inbox / f"{name} (1).json")  # a copy of
    calls = []  # a file the examination takes in

    def fails_once(*args: object) -> dict[str, str]:
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError("the disk hiccuped")
        return keep_events(*args)  # type: ignore[arg-type]

    monkeypatch.setattr("rmg_lake.store.ingest.keep_events", fails_once)
    lake = open_lake(tmp_path / "lake")
    result = lake.ingest(inbox)
    assert result.unexamined and "RuntimeError: the disk hiccuped" in result.unexamined[0]
    (record,) = result.files
    assert record.outcome == "added"  # not a duplicate of an event no entry holds
    assert lake.rebuild() == lake.root and lake.verify().ok


def test_an_import_after_the_upgrade_is_held_against_the_heal(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The upgrade's examination comes first: a file of the folder imported alone as
    another team is refused, and as the same team adds no round, nor a poorer version."""
    shutil.copytree(OLD / "lake", tmp_path / "lake")
    _private(tmp_path)
    folder = pilot_day(3, tmp_path / "Dropbox")
    study = ("--factory", "f01", "--observer", "obs01", "--lake", str(tmp_path / "lake"))
    other = run_in(capsys, "import-legacy", str(folder / "Knitting_wip.json"), *study,
                   "--team", "other")
    assert other.returncode == 1 and "9 of these rounds were imported already" in other.stderr
    same = run_in(capsys, "import-legacy", str(folder / "Knitting_wip.json"), *study,
                  "--team", "treatment")
    assert same.returncode == 0 and "0 new events (0 superseding" in same.stdout, same.stdout
    assert "examined again" not in same.stdout  # (the refused import had made it)
