"""A lake of layout 1 (tests/data/lake-2: file records inline in the log) is read as it is,
and its first write moves each ingest's records to a Parquet file its entry names; its
entries, files and frames say the same things after."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from conftest import REPO, run_in

from rmg_lake import open_lake
from rmg_lake.derive.partitions import derive
from rmg_lake.store.log import Batch, Log
from rmg_lake.store.upgrade import LAYOUT

OLD = REPO / "tests" / "data" / "lake-2" / "lake"


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(OLD, tmp_path / "lake")
    for path in [tmp_path / "lake", *(tmp_path / "lake").rglob("*")]:
        path.chmod(0o700 if path.is_dir() else 0o600)  # (git keeps no such modes)
    return tmp_path / "lake"


def _kept(lake: Path) -> dict[str, str]:
    """Every file but the log's own, by path → sha256."""
    return {p.relative_to(lake).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in ("raw", "quarantine", "attachments", "events", "corrections")
            for p in sorted((lake / folder).rglob("*")) if p.is_file()}


def _said(lake: Path) -> list[dict[str, object]]:
    """What each entry says, its file records included, however it holds them."""
    return [e.model_dump(mode="json", exclude={"inline", "records"}) | (
        {"files": [f.model_dump(mode="json") for f in e.files]} if isinstance(e, Batch)
        else {}) for e in open_lake(lake).entries()]


@pytest.fixture(scope="module")
def before(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, object]]]:
    """The old lake's entries as read before any write, and its frames derived from them
    as they are (into a folder of their own: `derived/`)."""
    lake = _copy(tmp_path_factory.mktemp("old"))
    said = _said(lake)
    derive(lake, Log(lake).entries(), lake.parent / "derived")
    assert json.loads((lake / "_meta.json").read_text())["layout"] == 1  # read, not written
    return lake, said


def test_an_old_lake_is_read_as_it_is(before: tuple[Path, list[dict[str, object]]]) -> None:
    lake, said = before
    assert [e["kind"] for e in said] == ["ingest", "ingest", "rollback", "rollback",
                                         "correction"]
    assert len(said[0]["files"]) == 240 and not (lake / "records").exists()  # type: ignore


def test_the_first_write_upgrades_it_and_it_says_the_same(
        before: tuple[Path, list[dict[str, object]]], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    _, said = before
    lake = _copy(tmp_path)
    files = _kept(lake)
    assert run_in(capsys, "rebuild", "--lake", str(lake)).returncode == 0  # a write
    meta = json.loads((lake / "_meta.json").read_text())
    assert meta["layout"] == LAYOUT == 3 and meta["upgrades"][0]["from"] == 1
    for number in (1, 2):
        entry = json.loads((lake / "_log" / f"{number:06d}.json").read_text())
        assert "files" not in entry and entry["records"].startswith("records/")
        assert (lake / entry["records"]).is_file()
    assert _said(lake) == said  # every entry, every record
    assert {p: s for p, s in _kept(lake).items() if not p.startswith("records/")} == files
    checked = run_in(capsys, "verify", "--lake", str(lake))
    assert checked.returncode == 0, checked.stdout  # the records files are named, whole
    old = json.loads((before[0].parent / "derived" / "_derived.json").read_text())
    new = json.loads((lake / "_derived.json").read_text())
    assert new["frames"] == old["frames"]  # byte for byte (files are named by their hash)


def test_an_upgraded_lake_takes_new_files(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    from rmg_lake import simulate

    lake = _copy(tmp_path)
    simulate(tmp_path / "more", days=1, observers=2, seed=23)
    ingested = run_in(capsys, "ingest", "--source", str(tmp_path / "more"), "--lake",
                      str(lake))
    assert ingested.returncode == 0, ingested.stderr
    entries = open_lake(lake).entries()
    assert len(entries) == 6 and isinstance(entries[5], Batch)
    assert entries[5].records and entries[5].counts["seen"] == len(entries[5].files)
    assert run_in(capsys, "verify", "--lake", str(lake)).returncode == 0


def test_a_damaged_records_file_is_a_finding_and_nothing_is_called_an_orphan(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lake = _copy(tmp_path)
    open_lake(lake).upgrade()
    records = json.loads((lake / "_log" / "000002.json").read_text())["records"]
    (lake / records).chmod(0o600)
    (lake / records).write_bytes(b"not parquet")
    checked = run_in(capsys, "verify", "--lake", str(lake))
    assert checked.returncode == 1 and "Traceback" not in checked.stderr
    assert f"damaged {records} — its bytes differ from the log's sha256" in checked.stdout
    assert "orphan" not in checked.stdout  # its raw files are not known: none is deleted
    repaired = run_in(capsys, "verify", "--lake", str(lake), "--repair")
    assert repaired.returncode == 1
    assert len(list((lake / "raw").rglob("*.json"))) == len(_kept(OLD)) - len(
        [p for p in _kept(OLD) if not p.startswith("raw/")])


def test_an_interrupted_upgrade_is_finished_and_an_older_release_refuses_the_lake(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rmg_lake.store import upgrade as module

    lake = _copy(tmp_path)
    writes = 0
    real = module.write_atomic

    def dies_after_one_entry(path: Path, data: bytes, **kwargs: object) -> None:
        nonlocal writes
        if path.parent.name == "_log":
            writes += 1
            if writes == 2:
                raise KeyboardInterrupt  # killed half way
        real(path, data, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(module, "write_atomic", dies_after_one_entry)
    with pytest.raises(KeyboardInterrupt):
        open_lake(lake).upgrade()
    meta = json.loads((lake / "_meta.json").read_text())
    assert meta["layout"] == LAYOUT and "upgrading" in meta  # an older rmg-lake refuses it whole
    monkeypatch.undo()
    assert len(open_lake(lake).entries()) == 5  # readable half way
    open_lake(lake).upgrade()
    meta = json.loads((lake / "_meta.json").read_text())
    assert "upgrading" not in meta and meta["upgrades"][0]["from"] == 1
    assert all("files" not in json.loads(p.read_text())
               for p in sorted((lake / "_log").glob("*.json")))
