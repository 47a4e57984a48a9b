"""One round of the pilot, as an observation of the contract (version 1 with 1.1's additions).

A round is what the app recorded at one time: a wip round (a master file's element, or a
per-task file), an interactions window, the day's operator-ID file (a roster), or a group
of the start-of-day form (a roster). Its `observation_id` is a UUID5 of what it is
(factory, observer, department, team, task, time), so the same round gives the same id in
any file that holds it, and the same bytes when read the same way.

A value the contract may leave empty but the pilot left empty makes the round `partial`;
so does a manned machine whose worker is not known (contract 1.1: worker_id null), such
as an operator who came after the day's operator-ID file was taken. What the contract has
no place for raises `Unmappable`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rmg_lake.sources.pilot import values
from rmg_lake.sources.pilot.values import Unmappable

__all__ = ["IMPORTER", "Roster", "Study", "aligned", "group_roster", "id_roster",
           "machines", "master_round", "nth", "per_task", "team_of", "window"]

IMPORTER = 2  # the version of this reading: recorded with each import's batch
_NAMESPACE = uuid.UUID("0f05c5dc-8d91-4ba3-ac88-60518f5d5054")  # of the pilot's rounds
MACHINE = re.compile(r"(?i)(KN|LI)[1-9][0-9]*")
_INITIATOR = {1: "supervisor", 2: "interlocutor", 3: "unclear"}
_TOPIC = {1: "machine-configuration", 2: "machine-function", 3: "yarn", 4: "pattern",
          5: "other-work", 6: "personal"}
_KNOWN = {"mc_status", "worker_id", "style", "component", "back", "front", "sleeve",
          "collar", "wip", "attendance"}  # a machine's keys (lower case) that are mapped
_PANELS = ("back", "front", "sleeve", "collar")
_TEAMS = {"same_floor": "same-floor", "different": "other-floor"}  # contract 1.1


@dataclass(frozen=True, slots=True)
class Study:
    """What the pilot's files do not say: the options of `rmg-lake import-legacy`."""

    factory: str
    observer: str
    team: str
    department: str | None = None  # only this department's files (else every one)

    @property
    def options(self) -> str:
        return (f"factory={self.factory} observer={self.observer} team={self.team} "
                f"department={self.department or '(from files)'}")


@dataclass(frozen=True, slots=True)
class Roster:
    """An operator-ID file read: whom its day's wip rounds take workers from."""

    name: str
    department: str
    at: datetime
    machines: dict[str, dict[str, Any]]  # code → mc_status, worker_id (the contract's)


def per_task(doc: dict[str, Any], study: Study, department: str) -> dict[str, Any]:
    """A per-task file (`{"DateTime": …}`, as the design documents had it)."""
    if "interactions" in doc:
        return window(doc, study, department)
    at, found, gaps = values.time(doc["DateTime"]), {}, False
    for code, written in machines(doc):
        found[code], gap = _wip_machine(code, department, written)
        gaps |= gap
    return _payload("wip", study, department, study.team, at, gaps, machines=found,
                    **_extra(doc, {"DateTime"}))


def master_round(doc: dict[str, Any], study: Study, department: str,
                 rosters: list[Roster]) -> dict[str, Any]:
    """A round of a master file (`Knitting_wip.json`: one element of each list), its
    workers from the latest of `rosters` (operator-ID files) of its day and department
    at or before it (none: the workers are not known)."""
    at, found, gaps = values.time(doc["date_time"]), {}, False
    before = sorted((r for r in rosters if r.department == department
                     and r.at.date() == at.date() and r.at <= at), key=lambda r: r.at)
    known = before[-1].machines if before else {}
    for code, written in machines(doc):
        row = {key.lower(): value for key, value in written.items()}
        status = values.status(code, row.pop("attendance", row.pop("mc_status", None)))
        wip = row.pop("wip", None)
        counts = wip if isinstance(wip, dict) else {"wip": wip}
        worker = known.get(code, {}).get("worker_id") if status == "manned" else None
        found[code], gap = _wip_machine(code, department, {
            **row, "mc_status": status, "worker_id": worker, **counts})
        gaps |= gap
    return _payload("wip", study, department, study.team, at, gaps, machines=found,
                    **_extra(doc, {"date_time"}))


