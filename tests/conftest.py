"""Shared fixtures: a simulated sync folder and a lake made from it, on real disk."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from rmg_lake import IngestResult, Lake, SimulationManifest, open_lake, simulate

REPO = Path(__file__).parent.parent  # the project's checkout
PILOT_APP = REPO / "tests" / "data" / "pilot"  # the 2014 pilot app's own output


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
