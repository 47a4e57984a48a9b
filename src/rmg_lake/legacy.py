"""The 2014 pilot app's files, read as rounds of the contract (version 1).

The pilot (Pythonista, Python 2's `json.dump`) saved four shapes:

    per-task wip        {"DateTime": "01/14/2014 14:36", "KN1": {"mc_status": "Manned",
                         "worker_id": …, "Style": …, "component": …, "back": 12, …}, …}
                        (linking: "wip", older files "WIP")
    master files        Knitting_wip.json, Linking_wip.json: {"date_time": ["2014_01_14_14_36",
                         …], "KN1": {"Attendance": […], "Style": […], "WIP": […]}, …},
                         one element per round; Knitting_interact.json, …: {"date_time":
                         […], "supervisor": […], "interactions": [[…], …],
                         "left_floor": [[…], …]}
    operator-ID files   Knitting_id-2014_01_14_07_55 (no extension): {"date_time": …,
                         "KN1": {"mc_status": …, "worker_id": …}} → a roster
    interactions        {"interaction_id": "FIC", "interaction_length": 55, "initiator": 1,
                         "topic": 3}: initiator 1 supervisor, 2 interlocutor, 3 unclear;
                         topic 1 machine configuration … 6 personal

Each round becomes a contract payload with an `observation_id` made from the file's
sha256 and the round's place in it (UUID5), so the same file gives the same payloads,
byte for byte. Empty values (null, "null", "") make a round `partial`; a round that
cannot be put into the contract is a `Problem` with the reason, never a guess. A master
file's wip names no workers: a round takes them from the operator-ID file of its day
and department imported with it (the latest one at or before the round), else it is a
problem.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from rmg_lake.contract.models import FACTORY_TZ

__all__ = ["IMPORTER", "Legacy", "Problem", "Round", "Study", "operator_ids", "read_legacy"]

IMPORTER = 1  # the version of this reading: recorded with each import's batch
_NAMESPACE = uuid.UUID("0f05c5dc-8d91-4ba3-ac88-60518f5d5054")  # of the pilot's rounds
_MACHINE = re.compile(r"(KN|LI)[1-9][0-9]*")
_ID_FILE = re.compile(r"(?i)(knitting|linking)_id-(\d{4}_\d\d_\d\d_\d\d_\d\d)")
_INITIATOR = {1: "supervisor", 2: "interlocutor", 3: "unclear"}
_TOPIC = {1: "machine-configuration", 2: "machine-function", 3: "yarn", 4: "pattern",
          5: "other-work", 6: "personal"}
_MANNED = {"manned": "manned", "present": "manned", "1": "manned", "true": "manned",
           "unmanned": "unmanned", "absent": "unmanned", "0": "unmanned",
           "false": "unmanned"}


@dataclass(frozen=True, slots=True)
class Study:
    """What the pilot's files do not say: the options of `rmg-lake import-legacy`."""

    factory: str
    observer: str
    team: str
    department: str | None = None  # else from the file's name or its machine codes


@dataclass(frozen=True, slots=True)
class Round:
    index: int  # its place in the file
    name: str  # the contract file name it would have had
    payload: bytes  # a contract v1 observation file


@dataclass(frozen=True, slots=True)
class Problem:
    index: int
    reason: str
    evidence: bytes  # the round as the pilot wrote it


@dataclass(frozen=True, slots=True)
class Legacy:
    """One pilot file read: its rounds, or why it is no pilot file."""

    rounds: list[Round | Problem]
    unknown: str | None = None  # the reason, when the file is not a pilot shape at all
    roster: dict[str, Any] | None = None  # an operator-ID file's machines, for master files
    department: str | None = None
    at: datetime | None = None


def operator_ids(name: str) -> bool:
    """Whether a file name is an operator-ID file's (`Knitting_id-2014_01_14_07_55`)."""
    return _ID_FILE.fullmatch(name) is not None


def read_legacy(name: str, data: bytes, study: Study,
                rosters: list[Legacy] | None = None) -> Legacy:
    """The rounds of the pilot file `name` (its last path part) holding `data`; `rosters`
    are the operator-ID files read with it, which master wip files take workers from."""
    try:
        doc = json.loads(data.decode("utf-8-sig"))  # Python 2 wrote NaN; json reads it
    except (UnicodeDecodeError, ValueError) as err:
        return Legacy([], unknown=f"not JSON ({err})")
    if not isinstance(doc, dict):
        return Legacy([], unknown="not a JSON object")
    digest = _sha(data)
    department = study.department or _department(name, doc)
    if department is None:
        return Legacy([], unknown="its department cannot be told (no Knitting_/Linking_ "
                                  "name, no KN/LI machines): pass --department")
    if id_file := _ID_FILE.fullmatch(name):
        try:
            at = _time(id_file[2])
            machines, partial = _roster_machines(doc)
        except _Unmappable as err:
            return Legacy([Problem(0, str(err), _dump(doc))])
        payload = _payload("roster", study, department, digest, 0, at, partial,
                           machines=machines)
        return Legacy([_round(0, payload, at)], roster=machines, department=department,
                      at=at)
    if "DateTime" in doc:
        return Legacy([_per_task(doc, study, department, digest)])
    if isinstance(doc.get("date_time"), list) and "interactions" in doc:
        return Legacy(_master_interactions(doc, study, department, digest))
    if isinstance(doc.get("date_time"), list):
        return Legacy(_master_wip(doc, study, department, digest, rosters or []))
    return Legacy([], unknown="not a shape of the pilot's files (no DateTime or date_time)")


