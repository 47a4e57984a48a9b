"""Versions, duplicates and re-reads: which event is current, whatever the arrival order."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import orjson
import pytest

from rmg_lake import Lake, open_lake
from rmg_lake.derive.partitions import Derived

WIP = "wip_knitting_treatment_obs03_20261124T101500.json"
OBSERVATION = {
    "schema_version": 1, "task": "wip", "observation_id": "6f1c0d1e-2b7e-4c41-9f3a-1a2b3c4d5e6f",
    "observer": "obs03", "factory": "f01", "department": "knitting", "team": "treatment",
    "started_at": "2026-11-24T10:15:00+06:00", "ended_at": "2026-11-24T10:35:00+06:00",
    "status": "complete",
    "machines": {"KN1": {"mc_status": "manned", "worker_id": "w0101", "style": "s-12",
                         "component": "body", "back": 4, "front": 3, "sleeve": 6,
                         "collar": None}},
}


def put(inbox: Path, name: str, mtime: int, **changes: object) -> Path:
    """Write an observation file as the sync client would, saved at `mtime` (seconds)."""
    path = inbox / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps({**OBSERVATION, **changes}))
    os.utime(path, ns=(mtime * 10**9, mtime * 10**9))
    return path


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return open_lake(tmp_path / "lake", create=True)


def current_notes(lake: Lake) -> tuple[object, int]:
    (row,) = lake.table("observations").select("notes", "versions").iter_rows()
    return row[0], row[1]


def test_a_later_version_in_a_later_batch_supersedes(tmp_path: Path, lake: Lake) -> None:
    put(tmp_path / "in", WIP, 1000, notes="first")
    lake.ingest(tmp_path / "in")
    put(tmp_path / "in", WIP.replace(".json", " (1).json"), 2000, notes="corrected")
    second = lake.ingest(tmp_path / "in")
    assert second.superseding == 1
    assert current_notes(lake) == ("corrected", 2)


def test_an_older_version_arriving_late_does_not_win(tmp_path: Path, lake: Lake) -> None:
    put(tmp_path / "in", WIP, 2000, notes="corrected")
    lake.ingest(tmp_path / "in")
    put(tmp_path / "in", "obs03/" + WIP, 1000, notes="first")
    late = lake.ingest(tmp_path / "in")
    assert late.counts["added"] == 1 and late.superseding == 0
    assert current_notes(lake) == ("corrected", 2)


def test_versions_in_one_batch_go_by_time_not_by_name(tmp_path: Path, lake: Lake) -> None:
    put(tmp_path / "in", WIP, 2000, notes="corrected")
    put(tmp_path / "in", WIP.replace(".json", " (conflicted copy 2026-11-24).json"), 1000,
        notes="first")
    lake.ingest(tmp_path / "in")
    assert current_notes(lake) == ("corrected", 2)
    assert lake.rebuild() == lake.root and current_notes(lake) == ("corrected", 2)


def test_a_returns_after_b_as_a_duplicate(tmp_path: Path, lake: Lake) -> None:
    put(tmp_path / "in", WIP, 1000, notes="A")
    lake.ingest(tmp_path / "in")
    put(tmp_path / "in", "b/" + WIP, 2000, notes="B")
    lake.ingest(tmp_path / "in")
    put(tmp_path / "in", "again/" + WIP, 3000, notes="A")
    third = lake.ingest(tmp_path / "in")
    assert third.counts == {"seen": 1, "added": 0, "duplicate": 1, "quarantined": 0,
                            "attachment": 0, "deferred": 0}
    assert current_notes(lake) == ("B", 2)


def test_same_bytes_under_a_wrong_name_are_quarantined_not_duplicates(
    tmp_path: Path, lake: Lake,
) -> None:
    good = put(tmp_path / "in", WIP, 1000)  # taken first: the copies are saved later
    wrong_team = WIP.replace("treatment", "control")
    for name in ("notes.json", wrong_team):
        shutil.copy(good, tmp_path / "in" / name)
        os.utime(tmp_path / "in" / name, ns=(2 * 10**12, 2 * 10**12))
    outcomes = {f.path: f.outcome for f in lake.ingest(tmp_path / "in").batch.files}  # type: ignore[union-attr]
    assert outcomes == {WIP: "added", "notes.json": "quarantined", wrong_team: "quarantined"}


def test_on_equal_times_the_later_arrival_wins(tmp_path: Path, lake: Lake) -> None:
    put(tmp_path / "in", WIP, 1000, notes="first to arrive")
    lake.ingest(tmp_path / "in")
    put(tmp_path / "in", "later/" + WIP, 1000, notes="second to arrive")
    assert lake.ingest(tmp_path / "in").superseding == 1
    assert current_notes(lake) == ("second to arrive", 2)
    lake.rebuild()
    assert current_notes(lake) == ("second to arrive", 2)


def test_unknown_keys_are_listed_in_the_batch_and_the_frame(tmp_path: Path, lake: Lake) -> None:
    put(tmp_path / "in", WIP, 1000, battery=81)
    result = lake.ingest(tmp_path / "in")
    assert result.batch is not None and result.batch.files[0].extra_keys == ("battery",)
    assert lake.table("observations")["extra_keys"].to_list() == [["battery"]]
    raw = lake.root / result.batch.files[0].stored
    assert orjson.loads(raw.read_bytes())["battery"] == 81


def test_touched_and_moved_files_are_not_logged_twice(tmp_path: Path, lake: Lake) -> None:
    inbox = tmp_path / "in"
    put(inbox, WIP, 1000)
    (inbox / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0jpeg")
    (inbox / "roster_knitting_treatment_obs03_20261124T080000.json").write_bytes(b"{")
    first = lake.ingest(inbox)
    assert first.counts["attachment"] == 1 and first.counts["quarantined"] == 1
    for path in inbox.iterdir():
        os.utime(path, ns=(5 * 10**12, 5 * 10**12))
    touched = lake.ingest(inbox)
    assert touched.counts == {"seen": 3, "added": 0, "duplicate": 3, "quarantined": 0,
                              "attachment": 0, "deferred": 0}
    inbox.rename(tmp_path / "moved")
    assert lake.ingest(tmp_path / "moved").batch is None
    (tmp_path / "moved" / "obs03").mkdir()
    for path in (tmp_path / "moved").glob("*.*"):
        path.rename(tmp_path / "moved" / "obs03" / path.name)  # an observer's sub-folder
    regrouped = lake.ingest(tmp_path / "moved")
    assert regrouped.counts["duplicate"] == 3
    assert lake.table("quarantine").height == 1


@pytest.mark.parametrize("spelling", ["plain", "symlink", "dotdot"])
def test_a_lake_inside_the_sync_folder_is_not_ingested(tmp_path: Path, spelling: str) -> None:
    put(tmp_path / "in", WIP, 1000)
    (tmp_path / "link").symlink_to(tmp_path / "in")
    source = {"plain": tmp_path / "in", "symlink": tmp_path / "link",
              "dotdot": tmp_path / "in" / ".." / "in"}[spelling]
    lake = open_lake(tmp_path / "in" / "lake", create=True)
    assert lake.ingest(source).counts["seen"] == 1
    assert lake.ingest(source).batch is None


def test_a_file_that_goes_away_while_read_is_taken_next_time(tmp_path: Path, lake: Lake) -> None:
    from rmg_lake.sources import LocalFolder, SourceFile

    put(tmp_path / "in", WIP, 1000)
    (tmp_path / "in" / "photo.jpg").write_bytes(b"\xff\xd8")

    class Syncing(LocalFolder):
        """The Dropbox client replaces the photo just as it is read."""

        def read(self, file: SourceFile) -> bytes:
            if file.path == "photo.jpg" and (self.root / "photo.jpg").exists():
                (self.root / "photo.jpg").rename(tmp_path / "photo.jpg")
            return super().read(file)

    first = lake.ingest(Syncing(tmp_path / "in"))
    assert first.vanished == 1 and first.counts["seen"] == 1
    (tmp_path / "photo.jpg").rename(tmp_path / "in" / "photo.jpg")
    second = lake.ingest(tmp_path / "in")
    assert second.counts["attachment"] == 1


def test_a_file_name_that_is_not_utf8_is_quarantined(tmp_path: Path, lake: Lake) -> None:
    folder = Path(os.fsdecode(os.fsencode(tmp_path / "in") + b"/Jos\xe9"))
    put(folder, WIP, 1000)  # a folder name that is not UTF-8 does not matter
    Path(os.fsdecode(os.fsencode(tmp_path / "in") + b"/caf\xe9.json")).write_bytes(b"{}")
    (tmp_path / "in" / "caf\\xe9.json").write_bytes(b"{}")  # a literal backslash: not the same
    result = lake.ingest(tmp_path / "in")
    assert result.batch is not None
    outcomes = {(f.path, f.outcome, f.reason) for f in result.batch.files}
    assert outcomes == {
        ("Jos\\xe9/" + WIP, "added", None),
        ("caf\\xe9.json", "quarantined", "the file name is not UTF-8 text"),
        ("caf\\\\xe9.json", "quarantined", "file name does not follow the contract"),
    }
    assert lake.ingest(tmp_path / "in").batch is None


def test_a_damaged_leftover_in_the_raw_store_is_replaced(tmp_path: Path, lake: Lake) -> None:
    import hashlib

    path = put(tmp_path / "in", WIP, 1000)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    leftover = lake.root / "raw" / "date=2026-11-24" / f"{digest}.json"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"")  # what a power cut before the commit can leave
    lake.ingest(tmp_path / "in")
    assert leftover.read_bytes() == path.read_bytes()
    assert lake.table("observations").height == 1


def test_two_observers_empty_uploads_are_two_bad_files(tmp_path: Path, lake: Lake) -> None:
    (tmp_path / "in").mkdir()
    for name in (WIP, "roster_linking_control_obs02_20261102T080000.json"):
        (tmp_path / "in" / name).write_bytes(b"")
    result = lake.ingest(tmp_path / "in")
    assert result.counts["quarantined"] == 2
    assert lake.table("quarantine").height == 2


def test_a_sub_folder_that_goes_away_while_listed_is_skipped(tmp_path: Path) -> None:
    from rmg_lake.sources import LocalFolder

    put(tmp_path / "in", WIP, 1000)
    put(tmp_path / "in" / "later", WIP, 1000)
    listing = LocalFolder(tmp_path / "in").list()
    assert next(listing).path == WIP
    shutil.rmtree(tmp_path / "in" / "later")  # the sync client removes it meanwhile
    assert list(listing) == []


def test_clash_copies_of_a_bad_file_are_duplicates(tmp_path: Path, lake: Lake) -> None:
    (tmp_path / "in").mkdir()
    for suffix in ("", " (conflicted copy 2026-11-24)", " (1)"):
        (tmp_path / "in" / WIP.replace(".json", f"{suffix}.json")).write_bytes(b"{")
    counts = lake.ingest(tmp_path / "in").counts
    assert (counts["quarantined"], counts["duplicate"]) == (1, 2)


def test_a_missing_frame_is_said_at_once_even_while_a_writer_works(
    tmp_path: Path, lake: Lake,
) -> None:
    import subprocess
    import sys

    from rmg_lake import LakeError

    put(tmp_path / "in", WIP, 1000)
    lake.ingest(tmp_path / "in")
    with subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom filelock import FileLock\n"
         f"lock = FileLock({str(lake.root / '.lock')!r}); lock.acquire(); print('held', "
         "flush=True); sys.stdin.readline()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        waited: list[object] = []
        lake.lock.wait, lake.lock.on_wait = 0, waited.append  # a wait is over at once
        with pytest.raises(LakeError, match="no such frame"):
            lake.frame("wip", "knitting", "no-such-team")
        assert waited == []  # the reader never waited for the writer
        holder.communicate("\n")


def test_a_reader_caught_by_a_swap_waits_and_reads_again(
    tmp_path: Path, lake: Lake, monkeypatch: pytest.MonkeyPatch,
) -> None:
    put(tmp_path / "in", WIP, 1000)
    lake.ingest(tmp_path / "in")
    refresh = lake.refresh

    def refresh_then_swap() -> Derived:
        """A writer renames frames/ away just after the reader found it current."""
        state = refresh()
        (lake.root / "frames").rename(lake.root / "frames.old")
        return state

    monkeypatch.setattr(lake, "refresh", refresh_then_swap)
    assert lake.table("observations").height == 1


def test_a_quarantined_file_is_resolved_by_the_first_later_batch_at_its_path(
        tmp_path: Path, lake: Lake) -> None:
    """Each update goes on from the quarantine before it: a file put right resolves the
    bad one before it, and a later bad version is a new quarantined file of its own."""
    inbox = tmp_path / "in"
    for mtime, status in ((1000, "done?"), (2000, "complete"), (3000, "?"), (4000, "partial")):
        put(inbox, WIP, mtime, status=status)
        lake.ingest(inbox)
    rows = lake.table("quarantine").select("batch", "source_path", "resolved_by",
                                           "resolution").rows()
    assert rows == [(1, WIP, 2, "added"), (3, WIP, 4, "added")]
    lake.rebuild()
    assert lake.table("quarantine").select("batch", "source_path", "resolved_by",
                                           "resolution").rows() == rows


def test_an_event_kept_by_a_copy_of_a_rolled_back_batch_stays_when_its_day_grows(
        tmp_path: Path, lake: Lake) -> None:
    """A copy of an event's bytes stands in for the batch that added it, once that is
    rolled back; a later ingest of another observation of the same day keeps it there."""
    inbox = tmp_path / "in"
    put(inbox, WIP, 1000)
    lake.ingest(inbox)
    put(inbox, f"again/{WIP}", 1000)  # the same bytes, somewhere else: a duplicate
    assert lake.ingest(inbox).batches[0].counts["duplicate"] == 1
    lake.rollback(1, "added by mistake")
    put(inbox, "wip_knitting_treatment_obs03_20261124T111500.json", 5000,
        observation_id="0b9e7c55-8d7f-4a6e-bb0e-2c1d3e4f5a6b",
        started_at="2026-11-24T11:15:00+06:00", ended_at="2026-11-24T11:35:00+06:00")
    lake.ingest(inbox)
    shown = lake.table("observations").select("observation_id", "batch").sort("batch").rows()
    assert shown == [(OBSERVATION["observation_id"], 2),
                     ("0b9e7c55-8d7f-4a6e-bb0e-2c1d3e4f5a6b", 4)]
    lake.rebuild()
    assert lake.table("observations").select("observation_id", "batch").sort(
        "batch").rows() == shown
