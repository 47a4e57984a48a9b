"""Write a realistic sync folder of observation files under the contract (shared/CONTRACT.md).

For the bundled sample, tests and benchmarks. Deterministic: the same arguments write the
same names, bytes and mtimes (`random.Random(seed)`, and a stream of the seed's own for the
back-checks; never the clock). Besides valid
observations it writes what the field really produces: photos, re-uploads under Dropbox's
clash names, corrected re-saves that supersede a first version, the field supervisor's
back-checks (a wip round recorded again by a second observer minutes later), and bad files.
"""

from __future__ import annotations

import copy
import os
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

from rmg_lake.contract.models import FACTORY_TZ, OTHER_INTERLOCUTORS
from rmg_lake.errors import LakeError, guarded
from rmg_lake.sample.bad import BAD_KINDS, spoil
from rmg_lake.sample.bad import dump as _dump

__all__ = ["BAD_KINDS", "FrameCount", "SimulationManifest", "simulate"]

Payload = dict[str, Any]

DEPARTMENTS = ("knitting", "linking")
PILOT_TEAMS = ("treatment", "same-floor", "other-floor")  # factory f01, as in the pilot
TEAMS = ("treatment", "control")  # every other factory
APP_VERSION = "1.0.3"
ROSTER_AT = time(7, 45)
WIP_ROUNDS = (time(10), time(12), time(14, 30), time(16, 30))
INTERACTIONS_AT = (time(8, 45), time(10, 50), time(13, 20), time(15, 20))
SLOT_S = 15 * 60  # an observer visits their teams one after the other
OTHERS = tuple(sorted(OTHER_INTERLOCUTORS))
INITIATORS = ("supervisor", "interlocutor", "unclear")
TOPICS = ("machine-configuration", "machine-function", "yarn", "pattern", "other-work",
          "personal")
NOTES = ("power cut for ten minutes", "yarn shortage on the floor", "line chief absent",
         "floor in charge asked what I was doing", "new style started after lunch",
         "two machines under repair")
UNMANNED, WORKER_CHANGE, MISSED_ROUND, NOTE = 0.10, 0.02, 0.05, 0.10
BACK_CHECKER = "obs00"  # the field supervisor, who back-checks a wip round each working day
MISCOUNT, OTHER_WORKER, AWAY = 0.05, 0.02, 0.01  # what a back-check sees otherwise
DUPLICATE, RESAVE, PHOTO, IN_SUBFOLDER = 0.02, 0.01, 0.85, 0.6


@dataclass(frozen=True)
class FrameCount:
    """Current (latest) observations of one task of one team."""

    task: str
    factory: str
    department: str
    team: str
    observations: int
    complete: int  # of them with status complete
    rows: int  # machine rows (roster, wip) or interaction rows (interactions)


@dataclass(frozen=True)
class SimulationManifest:
    """What `simulate` wrote; paths are relative to the root, with `/`."""

    files: int  # every file written: observations, duplicates, versions, photos, bad
    observation_files: int  # valid .json files, duplicates and superseded versions included
    duplicates: int  # valid files whose bytes equal an earlier-synced valid file
    superseded: int  # observation versions replaced by a later-synced, different one
    photos: int  # .jpg attachments
    bad: dict[str, str]  # path -> kind (one of BAD_KINDS); validate_file rejects each
    current: dict[str, str]  # observation_id -> path of its latest version
    back_checks: dict[str, str]  # a back-check's observation_id -> that of the round it checks
    frames: tuple[FrameCount, ...]  # sorted by (task, factory, department, team)
    roster_rows: int  # machine rows in the current roster observations
    wip_rows: int  # machine rows in the current wip observations
    interaction_rows: int  # interactions in the current interactions observations
    days: tuple[date, ...]  # working days with observations
    factories_teams: dict[str, dict[str, list[str]]]  # factory -> department -> teams

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy (dates as ISO strings)."""
        out = asdict(self)
        out["days"] = [day.isoformat() for day in self.days]
        return out


@dataclass
class _Team:
    factory: str
    department: str
    name: str
    observer: str
    slot: int  # the observer's n-th team of the day
    machines: tuple[str, ...]
    collar: frozenset[str]  # knitting machines on collars
    supervisor: str
    workers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Day:
    unmanned: frozenset[str]
    style: dict[str, str]
    elsewhere: dict[str, str]  # machine -> panel knitted elsewhere today


@dataclass
class _Obs:
    payload: Payload
    path: str
    synced_ns: int


class _Folder:
    """The files to write, by relative path; a clashing name is renamed as Dropbox does."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, int]] = {}  # path -> (bytes, mtime in ns)

    def put(self, path: str, data: bytes, synced_ns: int) -> str:
        stem, dot, ext = path.rpartition(".")
        n = 0
        while path in self.files:
            n += 1
            path = f"{stem} ({n}){dot}{ext}"
        self.files[path] = (data, synced_ns)
        return path

    def write(self, root: Path) -> None:
        for rel, (data, mtime_ns) in sorted(self.files.items()):
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            os.utime(target, ns=(mtime_ns, mtime_ns))


