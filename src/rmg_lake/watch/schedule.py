"""The watch's daily runs: the report and the backup at their times, factory time.

When each last ran is kept in the lake (`_schedule.json`, replaced whole), not in memory:
a run missed while the laptop slept or the watch was stopped is due when it wakes or
starts, once, however many days it missed.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import orjson

from rmg_lake._internal.files import write_atomic
from rmg_lake.config import Schedule
from rmg_lake.contract.models import FACTORY_TZ
from rmg_lake.errors import passing

__all__ = ["JOBS", "STATE", "Timetable"]

JOBS = ("report", "backup")  # in the order they run when both are due
STATE = "_schedule.json"


class Timetable:
    """`schedule`'s times, and when each job last ran in the lake at `root`."""

    def __init__(self, root: Path, schedule: Schedule) -> None:
        self.path = root / STATE
        self.times = {job: at for job in JOBS if (at := getattr(schedule, job)) is not None}

    def due(self, now: datetime) -> list[str]:
        """The jobs whose time has come since they last ran (or that never ran)."""
        ran = self.last_runs()
        return [job for job, at in self.times.items()
                if job not in ran or ran[job] < latest(at, now)]

    def next(self, now: datetime) -> datetime | None:
        """When the next job's time comes, after `now` (None: nothing is scheduled)."""
        return min((latest(at, now) + timedelta(days=1) for at in self.times.values()),
                   default=None)

    def ran(self, job: str, now: datetime) -> None:
        """Record that `job` ran at `now`."""
        ran = {name: at.isoformat() for name, at in self.last_runs().items()}
        ran[job] = now.astimezone(UTC).isoformat()
        write_atomic(self.path, orjson.dumps(ran, option=orjson.OPT_INDENT_2))

    def last_runs(self) -> dict[str, datetime]:
        """When each job last ran (UTC); an unreadable file counts as none ran."""
        try:
            said = orjson.loads(self.path.read_bytes())
            return {job: datetime.fromisoformat(said[job]) for job in JOBS if job in said}
        except FileNotFoundError:
            return {}
        except (OSError, orjson.JSONDecodeError, TypeError, ValueError) as err:
            if isinstance(err, OSError) and passing(err):
                raise
            return {}


def latest(at: time, now: datetime) -> datetime:
    """The last time the factory's clock showed `at`, at or before `now` (UTC)."""
    local = now.astimezone(FACTORY_TZ)
    today = datetime.combine(local.date(), at.replace(tzinfo=None), tzinfo=FACTORY_TZ)
    return (today if today <= local else today - timedelta(days=1)).astimezone(UTC)
