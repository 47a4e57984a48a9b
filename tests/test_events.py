"""The event store: each batch keeps its new events as columns, and deriving reads them."""

from __future__ import annotations

import hashlib
import shutil
from datetime import date
from pathlib import Path

import orjson
import polars as pl
import pytest
from test_history import frames

from rmg_lake import LakeUnusable, open_lake
from rmg_lake.simulate import simulate


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


def test_an_entry_from_before_the_event_store_gives_the_same_frames(
        parts: list[Path], tmp_path: Path) -> None:
    lake = open_lake(tmp_path / "lake", create=True)
    for part in parts[:2]:
        lake.ingest(part)
    before = frames(lake.root)
    for entry in sorted((lake.root / "_log").glob("*.json")):  # as an older rmg-lake wrote
        written = orjson.loads(entry.read_bytes())
        del written["events"]
        entry.write_bytes(orjson.dumps(written))
    shutil.rmtree(lake.root / "events")
    lake.rebuild()
    assert frames(lake.root) == before
    assert lake.verify().findings == ()

    lake.ingest(parts[2])  # old entries and a new one side by side
    fresh = open_lake(tmp_path / "fresh", create=True)
    for part in parts:
        fresh.ingest(part)
    assert frames(lake.root, but=("batches",)) == frames(fresh.root, but=("batches",))


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


def test_team_frames_are_kept_by_month(parts: list[Path], tmp_path: Path) -> None:
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(parts[1])  # 30 November and 1 December
    state = lake.refresh()
    teams = {name: sorted(keys) for name, keys in state.frames.items()
             if name.startswith("teams/")}
    assert {key for keys in teams.values() for key in keys} == {"2026-11", "2026-12"}
    wip = lake.table("wip")
    team = wip.filter(department="knitting", team="treatment").drop("wip")
    assert lake.frame("wip", "knitting", "treatment").equals(team)
    lake.ingest(parts[2])  # a later week: November's team files are not written again
    assert {name: keys for name, keys in lake.refresh().frames.items()
            if name.startswith("teams/")} != teams
    assert all(lake.refresh().frames[name]["2026-11"] == state.frames[name]["2026-11"]
               for name, keys in teams.items() if "2026-11" in keys)