def window(doc: dict[str, Any], study: Study, department: str) -> dict[str, Any]:
    """An interactions window, per task or a master file's round."""
    at = values.time(doc.get("DateTime", doc.get("date_time")))
    supervisor = values.text(doc.get("supervisor"))
    if supervisor is None:
        raise Unmappable("no supervisor code: the contract needs whom the window followed")
    coded = doc.get("interactions")
    if not isinstance(coded, list):
        raise Unmappable("interactions: not a list")
    found = []
    for n, item in enumerate(coded):
        if not isinstance(item, dict):
            raise Unmappable(f"interactions.{n}: not an object")
        initiator, topic = values.code(item.get("initiator")), values.code(item.get("topic"))
        who, length = values.text(item.get("interaction_id")), values.count(
            item.get("interaction_length"), f"interactions.{n}.interaction_length")
        if initiator not in _INITIATOR or topic not in _TOPIC:
            raise Unmappable(f"interactions.{n}: initiator must be 1–3 and topic 1–6")
        if who is None or length is None:
            raise Unmappable(f"interactions.{n}: whom and how long are both needed")
        found.append({"with": who.upper(), "length_s": length,
                      "initiator": _INITIATOR[initiator], "topic": _TOPIC[topic]})
    left = values.empty(doc.get("left_floor"))
    if left is not None and not isinstance(left, list):
        raise Unmappable("left_floor: not a list of seconds")
    seconds = [values.count(s, "left_floor") for s in left or []]
    if any(s is None for s in seconds):
        raise Unmappable("left_floor: an empty value among the seconds")
    return _payload("interactions", study, department, study.team, at, left is None,
                    supervisor=supervisor, interactions=found, left_floor_s=seconds,
                    **_extra(doc, {"DateTime", "date_time", "supervisor", "interactions",
                                   "left_floor"}))


def id_roster(doc: dict[str, Any], study: Study, department: str,
              at: datetime) -> dict[str, Any]:
    """The day's operator-ID file (`Knitting_id-2014_01_14_07_55`) as a roster."""
    found, gaps = {}, False
    for code, written in machines(doc):
        status = values.status(code, written.get("mc_status"))
        worker = values.text(written.get("worker_id"))
        if status == "unmanned" and worker is not None:
            raise Unmappable(f"{code} is unmanned but has a worker_id written")
        found[code] = {"mc_status": status, "worker_id": worker}
        gaps |= status == "manned" and worker is None  # the worker not known
    return _payload("roster", study, department, study.team, at, gaps, machines=found,
                    **_extra(doc, {"date_time"}))


def group_roster(group: str, department: str, team: str, codes: list[Any], study: Study,
                 at: datetime) -> dict[str, Any]:
    """A group of the start-of-day form (`rmg_machine_operators.json`, `group` one of its
    keys): machines 1 to n of the team, each an operator's code, or blank for an
    unmanned machine."""
    prefix = "KN" if department == "knitting" else "LI"
    found = {}
    for n, written in enumerate(codes, start=1):
        if written is not None and not isinstance(written, str | int):
            raise Unmappable(f"{prefix}{n}: neither an operator's code nor blank")
        worker = values.text(written if not isinstance(written, str) else written.strip())
        found[f"{prefix}{n}"] = {"mc_status": "unmanned" if worker is None else "manned",
                                 "worker_id": worker}
    return _payload("roster", study, department, team, at, False, form="start-of-day",
                    machines=found, pilot={"start_of_day": group})


