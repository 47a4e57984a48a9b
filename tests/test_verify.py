"""`verify`: every file the log names is on disk, whole; orphans are reported, not wrong."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
from conftest import run_cli

from rmg_lake import Lake, open_lake, simulate


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("verify")
    simulate(root / "inbox", days=2, seed=41)
    open_lake(root / "lake", create=True).ingest(root / "inbox")
    return root / "lake"


@pytest.fixture
def lake(pristine: Path, tmp_path: Path) -> Lake:
    """A private copy of a small ingested lake, to damage."""
    shutil.copytree(pristine, tmp_path / "lake")
    return open_lake(tmp_path / "lake")


def _stored(lake: Lake, outcome: str) -> Path:
    record = next(f for f in lake.batches()[0].files if f.outcome == outcome)
    return lake.root / record.stored


def test_a_sound_lake_verifies(lake: Lake) -> None:
    verified = lake.verify()
    named = lake.batches()[0].named()  # the files it kept, and its events
    assert any(name.startswith("events/") for name in named)
    assert verified.ok and verified.findings == ()
    assert (verified.batches, verified.checked) == (1, len(named))


def test_damaged_and_missing_files_are_problems(lake: Lake) -> None:
    damaged, missing = _stored(lake, "quarantined"), _stored(lake, "added")
    damaged.write_bytes(damaged.read_bytes() + b" ")
    missing.unlink()
    verified = lake.verify()
    assert not verified.ok
    assert sorted((f.kind, f.file) for f in verified.problems) == [
        ("damaged", damaged.relative_to(lake.root).as_posix()),
        ("missing", missing.relative_to(lake.root).as_posix())]


def test_orphans_are_reported_and_repair_deletes_only_them(lake: Lake) -> None:
    orphan = lake.root / "raw" / "date=2026-11-02" / ("0" * 64 + ".json")
    orphan.write_bytes(b"{}")  # as a run killed before its commit leaves it
    orphan.chmod(0o600)  # (rmg-lake writes nothing other users may read)
    before = sorted(p for p in lake.root.rglob("*") if p.is_file() and p != orphan)
    verified = lake.verify()
    assert verified.ok and [f.file for f in verified.orphans] == [
        orphan.relative_to(lake.root).as_posix()]
    lake.verify(repair=True)
    assert not orphan.exists()
    assert sorted(p for p in lake.root.rglob("*") if p.is_file()) == before
    assert lake.verify().findings == ()


def test_a_gap_or_a_bad_entry_in_the_log_is_a_problem(lake: Lake) -> None:
    entry = lake.root / "_log" / "000001.json"
    shutil.copy(entry, lake.root / "_log" / "000003.json")
    (lake.root / "_log" / "000004.json").write_text("{")
    (lake.root / "_log" / "000004.json").chmod(0o600)  # (only the log is wrong here)
    details = [(f.file, f.detail) for f in lake.verify().problems]
    assert details == [("_log/000003.json", "expected _log/000002.json here"),
                       ("_log/000003.json", "the entry says it is batch 1"),
                       ("_log/000004.json", "expected _log/000003.json here"),
                       ("_log/000004.json", "unreadable entry (1 problem)")]


def test_verify_command_exit_codes(lake: Lake) -> None:
    sound = run_cli("verify", "--lake", str(lake.root))
    assert sound.returncode == 0, sound.stderr
    assert "OK: 1 log entry and" in sound.stdout
    _stored(lake, "attachment").unlink()
    broken = run_cli("verify", "--lake", str(lake.root))
    assert broken.returncode == 1
    assert "missing attachments/" in broken.stdout
    assert "error: 1 problem in 1 log entry" in broken.stderr
    assert "Traceback" not in broken.stderr


def test_an_ingest_over_damaged_file_records_says_which_and_what_to_do(lake: Lake,
                                                                      tmp_path: Path) -> None:
    """The file records are read side by side; one that cannot be read is named."""
    records = lake.root / lake.batches()[0].records  # type: ignore[operator]
    records.write_bytes(b"PAR1 not parquet")
    simulate(tmp_path / "more", days=1, seed=42, start=date(2026, 12, 1))
    done = run_cli("ingest", "--source", str(tmp_path / "more"), "--lake", str(lake.root))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    said = " ".join((done.stdout + done.stderr).split())
    assert "batch 1's file records cannot be read" in said and records.name in said
    assert "restore the lake from a backup" in said
