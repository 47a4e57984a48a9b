"""The pilot app's folder, read: what each file is, and the rounds it holds.

What the app's last version (RMGProjects/RMG-Observations) writes into its folder, which
Dropbox synced, and what the import makes of it:

    Knitting_wip.json, Linking_wip.json   master files, a round per element of `date_time`
                                          (the task's start); WIP one number, knitting too
    Knitting_id-2014_02_10_08_02          the day's operator-ID file: a roster; that day's
                                          rounds take their workers from the latest one
    rmg_machine_operators.json            the start-of-day form: a roster per group (six
                                          teams), at the file's modification time
    Knitting_wip_2014_02_10_08_06.jpg     the photo after each task: the round's end
    Knitting_interact.json, …_other.json  made empty, then `null`: tasks the app never had
    top_level_data.json                   the app's machine counts
    anything else                         kept as it is

and the per-task files of the design documents (`{"DateTime": …}`), which it never wrote.
Every file is kept byte for byte as evidence; a round the contract has no place for is
refused with the reason and the round as written, a file of no pilot shape with its own.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import orjson

from rmg_lake.contract.models import FACTORY_TZ
from rmg_lake.sources.pilot import rounds, values
from rmg_lake.sources.pilot.rounds import IMPORTER, MACHINE, Roster, Study
from rmg_lake.sources.pilot.values import Unmappable

__all__ = ["Listed", "PilotFile", "Reading", "read_pilot"]

ID_FILE = re.compile(r"(?i)(knitting|linking)_id-(\d{4}_\d\d_\d\d_\d\d_\d\d)")
_PHOTO = re.compile(r"(?i)(knitting|linking)_(wip|interact|other)_"
                    r"(\d{4}_\d\d_\d\d_\d\d_\d\d)\.(jpe?g|png)")
_NAMED = re.compile(r"(?i)(?:^|[^a-z])(knitting|linking)(?:[^a-z]|$)")
_FORM = re.compile(r"(?i)(knitting|linking)_(treatment|same_floor|different|[a-z0-9]+)")
_TASKS = {"wip": "wip", "interact": "interactions"}  # a photo's task → the round's
_AFTER = timedelta(hours=1)  # a photo this long after a round's start is no longer its end


@dataclass(frozen=True, slots=True)
class PilotFile:
    path: str  # relative to the folder imported, POSIX
    data: bytes
    modified: datetime  # UTC-aware


@dataclass(frozen=True, slots=True)
class Listed:
    """An entry of the listing: a pilot file kept as evidence, a round as a contract file,
    or what is refused (its content is then the evidence kept in quarantine)."""

    path: str
    modified: datetime
    content: bytes
    fingerprint: str
    evidence: bool = False
    note: str | None = None  # evidence: what it is
    attached_to: str | None = None  # evidence: the observation it documents (a photo)
    refused: str | None = None  # why it is quarantined
    observation_id: str | None = None  # a round
    origin: str | None = None  # a round (or one refused): sha256 of it as the app wrote it


@dataclass(frozen=True, slots=True)
class Reading:
    listed: list[Listed]
    left_out: list[str]  # of another department than --department: not read this time


@dataclass
class _Round:
    path: str  # `Knitting_wip.json/round 3`, `rmg_machine_operators.json/knitting_treatment`
    written: Any  # the round as the app wrote it
    payload: dict[str, Any] | None = None
    reason: str | None = None
    origin: str = ""


@dataclass
class _File:
    file: PilotFile
    kind: str  # rounds, form, photo, refused, or kept (as it is)
    note: str | None = None
    refused: str | None = None
    department: str = ""  # a file of rounds: theirs
    rounds: list[_Round] = field(default_factory=list)
    photo: tuple[str, str | None, datetime] | None = None  # department, task, time
    attached_to: str | None = None  # a photo: the observation whose round it ended


def read_pilot(files: list[PilotFile], study: Study, *,
               context: list[PilotFile] | None = None) -> Reading:
    """The listing of a pilot folder's `files`, read as `study` says; `context` (the
    lake's operator-ID files and photos) only says who worked at a machine, and when a
    round ended."""
    left_out: list[str] = []
    kept = [k for k in (_kind(f, study, left_out) for f in files) if k is not None]
    known = [k for k in (_kind(f, study, []) for f in context or []) if k is not None
             and (k.photo is not None or ID_FILE.fullmatch(k.file.path.rsplit("/", 1)[-1]))]
    rosters = [r for k in [*kept, *known] for r in _rosters(k, study)]
    for found in kept:
        if found.kind in ("rounds", "form"):
            _read_rounds(found, study, rosters, left_out)
    _once(kept)
    _photos_end_rounds(kept, [k for k in known if k.photo is not None])
    options = hashlib.sha256(study.options.encode()).hexdigest()[:16]
    listed = [entry for found in sorted(kept, key=lambda k: k.file.path)
              for entry in _listed(found, options)]
    return Reading(listed, left_out)


def _kind(file: PilotFile, study: Study, left_out: list[str]) -> _File | None:
    """What a file is (None: of another department, left out); its rounds come later."""
    name = file.path.rsplit("/", 1)[-1]
    if study.department is not None and (named := _named(name)) \
            and study.department not in named:
        left_out.append(file.path)
        return None
    if photo := _PHOTO.fullmatch(name):
        department = photo[1].lower()
        try:
            at = values.time(photo[3])
        except Unmappable:
            return _File(file, "kept", note="a photo whose name holds no time")
        return _File(file, "photo", photo=(department, _TASKS.get(photo[2].lower()), at))
    if not (name.lower().endswith(".json") or ID_FILE.fullmatch(name)):
        return _File(file, "kept", note="kept as it is: not one of the app's data files")
    try:
        doc = json.loads(file.data.decode("utf-8-sig"))  # Python 2 wrote NaN; json reads it
    except (UnicodeDecodeError, ValueError) as err:
        return _File(file, "refused", refused=f"not JSON ({err})")
    except RecursionError:
        return _File(file, "refused", refused="not JSON the pilot wrote (nested too deeply)")
    if doc is None:
        return _File(file, "kept", note="holds nothing (null): the app saves null for its "
                                        "interactions and other tasks, which it never had")
    if not isinstance(doc, dict):
        return _File(file, "refused", refused="not a JSON object")
    if _is_form(doc):
        return _File(file, "form", note="the start-of-day form")
    if _is_counts(doc):
        counts = ", ".join(f"{v} {k.lower()}" for k, v in sorted(doc.items()))
        return _File(file, "kept", note=f"the app's settings: machine counts ({counts})")
    if not ("DateTime" in doc or isinstance(doc.get("date_time"), list)
            or ID_FILE.fullmatch(name)):
        return _File(file, "refused", refused="not a shape of the pilot's files (no "
                                              "DateTime or date_time list)")
    try:
        department = _department(name, doc, study)
    except Unmappable as err:
        return _File(file, "refused", refused=str(err))
    if department is None:
        left_out.append(file.path)
        return None
    return _File(file, "rounds", department=department)


def _read_rounds(found: _File, study: Study, rosters: list[Roster],
                 left_out: list[str]) -> None:
    file, doc = found.file, _json(found.file)
    name = file.path.rsplit("/", 1)[-1]
    if found.kind == "form":
        at = file.modified.astimezone(FACTORY_TZ).replace(microsecond=0)
        if all(values.text(c) is None for codes in doc.values() for c in codes):
            found.note = "the start-of-day form's machine counts: no operators yet"
            return
        for group in sorted(doc):
            department, team = rounds.team_of(group)
            if study.department not in (None, department):
                left_out.append(f"{file.path} ({group})")
                continue
            found.rounds.append(_one(
                f"{file.path}/{group}", {"file": name, "modified": at.isoformat(),
                                         group: doc[group]},
                partial(rounds.group_roster, group, department, team, doc[group], study, at)))
        return
    department = found.department
    if id_file := ID_FILE.fullmatch(name):
        found.rounds.append(_one(f"{file.path}/round 1", {"file": name, "round": doc},
                                 partial(_id_roster, doc, study, department, id_file[2])))
    elif "DateTime" in doc:
        found.rounds.append(_one(f"{file.path}/round 1", doc,
                                 partial(rounds.per_task, doc, study, department)))
    else:
        try:
            rounds.aligned(doc)
        except Unmappable as err:
            found.refused = str(err)
            return
        if not doc["date_time"]:
            found.note = "no rounds yet: the file as the app made it when set up"
        for i in range(len(doc["date_time"])):
            one = rounds.nth(doc, i)
            found.rounds.append(_one(
                f"{file.path}/round {i + 1}", one,
                partial(rounds.window, one, study, department) if "interactions" in doc
                else partial(rounds.master_round, one, study, department, rosters)))


def _id_roster(doc: dict[str, Any], study: Study, department: str,
               stamp: str) -> dict[str, Any]:
    return rounds.id_roster(doc, study, department, values.time(stamp))


def _once(files: list[_File]) -> None:
    """A round that several versions of a file hold (a master file that grew) is listed
    under the first of them only: when it was first saved."""
    first: dict[tuple[str, str], _File] = {}
    for found in sorted(files, key=lambda f: f.file.modified, reverse=True):
        first |= {(one.path, one.origin): found for one in found.rounds}
    for found in files:
        found.rounds = [one for one in found.rounds if first[one.path, one.origin] is found]


def _one(path: str, written: Any, make: Callable[[], dict[str, Any]]) -> _Round:
    found = _Round(path, written, origin=hashlib.sha256(_dump(written)).hexdigest())
    try:
        payload = make()
    except (Unmappable, OverflowError, TypeError) as err:
        found.reason = str(err)
        return found
    try:
        orjson.dumps(payload)
    except TypeError as err:  # a key it does not know holds what JSON cannot
        found.reason = f"a value the contract does not know cannot be written ({err})"
        return found
    found.payload = payload
    return found


def _rosters(found: _File, study: Study) -> list[Roster]:
    """The operator-ID file `found` is, as the roster its day's rounds take workers from."""
    name = found.file.path.rsplit("/", 1)[-1]
    if found.kind != "rounds" or not (id_file := ID_FILE.fullmatch(name)):
        return []
    try:
        payload = rounds.id_roster(_json(found.file), study, found.department,
                                   values.time(id_file[2]))
    except (Unmappable, TypeError):
        return []
    return [Roster(name, payload["department"], values.time(id_file[2]),
                   payload["machines"])]


