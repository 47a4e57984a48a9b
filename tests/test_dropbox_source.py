"""Ingest from Dropbox: the real SDK against the loopback fake, faults and all."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from dropbox import dropbox_client
from dropbox_fake import FakeDropbox, Faults

from rmg_lake import open_lake
from rmg_lake.simulate import SimulationManifest, simulate
from rmg_lake.sources.dropbox import DropboxFolder

ROOT = "/Apps/RMG Observer"
FAULTS = ("drop", "429", "500", "truncate", "corrupt")


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDropbox]:
    monkeypatch.setattr(dropbox_client, "time", SimpleNamespace(sleep=lambda s: None))
    with FakeDropbox(page_size=50) as server:
        yield server
        assert server.errors == []


def upload(fake: FakeDropbox, folder: Path, under: str = "") -> None:
    """Put every file of a simulated sync folder into the fake, with its saved time."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            modified = datetime.fromtimestamp(path.stat().st_mtime, UTC).replace(microsecond=0)
            fake.put(f"{ROOT}/{under}{path.relative_to(folder).as_posix()}", path.read_bytes(),
                     modified=modified)


def source(fake: FakeDropbox) -> DropboxFolder:
    return DropboxFolder(f"dropbox:{ROOT}", fake.client(), attempts=6)


@pytest.fixture
def study(tmp_path: Path) -> SimulationManifest:
    return simulate(tmp_path / "inbox", days=4, seed=21)


def test_a_dropbox_folder_is_ingested_like_a_local_one(
    fake: FakeDropbox, study: SimulationManifest, tmp_path: Path,
) -> None:
    upload(fake, tmp_path / "inbox")
    lake = open_lake(tmp_path / "lake", create=True)
    result = lake.ingest(source(fake))
    counts = result.counts
    assert counts["seen"] == study.files
    assert counts["added"] == study.observation_files - study.duplicates
    assert counts["quarantined"] == len(study.bad)
    assert counts["attachment"] == study.photos
    current = dict(lake.table("observations").select("observation_id", "source_path")
                   .iter_rows())
    assert current == study.current
    assert result.batch is not None and result.batch.cursor


def test_every_file_arrives_once_through_a_failing_link(
    fake: FakeDropbox, study: SimulationManifest, tmp_path: Path,
) -> None:
    upload(fake, tmp_path / "inbox")
    fake.faults = Faults(rate=0.2, kinds=FAULTS, seed=3)
    lake = open_lake(tmp_path / "lake", create=True)
    first = lake.ingest(source(fake))
    assert sum(fake.injected.values()) > 50
    runs = [first]
    if first.counts["deferred"]:
        runs.append(lake.ingest(source(fake)))  # at most one rerun for deferred files
    assert runs[-1].counts["deferred"] == 0
    kept = [f for run in runs if run.batch for f in run.batch.files]
    assert sorted(f.path for f in kept) == sorted(
        p.relative_to(tmp_path / "inbox").as_posix()
        for p in (tmp_path / "inbox").rglob("*") if p.is_file())
    for record in kept:  # hash-checked: the kept bytes are what was uploaded
        assert (lake.root / record.stored).read_bytes() == \
            (tmp_path / "inbox" / record.path).read_bytes()
    assert lake.table("observations").height == len(study.current)


def test_the_next_run_lists_only_what_changed(
    fake: FakeDropbox, study: SimulationManifest, tmp_path: Path,
) -> None:
    upload(fake, tmp_path / "inbox")
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(source(fake))
    later = simulate(tmp_path / "later", days=1, seed=22, start=date(2026, 11, 8))
    upload(fake, tmp_path / "later", under="later/")
    fake.delete(f"{ROOT}/{next(iter(study.current.values()))}")
    fake.requests.clear()
    dbx = source(fake)
    second = lake.ingest(dbx)
    assert second.counts["seen"] == later.files
    assert "/2/files/list_folder" not in fake.requests  # resumed from the stored cursor
    assert len(dbx.deleted) == 1  # reported; nothing leaves the lake
    assert lake.table("observations").height == len(study.current) + len(later.current)


def test_an_expired_cursor_falls_back_to_a_full_listing(
    fake: FakeDropbox, study: SimulationManifest, tmp_path: Path,
) -> None:
    upload(fake, tmp_path / "inbox")
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(source(fake))
    fake.expire_cursors()
    dbx = source(fake)
    again = lake.ingest(dbx)
    assert dbx.reset and again.batch is None  # everything listed again, nothing new


def test_a_run_killed_before_its_commit_resumes_from_the_committed_cursor(
    fake: FakeDropbox, study: SimulationManifest, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    upload(fake, tmp_path / "inbox")
    lake = open_lake(tmp_path / "lake", create=True)
    with monkeypatch.context() as patch:
        def die(batch: object) -> None:
            raise KeyboardInterrupt

        patch.setattr(lake.log, "commit", die)
        with pytest.raises(KeyboardInterrupt):
            lake.ingest(source(fake))
    assert lake.batches() == []
    result = lake.ingest(source(fake))
    assert result.counts["seen"] == study.files
    assert lake.table("observations").height == len(study.current)
