"""`rmg-lake.toml`: where the files come from, where the lake is, and the study's settings.

The study settings (protocol, calendar, expected teams, the checks' thresholds) shape the
derived frames and views, so the log records them: the first batch, and each batch with
which they changed. The frames are built from the log's latest settings, never from
whichever file is in the working folder.
"""

from __future__ import annotations

import tomllib
from datetime import date, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from rmg_lake._internal.files import read_file
from rmg_lake.errors import ConfigError, boundary

__all__ = [
    "CONFIG_FILE", "WEEKDAYS", "Calendar", "Checks", "Config", "Protocol", "Schedule",
    "Settings", "TaskMinutes", "load_config",
]

CONFIG_FILE = "rmg-lake.toml"
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[Weekday, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday",
                                 "saturday", "sunday")
Token = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]+$")]
PerDay = Annotated[int, Field(ge=0, le=100)]


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Protocol(_Settings):
    """Observations each team should complete per working day, by task."""

    roster: PerDay = 1
    wip: PerDay = 4
    interactions: PerDay = 1

    def expected(self) -> dict[str, int]:
        return self.model_dump()


class Calendar(_Settings):
    weekend: tuple[Weekday, ...] = ("friday",)
    holidays: tuple[date, ...] = ()

    @field_validator("weekend", "holidays")
    @classmethod
    def _as_set(cls, days: tuple[Any, ...]) -> tuple[Any, ...]:
        """Order and repeats carry no meaning: the same days are the same settings."""
        return tuple(sorted(set(days)))

    def is_off(self, day: date) -> bool:
        return WEEKDAYS[day.weekday()] in self.weekend or day in self.holidays

    def working_days(self, after: date, before: date) -> int:
        """The working days strictly between `after` and `before`."""
        days = (after + timedelta(days=n) for n in range(1, (before - after).days))
        return sum(not self.is_off(day) for day in days)


class TaskMinutes(_Settings):
    roster: float = Field(ge=0)
    wip: float = Field(ge=0)
    interactions: float = Field(ge=0)


class Checks(_Settings):
    """Thresholds of the quality checks (`rmg-lake check`, the `flags` view)."""

    late_after_days: float = Field(default=2, ge=0)  # saved this long after the task ended
    day_starts: time = time(7, 0)  # working hours, factory time
    day_ends: time = time(20, 0)
    shortest: TaskMinutes = TaskMinutes(roster=2, wip=5, interactions=10)  # complete tasks
    longest: TaskMinutes = TaskMinutes(roster=90, wip=120, interactions=240)
    wip_z: float = Field(default=3.5, gt=0)  # robust z-score against the machine's history
    wip_jump: float = Field(default=30, gt=0)  # a panel's (or wip's) rise in one round

    @model_validator(mode="after")
    def _in_order(self) -> Checks:
        if self.day_starts >= self.day_ends:
            raise ValueError("day_starts must be before day_ends")
        if any(getattr(self.shortest, task) > getattr(self.longest, task)
               for task in TaskMinutes.model_fields):
            raise ValueError("a task's shortest time is longer than its longest")
        return self


class Settings(_Settings):
    """What the derived frames depend on besides the observations."""

    protocol: Protocol = Protocol()
    calendar: Calendar = Calendar()
    checks: Checks = Checks()
    # factory → department → teams expected even before any of their files arrive
    study: dict[Token, dict[Literal["knitting", "linking"], tuple[Token, ...]]] = Field(
        default_factory=dict)

    @field_validator("study")
    @classmethod
    def _in_order(
        cls, study: dict[str, dict[Any, tuple[str, ...]]],
    ) -> dict[str, dict[Any, tuple[str, ...]]]:
        """Order carries no meaning here either: the same teams are the same settings."""
        return {factory: {dep: tuple(sorted(set(teams))) for dep, teams in sorted(deps.items())}
                for factory, deps in sorted(study.items())}


class Schedule(_Settings):
    """When `rmg-lake watch` delivers the report (as `ingest --report`) and backs up (as
    `backup --prune`), each day, factory time; None: never. Not a study setting: the log
    does not record it."""

    report: time | None = None
    backup: time | None = None


class Config(Settings):
    """The whole file; paths are resolved against the folder it came from."""

    source: str | None = None
    lake: Path = Path("lake")
    backup: str | None = None  # where `rmg-lake backup` writes without --to
    backup_plain: bool = False  # … not encrypted, on purpose (as `backup --plain`)
    reports_to: str | None = None  # a folder whose reports/ also gets `ingest --report`'s
    publish: str | None = None  # where `ingest --report` also publishes the Delta tables
    publish_pseudonymise: bool = False  # … with people's codes pseudonymised
    max_file_mb: float = Field(default=10, gt=0)  # larger files are kept, not parsed
    by: str | None = None  # who applies corrections sheets (else the login name)
    schedule: Schedule = Schedule()  # `rmg-lake watch`'s daily report and backup

    @model_validator(mode="after")
    def _backup_has_a_place(self) -> Config:
        if self.schedule.backup is not None and self.backup is None:
            raise ValueError("a scheduled backup needs `backup`, the place it goes to")
        return self

    @property
    def settings(self) -> Settings:
        return Settings.model_validate(self.model_dump(include=set(Settings.model_fields)))


def load_config(path: Path | None = None) -> Config | None:
    """Read `path`, or `rmg-lake.toml` in the working directory; None if there is none."""
    if path is None:
        path = Path(CONFIG_FILE)
        if not path.is_file():
            return None
    try:
        with boundary(file=path, kind=ConfigError, doing="read it"):
            raw = tomllib.loads(read_file(path, kind=ConfigError).decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"not valid TOML ({err})", file=str(path)) from None
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        raise ConfigError(str(error["msg"]), file=str(path),
                          field=".".join(str(p) for p in error["loc"] if p != "[key]")) from None
    base = path.parent.absolute()

    def place(spec: str | None) -> str | None:
        if spec is None or ":" in spec.split("/")[0]:  # dropbox:/…
            return spec
        return str(base / Path(spec).expanduser())  # a local folder

    return config.model_copy(update={"lake": base / config.lake.expanduser(),
                                     "source": place(config.source),
                                     "backup": place(config.backup),
                                     "reports_to": place(config.reports_to),
                                     "publish": place(config.publish)})
