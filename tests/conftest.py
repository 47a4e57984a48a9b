"""Shared fixtures: a simulated sync folder and a lake made from it, on real disk.

Every test runs in a scrubbed environment: no Dropbox credentials or rmg-lake settings of
the machine's user, and a home and config folder of its own, so that no test can reach
the real Dropbox with a researcher's sign-in or read their study secret.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest
import tenacity
from dropbox import dropbox_client
from dropbox_fake import FakeDropbox

from rmg_lake import IngestResult, Lake, SimulationManifest, open_lake, simulate

REPO = Path(__file__).parent.parent  # the project's checkout
PILOT_APP = REPO / "tests" / "data" / "pilot"  # the 2014 pilot app's own output
KEPT = {"RMG_LAKE_KILLS"}  # the test run's own knob (`just torture`)


def _private_home(home: Path) -> dict[str, str]:
    """The variables that make `home` the user's home and config folder."""
    return {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "XDG_CACHE_HOME": str(home / ".cache"), "APPDATA": str(home / "AppData")}


def _scrub() -> None:
    """Drop the user's Dropbox and rmg-lake variables; give this run a home of its own
    (pyenv's Pythons stay found where the real home has them)."""
    os.environ.setdefault("PYENV_ROOT", str(Path("~/.pyenv").expanduser()))
    for name in list(os.environ):
        if name.startswith(("DROPBOX_", "RMG_LAKE_")) and name not in KEPT:
            del os.environ[name]
    home = Path(tempfile.mkdtemp(prefix="rmg-lake-home-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    os.environ.update(_private_home(home))


_scrub()  # before any test module is imported


@pytest.fixture(autouse=True)
def private_home(tmp_path_factory: pytest.TempPathFactory,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test its own empty home and config folder: nothing one test signs in to or
    makes a secret for is seen by another."""
    home = tmp_path_factory.mktemp("home")
    for name, value in _private_home(home).items():
        monkeypatch.setenv(name, value)
    yield home


def pilot_day(day: int, folder: Path) -> Path:
    """The pilot app's folder as Dropbox had it at the end of `day` (1 to 3), written into
    `folder` with each file's time (git keeps none)."""
    times = json.loads((PILOT_APP / "mtimes.json").read_bytes())
    folder.mkdir(parents=True, exist_ok=True)
    for path in sorted((PILOT_APP / f"day-{day}").iterdir()):
        shutil.copyfile(path, folder / path.name)
        stamp = times[f"day-{day}/{path.name}"]
        os.utime(folder / path.name, (stamp, stamp))
    return folder


@dataclass(frozen=True)
class Ingested:
    inbox: Path
    manifest: SimulationManifest
    lake: Lake
    result: IngestResult

    def sql(self, query: str) -> list[tuple[object, ...]]:
        """Run `query` on the lake's DuckDB catalog, as a reader would."""
        con = duckdb.connect(str(self.lake.root / "lake.duckdb"), read_only=True)
        try:
            return con.execute(query).fetchall()
        finally:
            con.close()


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    """Two weeks of a two-factory study with every kind of bad file, ingested once."""
    root = tmp_path_factory.mktemp("study")
    manifest = simulate(root / "inbox", days=14, observers=4, seed=11)
    lake = open_lake(root / "lake", create=True)
    return Ingested(root / "inbox", manifest, lake, lake.ingest(root / "inbox"))


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDropbox]:
    """The loopback Dropbox (`dropbox_fake`), listing in pages of 50, with the SDK's and
    the retries' pauses not slept (they are not tested)."""
    no_sleep = SimpleNamespace(sleep=lambda seconds: None)
    monkeypatch.setattr(dropbox_client, "time", no_sleep)
    monkeypatch.setattr(tenacity.nap, "time", no_sleep)
    with FakeDropbox(page_size=50) as server:
        yield server
        assert server.errors == []


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`rmg-lake ARGS` through its entry point, in this process (quicker than a
    subprocess, for what only prints): exit code, standard output, standard error."""
    from rmg_lake.cli import main

    argv, sys.argv = sys.argv, ["rmg-lake", *args]
    try:
        main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    finally:
        sys.argv = argv
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_in(capsys: pytest.CaptureFixture[str], *args: str,
           ) -> subprocess.CompletedProcess[str]:
    """`rmg-lake ARGS` in this process, answered as `run_cli` answers."""
    code, out, err = run_main(capsys, *args)
    return subprocess.CompletedProcess(["rmg-lake", *args], code, out, err)


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`rmg-lake ARGS` in a real subprocess."""
    return subprocess.run([sys.executable, "-m", "rmg_lake", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)