def _photos_end_rounds(files: list[_File], known: list[_File]) -> None:
    """A photo of a task ends its latest round that started within the hour before it:
    the round's `ended_at`, and the photo is attached to it (unless that round could not
    be taken in: then the photo is kept, saying so). `known` are photos the lake holds."""
    by_task: dict[tuple[str, str], list[tuple[datetime, _Round]]] = defaultdict(list)
    for found in files:
        if found.kind != "rounds" or ID_FILE.fullmatch(found.file.path.rsplit("/", 1)[-1]):
            continue  # (a roster is no task a photo ends)
        for one in found.rounds:
            if (start := _start(one)) is not None:
                kind = "interactions" if "interactions" in one.written else "wip"
                by_task[found.department, kind].append((start, one))
    ended: set[str] = set()
    photos = [(f, f.photo) for f in [*files, *known] if f.photo is not None]
    for found, (department, task, at) in sorted(photos, key=lambda fp: fp[1][2]):
        started = [(start, r) for start, r in by_task.get((department, task or ""), [])
                   if start <= at]
        if task is None or not started:
            found.note = f"a photo after a {department} {task or 'other'} task at " \
                         f"{at:%H:%M}, which the app saved no round of"
            continue
        start, last = max(started, key=lambda sr: sr[0])
        if last.path in ended or at - start >= _AFTER:
            found.note = f"a photo after a {department} {task} task at {at:%H:%M}: no " \
                         "round of it started in the hour before"
        elif last.payload is None:
            found.note = f"the photo that ended {last.path} (at {at:%H:%M}), which is " \
                         "quarantined"
        else:
            last.payload["ended_at"] = at.isoformat()
            found.note = f"the photo that ended {last.path} (at {at:%H:%M})"
            found.attached_to = last.payload["observation_id"]
        ended.add(last.path)


