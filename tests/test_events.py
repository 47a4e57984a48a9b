"""The event store: each batch keeps its new events as columns, and deriving reads them."""

from __future__ import annotations

import hashlib
import re
import shutil
from datetime import date
from pathlib import Path

import orjson
import polars as pl
import pytest
from test_history import frames

from rmg_lake import Lake, LakeUnusable, open_lake, simulate
from rmg_lake.derive.partitions import FORMAT, load_state


def _part(tmp_path: Path, name: str, start: date, days: int = 2) -> Path:
    simulate(tmp_path / name, days=days, seed=len(name) + start.day, start=start, observers=2)
    return tmp_path / name


@pytest.fixture
def parts(tmp_path: Path) -> list[Path]:
    """Three stretches of work, the second across the turn of a month."""
    return [_part(tmp_path, f"part{n}", start)
            for n, start in enumerate([date(2026, 11, 23), date(2026, 11, 30),
                                       date(2026, 12, 7)])]


def test_each_batch_keeps_the_rows_of_the_events_it_added(parts: list[Path],
                                                          tmp_path: Path) -> None:
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(parts[0])
    batch = lake.batches()[0]
    assert sorted(batch.events) == ["interactions", "observations", "roster", "wip"]
    for stored in batch.events.values():  # content-addressed, like raw files
        data = (lake.root / stored).read_bytes()
        assert stored.endswith(f"/{hashlib.sha256(data).hexdigest()}.parquet")
    added = [f.sha256 for f in batch.files if f.outcome == "added"]
    events = pl.read_parquet(lake.root / batch.events["observations"])
    assert sorted(events["event_id"]) == sorted(added)
    current = lake.table("wip")  # (the events also hold versions since superseded)
    wip = pl.read_parquet(lake.root / batch.events["wip"])
    assert wip.join(current.select("event_id").unique(), on="event_id").height == current.height

    shutil.copytree(parts[0], tmp_path / "again" / "resent")  # the same bytes: no new events
    again = lake.ingest(tmp_path / "again").batch
    assert again is not None and again.counts["added"] == 0 and again.events == {}


def _fresh(tmp_path: Path, parts: list[Path]) -> dict[str, str]:
    """The derived files of a new lake that ingests `parts`, one batch each (but the
    `batches` frame, whose times differ)."""
    fresh = open_lake(tmp_path / "fresh", create=True)
    for part in parts:
        fresh.ingest(part)
    return frames(fresh.root, but=("batches",))


def _as_if_written_by(lake: Lake, version: str) -> None:
    """Make the log look as an older rmg-lake wrote it: with no event store ("none"), or
    with events of an older format (`version`, e.g. "v0")."""
    for entry in sorted((lake.root / "_log").glob("*.json")):
        written = orjson.loads(entry.read_bytes())
        if version == "none":
            del written["events"]
        else:
            written["events"] = {frame: re.sub(r"^events/v\d+/", f"events/{version}/", path)
                                 for frame, path in written["events"].items()}
        entry.write_bytes(orjson.dumps(written))
    events = lake.root / "events"
    for folder in sorted(events.iterdir()) if version != "none" else []:
        folder.rename(events / version)
    if version == "none":
        shutil.rmtree(events)


@pytest.mark.parametrize("version", ["none", "v0"])
def test_events_from_an_older_rmg_lake_are_made_again_from_raw(
        parts: list[Path], tmp_path: Path, version: str) -> None:
    lake = open_lake(tmp_path / "lake", create=True)
    for part in parts[:2]:
        lake.ingest(part)
    before = frames(lake.root)
    _as_if_written_by(lake, version)
    lake.rebuild()
    assert frames(lake.root) == before
    assert lake.verify().findings == ()

    lake.ingest(parts[2])  # old entries and a new one side by side
    assert frames(lake.root, but=("batches",)) == _fresh(tmp_path, parts)


def test_frames_derived_by_another_format_are_derived_again(parts: list[Path],
                                                             tmp_path: Path) -> None:
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(parts[0])
    state = lake.root / "_derived.json"
    written = orjson.loads(state.read_bytes())
    assert written["format"] == FORMAT
    state.write_bytes(orjson.dumps({**written, "format": FORMAT - 1}))
    assert load_state(lake.root) is None  # not trusted, so the next update derives it all
    lake.ingest(parts[1])
    assert frames(lake.root, but=("batches",)) == _fresh(tmp_path, parts[:2])


def test_a_missing_events_file_is_reported_not_guessed(parts: list[Path],
                                                       tmp_path: Path) -> None:
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(parts[0])
    stored = lake.batches()[0].events["wip"]
    (lake.root / stored).unlink()
    assert [(f.kind, f.file) for f in lake.verify().findings] == [("missing", stored)]
    with pytest.raises(LakeUnusable, match="events file") as raised:
        lake.rebuild()
    assert raised.value.file == str(lake.root / stored)


def test_an_events_file_without_an_event_it_should_hold_is_reported(
        parts: list[Path], tmp_path: Path) -> None:
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(parts[0])
    stored = lake.root / lake.batches()[0].events["observations"]
    stored.chmod(0o600)
    pl.read_parquet(stored).slice(1).write_parquet(stored)  # one event fewer
    with pytest.raises(LakeUnusable, match="events file") as raised:
        lake.rebuild()
    assert raised.value.file == str(stored)


def test_team_frames_are_kept_by_month(parts: list[Path], tmp_path: Path) -> None:
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(parts[1])  # 30 November and 1 December
    state = lake.refresh()
    teams = {name: sorted(keys) for name, keys in state.frames.items()
             if name.startswith("teams/")}
    assert {key for keys in teams.values() for key in keys} == {"2026-11", "2026-12"}
    wip = lake.table("wip")
    team = wip.filter(department="knitting", team="treatment")
    assert lake.frame("wip", "knitting", "treatment").equals(team)
    lake.ingest(parts[2])  # a later week: November's team files are not written again
    assert {name: keys for name, keys in lake.refresh().frames.items()
            if name.startswith("teams/")} != teams
    assert all(lake.refresh().frames[name]["2026-11"] == state.frames[name]["2026-11"]
               for name, keys in teams.items() if "2026-11" in keys)
