"""The 2014 pilot app's files, read as rounds of the contract (version 1).

The pilot (Pythonista, Python 2's `json.dump`) saved four shapes:

    per-task wip        {"DateTime": "01/14/2014 14:36", "KN1": {"mc_status": "Manned",
                         "worker_id": …, "Style": …, "component": …, "back": 12, …}, …}
                        (linking: "wip", older files "WIP"); with "interactions", a window
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

A round's `observation_id` is a UUID5 of what it is (factory, observer, department,
team, task, time): the same round gives the same id in any file that holds it, so a
master file that grew, copied again, adds only its new rounds. A value the contract
may leave empty but the pilot left empty (null, "null", "", NaN) makes a round
`partial`; a round the contract has no place for is a `Problem` with the reason, never
a guess. A master file's wip names no workers: a round takes them from the latest
operator-ID file of its day and department at or before it, imported with it.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import orjson

from rmg_lake.contract.models import FACTORY_TZ

__all__ = ["IMPORTER", "Legacy", "Problem", "Round", "Study", "operator_ids", "read_legacy"]

IMPORTER = 1  # the version of this reading: recorded with each import's batch
_NAMESPACE = uuid.UUID("0f05c5dc-8d91-4ba3-ac88-60518f5d5054")  # of the pilot's rounds
_MACHINE = re.compile(r"(?i)(KN|LI)[1-9][0-9]*")
_ID_FILE = re.compile(r"(?i)(knitting|linking)_id-(\d{4}_\d\d_\d\d_\d\d_\d\d)")
_NAMED = re.compile(r"(?i)(?:^|[^a-z])(knitting|linking)(?:[^a-z]|$)")
_INITIATOR = {1: "supervisor", 2: "interlocutor", 3: "unclear"}
_TOPIC = {1: "machine-configuration", 2: "machine-function", 3: "yarn", 4: "pattern",
          5: "other-work", 6: "personal"}
_STATUS = {"manned": "manned", "present": "manned", "unmanned": "unmanned",
           "absent": "unmanned"}
_KNOWN = {"mc_status", "worker_id", "style", "component", "back", "front", "sleeve",
          "collar", "wip", "attendance"}  # a machine's keys (lower case) that are mapped


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
    unknown: str | None = None  # why the file is read as no rounds at all
    roster: dict[str, Any] | None = None  # an operator-ID file's machines
    department: str | None = None
    at: datetime | None = None


class _Unmappable(ValueError):
    """A value the contract has no place for: the round is quarantined with this."""


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
    try:
        department = _department(name, doc, study.department)
        if id_file := _ID_FILE.fullmatch(name):
            return _operator_ids(doc, study, department, _time(id_file[2]))
        if "DateTime" in doc:
            return Legacy([_one(0, doc, partial(_per_task, doc, study, department))])
        if isinstance(doc.get("date_time"), list):
            _aligned(doc)
            rounds = [_nth(doc, i) for i in range(len(doc["date_time"]))]
            if "interactions" in doc:
                return Legacy([_one(i, r, partial(_window, r, study, department))
                               for i, r in enumerate(rounds)])
            return Legacy([_one(i, r, partial(_master_round, r, study, department,
                                              rosters or [])) for i, r in enumerate(rounds)])
    except _Unmappable as err:
        return Legacy([], unknown=str(err))
    return Legacy([], unknown="not a shape of the pilot's files (no DateTime or date_time)")


def _one(index: int, evidence: dict[str, Any],
         make: Callable[[], dict[str, Any]]) -> Round | Problem:
    """The round `make()` gives, or the problem it meets (with the round as written)."""
    try:
        payload = make()
    except (_Unmappable, OverflowError, TypeError) as err:
        return Problem(index, str(err), _dump(evidence))
    at = datetime.fromisoformat(payload["started_at"])
    name = (f"{payload['task']}_{payload['department']}_{payload['team']}_"
            f"{payload['observer']}_{at:%Y%m%dT%H%M%S}.json")
    return Round(index, name, orjson.dumps(payload, option=orjson.OPT_INDENT_2))


def _operator_ids(doc: dict[str, Any], study: Study, department: str,
                  at: datetime) -> Legacy:
    def roster() -> dict[str, Any]:
        machines = {}
        for code, values in _machines(doc):
            status = _status(code, values.get("mc_status"))
            worker = _text(values.get("worker_id"))
            if status == "manned" and worker is None:
                raise _Unmappable(f"{code} is manned but its worker_id is empty; the "
                                  "contract needs it")
            if status == "unmanned" and worker is not None:
                raise _Unmappable(f"{code} is unmanned but has a worker_id written")
            machines[code] = {"mc_status": status, "worker_id": worker}
        return _payload("roster", study, department, at, False, machines=machines,
                        **_extra(doc, {"date_time"}))

    found = _one(0, doc, roster)
    machines = json.loads(found.payload)["machines"] if isinstance(found, Round) else None
    return Legacy([found], roster=machines, department=department, at=at)


def _per_task(doc: dict[str, Any], study: Study, department: str) -> dict[str, Any]:
    if "interactions" in doc:
        return _window(doc, study, department)
    at, machines, gaps = _time(doc["DateTime"]), {}, False
    for code, values in _machines(doc):
        machines[code], gap = _wip_machine(code, department, values)
        gaps |= gap
    return _payload("wip", study, department, at, gaps, machines=machines,
                    **_extra(doc, {"DateTime"}))


def _master_round(doc: dict[str, Any], study: Study, department: str,
                  rosters: list[Legacy]) -> dict[str, Any]:
    at, found, gaps = _time(doc["date_time"]), {}, False
    for code, written in _machines(doc):
        values = {key.lower(): value for key, value in written.items()}
        status = _status(code, values.pop("attendance", values.pop("mc_status", None)))
        wip = values.pop("wip", None)
        if department == "knitting" and _empty(wip) is not None and not isinstance(wip, dict):
            raise _Unmappable(f"{code}: knitting WIP is one number here; the contract "
                              "counts panels (back, front, sleeve, collar)")
        worker = _roster_for(rosters, department, at).get(code, {}).get("worker_id") \
            if status == "manned" else None
        if status == "manned" and worker is None:
            raise _Unmappable(f"{code}: the operator-ID file of that day names no worker "
                              "at this machine")
        counts = wip if isinstance(wip, dict) else {"wip": wip}
        found[code], gap = _wip_machine(code, department, {
            **values, "mc_status": status, "worker_id": worker, **counts})
        gaps |= gap
    return _payload("wip", study, department, at, gaps, machines=found,
                    **_extra(doc, {"date_time"}))


def _window(doc: dict[str, Any], study: Study, department: str) -> dict[str, Any]:
    """An interactions window, per task or a master file's round."""
    at = _time(doc.get("DateTime", doc.get("date_time")))
    supervisor = _text(doc.get("supervisor"))
    if supervisor is None:
        raise _Unmappable("no supervisor code: the contract needs whom the window followed")
    coded = doc.get("interactions")
    if not isinstance(coded, list):
        raise _Unmappable("interactions: not a list")
    found = []
    for n, item in enumerate(coded):
        if not isinstance(item, dict):
            raise _Unmappable(f"interactions.{n}: not an object")
        initiator, topic = _code(item.get("initiator")), _code(item.get("topic"))
        who, length = _text(item.get("interaction_id")), _count(
            item.get("interaction_length"), f"interactions.{n}.interaction_length")
        if initiator not in _INITIATOR or topic not in _TOPIC:
            raise _Unmappable(f"interactions.{n}: initiator must be 1–3 and topic 1–6")
        if who is None or length is None:
            raise _Unmappable(f"interactions.{n}: whom and how long are both needed")
        found.append({"with": who.upper(), "length_s": length,
                      "initiator": _INITIATOR[initiator], "topic": _TOPIC[topic]})
    left = _empty(doc.get("left_floor"))
    if left is not None and not isinstance(left, list):
        raise _Unmappable("left_floor: not a list of seconds")
    seconds = [_count(s, "left_floor") for s in left or []]
    if any(s is None for s in seconds):
        raise _Unmappable("left_floor: an empty value among the seconds")
    return _payload("interactions", study, department, at, left is None,
                    supervisor=supervisor, interactions=found, left_floor_s=seconds,
                    **_extra(doc, {"DateTime", "date_time", "supervisor", "interactions",
                                   "left_floor"}))