def _listed(found: _File, options: str) -> list[Listed]:
    file = found.file
    common = f"importer {IMPORTER} options {options}"
    if found.refused is not None:
        return [Listed(file.path, file.modified, file.data,
                       f"{_sha(file.data)} {common}", refused=found.refused)]
    # the form's time is its file's: a new version of the same bytes is a new roster
    when = f" modified {file.modified.timestamp():.0f}" if found.kind == "form" else ""
    # a photo's: the round it ends (its link is listed again when that changes)
    ends = f" ends {found.attached_to or 'none'}" if found.photo is not None else ""
    entries = [Listed(file.path, file.modified, file.data, f"{_sha(file.data)} {common}"
                      f"{when}{ends}", evidence=True, note=found.note,
                      attached_to=found.attached_to)]
    for one in found.rounds:
        if one.payload is None:
            evidence = _dump(one.written) + (one.reason or "").encode()
            entries.append(Listed(
                one.path, file.modified, evidence,
                f"{_sha(evidence)} {common} round {one.origin}", origin=one.origin,
                refused=f"{one.path.rsplit('/', 1)[-1]} cannot be put in the contract: "
                        f"{one.reason}"))
            continue
        payload, at = one.payload, datetime.fromisoformat(one.payload["started_at"])
        name = (f"{payload['task']}_{payload['department']}_{payload['team']}_"
                f"{payload['observer']}_{at.year:04d}{at:%m%dT%H%M%S}.json")
        content = orjson.dumps(payload, option=orjson.OPT_INDENT_2)
        entries.append(Listed(f"{one.path}/{name}", file.modified, content,
                              f"{_sha(content)} {common} round {one.origin}",
                              observation_id=payload["observation_id"], origin=one.origin))
    return entries


