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
    after = _rmg_lake("rebuild", "--lake", str(lake), wait="30")
    assert after.returncode == 0, after.stderr
    assert "waiting for it to finish" not in after.stderr  # the kernel let go of the lock
    assert f"The last run on this lake (pid {holder.pid} on" in after.stderr
    assert "stopped before it finished" in after.stderr
    assert not (lake / ".lock.holder").exists()


def test_an_open_reader_neither_blocks_the_writer_nor_breaks(lake: Path, tmp_path: Path) -> None:
    import duckdb

    from rmg_lake import simulate

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


SLOW_INGEST = """
import sys, time
from pathlib import Path
from rmg_lake import open_lake
from rmg_lake.sources.local import LocalFolder

class Slow(LocalFolder):  # a sync folder on a slow disk: 30 ms a file
    def read(self, file):
        time.sleep(0.03)
        return super().read(file)

lake = open_lake(Path(sys.argv[1]))
result = lake.ingest(Slow(sys.argv[2]), batch_files=40, workers=1)
print(len(result.batches), flush=True)
"""


def test_a_reader_reads_the_last_derived_state_at_once_while_a_slow_ingest_writes(
        lake: Path, tmp_path: Path) -> None:
    from rmg_lake import simulate

    simulate(tmp_path / "more", days=2, observers=2, seed=96, photos=False)
    before = open_lake(lake).table("observations").height
    writer = subprocess.Popen([sys.executable, "-c", SLOW_INGEST, str(lake),
                               str(tmp_path / "more")], stdout=subprocess.PIPE, text=True)
    reads: list[tuple[float, int, bool]] = []  # (seconds, rows, the writer held the lock)
    try:
        while writer.poll() is None:
            writing = (lake / ".lock.holder").exists()
            started = time.monotonic()
            rows = open_lake(lake).table("observations").height  # as in a notebook
            reads.append((time.monotonic() - started, rows, writing))
            time.sleep(0.1)
        batches = int(writer.communicate(timeout=60)[0])
    finally:
        writer.kill()
    assert writer.returncode == 0 and batches >= 2  # several batches, each derived
    during = [read for read in reads if read[2]]
    assert max(seconds for seconds, _, _ in reads) < 1.5, reads  # nobody waited for it
    assert len(during) >= 10, reads  # the ingest took seconds, read all along
    rows = [n for _, n, _ in reads]
    assert rows == sorted(rows) and rows[0] == before  # committed states, in order
    assert len(set(rows)) >= 2  # the frames grew as the ingest went on
    assert open_lake(lake).table("observations").height > rows[-1] or rows[-1] > before
