"""The public API is what `__all__` says, and every name in it exists."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import REPO

import rmg_lake


def test_public_names() -> None:
    assert sorted(rmg_lake.__all__) == sorted(
        name for name in dir(rmg_lake)
        if not name.startswith("_") and not isinstance(getattr(rmg_lake, name), type(rmg_lake))
    )



def test_the_readmes_notebook_runs_as_it_is_written(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's "From Python" block, run from a folder holding the bundled sample."""
    readme = (REPO / "README.md").read_text()
    block = readme.split("## From Python (a notebook)")[1].split("```python\n")[1].split("```")[0]
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {})
    assert (tmp_path / "shared" / "observations.csv").is_file()
    assert rmg_lake.versions(rmg_lake.open_target("usb-backups"))
    assert rmg_lake.open_lake("lake").table("observations").is_empty()  # rolled back
    assert rmg_lake.open_lake("lake-restored").table("observations").height > 1000  # before