def _per_task(doc: dict[str, Any], study: Study, department: str, digest: str,
              ) -> Round | Problem:
    try:
        at = _time(doc["DateTime"])
        if isinstance(doc.get("interactions"), list):
            body, partial = _interactions(doc.get("supervisor"), doc["interactions"],
                                          doc.get("left_floor"))
            return _round(0, _payload("interactions", study, department, digest, 0, at,
                                      partial, **body), at)
        machines, partial = {}, False
        for code, values in _machines(doc):
            machines[code], gap = _wip_machine(department, values)
            partial |= gap
        return _round(0, _payload("wip", study, department, digest, 0, at, partial,
                                  machines=machines), at)
    except _Unmappable as err:
        return Problem(0, str(err), _dump(doc))


def _master_wip(doc: dict[str, Any], study: Study, department: str, digest: str,
                rosters: list[Legacy]) -> list[Round | Problem]:
    rounds: list[Round | Problem] = []
    machines = list(_machines(doc))
    for i, stamp in enumerate(doc["date_time"]):
        evidence = {"date_time": stamp, **{code: {k: _at(v, i) for k, v in values.items()}
                                           for code, values in machines}}
        try:
            at = _time(stamp)
            payload_machines, partial = {}, False
            for code, values in machines:
                status = _status(_at(values.get("Attendance"), i))
                wip = _at(values.get("WIP", values.get("wip")), i)
                if department == "knitting" and _empty(wip) is not None \
                        and not isinstance(wip, dict):
                    raise _Unmappable(f"{code}: knitting WIP is one number here; the "
                                      "contract counts panels (back, front, sleeve, collar)")
                worker = None
                if status == "manned":
                    worker = _roster_for(rosters, department, at).get(code, {}).get(
                        "worker_id")
                    if worker is None:
                        raise _Unmappable(f"{code}: the operator-ID file of that day names "
                                          "no worker at this machine")
                counts = wip if isinstance(wip, dict) else {"wip": wip}
                payload_machines[code], gap = _wip_machine(department, {
                    "mc_status": status, "worker_id": worker,
                    "Style": _at(values.get("Style"), i), **counts})
                partial |= gap
            rounds.append(_round(i, _payload("wip", study, department, digest, i, at,
                                             partial, machines=payload_machines), at))
        except _Unmappable as err:
            rounds.append(Problem(i, str(err), _dump(evidence)))
    return rounds


def _master_interactions(doc: dict[str, Any], study: Study, department: str,
                         digest: str) -> list[Round | Problem]:
    rounds: list[Round | Problem] = []
    for i, stamp in enumerate(doc["date_time"]):
        evidence = {k: _at(v, i) for k, v in doc.items()}
        try:
            at = _time(stamp)
            body, partial = _interactions(_at(doc.get("supervisor"), i),
                                          _at(doc["interactions"], i),
                                          _at(doc.get("left_floor"), i))
            rounds.append(_round(i, _payload("interactions", study, department, digest, i,
                                             at, partial, **body), at))
        except _Unmappable as err:
            rounds.append(Problem(i, str(err), _dump(evidence)))
    return rounds


class _Unmappable(ValueError):
    """A value the contract has no place for: the round is quarantined with this."""


