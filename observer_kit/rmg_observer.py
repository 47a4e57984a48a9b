"""rmg_observer: save one completed task as an observation file of the rmg-lake contract.

One file, the Python standard library only, Python 3.6 or newer (Pythonista on the
tablets). Copy it next to the app and:

    import datetime
    import rmg_observer

    start = datetime.datetime.now()               # the tablet's clock, local time
    ...                                           # the round is observed
    path = rmg_observer.save("/path/to/Dropbox/RMG", rmg_observer.observation(
        "wip", factory="f01", department="linking", team="treatment", observer="obs03",
        started_at=start, machines={
            "LI1": {"mc_status": "manned", "worker_id": "w-0412", "style": "S12",
                    "wip": 4.25},
            "LI2": {"mc_status": "unmanned", "worker_id": None, "style": None,
                    "wip": None},
        }))

`observation` fills what every file carries (`schema_version`, a new `observation_id`,
timestamps with the tablet's UTC offset, `status`) and checks what it can (contract 1.1:
a manned machine whose worker is not known has worker_id None, and the observation is
then "partial"; a knitting machine may give its WIP as one number, `wip`, with
`component` and the panels None); `save` writes
the file under the contract's name, whole or not at all (a temporary file, then a
rename), so a half-written file never reaches Dropbox. The contract is rmg-lake's
shared/CONTRACT.md; its JSON Schema is in `schema/` beside this file (`rmg-lake schema`
writes it again).
"""

import datetime
import json
import os
import pathlib
import re
import time
import uuid

__all__ = ["FACTORY_TIME", "SCHEMA_VERSION", "TASKS", "file_name", "observation", "save"]

SCHEMA_VERSION = 1
STALE_SECONDS = 3600  # a temporary file older than this was left by a save that died
# The factories' time (Asia/Dhaka, which keeps no daylight saving time): file names are
# written in it, whatever zone the tablet's clock is set to.
FACTORY_TIME = datetime.timezone(datetime.timedelta(hours=6))
TASKS = ("roster", "wip", "interactions")
DEPARTMENTS = ("knitting", "linking")
STATUSES = ("complete", "partial", "aborted")
_TOKEN = re.compile(r"[a-z0-9-]+\Z")
_COMMON = ("schema_version", "task", "observation_id", "observer", "factory", "department",
           "team", "started_at", "ended_at", "status")
_BODY = {  # what each task adds to the common keys
    "roster": ("machines",),
    "wip": ("machines",),
    "interactions": ("supervisor", "interactions", "left_floor_s"),
}


def observation(task, factory, department, team, observer, started_at, ended_at=None,
                status="complete", app_version=None, device=None, notes=None, **body):
    """The payload of one completed task, as a plain dict ready for `save`.

    `started_at` and `ended_at` are datetimes; without a time zone they are the
    tablet's local time (ended_at: by default now). `body` holds the task's own keys:
    `machines` for roster and wip; `supervisor`, `interactions` and `left_floor_s` for
    interactions. Raises ValueError naming the key that is wrong.
    """
    if task not in TASKS:
        raise ValueError("task must be one of %s, not %r" % (", ".join(TASKS), task))
    for key, value in (("factory", factory), ("team", team), ("observer", observer)):
        if not isinstance(value, str) or not _TOKEN.match(value):
            raise ValueError("%s must be lower-case letters, digits and '-', such as "
                             "'f01', 'treatment' or 'obs03'" % key)
    if department not in DEPARTMENTS:
        raise ValueError("department must be knitting or linking")
    if status not in STATUSES:
        raise ValueError("status must be one of %s" % ", ".join(STATUSES))
    missing = [key for key in _BODY[task] if key not in body]
    if missing:
        raise ValueError("a %s needs %s" % (task, ", ".join(missing)))
    taken = sorted(set(body) & set(_COMMON))
    if taken:
        raise ValueError("%s: set by observation() itself" % ", ".join(taken))
    machines = body.get("machines") if task != "interactions" else None
    for code, machine in sorted((machines or {}).items()):
        if isinstance(machine, dict) and machine.get("mc_status") == "manned" \
                and machine.get("worker_id") is None and status != "partial":
            raise ValueError("machines.%s: manned, its worker not known (worker_id None): "
                             "the status must be partial" % code)
    start = _aware(started_at, "started_at")
    now = datetime.datetime.now(datetime.timezone.utc).astimezone()  # the tablet's zone
    end = _aware(ended_at if ended_at is not None else now, "ended_at")
    if end < start:
        raise ValueError("ended_at is before started_at")
    payload = {
        "schema_version": SCHEMA_VERSION,
        "task": task,
        "observation_id": str(uuid.uuid4()),
        "observer": observer,
        "factory": factory,
        "department": department,
        "team": team,
        "started_at": start.isoformat(timespec="seconds"),
        "ended_at": end.isoformat(timespec="seconds"),
        "status": status,
    }
    payload.update((k, v) for k, v in (("app_version", app_version), ("device", device),
                                       ("notes", notes)) if v is not None)
    payload.update(body)
    return payload


def file_name(payload):
    """`<task>_<department>_<team>_<observer>_<YYYYMMDD>T<HHMMSS>.json`, the time being
    the task's start in factory time."""
    text = payload["started_at"]  # 2026-11-24T10:15:00+06:00 (3.6 cannot parse the offset)
    sign = -1 if text[19] == "-" else 1
    offset = datetime.timedelta(hours=int(text[20:22]), minutes=int(text[23:25])) * sign
    started = datetime.datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone(offset)).astimezone(FACTORY_TIME)
    return "%s_%s_%s_%s_%s.json" % (payload["task"], payload["department"], payload["team"],
                                    payload["observer"], started.strftime("%Y%m%dT%H%M%S"))


def save(folder, payload):
    """Write `payload` into `folder` under its contract name; the path written.

    The file appears whole or not at all. A file of that name already there (two tasks
    started in the same second) is kept: this one is saved as `name (1).json`. What an
    interrupted save left behind (a `.….json.partial` over an hour old) is removed.
    """
    try:
        data = json.dumps(payload, ensure_ascii=False, indent=1, allow_nan=False)
    except ValueError:
        raise ValueError("a value is NaN or infinite: JSON, and the contract, have no "
                         "place for it (leave it None)") from None
    data = data.encode("utf-8")
    name = file_name(payload)
    path, n = pathlib.Path(folder, name), 0
    while path.exists():
        n += 1
        path = pathlib.Path(folder, "%s (%d).json" % (name[:-len(".json")], n))
    temp = path.with_name(".%s.partial" % path.name)
    for left in pathlib.Path(folder).glob(".*.json.partial"):
        if time.time() - left.stat().st_mtime > STALE_SECONDS:
            left.unlink()
    try:
        with temp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temp.replace(path)
    except BaseException:
        if temp.exists():
            temp.unlink()
        raise
    return str(path)


def _aware(moment, key):
    """`moment` with a UTC offset: the tablet's own when it has none."""
    if not isinstance(moment, datetime.datetime):
        raise ValueError("%s must be a datetime" % key)
    return moment if moment.tzinfo is not None else moment.astimezone()
