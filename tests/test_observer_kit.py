"""The observer kit: what a tablet saves, the lake takes whole; the schema says the same."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType

import jsonschema
import orjson
import pytest
from conftest import REPO, run_cli

from rmg_lake import open_lake
from rmg_lake.contract.models import FACTORY_TZ
from rmg_lake.contract.schema import contract_schemas, file_name, schema_bytes

KIT = REPO / "observer_kit"
FORMATS = jsonschema.FormatChecker()  # uuid and the like, as a careful client checks them

# A tablet's day: each task once, under two clocks (Dhaka and one set to UTC), a naive
# and an aware start, a partial round, and two tasks started in the same second.
TABLET = """
import datetime, json, sys
sys.path.insert(0, sys.argv[1])
import rmg_observer as kit

folder, start = sys.argv[2], datetime.datetime(2026, 11, 24, 10, 15)
knit = {"KN1": {"mc_status": "manned", "worker_id": "w-1", "style": "S1",
                "component": "body", "back": 3, "front": 4, "sleeve": 2, "collar": None},
        "KN2": {"mc_status": "unmanned", "worker_id": None, "style": None,
                "component": None, "back": None, "front": None, "sleeve": None,
                "collar": None}}
common = dict(factory="f01", observer="obs03", started_at=start,
              ended_at=start + datetime.timedelta(minutes=40))