@guarded
def simulate(
    root: Path, *, days: int = 21, observers: int = 4, seed: int = 0,
    start: date = date(2026, 11, 1), factories: int = 2, bad_files: bool = True,
    holidays: Sequence[date] = (), photos: bool = True,
) -> SimulationManifest:
    """Write `days` calendar days of the study from `start` into the empty folder `root`.

    Fridays and `holidays` are off; without `photos`, only JSON files are written.
    Raises ValueError for impossible arguments and LakeError if `root` holds files already.
    """
    if days < 0 or observers < 1 or factories < 1:
        raise ValueError("need days >= 0, observers >= 1 and factories >= 1")
    root = Path(root)
    if root.is_dir() and any(root.iterdir()):
        raise LakeError("the folder is not empty", file=str(root),
                        hint="simulate into a new or empty folder")
    rng = random.Random(seed)
    workers: set[str] = set()
    teams = _study(rng, factories, observers, workers)
    off = set(holidays)
    working = [d for d in (start + timedelta(i) for i in range(days))
               if d.weekday() != 4 and d not in off]
    folder = _Folder()
    observations = _observe(rng, folder, teams, working, workers, PHOTO if photos else 0.0)
    current, duplicates, superseded = _reupload(rng, folder, observations)
    # (a random stream of their own: adding them left every other file as it was)
    checks = _back_checks(random.Random(f"back-checks {seed}"), folder,
                          list(current.values()), PHOTO if photos else 0.0)
    current.update((obs.payload["observation_id"], obs) for obs, _ in checks)
    bad = _bad(rng, folder, teams, working or [start], set(current)) if bad_files else {}
    folder.write(root)
    return _manifest(folder.files, bad, list(current.values()), duplicates, superseded, teams,
                     len(observations) + len(checks),
                     {obs.payload["observation_id"]: checked for obs, checked in checks})


def _observe(rng: random.Random, folder: _Folder, teams: list[_Team], working: list[date],
             workers: set[str], photo_share: float) -> list[_Obs]:
    """Every team's observations of every working day, with the photos taken."""
    return [_save(rng, folder, payload, photo_share) for day in working for team in teams
            for payload in _team_day(rng, team, day, workers)]


def _save(rng: random.Random, folder: _Folder, payload: Payload, photo_share: float) -> _Obs:
    """An observation's file as the tablet syncs it, and now and then its photo."""
    sub = payload["observer"] if rng.random() < IN_SUBFOLDER else ""
    synced = _synced_ns(rng, payload["ended_at"])
    path = folder.put(_join(sub, _name(payload)), _dump(payload), synced)
    if rng.random() < photo_share:
        local = datetime.fromisoformat(payload["started_at"])
        photo = f"{payload['task']}_{local:%Y_%m_%d_%H_%M}.jpg"
        folder.put(_join(sub, photo), _jpeg(rng), synced + rng.randint(1, 30) * 10**9)
    return _Obs(payload, path, synced)


def _back_checks(rng: random.Random, folder: _Folder, current: list[_Obs],
                 photo_share: float) -> list[tuple[_Obs, str]]:
    """The field supervisor's back-checks: each working day, one complete wip round
    recorded again 1 to 12 minutes after it began; each, and the id of the round it checks."""
    rounds: dict[str, list[Payload]] = {}
    for obs in current:
        if obs.payload["task"] == "wip" and obs.payload["status"] == "complete":
            rounds.setdefault(obs.payload["started_at"][:10], []).append(obs.payload)
    checks = []
    for day in sorted(rounds):
        checked = rng.choice(rounds[day])
        start = datetime.fromisoformat(checked["started_at"]) + timedelta(
            seconds=rng.randint(60, 12 * 60))
        payload = {key: value for key, value in checked.items() if key != "notes"} | {
            "observation_id": _uuid(rng), "observer": BACK_CHECKER,
            "started_at": start.isoformat(),
            "ended_at": (start + timedelta(seconds=rng.randint(6 * 60, 14 * 60))).isoformat(),
            "device": f"ipad-{BACK_CHECKER}", "machines": _recount(rng, checked["machines"])}
        checks.append((_save(rng, folder, payload, photo_share), checked["observation_id"]))
    return checks


