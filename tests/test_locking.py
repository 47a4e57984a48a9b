"""One writer at a time: a second one waits a bounded time and names the first; a killed
writer's lock is taken over, and said to be."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import Ingested

from rmg_lake import open_lake

HOLD = ("import sys\nfrom pathlib import Path\nfrom rmg_lake import open_lake\n"
        "lake = open_lake(Path(sys.argv[1]))\n"
        "with lake.lock.held():\n"
        "    print('held', flush=True)\n"
        "    sys.stdin.readline()\n")


@pytest.fixture
def lake(ingested: Ingested, tmp_path: Path) -> Path:
    shutil.copytree(ingested.lake.root, tmp_path / "lake")
    open_lake(tmp_path / "lake").refresh()  # its views point at its own files
    return tmp_path / "lake"


def _holding(lake: Path) -> subprocess.Popen[str]:
    """Another process, holding the lake's lock through the library until told to stop."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lake)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    return holder


def _rmg_lake(*args: str, wait: str = "600") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rmg_lake", *args], capture_output=True,
                          text=True, timeout=120, check=False,
                          env={**os.environ, "RMG_LAKE_LOCK_WAIT": wait})


def test_a_second_writer_gives_up_after_a_bounded_wait_naming_the_first(lake: Path) -> None:
    holder = _holding(lake)
    try:
        started = time.monotonic()
        second = _rmg_lake("rebuild", "--lake", str(lake), wait="1")
        waited = time.monotonic() - started
    finally:
        holder.communicate("\n", timeout=60)
    assert second.returncode == 1 and waited < 30
    whom = f"pid {holder.pid} on {socket.gethostname()}, since "
    assert f"writing this lake ({whom}" in second.stderr
    assert "waiting for it to finish (up to 1 s)" in second.stderr
    assert "Traceback" not in second.stderr
    assert not (lake / ".lock.holder").exists()  # the first let go, and said so


def test_a_killed_writers_lock_is_taken_over_and_reported(lake: Path) -> None:
    holder = _holding(lake)
    holder.send_signal(signal.SIGKILL)
    holder.communicate(timeout=60)
    assert (lake / ".lock.holder").exists()  # left behind by the killed run
    started = time.monotonic()
    after = _rmg_lake("rebuild", "--lake", str(lake), wait="30")
    assert after.returncode == 0, after.stderr
    assert time.monotonic() - started < 25  # the kernel let go of the lock: no waiting
    assert f"The last run on this lake (pid {holder.pid} on" in after.stderr
    assert "stopped before it finished" in after.stderr
    assert not (lake / ".lock.holder").exists()


def test_an_open_reader_neither_blocks_the_writer_nor_breaks(lake: Path, tmp_path: Path) -> None:
    import duckdb

    from rmg_lake.simulate import simulate

    reader = duckdb.connect(str(lake / "lake.duckdb"), read_only=True)  # as `duckdb` does
    try:
        views = [row[0] for row in reader.execute(
            "select view_name from duckdb_views() where not internal").fetchall()]
        counts = {v: reader.execute(f'select count(*) from "{v}"').fetchone() for v in views}
        simulate(tmp_path / "more", days=1, seed=95)
        writer = _rmg_lake("ingest", "--source", str(tmp_path / "more"), "--lake", str(lake),
                           wait="5")
        assert writer.returncode == 0, writer.stderr
        assert "Batch 2" in writer.stdout
        for view in views:  # the catalog it opened still answers, whole, as it was
            assert reader.execute(f'select count(*) from "{view}"').fetchone() == counts[view]
    finally:
        reader.close()
    fresh = duckdb.connect(str(lake / "lake.duckdb"), read_only=True)
    try:
        assert fresh.execute("select max(batch) from batches").fetchone() == (2,)
    finally:
        fresh.close()