saved = [
    kit.save(folder, kit.observation("roster", department="knitting", team="treatment",
             machines={"KN1": {"mc_status": "manned", "worker_id": "w-1"},
                       "KN2": {"mc_status": "unmanned", "worker_id": None}}, **common)),
    kit.save(folder, kit.observation("wip", department="knitting", team="treatment",
                                     machines=knit, notes="KN2 broken", **common)),
    kit.save(folder, kit.observation("wip", department="knitting", team="treatment",
                                     machines=knit, status="partial", **common)),
    kit.save(folder, kit.observation(  # contract 1.1: WIP as one number, a worker not known
        "wip", department="knitting", team="same-floor", status="partial",
        machines={"KN1": {"mc_status": "manned", "worker_id": None, "style": "S1",
                          "component": None, "back": None, "front": None, "sleeve": None,
                          "collar": None, "wip": 2.75}}, **common)),
    kit.save(folder, kit.observation(
        "wip", department="linking", team="control", factory="f01", observer="obs03",
        started_at=datetime.datetime(2026, 11, 24, 11, 0, tzinfo=datetime.timezone(
            datetime.timedelta(hours=6))), app_version="2.0",
        machines={"LI1": {"mc_status": "manned", "worker_id": "w-9", "style": None,
                          "wip": 4.25}})),
    kit.save(folder, kit.observation(
        "interactions", department="linking", team="control", supervisor="s-2",
        interactions=[{"with": "LI1", "length_s": 55, "initiator": "supervisor",
                       "topic": "yarn"},
                      {"with": "FIC", "length_s": 20, "initiator": "unclear",
                       "topic": "personal"}],
        left_floor_s=[120], **common)),
]
print(json.dumps(saved))
"""


def _version(exe: str) -> tuple[int, int] | None:
    probe = subprocess.run([exe, "-c", "import sys; print(*sys.version_info[:2])"],
                           capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return None
    major, minor = map(int, probe.stdout.split())
    return major, minor


def _pythons() -> dict[tuple[int, int], str]:
    """The Python 3s on this machine (pyenv's too), by version."""
    root = Path(os.environ.get("PYENV_ROOT", "~/.pyenv")).expanduser()
    found = sorted(str(p) for p in root.glob("versions/3.*/bin/python3"))
    found += [p for m in range(6, 14) if (p := shutil.which(f"python3.{m}"))]
    return {v: exe for exe in [sys.executable, *reversed(found)] if (v := _version(exe))}


def oldest_python() -> str:
    """The oldest Python 3 here: the tablet's is old (3.6, where a machine has it)."""
    pythons = _pythons()
    return pythons[min(pythons)]


def tablet(folder: Path, zone: str) -> list[Path]:
    """The kit run as a tablet would, with its clock in `zone`; the files it saved."""
    folder.mkdir(parents=True, exist_ok=True)
    run = subprocess.run([oldest_python(), "-c", TABLET, str(KIT), str(folder)],
                         env={**os.environ, "TZ": zone}, capture_output=True, text=True,
                         timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    return [Path(p) for p in json.loads(run.stdout)]


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    inbox = tmp_path_factory.mktemp("tablets") / "inbox"
    return {zone: tablet(inbox / zone.replace("/", "-"), zone)
            for zone in ("Asia/Dhaka", "UTC")}


def _kit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rmg_observer", KIT / "rmg_observer.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_kit_runs_on_python_3_6(tmp_path: Path) -> None:
    """The tablets' Python: the kit saves a day's tasks under it (and the static check
    below holds the kit to 3.6 code on a machine without one)."""
    python = _pythons().get((3, 6))
    if python is None:
        pytest.skip("skipped: no Python 3.6 on this machine (pyenv install 3.6)")
    run = subprocess.run([python, "-c", TABLET, str(KIT), str(tmp_path)],
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    assert len(json.loads(run.stdout)) == 6
    assert oldest_python() == python  # the tablets of the tests below are run on it too


def test_everything_the_kit_saves_is_accepted(saved: dict[str, list[Path]],
                                              tmp_path: Path) -> None:
    inbox = next(iter(saved.values()))[0].parent.parent
    lake = open_lake(tmp_path / "lake", create=True)
    counts = lake.ingest(inbox).counts
    assert counts == {**counts, "seen": 12, "added": 12, "quarantined": 0}
    names = sorted(p.name for paths in saved.values() for p in paths)
    assert "wip_knitting_treatment_obs03_20261124T101500 (1).json" in names  # same second
    rows = lake.table("observations").sort("source_path")
    payloads = {json.loads(p.read_bytes())["observation_id"]: p
                for paths in saved.values() for p in paths}
    assert set(rows["observation_id"]) == set(payloads)
    dhaka, utc = (rows.filter(rows["source_path"].str.starts_with(z)) for z in ("Asia", "UTC"))
    # 10:15 on a Dhaka tablet is 04:15 UTC; on a tablet set to UTC it is 10:15 UTC
    assert set(dhaka.filter(dhaka["task"] == "roster")["started_at"].dt.hour()) == {4}
    assert set(utc.filter(utc["task"] == "roster")["started_at"].dt.hour()) == {10}
    assert set(rows["status"]) == {"complete", "partial"}


def test_good_files_meet_the_json_schema() -> None:
    schemas = contract_schemas()
    for case in sorted((REPO / "tests" / "data" / "good").glob("*/*.json")):
        payload = orjson.loads(case.read_bytes().removeprefix(b"\xef\xbb\xbf"))
        jsonschema.validate(payload, schemas[payload["task"]], format_checker=FORMATS)


def test_what_the_kit_saves_meets_the_json_schema(saved: dict[str, list[Path]]) -> None:
    schemas = contract_schemas()
    for path in (p for paths in saved.values() for p in paths):
        payload = json.loads(path.read_bytes())
        jsonschema.validate(payload, schemas[payload["task"]], format_checker=FORMATS)
        assert payload["started_at"].endswith(("+06:00", "+00:00"))


# What JSON Schema cannot say (the lake refuses these all the same): file names, a key
# written twice, an end before the start, a whole number written as 3.0
BEYOND_A_SCHEMA = {"duplicate-keys", "end-before-start", "float-as-count"}


def test_the_schema_refuses_what_the_lake_refuses() -> None:
    schemas, refused = contract_schemas(), 0
    for case in sorted((REPO / "tests" / "data" / "bad").glob("*/*.json")):
        try:
            payload = orjson.loads(case.read_bytes().removeprefix(b"\xef\xbb\xbf"))
        except orjson.JSONDecodeError:
            continue  # not JSON: nothing for a schema to say
        if not isinstance(payload, dict) or case.parent.name.startswith("name-") \
                or case.parent.name in BEYOND_A_SCHEMA:
            continue
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(payload, schemas.get(payload.get("task"), schemas["wip"]),
                                format_checker=FORMATS)
        refused += 1
    assert refused >= 20


def test_what_json_cannot_hold_and_keys_of_its_own_are_refused(tmp_path: Path) -> None:
    kit = _kit()
    start = datetime(2026, 11, 24, 10, 15, tzinfo=FACTORY_TZ)
    common = {"factory": "f01", "department": "linking", "team": "t", "observer": "obs03",
              "started_at": start}
    nan = kit.observation("wip", machines={"LI1": {"mc_status": "manned", "worker_id": "w",
                                                   "style": None, "wip": float("nan")}},
                          **common)
    with pytest.raises(ValueError, match="NaN or infinite"):
        kit.save(str(tmp_path), nan)
    with pytest.raises(ValueError, match="observation_id, schema_version: set by"):
        kit.observation("roster", machines={}, schema_version=2, observation_id="x",
                        **common)
    assert list(tmp_path.iterdir()) == []


def test_what_a_dead_save_left_is_cleared_by_the_next(tmp_path: Path) -> None:
    kit = _kit()
    dead, live = tmp_path / ".old.json.partial", tmp_path / ".saving.json.partial"
    dead.write_text("{")
    live.write_text("{")
    os.utime(dead, (0, time.time() - 2 * 3600))
    start = datetime(2026, 11, 24, 10, 15, tzinfo=FACTORY_TZ)
    kit.save(str(tmp_path), kit.observation("roster", factory="f01", department="knitting",
                                            team="t", observer="obs03", started_at=start,
                                            machines={}))
    assert not dead.exists() and live.exists()  # another save may be writing that one


def test_a_save_that_fails_leaves_nothing(tmp_path: Path) -> None:
    kit = _kit()
    start = datetime(2026, 11, 24, 10, 15, tzinfo=FACTORY_TZ)
    payload = kit.observation("roster", factory="f01", department="knitting", team="t",
                              observer="obs03", started_at=start,
                              machines={"KN1": {"mc_status": "manned", "worker_id": object()}})
    with pytest.raises(TypeError):
        kit.save(str(tmp_path), payload)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("change", "message"), [
    ({"task": "lunch"}, "task must be one of roster, wip, interactions"),
    ({"team": "Treatment"}, "team must be lower-case"),
    ({"observer": "obs_03"}, "observer must be lower-case"),
    ({"department": "sewing"}, "department must be knitting or linking"),
    ({"status": "done"}, "status must be one of complete, partial, aborted"),
    ({"machines": None, "task": "interactions"}, "a interactions needs supervisor"),
    ({"ended_at": datetime(2026, 11, 24, 9, 0, tzinfo=FACTORY_TZ)}, "ended_at is before"),
    ({"started_at": "2026-11-24 10:15"}, "started_at must be a datetime"),
    ({"machines": {"KN2": {"mc_status": "manned", "worker_id": None}}},
     "machines.KN2: manned, its worker not known .* the status must be partial"),
])
def test_a_wrong_value_is_refused_naming_the_key(change: dict[str, object],
                                                  message: str) -> None:
    kit = _kit()
    start = datetime(2026, 11, 24, 10, 15, tzinfo=FACTORY_TZ)
    arguments: dict[str, object] = {
        "task": "roster", "factory": "f01", "department": "knitting", "team": "treatment",
        "observer": "obs03", "started_at": start, "ended_at": start + timedelta(minutes=5),
        "machines": {}}
    arguments.update(change)
    if arguments["machines"] is None:
        del arguments["machines"]
    with pytest.raises(ValueError, match=message):
        kit.observation(**arguments)


def test_the_kit_is_python_3_6_code() -> None:
    """A static check besides the run above, for machines without an old Python."""
    vermin = shutil.which("vermin")
    assert vermin is not None, "vermin comes with the dev extras"
    check = subprocess.run([vermin, "-t=3.6-", "--violations", "--no-tips",
                            str(KIT / "rmg_observer.py")],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout


def test_the_kit_s_schema_is_the_contract_s(tmp_path: Path) -> None:
    shipped = {p.name: p.read_bytes() for p in (KIT / "schema").glob("*.schema.json")}
    assert shipped == {file_name(task): schema_bytes(document)
                       for task, document in contract_schemas().items()}, \
        "run `rmg-lake schema --out observer_kit/schema`"
    result = run_cli("schema", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == shipped
    printed = run_cli("schema")
    assert json.loads(printed.stdout).keys() == {"roster", "wip", "interactions"}
