"""The simulator: deterministic, under the contract, and its manifest true to the folder.

Everything is counted from the files on disk, never from the simulator's internals.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from rmg_lake import LakeError, SimulationManifest, simulate
from rmg_lake.contract import FACTORY_TZ, InvalidObservation, parse_name, validate_file
from rmg_lake.sample.simulate import BAD_KINDS, FrameCount

Tree = dict[str, tuple[bytes, int]]  # relative posix path -> (bytes, mtime in ns)
FRIDAY = 4


def _tree(root: Path) -> Tree:
    return {p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[SimulationManifest, Tree]:
    root = tmp_path_factory.mktemp("sync")
    return simulate(root), _tree(root)


@pytest.fixture(scope="module")
def valid(run: tuple[SimulationManifest, Tree]) -> dict[str, tuple[Any, bytes, int]]:
    """path -> (observation, bytes, mtime_ns) of every file not listed as bad."""
    manifest, tree = run
    return {path: (validate_file(path, data).observation, data, mtime)
            for path, (data, mtime) in tree.items()
            if path.endswith(".json") and path not in manifest.bad}


@pytest.fixture(scope="module")
def versions(valid: dict[str, tuple[Any, bytes, int]]) -> dict[str, list[tuple[int, bytes, Any]]]:
    """observation_id -> its files as (mtime_ns, bytes, observation), in sync order."""
    by_id: dict[str, list[tuple[int, bytes, Any]]] = defaultdict(list)
    for obs, data, mtime in valid.values():
        by_id[str(obs.observation_id)].append((mtime, data, obs))
    return {key: sorted(files, key=lambda f: f[0]) for key, files in by_id.items()}


def test_same_seed_writes_the_same_folder(tmp_path: Path) -> None:
    first = simulate(tmp_path / "a", days=7)
    again = simulate(tmp_path / "b", days=7)
    other = simulate(tmp_path / "c", days=7, seed=1)
    assert _tree(tmp_path / "a") == _tree(tmp_path / "b")
    assert first == again
    assert set(_tree(tmp_path / "c")) != set(_tree(tmp_path / "a"))
    assert other != first


def test_every_valid_file_passes_the_contract(run: tuple[SimulationManifest, Tree],
                                              valid: dict[str, Any]) -> None:
    manifest, _ = run
    assert len(valid) == manifest.observation_files > 1000
    assert all(parse_name(path.rsplit("/", 1)[-1]) for path in valid)


def test_every_bad_file_is_rejected(run: tuple[SimulationManifest, Tree],
                                    versions: dict[str, Any]) -> None:
    manifest, tree = run
    assert len(BAD_KINDS) >= 16
    assert sorted(manifest.bad.values()) == sorted(BAD_KINDS)
    for path in manifest.bad:
        with pytest.raises(InvalidObservation):
            validate_file(path, tree[path][0])
        found = re.search(rb'"observation_id": "([^"]+)"', tree[path][0])
        if found:
            assert found.group(1).decode() not in versions, path


def test_photos_are_small_jpegs(run: tuple[SimulationManifest, Tree]) -> None:
    manifest, tree = run
    photos = {path: data for path, (data, _) in tree.items() if not path.endswith(".json")}
    assert len(photos) == manifest.photos > 0
    for path, data in photos.items():
        assert re.fullmatch(r"(obs\d\d/)?(roster|wip|interactions)_\d{4}(_\d\d){4}( \(\d+\))?\.jpg",
                            path), path
        assert data.startswith(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00") and data.endswith(b"\xff\xd9")
        assert len(data) < 1000


def test_manifest_counts_match_the_folder(run: tuple[SimulationManifest, Tree],
                                          versions: dict[str, list[tuple[int, bytes, Any]]],
                                          valid: dict[str, Any]) -> None:
    manifest, tree = run
    assert manifest.files == len(tree)
    duplicates = superseded = 0
    current = {}
    for key, files in versions.items():
        seen: list[bytes] = []
        for _, data, _ in files:
            duplicates += data in seen
            seen.append(data)
        superseded += len(set(seen)) - 1
        current[key] = files[-1]
        assert tree[manifest.current[key]][0] == files[-1][1]  # the latest synced content
    assert (manifest.duplicates, manifest.superseded) == (duplicates, superseded)
    assert set(manifest.current) == set(versions)

    frames: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    rows: Counter[str] = Counter()
    for _, _, obs in current.values():
        n = len(obs.interactions if obs.task == "interactions" else obs.machines)
        frame = frames[(obs.task, obs.factory, obs.department, obs.team)]
        frame[0] += 1
        frame[1] += obs.status == "complete"
        frame[2] += n
        rows[obs.task] += n
    assert manifest.frames == tuple(FrameCount(*key, *counts)
                                    for key, counts in sorted(frames.items()))
    assert (manifest.roster_rows, manifest.wip_rows, manifest.interaction_rows) == (
        rows["roster"], rows["wip"], rows["interactions"])
    assert manifest.days == tuple(sorted({obs.day for _, _, obs in current.values()}))
    teams = {(o.factory, o.department, o.team) for o, _, _ in valid.values()}
    assert teams == {(f, d, t) for f, depts in manifest.factories_teams.items()
                     for d, names in depts.items() for t in names}
    json.dumps(manifest.to_dict())


def test_names_and_mtimes_follow_the_payload(valid: dict[str, tuple[Any, bytes, int]],
                                             versions: dict[str, Any]) -> None:
    for path, (obs, _, mtime) in valid.items():
        name = parse_name(path.rsplit("/", 1)[-1])
        assert name is not None
        assert obs.started_at.utcoffset() == timedelta(hours=6)
        assert name.stamp == obs.started_at.astimezone(FACTORY_TZ).strftime("%Y%m%dT%H%M%S")
        assert mtime >= obs.ended_at.timestamp() * 10**9  # synced after the task ended
    for files in versions.values():  # the first upload is the original, re-uploads later
        assert len({mtime for mtime, _, _ in files}) == len(files)


def test_no_observations_on_fridays_or_holidays(tmp_path: Path) -> None:
    holiday = date(2026, 11, 3)
    manifest = simulate(tmp_path, days=14, bad_files=False, holidays=[holiday])
    days = {validate_file(p.name, p.read_bytes()).observation.day
            for p in tmp_path.rglob("*.json")}
    assert days == set(manifest.days)
    assert len(days) == 14 - 2 - 1
    assert holiday not in days and all(day.weekday() != FRIDAY for day in days)


def test_a_default_run_holds_every_case(run: tuple[SimulationManifest, Tree],
                                        valid: dict[str, tuple[Any, bytes, int]]) -> None:
    manifest, _ = run
    observations = [obs for obs, _, _ in valid.values()]
    assert {o.task for o in observations} == {"roster", "wip", "interactions"}
    assert {o.department for o in observations} == {"knitting", "linking"}
    assert {o.status for o in observations} == {"complete", "partial", "aborted"}
    assert all(day.weekday() != FRIDAY for day in manifest.days)
    machines = [m for o in observations if o.task != "interactions" for m in o.machines.values()]
    assert Counter(m.mc_status for m in machines)["unmanned"] > 0.05 * len(machines)
    knitting = [m for o in observations if o.task == "wip" and o.department == "knitting"
                for m in o.machines.values() if m.mc_status == "manned"]
    assert {m.component for m in knitting} == {"body", "collar"}
    assert any(m.component == "body" and None in (m.back, m.front, m.sleeve) for m in knitting)
    with_ = [i.with_ for o in observations if o.task == "interactions" for i in o.interactions]
    assert any(w.startswith(("KN", "LI")) for w in with_) and "FIC" in with_
    assert any(o.left_floor_s for o in observations if o.task == "interactions")
    assert any(o.notes for o in observations)
    rounds = Counter((o.team, o.factory, o.department, o.day) for o in observations
                     if o.task == "wip")
    assert min(rounds.values()) < 4  # a round missed now and then
    assert manifest.duplicates > 0 and manifest.superseded > 0 and manifest.photos > 0
    assert any(" (1).json" in p for p in valid) and any("conflicted copy" in p for p in valid)
    assert any("/" in p for p in valid) and any("/" not in p for p in valid)
    assert sorted({o.observer for o in observations}) == [
        "obs00", "obs01", "obs02", "obs03", "obs04"]  # obs00: the field supervisor
    observers = defaultdict(set)
    for o in observations:
        if o.observer != "obs00":
            observers[(o.factory, o.department, o.team)].add(o.observer)
    assert all(len(codes) == 1 for codes in observers.values())  # one observer per team
    assert manifest.factories_teams == {
        "f01": {d: ["treatment", "same-floor", "other-floor"] for d in ("knitting", "linking")},
        "f02": {d: ["treatment", "control"] for d in ("knitting", "linking")},
    }


def test_the_field_supervisor_back_checks_a_round_each_working_day(
        run: tuple[SimulationManifest, Tree], valid: dict[str, tuple[Any, bytes, int]]) -> None:
    """Two observers' wip rounds of a team begun within 15 minutes of each other: exactly
    the manifest's back-checks, one a working day, mostly agreeing with the round."""
    manifest, _ = run
    rounds = [valid[path][0] for path in manifest.current.values()
              if valid[path][0].task == "wip"]  # (their latest versions)
    paired = {(str(a.observation_id), str(b.observation_id)) for a in rounds for b in rounds
              if (a.day, a.factory, a.department, a.team) == (b.day, b.factory, b.department,
                                                              b.team)
              and a.observer != b.observer
              and timedelta(0) <= b.started_at - a.started_at <= timedelta(minutes=15)}
    assert paired == {(checked, check) for check, checked in manifest.back_checks.items()}
    assert len(paired) == len(manifest.days)
    by_id = {str(o.observation_id): o for o in rounds}
    machines = [(by_id[a].machines[code], row) for a, b in paired
                for code, row in by_id[b].machines.items()]
    assert all(by_id[a].machines.keys() == by_id[b].machines.keys() for a, b in paired)
    same = sum(first == second for first, second in machines)
    assert 0.8 * len(machines) < same < len(machines)  # a few differ, by a little
    assert any(f.worker_id != s.worker_id for f, s in machines if s.mc_status == "manned")


def test_more_factories_and_no_bad_files(tmp_path: Path) -> None:
    manifest = simulate(tmp_path, days=2, factories=3, observers=2, bad_files=False)
    assert manifest.bad == {}
    assert manifest.factories_teams["f03"] == {"knitting": ["treatment", "control"],
                                               "linking": ["treatment", "control"]}
    for path in tmp_path.rglob("*.json"):
        validate_file(path.relative_to(tmp_path).as_posix(), path.read_bytes())


def test_refuses_a_folder_with_files_and_impossible_arguments(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(LakeError, match="not empty"):
        simulate(tmp_path)
    with pytest.raises(ValueError, match="observers"):
        simulate(tmp_path / "new", observers=0)