def _wip_machine(code: str, department: str, values: dict[str, Any],
                 ) -> tuple[dict[str, Any], bool]:
    """A machine of a wip round in the contract's keys (others kept as they are), and
    whether a value the contract may leave empty was empty."""
    clean = {key.lower(): value for key, value in values.items()}
    status = _status(code, clean.get("mc_status"))
    machine: dict[str, Any] = {"mc_status": status, "worker_id": None, "style": None}
    if department == "knitting":
        machine |= {"component": None, "back": None, "front": None, "sleeve": None,
                    "collar": None}
    else:
        machine["wip"] = None
    machine |= {key: value for key, value in values.items() if key.lower() not in _KNOWN}
    if status == "unmanned":
        written = sorted(key for key in _KNOWN - {"mc_status", "attendance"}
                         if _empty(clean.get(key)) is not None)
        if written:
            raise _Unmappable(f"{code} is unmanned but has {', '.join(written)} written")
        return machine, False
    machine["worker_id"], machine["style"] = _text(clean.get("worker_id")), _text(
        clean.get("style"))
    if machine["worker_id"] is None:
        raise _Unmappable(f"{code} is manned but its worker_id is empty; the contract "
                          "needs it")
    if department == "linking":
        machine["wip"] = _number(clean.get("wip"), f"{code}.wip")
        if machine["wip"] is None:
            raise _Unmappable(f"{code} is manned but its wip is empty; the contract needs "
                              "a count")
        return machine, machine["style"] is None
    component = _text(clean.get("component"))
    if component not in ("body", "collar"):
        raise _Unmappable(f"{code} is manned but its component is neither body nor collar")
    panels = ("back", "front", "sleeve") if component == "body" else ("collar",)
    others = [p for p in ("back", "front", "sleeve", "collar")
              if p not in panels and _empty(clean.get(p)) is not None]
    if others:
        raise _Unmappable(f"{code} knits a {component} but has {', '.join(others)} counted")
    machine["component"] = component
    machine |= {panel: _count(clean.get(panel), f"{code}.{panel}") for panel in panels}
    return machine, machine["style"] is None or any(machine[p] is None for p in panels)


