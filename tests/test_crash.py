"""Crash safety: `rmg-lake ingest` killed with SIGKILL anywhere leaves a lake that verifies,
whose readers see only committed batches, and which the next run completes exactly.

The default run kills 25 runs (deterministic points through the fault hook, and random
moments while the run holds the lake open, each checked to have died there of SIGKILL);
`just torture` kills 200 (RMG_LAKE_KILLS=200).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pytest

from rmg_lake import open_lake, simulate
from rmg_lake._internal.faults import VARIABLE
from rmg_lake.derive.partitions import load_state
from rmg_lake.store.locking import WriterLock

KILLS = int(os.environ.get("RMG_LAKE_KILLS", "25"))
POINTS = ["raw-written:1", "raw-written:40", "raw-written:120", "before-commit",
          "after-commit", "partition-written:1", "partition-written:6",
          "partition-written:30", "catalog-written", "state-written"]


@dataclass(frozen=True)
class Field:
    inbox: Path  # day one (already in the lake) and day two (the run that is killed)
    before: Path  # the lake holding day one
    after: Path  # the same lake after an ingest of day two that was never killed
    held: float  # how long that ingest held the lake open (its writer lock), in seconds


def _ingest(inbox: Path, lake: Path, kill_at: str | None = None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != VARIABLE}
    if kill_at is not None:
        env[VARIABLE] = kill_at
    return subprocess.Popen([sys.executable, "-m", "rmg_lake", "ingest", "--source",
                             str(inbox), "--lake", str(lake)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _holding(lake: Path, run: subprocess.Popen[bytes]) -> bool:
    """Whether `run` holds the lake open: the lock's holder file names it (a run that is
    killed leaves it behind; one that lets go removes it)."""
    holder = WriterLock(lake).holder()
    return holder is not None and holder.pid == run.pid


def _opened(lake: Path, run: subprocess.Popen[bytes]) -> float:
    """Wait until `run` has opened the lake; when it did (time.monotonic)."""
    deadline = time.monotonic() + 120
    while not _holding(lake, run):
        assert run.poll() is None, "the run ended without opening the lake"
        assert time.monotonic() < deadline, "the run never opened the lake"
        time.sleep(0.01)
    return time.monotonic()


@pytest.fixture(scope="module")
def field(tmp_path_factory: pytest.TempPathFactory) -> Field:
    root = tmp_path_factory.mktemp("crash")
    simulate(root / "inbox" / "one", days=1, observers=2, seed=91)
    lake = open_lake(root / "before", create=True)
    lake.ingest(root / "inbox")
    simulate(root / "inbox" / "two", days=1, observers=2, seed=92, start=date(2026, 11, 2))
    shutil.copytree(root / "before", root / "after")
    run = _ingest(root / "inbox", root / "after")
    opened = _opened(root / "after", run)
    while _holding(root / "after", run):
        time.sleep(0.01)
    held = time.monotonic() - opened
    assert run.wait(120) == 0
    return Field(root / "inbox", root / "before", root / "after", held)


def _kills() -> list[str]:
    """The fault hook's points, then random moments while the lake is open (seconds
    after it was opened, as a fraction of how long an uninterrupted run holds it)."""
    chosen = [f"at {point}" for point in POINTS]
    while len(chosen) < KILLS:
        chosen.append(f"at random moment {len(chosen) - len(POINTS) + 1}")
    return chosen[:KILLS]


def _killed_at_random(field: Field, lake: Path, kill: str) -> None:
    """Kill an ingest of `lake` at a random moment while it holds the lake open: a moment
    at which the run turns out to have let go of the lake (or ended) is drawn again, on a
    fresh copy."""
    rng = random.Random(f"2026 {kill}")
    for _ in range(10):
        shutil.rmtree(lake, ignore_errors=True)
        shutil.copytree(field.before, lake)
        open_lake(lake).refresh()  # its views point at its own files, not the original's
        run = _ingest(field.inbox, lake)
        opened = _opened(lake, run)
        time.sleep(max(0.0, opened + rng.random() * field.held - time.monotonic()))
        run.send_signal(signal.SIGKILL)
        code = run.wait(120)
        if code == -signal.SIGKILL and _holding(lake, run):
            return  # killed while the lake was open: this kill counts
        assert code in (0, -signal.SIGKILL), f"the run ended by itself with {code}"
    pytest.fail("ten random moments all fell after the run let go of the lake")


def _derived(root: Path) -> dict[str, bytes]:
    state = load_state(root)
    assert state is not None
    return {f: (root / f).read_bytes() for name, parts in state.frames.items()
            if name != "batches" for f in parts.values()}


@pytest.mark.parametrize("kill", _kills())
def test_a_killed_ingest_leaves_a_lake_the_next_run_completes(
    field: Field, tmp_path: Path, kill: str,
) -> None:
    lake_dir = tmp_path / "lake"
    if kill.startswith("at random"):
        _killed_at_random(field, lake_dir, kill)
    else:
        shutil.copytree(field.before, lake_dir)
        open_lake(lake_dir).refresh()  # its views point at its own files, not the original's
        run = _ingest(field.inbox, lake_dir, kill_at=kill.removeprefix("at "))
        assert run.wait(120) == -signal.SIGKILL, "the run passed the point without dying"

    committed = sorted(int(p.stem) for p in (lake_dir / "_log").glob("[0-9]*.json"))
    assert committed in ([1], [1, 2])
    _readers_see_only_committed_batches(lake_dir, committed)
    lake = open_lake(lake_dir)
    verified = lake.verify()
    assert verified.ok, verified.problems  # orphans allowed: a killed run leaves them

    lake.ingest(field.inbox)  # the next run
    assert [b.batch for b in lake.batches()] == [1, 2]
    paths = [f.path for b in lake.batches() for f in b.files]
    assert len(paths) == len(set(paths)) == sum(
        1 for p in field.inbox.rglob("*") if p.is_file())  # every file once
    assert _derived(lake_dir) == _derived(field.after)  # every observation once, exactly
    assert lake.verify().ok


def _readers_see_only_committed_batches(lake: Path, committed: list[int]) -> None:
    """What the DuckDB views show right after the kill: whole, and nothing uncommitted."""
    if not (lake / "lake.duckdb").exists():
        return
    con = duckdb.connect(str(lake / "lake.duckdb"), read_only=True)
    try:
        views = [row[0] for row in con.execute(
            "select view_name from duckdb_views() where not internal").fetchall()]
        for view in views:  # every file each view names is there
            con.execute(f'select count(*) from "{view}"').fetchone()
        batches = {row[0] for row in con.execute(
            "select distinct batch from observations").fetchall()}
        assert batches <= set(committed)
        twice = con.execute("select count(*) - count(distinct observation_id) "
                            "from observations").fetchone()
        assert twice == (0,)
    finally:
        con.close()


def test_a_commit_is_synced_file_and_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Power loss: the entry's bytes and its name in `_log/` reach the disk before the
    commit returns, and the files it names were synced before it was written."""
    simulate(tmp_path / "inbox", days=1, observers=1, seed=96)
    lake = open_lake(tmp_path / "lake", create=True)
    synced: list[str] = []  # what was flushed, in order: "sync" for everything
    real_fsync, real_sync = os.fsync, os.sync

    def fsync(fd: int) -> None:
        synced.append(str(Path(f"/proc/self/fd/{fd}").readlink()))
        real_fsync(fd)

    def sync() -> None:
        synced.append("sync")
        real_sync()

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "sync", sync)
    lake.ingest(tmp_path / "inbox")
    log = str(lake.root / "_log")
    entry = next(i for i, path in enumerate(synced) if path.startswith(f"{log}/.tmp-"))
    assert synced.index("sync") < entry  # the raw files first,
    assert log in synced[entry:]  # then the entry (written under a temporary name), then
    assert (lake.root / "_log" / "000001.json").is_file()  # its folder, naming it