def _recount(rng: random.Random, machines: dict[str, Payload]) -> dict[str, Payload]:
    """A round's machines as a second observer finds them minutes later: mostly the same;
    a few counts off by a little, rarely another worker or a machine left unmanned."""
    seen = copy.deepcopy(machines)
    for code, row in seen.items():
        if row["mc_status"] != "manned":
            continue
        roll = rng.random()
        if roll < AWAY:  # the worker stepped away
            seen[code] = dict.fromkeys(row) | {"mc_status": "unmanned"}
            continue
        others = sorted({r["worker_id"] for r in machines.values()} - {row["worker_id"], None})
        if roll < AWAY + OTHER_WORKER and others:  # another of the team's workers noted
            row["worker_id"] = rng.choice(others)
        for key in ("back", "front", "sleeve", "collar", "wip"):
            if row.get(key) is None or rng.random() >= MISCOUNT:
                continue
            off = rng.choice((-2, -1, 1, 2))
            row[key] = (max(0.0, min(48.0, row[key] + off * 0.25)) if key == "wip"
                        else max(0, row[key] + off))
    return seen


def _reupload(rng: random.Random, folder: _Folder,
              observations: list[_Obs]) -> tuple[dict[str, _Obs], int, int]:
    """Same-bytes re-uploads and later corrected re-saves.

    Returns the current version of each observation, the duplicates and the superseded count.
    """
    duplicates = superseded = 0
    current = {o.payload["observation_id"]: o for o in observations}
    for obs in observations:
        roll = rng.random()
        sub, _, name = obs.path.rpartition("/")
        if roll < DUPLICATE:
            later = obs.synced_ns + rng.randint(60, 3 * 86400) * 10**9
            folder.put(_join(sub, _clash_name(rng, name, later)), folder.files[obs.path][0],
                       later)
            duplicates += 1
        elif roll < DUPLICATE + RESAVE:
            later = obs.synced_ns + rng.randint(3600, 4 * 86400) * 10**9
            edited = _edit(rng, obs.payload)
            if rng.random() < 0.5:
                path = _join(sub, _clash_name(rng, name, later, conflicted=True))
            else:  # saved again into the other folder
                path = _join("" if sub else edited["observer"], name)
            path = folder.put(path, _dump(edited), later)
            current[edited["observation_id"]] = _Obs(edited, path, later)
            superseded += 1
    return current, duplicates, superseded


def _bad(rng: random.Random, folder: _Folder, teams: list[_Team], working: list[date],
         taken: set[str]) -> dict[str, str]:
    """One bad file of each kind in BAD_KINDS; returns path -> kind."""
    bad = {}
    for label, (task, department) in BAD_KINDS.items():
        team = rng.choice([t for t in teams if t.department == department])
        others = [t.name for t in teams if t.factory == team.factory
                  and t.department == department and t.name != team.name]
        at = _at(rng.choice(working), WIP_ROUNDS[0], rng.randint(0, 8 * 3600))
        clean = _Day(frozenset(), {m: "st100" for m in team.machines}, {})
        payload = _observation(rng, team, task, at, clean, "complete")
        while payload["observation_id"] in taken:
            payload["observation_id"] = _uuid(rng)
        taken.add(payload["observation_id"])
        name, data = spoil(label, payload, _name(payload), others)
        sub = team.observer if rng.random() < IN_SUBFOLDER else ""
        bad[folder.put(_join(sub, name), data, _synced_ns(rng, at.isoformat()))] = label
    return bad


def _study(rng: random.Random, factories: int, observers: int,
           workers: set[str]) -> list[_Team]:
    """The study's roster: teams, their machines, supervisors and observers."""
    codes = [f"obs{i + 1:02d}" for i in range(observers)]
    load: Counter[str] = Counter()
    teams = []
    for f in range(factories):
        mine = codes[f::factories] or [codes[f % observers]]
        combos = [(d, t) for d in DEPARTMENTS for t in (PILOT_TEAMS if f == 0 else TEAMS)]
        for i, (department, name) in enumerate(combos):
            observer = mine[i % len(mine)]
            n = rng.randint(6, 10) if department == "knitting" else rng.randint(5, 8)
            prefix = "KN" if department == "knitting" else "LI"
            machines = tuple(f"{prefix}{k}" for k in range(1, n + 1))
            collar = frozenset(machines[-rng.randint(1, 2):]) if prefix == "KN" else frozenset()
            teams.append(_Team(f"f{f + 1:02d}", department, name, observer, load[observer],
                               machines, collar, f"sup{rng.randint(100, 999)}"))
            load[observer] += 1
    for team in teams:
        team.workers = {code: _new_worker(rng, workers) for code in team.machines}
    return teams