def _payload(task: str, study: Study, department: str, at: datetime, partial: bool,
             **body: Any) -> dict[str, Any]:
    moment = at.isoformat()
    identity = f"{study.factory}/{study.observer}/{department}/{study.team}/{task}/{moment}"
    return {"schema_version": 1, "task": task,
            "observation_id": str(uuid.uuid5(_NAMESPACE, identity)),
            "observer": study.observer, "factory": study.factory, "department": department,
            "team": study.team, "started_at": moment, "ended_at": moment,
            "status": "partial" if partial else "complete",
            "app_version": f"2014 pilot, imported by rmg-lake (importer {IMPORTER})", **body}


def _extra(doc: dict[str, Any], mapped: set[str]) -> dict[str, Any]:
    """The file's keys the contract has no place for, kept under `pilot` (reported as
    the observation's extra keys), never dropped."""
    rest = {key: value for key, value in doc.items()
            if key not in mapped and not _MACHINE.fullmatch(key)}
    return {"pilot": rest} if rest else {}


def _machines(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The machines of a file, by code (upper case), in order: KN1, KN2, …, KN10."""
    found = []
    for key, values in doc.items():
        if _MACHINE.fullmatch(key):
            if not isinstance(values, dict):
                raise _Unmappable(f"{key.upper()}: not an object of values")
            found.append((key.upper(), values))
    found.sort(key=lambda kv: (kv[0][:2], int(kv[0][2:])))
    codes = [code for code, _ in found]
    if len(set(codes)) < len(codes):
        raise _Unmappable("a machine code written twice (in other letter cases)")
    return found


def _aligned(doc: dict[str, Any]) -> None:
    """A master file's lists line up with `date_time`, or no round can be trusted."""
    rounds = len(doc["date_time"])
    lists: dict[str, Any] = {key: value for key, value in doc.items()
                             if isinstance(value, list)}
    for code, values in _machines(doc):
        lists |= {f"{code}'s {key}": value for key, value in values.items()}
    for key, written in lists.items():
        if not isinstance(written, list) or len(written) != rounds:
            count = len(written) if isinstance(written, list) else "no list of"
            raise _Unmappable(f"{key} has {count} values for {rounds} times: the rounds "
                              "cannot be lined up")


def _nth(doc: dict[str, Any], i: int) -> dict[str, Any]:
    """Round `i` of a master file, as a file of its own would hold it."""
    return {key: ({k: v[i] for k, v in value.items()} if _MACHINE.fullmatch(key)
                  else value[i] if isinstance(value, list) else value)
            for key, value in doc.items()}


def _roster_for(rosters: list[Legacy], department: str, at: datetime) -> dict[str, Any]:
    """The machines of the latest operator-ID file of that day and department at or
    before `at`."""
    day = sorted((r.at, r.roster) for r in rosters if r.department == department
                 and r.at is not None and r.at.date() == at.date() and r.roster is not None)
    before = [roster for when, roster in day if when <= at]
    if not before:
        raise _Unmappable(f"no operator-ID file of {department} on {at:%Y-%m-%d} at or "
                          f"before {at:%H:%M} was imported with it: the round names no "
                          "workers")
    return before[-1]


def _department(name: str, doc: dict[str, Any], given: str | None) -> str:
    named = {m.lower() for m in _NAMED.findall(name)}
    codes = {key[:2].upper() for key in doc if _MACHINE.fullmatch(key)}
    found: set[str] = named or {{"KN": "knitting", "LI": "linking"}[c] for c in codes}
    if given is not None and named and named != {given}:
        raise _Unmappable(f"its name says {' and '.join(sorted(named))}, not {given} "
                          "(--department)")
    if given is not None:
        return given
    if len(found) != 1:
        raise _Unmappable("its department cannot be told (no knitting or linking in its "
                          "name, no KN or LI machines alone): pass --department")
    return found.pop()


def _time(text: Any) -> datetime:
    for layout in ("%m/%d/%Y %H:%M", "%Y_%m_%d_%H_%M"):
        try:
            return datetime.strptime(str(text), layout).replace(tzinfo=FACTORY_TZ)
        except ValueError:
            continue
    raise _Unmappable("the time is neither MM/DD/YYYY HH:MM nor YYYY_MM_DD_HH_MM")


def _status(code: str, value: Any) -> str:
    status = _STATUS.get(str(_empty(value)).strip().lower())
    if status is None:
        raise _Unmappable(f"{code}: mc_status (or Attendance) is neither Manned nor "
                          "Unmanned")
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


def _code(value: Any) -> int | None:
    """A number code (1, 1.0 or "1"), or None."""
    try:
        number = _number(value, "code")
    except _Unmappable:
        return None
    return int(number) if number is not None and number == int(number) else None


def _number(value: Any, key: str) -> float | None:
    """A finite number, also as the pilot wrote some: in a string."""
    value = _empty(value)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise _Unmappable(f"{key}: not a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value):
        raise _Unmappable(f"{key}: not a number")
    return float(value)


def _count(value: Any, key: str) -> int | None:
    number = _number(value, key)
    if number is not None and number != int(number):
        raise _Unmappable(f"{key}: not a whole number")
    return None if number is None else int(number)


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True).encode()
