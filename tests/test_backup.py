"""Backups: timestamped versions that share one object store and restore byte for byte."""

from __future__ import annotations

import hashlib
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from conftest import Ingested, run_cli

from rmg_lake import LakeError, backup, restore, simulate, versions
from rmg_lake.deliver.targets import FolderTarget


def _kept(lake: Path) -> dict[str, str]:
    """The log, raw, quarantined and attached files of a lake, by path and sha256."""
    return {p.relative_to(lake).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for part in ("_log", "raw", "quarantine", "attachments")
            for p in sorted((lake / part).rglob("*")) if p.is_file()}


def test_a_backup_restores_byte_for_byte(ingested: Ingested, tmp_path: Path) -> None:
    target = FolderTarget(tmp_path / "usb")
    first = backup(ingested.lake, target)
    assert first.uploaded == first.objects > 1000
    restored = restore(target, tmp_path / "restored")
    assert _kept(restored.root) == _kept(ingested.lake.root)
    frames = ingested.lake.root / "frames"
    for parquet in frames.rglob("*.parquet"):  # derived again, the same
        assert (restored.root / "frames" / parquet.relative_to(frames)).read_bytes() == \
            parquet.read_bytes()


def test_a_second_backup_copies_nothing_old(ingested: Ingested, tmp_path: Path) -> None:
    target = FolderTarget(tmp_path / "usb")
    backup(ingested.lake, target, now=datetime(2026, 11, 20, tzinfo=UTC))
    again = backup(ingested.lake, target, now=datetime(2026, 11, 21, tzinfo=UTC))
    assert again.uploaded == 0
    assert len(versions(target)) == 2


def test_every_version_restores_on_its_own(tmp_path: Path) -> None:
    from rmg_lake import open_lake

    simulate(tmp_path / "inbox", days=2, seed=31)
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(tmp_path / "inbox")
    target = FolderTarget(tmp_path / "usb")
    backup(lake, target, now=datetime(2026, 11, 20, tzinfo=UTC))
    simulate(tmp_path / "more", days=2, seed=32, start=date(2026, 11, 8))
    shutil.copytree(tmp_path / "more", tmp_path / "inbox" / "more")
    lake.ingest(tmp_path / "inbox")
    backup(lake, target, now=datetime(2026, 11, 21, tzinfo=UTC))
    old = restore(target, tmp_path / "old", version="2026-11-20")
    new = restore(target, tmp_path / "new")
    assert [len(old.batches()), len(new.batches())] == [1, 2]
    assert _kept(new.root) == _kept(lake.root)


def test_a_damaged_backup_is_refused(ingested: Ingested, tmp_path: Path) -> None:
    target = FolderTarget(tmp_path / "usb")
    backup(ingested.lake, target)
    victim = next((tmp_path / "usb" / "backups" / "objects").rglob("*"))
    while victim.is_dir():
        victim = next(victim.iterdir())
    victim.write_bytes(b"bit rot")
    with pytest.raises(LakeError, match="damaged"):
        restore(target, tmp_path / "restored")


def test_backup_and_restore_commands(ingested: Ingested, tmp_path: Path) -> None:
    made = run_cli("backup", "--to", str(tmp_path / "usb"), "--lake", str(ingested.lake.root),
                   "--prune")
    assert made.returncode == 0, made.stderr
    assert "new) as backups/" in made.stdout
    assert "Kept 1 version; deleted 0 versions and 0 unused objects." in made.stdout
    back = run_cli("restore", str(tmp_path / "usb"), "--lake", str(tmp_path / "restored"))
    assert back.returncode == 0, back.stderr
    assert "`rmg-lake verify` finds every file whole" in back.stdout
    assert _kept(tmp_path / "restored") == _kept(ingested.lake.root)


def test_a_damaged_lake_is_not_backed_up(tmp_path: Path) -> None:
    from rmg_lake import open_lake

    simulate(tmp_path / "inbox", days=1, seed=33)
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(tmp_path / "inbox")
    record = next(f for f in lake.batches()[0].files if f.outcome == "added")
    (lake.root / record.stored).write_bytes(b"bit rot")
    with pytest.raises(LakeError, match="damaged") as caught:
        backup(lake, FolderTarget(tmp_path / "usb"))
    assert caught.value.file == record.stored
    assert versions(FolderTarget(tmp_path / "usb")) == []  # no manifest: no version


def test_a_lake_missing_a_file_is_not_backed_up(tmp_path: Path) -> None:
    from rmg_lake import open_lake

    simulate(tmp_path / "inbox", days=1, seed=34)
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(tmp_path / "inbox")
    record = next(f for f in lake.batches()[0].files if f.outcome == "attachment")
    (lake.root / record.stored).unlink()
    made = run_cli("backup", "--to", str(tmp_path / "usb"), "--lake", str(lake.root))
    assert made.returncode == 1 and "Traceback" not in made.stderr
    assert "missing from the lake" in made.stderr and "rmg-lake verify" in made.stderr


def test_prune_keeps_what_the_policy_says(ingested: Ingested, tmp_path: Path) -> None:
    from rmg_lake import prune

    target = FolderTarget(tmp_path / "usb")
    days = ["2025-11-01", "2026-12-09", "2026-12-10", "2026-12-20", "2026-12-30"]
    for day in days:
        backup(ingested.lake, target, now=datetime.fromisoformat(f"{day}T06:00:00+00:00"))
    leftover = tmp_path / "usb" / "backups" / "objects" / "ff" / ("f" * 62)
    leftover.write_bytes(b"left by a backup that died before its manifest")
    pruned = prune(target, now=datetime(2026, 12, 31, tzinfo=UTC))
    kept_days = [key.split("/")[1][:10] for key in pruned.kept]
    assert kept_days == ["2026-12-10", "2026-12-20", "2026-12-30"]  # a year; a week; 14 days
    assert [key.split("/")[1][:10] for key in pruned.deleted] == ["2025-11-01", "2026-12-09"]
    assert pruned.objects_deleted == 1 and not leftover.exists()
    restored = restore(target, tmp_path / "restored", version="2026-12-10")
    assert _kept(restored.root) == _kept(ingested.lake.root)