def _machines(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = [(code, values) for code, values in sorted(doc.items(), key=lambda kv: (
        kv[0][:2], int(kv[0][2:]) if _MACHINE.fullmatch(kv[0]) else 0))
        if _MACHINE.fullmatch(code)]
    for code, values in found:
        if not isinstance(values, dict):
            raise _Unmappable(f"{code}: not an object of values")
    return found


def _wip_machine(department: str, values: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """A machine of a wip round in the contract's keys, and whether a value was empty."""
    clean = {key.lower(): _empty(value) for key, value in values.items()}
    status = _status(clean.get("mc_status"))
    machine: dict[str, Any] = {"mc_status": status, "worker_id": _text(clean.get("worker_id")),
                               "style": _text(clean.get("style"))}
    if department == "knitting":
        machine["component"] = _text(clean.get("component"))
        for panel in ("back", "front", "sleeve", "collar"):
            machine[panel] = _count(clean.get(panel), panel)
        wanted = {"body": ("back", "front", "sleeve"), "collar": ("collar",)}.get(
            machine["component"] or "", ())
    else:
        machine["wip"] = _number(clean.get("wip"), "wip")
        wanted = ("wip",)
    gap = status == "manned" and any(machine[key] is None
                                     for key in ("worker_id", "style", *wanted))
    return machine, gap


def _roster_machines(doc: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    machines, gap = {}, False
    for code, values in _machines(doc):
        status = _status(_empty(values.get("mc_status")))
        worker = _text(_empty(values.get("worker_id")))
        gap |= status == "manned" and worker is None
        machines[code] = {"mc_status": status, "worker_id": worker}
    return machines, gap


def _interactions(supervisor: Any, coded: Any, left: Any) -> tuple[dict[str, Any], bool]:
    if _text(_empty(supervisor)) is None:
        raise _Unmappable("no supervisor code: the contract needs whom the window followed")
    if not isinstance(coded, list):
        raise _Unmappable("interactions: not a list")
    found = []
    for n, item in enumerate(coded):
        if not isinstance(item, dict):
            raise _Unmappable(f"interactions.{n}: not an object")
        initiator, topic = _empty(item.get("initiator")), _empty(item.get("topic"))
        if initiator not in _INITIATOR or topic not in _TOPIC:
            raise _Unmappable(f"interactions.{n}: initiator must be 1–3 and topic 1–6")
        found.append({"with": _text(_empty(item.get("interaction_id"))),
                      "length_s": _count(item.get("interaction_length"),
                                         f"interactions.{n}.interaction_length"),
                      "initiator": _INITIATOR[initiator], "topic": _TOPIC[topic]})
        if found[-1]["with"] is None or found[-1]["length_s"] is None:
            raise _Unmappable(f"interactions.{n}: whom and how long are both needed")
    left_s = [] if _empty(left) is None else left
    if not isinstance(left_s, list):
        raise _Unmappable("left_floor: not a list of seconds")
    return {"supervisor": str(supervisor), "interactions": found,
            "left_floor_s": [_count(s, "left_floor") for s in left_s]}, False


def _payload(task: str, study: Study, department: str, digest: str, index: int,
             at: datetime, partial: bool, **body: Any) -> dict[str, Any]:
    moment = at.isoformat()
    return {"schema_version": 1, "task": task,
            "observation_id": str(uuid.uuid5(_NAMESPACE, f"{digest}:{index}")),
            "observer": study.observer, "factory": study.factory, "department": department,
            "team": study.team, "started_at": moment, "ended_at": moment,
            "status": "partial" if partial else "complete",
            "app_version": f"2014 pilot, imported by rmg-lake (importer {IMPORTER})", **body}


def _round(index: int, payload: dict[str, Any], at: datetime) -> Round:
    name = (f"{payload['task']}_{payload['department']}_{payload['team']}_"
            f"{payload['observer']}_{at:%Y%m%dT%H%M%S}.json")
    return Round(index, name, orjson.dumps(payload, option=orjson.OPT_INDENT_2))


def _roster_for(rosters: list[Legacy], department: str, at: datetime) -> dict[str, Any]:
    """The machines of the operator-ID file of that day and department: the latest at or
    before `at`, else the day's first."""
    day = [r for r in rosters if r.department == department and r.at is not None
           and r.at.date() == at.date() and r.roster is not None]
    day.sort(key=lambda r: r.at or at)
    before = [r for r in day if r.at is not None and r.at <= at]
    chosen = before[-1] if before else day[0] if day else None
    if chosen is None or chosen.roster is None:
        raise _Unmappable(f"no operator-ID file of {department} on {at:%Y-%m-%d} was "
                          "imported with it: the round names no workers")
    return chosen.roster


def _department(name: str, doc: dict[str, Any]) -> str | None:
    lowered = name.lower()
    for department in ("knitting", "linking"):
        if lowered.startswith(department):
            return department
    prefixes = {code[:2] for code in doc if _MACHINE.fullmatch(code)}
    return {"KN": "knitting", "LI": "linking"}.get(prefixes.pop()) if len(prefixes) == 1 \
        else None


def _time(text: Any) -> datetime:
    for layout in ("%m/%d/%Y %H:%M", "%Y_%m_%d_%H_%M"):
        try:
            return datetime.strptime(str(text), layout).replace(tzinfo=FACTORY_TZ)
        except ValueError:
            continue
    raise _Unmappable("the time is neither MM/DD/YYYY HH:MM nor YYYY_MM_DD_HH_MM")


def _status(value: Any) -> str:
    status = _MANNED.get(str(_empty(value)).lower())
    if status is None:
        raise _Unmappable("mc_status (or Attendance) is neither Manned nor Unmanned")
    return status


def _empty(value: Any) -> Any:
    """None for the pilot's ways of writing nothing: null, "null", "", NaN."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "null")):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _text(value: Any) -> str | None:
    value = _empty(value)
    return None if value is None else str(value)


def _count(value: Any, key: str) -> int | None:
    value = _empty(value)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise _Unmappable(f"{key}: not a whole number")
    return int(value)


def _number(value: Any, key: str) -> float | None:
    value = _empty(value)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise _Unmappable(f"{key}: not a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Unmappable(f"{key}: not a number")
    return float(value)


def _at(values: Any, i: int) -> Any:
    """Element `i` of a master file's list (None past its end: a value never written)."""
    return values[i] if isinstance(values, list) and i < len(values) else None


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True).encode()