def _start(one: _Round) -> datetime | None:
    """When a round of wip or interactions started (None: its time cannot be read)."""
    if one.payload is not None:
        return datetime.fromisoformat(one.payload["started_at"])
    try:
        return values.time(one.written.get("date_time", one.written.get("DateTime")))
    except (Unmappable, AttributeError):
        return None


def _department(name: str, doc: dict[str, Any], study: Study) -> str | None:
    """The department of a file of rounds: its name's, else its machines'; None if it is
    another than --department."""
    named = _named(name)
    codes = {key[:2].upper() for key in doc if MACHINE.fullmatch(key)}
    found = named or {{"KN": "knitting", "LI": "linking"}[c] for c in codes}
    if len(found) > 1:
        raise Unmappable(f"its name or machines say {' and '.join(sorted(found))}: which "
                         "is it?")
    if not found:
        if study.department is None:
            raise Unmappable("its department cannot be told (no knitting or linking in its "
                             "name, no KN or LI machines): import it with --department")
        return study.department
    department = found.pop()
    return department if study.department in (None, department) else None


def _named(name: str) -> set[str]:
    """The departments a file's name says: `Knitting_wip.json` → knitting."""
    return {m.lower() for m in _NAMED.findall(name)}


def _is_form(doc: Any) -> bool:
    """`rmg_machine_operators.json`: {"knitting_treatment": ["1201", "", …], …}."""
    return isinstance(doc, dict) and bool(doc) and all(
        _FORM.fullmatch(key) and isinstance(codes, list) for key, codes in doc.items())


def _is_counts(doc: dict[str, Any]) -> bool:
    """`top_level_data.json`: {"Knitting": 4, "Linking": 3}."""
    return bool(doc) and all(key.lower() in ("knitting", "linking")
                             and isinstance(n, int) for key, n in doc.items())


def _json(file: PilotFile) -> Any:
    return json.loads(file.data.decode("utf-8-sig"))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True).encode()