def _team_day(rng: random.Random, team: _Team, day: date,
              workers: set[str]) -> list[Payload]:
    """One team's observations of one working day: roster, wip rounds, interactions."""
    for code in team.machines:
        if rng.random() < WORKER_CHANGE:
            team.workers[code] = _new_worker(rng, workers)
    styles = [f"st{rng.randint(100, 999)}" for _ in range(rng.randint(1, 2))]
    state = _Day(frozenset(m for m in team.machines if rng.random() < UNMANNED),
                 {m: rng.choice(styles) for m in team.machines},
                 {m: rng.choice(("back", "front", "sleeve")) for m in team.machines
                  if rng.random() < 0.05})
    offset = team.slot * SLOT_S
    out = [_observation(rng, team, "roster", _at(day, ROSTER_AT, offset + rng.randint(0, 300)),
                        state)]
    for at in WIP_ROUNDS:
        if rng.random() >= MISSED_ROUND:
            start = _at(day, at, offset + rng.randint(-180, 300))
            out.append(_observation(rng, team, "wip", start, state))
    slot_at = INTERACTIONS_AT[team.slot % len(INTERACTIONS_AT)]
    start = _at(day, slot_at, team.slot // len(INTERACTIONS_AT) * 600 + rng.randint(0, 300))
    out.append(_observation(rng, team, "interactions", start, state))
    return out


def _observation(rng: random.Random, team: _Team, task: str, start: datetime, state: _Day,
                 status: str | None = None) -> Payload:
    """One observation as the tablet writes it."""
    status = status or rng.choices(("complete", "partial", "aborted"), (93, 5, 2))[0]
    if task == "interactions":
        lo, hi = {"complete": (50, 70), "partial": (20, 45), "aborted": (3, 15)}[status]
    else:
        lo, hi = (4, 12) if task == "roster" else (6, 14)
    payload: Payload = {
        "schema_version": 1, "task": task, "observation_id": _uuid(rng),
        "observer": team.observer, "factory": team.factory, "department": team.department,
        "team": team.name, "started_at": start.isoformat(),
        "ended_at": (start + timedelta(seconds=rng.randint(lo * 60, hi * 60))).isoformat(),
        "status": status, "app_version": APP_VERSION, "device": f"ipad-{team.observer}",
    }
    if rng.random() < NOTE:
        payload["notes"] = rng.choice(NOTES)
    if task == "interactions":
        n = rng.randint(0, {"complete": 15, "partial": 8, "aborted": 2}[status])
        payload["supervisor"] = team.supervisor
        payload["interactions"] = [
            {"with": rng.choice(team.machines) if rng.random() < 0.6 else rng.choice(OTHERS),
             "length_s": rng.randint(5, 240), "initiator": rng.choice(INITIATORS),
             "topic": rng.choice(TOPICS)} for _ in range(n)]
        payload["left_floor_s"] = [rng.randint(60, 600)
                                   for _ in range(rng.choice((0, 0, 0, 1, 2)))]
        return payload
    machines = {code: _machine(rng, team, task, code, state) for code in team.machines}
    keep = {"complete": len(machines), "partial": rng.randint(1, len(machines) - 1),
            "aborted": rng.randint(0, 2)}[status]
    payload["machines"] = dict(list(machines.items())[:keep])
    return payload


def _machine(rng: random.Random, team: _Team, task: str, code: str, state: _Day) -> Payload:
    """One machine row of a roster or wip round."""
    manned = code not in state.unmanned
    row: Payload = {"mc_status": "manned" if manned else "unmanned",
                    "worker_id": team.workers[code] if manned else None}
    if task == "roster":
        return row
    row["style"] = state.style[code] if manned else None
    if team.department == "linking":
        row["wip"] = min(48.0, round(rng.expovariate(1 / 8) * 4) / 4) if manned else None
        return row
    collar = code in team.collar
    row["component"] = None if not manned else "collar" if collar else "body"
    for panel in ("back", "front", "sleeve"):
        skip = not manned or collar or state.elsewhere.get(code) == panel
        row[panel] = None if skip else rng.randint(0, 24)
    row["collar"] = rng.randint(0, 40) if manned and collar else None
    return row


def _edit(rng: random.Random, payload: Payload) -> Payload:
    """A corrected re-save: a count fixed, or the notes edited."""
    edited = copy.deepcopy(payload)
    counts = [(code, key) for code, row in edited.get("machines", {}).items()
              for key in ("back", "front", "sleeve", "collar", "wip")
              if row.get(key) is not None]
    if edited["task"] == "wip" and counts:
        code, key = rng.choice(counts)
        old = edited["machines"][code][key]
        step = 0.25 if key == "wip" else 1
        edited["machines"][code][key] = old + step if old + step <= 48 else old - step
        edited["notes"] = f"corrected {key} on {code}"
    else:
        edited["notes"] = (edited.get("notes") or "") + " (edited after the round)"
    return edited


def _manifest(files: dict[str, tuple[bytes, int]], bad: dict[str, str], current: list[_Obs],
              duplicates: int, superseded: int, teams: list[_Team],
              originals: int, back_checks: dict[str, str]) -> SimulationManifest:
    frames: dict[tuple[str, str, str, str], list[int]] = {}
    rows: Counter[str] = Counter()
    for obs in current:
        p = obs.payload
        n = len(p["interactions"] if p["task"] == "interactions" else p["machines"])
        rows[p["task"]] += n
        frame = frames.setdefault((p["task"], p["factory"], p["department"], p["team"]),
                                  [0, 0, 0])
        frame[0] += 1
        frame[1] += p["status"] == "complete"
        frame[2] += n
    factories_teams: dict[str, dict[str, list[str]]] = {}
    for team in teams:
        factories_teams.setdefault(team.factory, {}).setdefault(team.department, []).append(
            team.name)
    return SimulationManifest(
        files=len(files),
        observation_files=originals + duplicates + superseded,
        duplicates=duplicates,
        superseded=superseded,
        photos=sum(path.endswith(".jpg") for path in files),
        bad=dict(sorted(bad.items())),
        current={o.payload["observation_id"]: o.path for o in current},
        back_checks=back_checks,
        frames=tuple(FrameCount(*key, *counts) for key, counts in sorted(frames.items())),
        roster_rows=rows["roster"], wip_rows=rows["wip"],
        interaction_rows=rows["interactions"],
        days=tuple(sorted({datetime.fromisoformat(o.payload["started_at"]).date()
                           for o in current})),
        factories_teams=factories_teams,
    )


def _new_worker(rng: random.Random, taken: set[str]) -> str:
    """A worker code not given to anyone before: `w` and 4 digits (6 in very long runs)."""
    low = 1000 if len(taken) < 4500 else 100_000
    while (code := f"w{rng.randrange(low, low * 10)}") in taken:
        pass
    taken.add(code)
    return code


def _at(day: date, at: time, offset_s: int) -> datetime:
    return datetime.combine(day, at, tzinfo=FACTORY_TZ) + timedelta(seconds=offset_s)


def _synced_ns(rng: random.Random, after: str) -> int:
    """When a file ending at `after` reached the folder: minutes to days later."""
    roll = rng.random()
    delay = (rng.randint(30, 3600) if roll < 0.7 else rng.randint(3600, 12 * 3600)
             if roll < 0.92 else rng.randint(86400, 3 * 86400))
    seconds = int(datetime.fromisoformat(after).timestamp()) + delay
    return seconds * 10**9 + rng.randrange(10**9)


def _clash_name(rng: random.Random, name: str, synced_ns: int, conflicted: bool = False) -> str:
    """Dropbox's name for a second upload of `name`."""
    if conflicted or rng.random() < 0.5:
        synced = datetime.fromtimestamp(synced_ns // 10**9, FACTORY_TZ).date()
        return f"{name[:-5]} (conflicted copy {synced.isoformat()}).json"
    return f"{name[:-5]} (1).json"


def _name(p: Payload) -> str:
    local = datetime.fromisoformat(p["started_at"]).astimezone(FACTORY_TZ)
    return (f"{p['task']}_{p['department']}_{p['team']}_{p['observer']}_"
            f"{local:%Y%m%dT%H%M%S}.json")


def _join(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


def _uuid(rng: random.Random) -> str:
    return str(UUID(int=rng.getrandbits(128), version=4))


def _jpeg(rng: random.Random) -> bytes:
    """A small stand-in photo: JPEG SOI and JFIF header, random body, EOI."""
    header = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return header + rng.randbytes(rng.randint(200, 600)) + b"\xff\xd9"