def _wip_machine(code: str, department: str, written: dict[str, Any],
                 ) -> tuple[dict[str, Any], bool]:
    """A machine of a wip round in the contract's keys (others kept as they are), and
    whether the round is partial for it (a value it may leave empty was empty, or the
    worker is not known)."""
    clean = {key.lower(): value for key, value in written.items()}
    status = values.status(code, clean.get("mc_status"))
    machine: dict[str, Any] = {"mc_status": status, "worker_id": None, "style": None}
    if department == "knitting":
        machine |= dict.fromkeys(("component", *_PANELS))
    else:
        machine["wip"] = None
    machine |= {key: value for key, value in written.items() if key.lower() not in _KNOWN}
    if status == "unmanned":
        said = sorted(key for key in _KNOWN - {"mc_status", "attendance"}
                      if values.empty(clean.get(key)) is not None)
        if said:
            raise Unmappable(f"{code} is unmanned but has {', '.join(said)} written")
        return machine, False
    machine["worker_id"] = values.text(clean.get("worker_id"))
    machine["style"] = values.text(clean.get("style"))
    unknown = machine["worker_id"] is None or machine["style"] is None
    component = values.text(clean.get("component"))
    wip = values.number(clean.get("wip"), f"{code}.wip")
    if department == "linking" or (component is None and wip is not None):
        if wip is None:
            raise Unmappable(f"{code} is manned but its wip is empty; the contract needs "
                             "a count")
        return machine | {"wip": wip}, unknown
    if component not in ("body", "collar"):
        raise Unmappable(f"{code} is manned but has neither a component (body or collar) "
                         "nor its WIP")
    panels = ("back", "front", "sleeve") if component == "body" else ("collar",)
    others = [p for p in _PANELS
              if p not in panels and values.empty(clean.get(p)) is not None]
    if others:
        raise Unmappable(f"{code} knits a {component} but has {', '.join(others)} counted")
    if wip is not None:
        raise Unmappable(f"{code} has both panels and WIP counted")
    machine["component"] = component
    machine |= {panel: values.count(clean.get(panel), f"{code}.{panel}") for panel in panels}
    return machine, unknown or any(machine[p] is None for p in panels)


def _payload(task: str, study: Study, department: str, team: str, at: datetime,
             partial: bool, *, form: str | None = None, **body: Any) -> dict[str, Any]:
    moment = at.isoformat()
    identity = f"{study.factory}/{study.observer}/{department}/{team}/{task}/{moment}"
    return {"schema_version": 1, "task": task,
            "observation_id": str(uuid.uuid5(_NAMESPACE, identity + (
                f"/{form}" if form else ""))),
            "observer": study.observer, "factory": study.factory, "department": department,
            "team": team, "started_at": moment, "ended_at": moment,
            "status": "partial" if partial else "complete",
            "app_version": f"2014 pilot app, imported by rmg-lake (importer {IMPORTER})",
            **body}


def _extra(doc: dict[str, Any], mapped: set[str]) -> dict[str, Any]:
    """The file's keys the contract has no place for, kept under `pilot` (reported as
    the observation's extra keys), never dropped."""
    rest = {key: value for key, value in doc.items()
            if key not in mapped and not MACHINE.fullmatch(key)}
    return {"pilot": rest} if rest else {}


def machines(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The machines of a file, by code (upper case), in order: KN1, KN2, …, KN10."""
    found = []
    for key, written in doc.items():
        if MACHINE.fullmatch(key):
            if not isinstance(written, dict):
                raise Unmappable(f"{key.upper()}: not an object of values")
            found.append((key.upper(), written))
    found.sort(key=lambda kv: (kv[0][:2], int(kv[0][2:])))
    codes = [code for code, _ in found]
    if len(set(codes)) < len(codes):
        raise Unmappable("a machine code written twice (in other letter cases)")
    return found


def team_of(group: str) -> tuple[str, str]:
    """A start-of-day form group's department and team: knitting_same_floor → knitting,
    same-floor (the contract's names for the pilot's, 1.1)."""
    department, team = group.lower().split("_", 1)
    return department, _TEAMS.get(team, team.replace("_", "-"))


def aligned(doc: dict[str, Any]) -> None:
    """A master file's lists line up with `date_time`, or no round can be trusted."""
    count = len(doc["date_time"])
    lists: dict[str, Any] = {key: value for key, value in doc.items()
                             if isinstance(value, list)}
    for code, written in machines(doc):
        lists |= {f"{code}'s {key}": value for key, value in written.items()}
    for key, written in lists.items():
        if not isinstance(written, list) or len(written) != count:
            said = len(written) if isinstance(written, list) else "no list of"
            raise Unmappable(f"{key} has {said} values for {count} times: the rounds "
                             "cannot be lined up")


def nth(doc: dict[str, Any], i: int) -> dict[str, Any]:
    """Round `i` of a master file, as a file of its own would hold it."""
    return {key: ({k: v[i] for k, v in value.items()} if MACHINE.fullmatch(key)
                  else value[i] if isinstance(value, list) else value)
            for key, value in doc.items()}
