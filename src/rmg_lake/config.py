"""`rmg-lake.toml`: where the files come from, where the lake is, and the study's protocol."""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rmg_lake.errors import ConfigError

__all__ = ["CONFIG_FILE", "Config", "load_config"]

CONFIG_FILE = "rmg-lake.toml"
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
WEEKDAYS: tuple[Weekday, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday",
                                 "saturday", "sunday")


class Calendar(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    weekend: tuple[Weekday, ...] = ("friday",)
    holidays: tuple[date, ...] = ()

    def is_off(self, day: date) -> bool:
        return WEEKDAYS[day.weekday()] in self.weekend or day in self.holidays


class Config(BaseModel):
    """Settings; paths are resolved against the folder of the file they came from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str | None = None
    lake: Path = Path("lake")
    # observations each team should complete per working day, by task
    protocol: dict[str, int] = Field(
        default_factory=lambda: {"roster": 1, "wip": 4, "interactions": 1})
    calendar: Calendar = Calendar()
    # factory → department → teams expected even before any of their files arrive
    study: dict[str, dict[str, tuple[str, ...]]] = Field(default_factory=dict)


def load_config(path: Path | None = None) -> Config:
    """Read `path`, or `rmg-lake.toml` in the working directory if there is one."""
    if path is None:
        path = Path(CONFIG_FILE)
        if not path.is_file():
            return Config()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"cannot read it ({err.strerror})", file=str(path)) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"not valid TOML ({err})", file=str(path)) from None
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        raise ConfigError(str(error["msg"]), file=str(path),
                          field=".".join(str(p) for p in error["loc"])) from None
    base = path.parent.absolute()
    source = config.source
    if source is not None and ":" not in source.split("/")[0]:  # a local folder
        source = str(base / source)
    return config.model_copy(update={"lake": base / config.lake, "source": source})
