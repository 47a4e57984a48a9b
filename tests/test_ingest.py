"""A simulated sync folder becomes an append-only lake whose views match what was written."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import Ingested

from rmg_lake import Lake, LakeUnusable, Settings, open_lake, simulate
from rmg_lake._internal import files
from rmg_lake.config import Calendar
from rmg_lake.derive.frames import team_frame_name
from rmg_lake.derive.partitions import BASE, load_state
from rmg_lake.sources import LocalFolder, SourceFile
from rmg_lake.store.log import Batch


def test_every_file_is_accounted_for(ingested: Ingested) -> None:
    m, counts = ingested.manifest, ingested.result.counts
    assert counts["seen"] == m.files
    assert counts["seen"] == (counts["added"] + counts["duplicate"] + counts["quarantined"]
                              + counts["attachment"])
    assert counts["added"] == m.observation_files - m.duplicates
    assert counts["duplicate"] == m.duplicates > 0
    assert counts["quarantined"] == len(m.bad) >= 12
    assert counts["attachment"] == m.photos > 0


def test_bad_files_are_quarantined_byte_for_byte_with_a_reason(ingested: Ingested) -> None:
    batch = ingested.result.batch
    assert batch is not None
    bad = {f.path: f for f in batch.files if f.outcome == "quarantined"}
    assert set(bad) == set(ingested.manifest.bad)
    for path, record in bad.items():
        assert record.reason
        kept = ingested.lake.root / record.stored
        assert kept.read_bytes() == (ingested.inbox / path).read_bytes()
    rows = ingested.sql("select source_path, reason from quarantine")
    assert {path for path, _ in rows} == set(bad)


def test_raw_files_are_content_addressed_by_day(ingested: Ingested) -> None:
    batch = ingested.result.batch
    assert batch is not None
    for record in batch.files:
        data = (ingested.lake.root / record.stored).read_bytes()
        assert hashlib.sha256(data).hexdigest() == record.sha256
        if record.outcome == "added":
            assert record.stored == f"raw/date={record.day}/{record.sha256}.json"
            assert data == (ingested.inbox / record.path).read_bytes()


def test_views_count_what_the_simulator_wrote(ingested: Ingested) -> None:
    m = ingested.manifest
    observed = {
        (task, factory, department, team): (n, complete)
        for task, factory, department, team, n, complete in ingested.sql(
            "select task, factory, department, team, count(*), "
            "count(*) filter (status = 'complete') from observations group by all")
    }
    assert observed == {(f.task, f.factory, f.department, f.team): (f.observations, f.complete)
                        for f in m.frames}
    (rows,) = ingested.sql("select (select count(*) from roster), (select count(*) from wip), "
                           "(select count(*) from interactions)")
    assert rows == (m.roster_rows, m.wip_rows, m.interaction_rows)


def test_one_view_per_task_department_and_team(ingested: Ingested) -> None:
    for f in ingested.manifest.frames:
        view = f"{f.task}_{f.department}_{f.team}".replace("-", "_")
        (count,) = ingested.sql(f"select count(*) from {view} where factory = '{f.factory}'")
        assert count == (f.rows,)
    knitting = {c for (c,) in ingested.sql(
        "select column_name from (describe wip_knitting_treatment)")}
    linking = {c for (c,) in ingested.sql(
        "select column_name from (describe wip_linking_treatment)")}
    assert {"component", "back", "front", "sleeve", "collar"} <= knitting - linking
    assert "wip" in knitting & linking  # contract 1.1: knitting's WIP may be one number


@pytest.mark.parametrize("name", ["observations", "wip", "completion", "history"])
def test_a_frame_read_for_some_days_is_those_days_of_the_whole(
    ingested: Ingested, name: str,
) -> None:
    whole = ingested.lake.table(name)
    first, last = whole["day"].min(), whole["day"].max()
    assert isinstance(first, date) and isinstance(last, date)
    start, end = first + timedelta(days=3), first + timedelta(days=5)
    some = ingested.lake.table(name, start, end)
    assert some.height > 0
    assert some.equals(whole.filter(pl.col("day").is_between(start, end)))
    assert ingested.lake.table(name, end=first - timedelta(days=1)).schema == whole.schema
    assert ingested.lake.table(name, start=last + timedelta(days=1)).is_empty()


def test_a_range_of_days_names_only_the_partitions_that_may_hold_them() -> None:
    from rmg_lake.derive.partitions import Derived

    parts = {"2026-10-31": "a", "2026-11-01": "b", "2026-11-02": "c", "2026-12-01": "d"}
    state = Derived("/lake", 1, {
        "wip": parts, "teams/wip_x": {"2026-10": "m10", "2026-11": "m11", "2026-12": "m12"},
        "history": {"b000001": "h1"}, "batches": {"all": "w"}, "roster": {"empty": "e"}})
    nov1, nov2 = date(2026, 11, 1), date(2026, 11, 2)
    assert state.files("wip", nov1, nov2) == ["b", "c"]
    assert state.files("wip", start=nov2) == ["c", "d"]
    assert state.files("wip", end=nov1) == ["a", "b"]
    assert state.files("wip") == ["a", "b", "c", "d"]
    assert state.files("teams/wip_x", nov2, nov2) == ["m11"]
    assert state.files("teams/wip_x", date(2026, 10, 31), nov1) == ["m10", "m11"]
    for name, whole in (("history", ["h1"]), ("batches", ["w"]), ("roster", ["e"])):
        assert state.files(name, nov1, nov1) == whole  # not by day: read whole, then filtered


def test_later_versions_supersede_earlier_ones(ingested: Ingested) -> None:
    current = dict(ingested.sql("select observation_id, source_path from observations"))
    assert current == ingested.manifest.current
    (superseding,) = ingested.sql("select sum(versions - 1) from observations")
    assert superseding == (ingested.manifest.superseded,)
    assert ingested.result.superseding == ingested.manifest.superseded > 0


def test_timestamps_are_utc_and_day_is_dhaka_local(ingested: Ingested) -> None:
    rows = ingested.sql("select typeof(started_at), day, "
                        "cast(timezone('Asia/Dhaka', started_at) as date) from observations")
    assert {kind for kind, _, _ in rows} == {"TIMESTAMP WITH TIME ZONE"}
    assert all(day == local for _, day, local in rows)


def test_completion_follows_the_protocol(ingested: Ingested) -> None:
    """Every observation the simulator made counts, but for back-checks (a second
    observer's wip round: a measure of agreement, not a round of the protocol)."""
    frame = ingested.lake.completion()
    sums = frame.group_by("task", "factory", "department", "team").agg(
        pl.col("completed").sum(), pl.col("attempted").sum())
    totals = {(task, factory, department, team): (completed, attempted)
              for task, factory, department, team, completed, attempted in sums.iter_rows()}
    checks = ingested.lake.table("observations").filter(
        pl.col("observation_id").is_in(list(ingested.manifest.back_checks)))
    assert checks.height == len(ingested.manifest.back_checks) > 0
    checked = {(task, factory, department, team): (complete, n) for
               task, factory, department, team, complete, n in checks.group_by(
                   "task", "factory", "department", "team").agg(
                   (pl.col("status") == "complete").sum(), pl.len()).iter_rows()}
    assert totals == {
        (key := (f.task, f.factory, f.department, f.team)):
        (f.complete - checked.get(key, (0, 0))[0], f.observations - checked.get(key, (0, 0))[1])
        for f in ingested.manifest.frames}
    for row in frame.iter_rows(named=True):
        if row["day"].weekday() == 4:  # Friday
            assert (row["status"], row["expected"]) == ("off", 0)
        else:
            assert row["expected"] == {"roster": 1, "wip": 4, "interactions": 1}[row["task"]]
            assert row["status"] == ("done" if row["completed"] >= row["expected"] else
                                     "partial" if row["completed"] else "missing")
    days = sorted(set(frame["day"]))
    assert len(days) == (days[-1] - days[0]).days + 1  # every day, off days too


def test_a_second_ingest_adds_nothing(ingested: Ingested) -> None:
    again = ingested.lake.ingest(ingested.inbox)
    assert again.batch is None and again.counts["added"] == 0
    assert len(ingested.lake.batches()) == 1


def test_new_files_arrive_as_a_new_batch(tmp_path: Path) -> None:
    simulate(tmp_path / "inbox", days=3, seed=1, bad_files=False)
    lake = open_lake(tmp_path / "lake", create=True)
    first = lake.ingest(tmp_path / "inbox")
    assert first.batch is not None
    later = simulate(tmp_path / "later", days=2, seed=2, start=date(2026, 11, 4))
    shutil.copytree(tmp_path / "later", tmp_path / "inbox" / "later")
    second = lake.ingest(tmp_path / "inbox")
    assert second.batch is not None and second.batch.batch == 2
    assert second.counts["seen"] == later.files
    assert second.counts["quarantined"] == len(later.bad)
    assert all(f.path.startswith("later/") for f in second.batch.files)


def _events(lake: Lake, name: str) -> pl.DataFrame:
    """A frame's rows without the batch that brought each (which depends on batching)."""
    return lake.table(name).drop("batch", strict=False)


def test_a_large_import_is_committed_a_part_at_a_time(
    ingested: Ingested, tmp_path: Path,
) -> None:
    """Past `batch_files` files, an ingest commits a batch per part (so its memory stays
    bounded); the frames hold what one batch would have brought."""
    lake = open_lake(tmp_path / "lake", create=True)
    result = lake.ingest(ingested.inbox, batch_files=100)
    n = ingested.manifest.files
    assert [len(b.files) for b in result.batches] == [100] * (n // 100) + [n % 100] * (n % 100 > 0)
    assert [b.batch for b in lake.batches()] == [b.batch for b in result.batches]
    assert result.counts == ingested.result.counts
    assert result.superseding == ingested.result.superseding > 0
    assert [b.settings is not None for b in result.batches] == [True] + [False] * (
        len(result.batches) - 1)
    for name in ("observations", "roster", "wip", "interactions", "completion", "quarantine"):
        assert _events(lake, name).equals(_events(ingested.lake, name)), name


def test_an_interrupted_large_import_keeps_the_parts_it_committed(
    ingested: Ingested, tmp_path: Path,
) -> None:
    class Dropping(LocalFolder):
        """Dies reading the 250th file (oldest first, as an ingest takes them)."""

        def read(self, file: SourceFile) -> bytes:
            if file == fatal:
                raise RuntimeError("the run is killed")
            return super().read(file)

    fatal = sorted(LocalFolder(ingested.inbox).list(), key=lambda f: (f.modified, f.path))[249]

    lake = open_lake(tmp_path / "lake", create=True)
    with pytest.raises(RuntimeError):
        lake.ingest(Dropping(ingested.inbox), batch_files=100)
    assert [len(b.files) for b in lake.batches()] == [100, 100]  # the third never committed
    state = load_state(lake.root)  # each part was derived as it was committed
    assert state is not None and state.entries == 2
    assert lake.table("observations")["source_path"].is_in(
        [f.path for b in lake.batches() for f in b.files]).all()
    rest = lake.ingest(ingested.inbox, batch_files=100)
    assert rest.batches[0].batch == 3
    assert sum(len(b.files) for b in lake.batches()) == ingested.manifest.files
    for name in ("observations", "wip", "completion"):
        assert _events(lake, name).equals(_events(ingested.lake, name)), name


def test_rebuild_gives_byte_identical_frames(ingested: Ingested) -> None:
    frames = ingested.lake.root / "frames"

    def digests() -> dict[str, str]:
        return {p.relative_to(frames).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(frames.rglob("*.parquet"))}

    before = digests()
    teams = {(f.task, f.department, f.team) for f in ingested.manifest.frames}
    state = load_state(ingested.lake.root)
    assert state is not None  # lake-wide frames + one per task/department/team:
    assert set(state.frames) == {*BASE, *(f"teams/{team_frame_name(*t)}" for t in teams)}
    assert len(before) > len(state.frames)  # partitioned by day
    shutil.rmtree(frames)
    (ingested.lake.root / "lake.duckdb").unlink()
    ingested.lake.rebuild()
    assert digests() == before
    assert ingested.sql("select count(*) from observations")[0][0] > 0


def test_the_log_is_write_once(ingested: Ingested) -> None:
    (batch,) = ingested.lake.batches()
    with pytest.raises(LakeUnusable, match="already in the log"):
        ingested.lake.log.commit(batch)
    assert Batch.model_validate_json(
        (ingested.lake.root / "_log" / "000001.json").read_bytes()) == batch


def test_a_temp_file_a_dead_run_left_is_never_written_into(tmp_path: Path) -> None:
    """A run killed between linking a log entry and removing its temp file leaves a second
    name of the entry; a later run of the same pid must not write through it."""
    entry = tmp_path / "000007.json"
    entry.write_bytes(b"the committed entry")
    serial = next(files._serial)  # the names the next temp files would take
    for n in range(serial + 1, serial + 4):
        os.link(entry, tmp_path / f".tmp-{os.getpid()}-{threading.get_ident()}-{n}")
    files.write_atomic(tmp_path / "other.json", b"new bytes")
    assert entry.read_bytes() == b"the committed entry"
    assert (tmp_path / "other.json").read_bytes() == b"new bytes"


def test_lake_files_are_private(ingested: Ingested) -> None:
    for path in ingested.lake.root.rglob("*"):
        mode = path.stat().st_mode & 0o777
        assert mode == (0o700 if path.is_dir() else 0o600), path


def test_teams_come_from_the_data_and_the_config(tmp_path: Path) -> None:
    m = simulate(tmp_path / "inbox", days=2, factories=3, seed=5, bad_files=False)
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(tmp_path / "inbox", settings=Settings(study={"f09": {"linking": ("pilot",)}}))
    teams = set(lake.completion().select("factory", "department", "team").iter_rows())
    expected = {(f, d, t) for f, depts in m.factories_teams.items()
                for d, names in depts.items() for t in names}
    assert teams == expected | {("f09", "linking", "pilot")}
    assert set(lake.completion().filter(factory="f09")["status"]) <= {"missing", "off"}
    for task in ("roster", "wip", "interactions"):  # its frames exist, empty, for the views
        assert lake.frame(task, "linking", "pilot").height == 0
    assert "wip" in lake.frame("wip", "linking", "pilot").columns


def test_listed_holidays_are_off_days(tmp_path: Path) -> None:
    simulate(tmp_path / "inbox", days=4, seed=8, bad_files=False)  # Sun 1 – Wed 4 Nov
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(tmp_path / "inbox",
                settings=Settings(calendar=Calendar(holidays=(date(2026, 11, 2),))))
    status = lake.completion().group_by("day").agg(pl.col("status").unique())
    by_day = {day: set(s) for day, s in status.iter_rows()}
    assert by_day[date(2026, 11, 2)] == {"off"}
    assert "off" not in by_day[date(2026, 11, 3)]


def test_a_run_that_dies_after_its_commit_is_caught_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    simulate(tmp_path / "inbox", days=2, seed=12, bad_files=False)
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(tmp_path / "inbox")
    before = lake.table("observations").height
    simulate(tmp_path / "more", days=2, seed=13, start=date(2026, 11, 8), bad_files=False)
    shutil.copytree(tmp_path / "more", tmp_path / "inbox" / "more")

    def die(*args: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr("rmg_lake.derive.partitions.build_catalog", die)
        with pytest.raises(KeyboardInterrupt):
            lake.ingest(tmp_path / "inbox")
    assert len(lake.batches()) == 2  # committed, but the frames are behind
    assert lake.ingest(tmp_path / "inbox").batch is None  # … which catches them up
    import duckdb

    con = duckdb.connect(str(lake.root / "lake.duckdb"), read_only=True)
    assert con.execute("select max(batch) from batches").fetchone() == (2,)
    con.close()
    assert lake.table("observations").height > before
    assert lake.table("batches")["batch"].to_list() == [1, 2]


def test_reading_does_not_rebuild_while_a_reader_holds_the_catalog(ingested: Ingested) -> None:
    import duckdb

    frames = ingested.lake.root / "frames"
    before = frames.stat().st_ino
    con = duckdb.connect(str(ingested.lake.root / "lake.duckdb"))  # as the DuckDB CLI does
    try:
        ingested.lake.table("observations")
        ingested.lake.completion()
    finally:
        con.close()
    assert frames.stat().st_ino == before


def test_the_same_lake_by_another_path_is_not_rebuilt(ingested: Ingested, tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(ingested.lake.root)
    frames = ingested.lake.root / "frames"
    before = frames.stat().st_ino
    for path in (tmp_path / "link", ingested.lake.root / ".." / ingested.lake.root.name):
        open_lake(path).table("observations")
    assert frames.stat().st_ino == before


@pytest.mark.parametrize("error", [
    OSError(28, "No space left on device", "/lake/frames.new/wip.parquet"),
    FileNotFoundError("gone"),
    pl.exceptions.ComputeError("failed to write: No space left on device (os error 28)"),
    __import__("duckdb").IOException("Could not write file"),
])
def test_what_the_file_system_says_becomes_one_lake_error(error: Exception) -> None:
    from rmg_lake.errors import boundary

    with pytest.raises(LakeUnusable) as caught, boundary(file=Path("/lake"), kind=LakeUnusable):
        raise error
    assert "None" not in str(caught.value)
    assert str(caught.value).startswith("/lake")


def test_readers_never_fail_while_the_lake_is_rebuilt(ingested: Ingested, tmp_path: Path) -> None:
    import subprocess
    import sys

    lake_dir = tmp_path / "lake"
    shutil.copytree(ingested.lake.root, lake_dir)
    rebuilds = subprocess.Popen(
        [sys.executable, "-c", "import rmg_lake\nfor _ in range(6): "
         f"rmg_lake.open_lake({str(lake_dir)!r}).rebuild()"])
    lake, reads = open_lake(lake_dir), 0
    while rebuilds.poll() is None:
        assert lake.table("observations").height == ingested.manifest.observation_files - \
            ingested.manifest.duplicates - ingested.manifest.superseded
        reads += 1
    assert rebuilds.returncode == 0 and reads > 0


def _make_lake(folder: str, barrier: Any, results: Any) -> None:
    barrier.wait()  # all at once
    try:
        open_lake(folder, create=True)
        results.put("ok")
    except LakeUnusable as err:
        results.put(str(err))


def test_lakes_made_at_once_by_several_processes_are_one_lake(tmp_path: Path) -> None:
    import multiprocessing

    fork = multiprocessing.get_context("fork")
    outcomes = []
    for n in range(40):
        barrier, results = fork.Barrier(4), fork.Queue()
        makers = [fork.Process(target=_make_lake, args=(str(tmp_path / f"lake{n}"), barrier,
                                                        results)) for _ in range(4)]
        for maker in makers:
            maker.start()
        for maker in makers:
            maker.join(timeout=60)
        outcomes += [results.get(timeout=10) for _ in makers]
    assert set(outcomes) == {"ok"}
    lake = tmp_path / "lake0"
    for path in list(lake.iterdir()):
        if not path.name.startswith("."):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    open_lake(lake, create=True)  # a leftover .lock does not make it "not empty"


def test_two_handles_in_one_process_share_the_lock(ingested: Ingested) -> None:
    from rmg_lake import Lake

    first, second = Lake(ingested.lake.root, wait=1), Lake(ingested.lake.root, wait=1)
    mark = ingested.lake.root / "frames" / "mark"
    mark.touch()  # a rebuild makes the folder anew, without it
    with first._writing():
        holder = first.lock.holder()
        assert holder is not None and holder.pid == os.getpid()
        second.rebuild()  # the same process: no deadlock, no time-out (a second's wait)
        assert not mark.exists()  # it did rebuild,
        assert first.lock.holder() == holder  # and left the lock, and its holder, to first
    assert first.lock.holder() is None
