"""The pilot's values as the contract's: its times, codes, words and numbers.

Python 2's `json.dump` wrote what the app held: "null", "" and NaN for nothing, numbers
in strings, `Present`/`Manned` in any case. A value the contract has no place for raises
`Unmappable`, whose message becomes the quarantined round's reason.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from rmg_lake.contract.models import FACTORY_TZ

__all__ = ["Unmappable", "code", "count", "empty", "number", "status", "text", "time"]

_STATUS = {"manned": "manned", "present": "manned", "unmanned": "unmanned",
           "absent": "unmanned"}
TIMES = ("%m/%d/%Y %H:%M", "%Y_%m_%d_%H_%M")  # the design's DateTime, the app's timestamp


class Unmappable(ValueError):
    """A value the contract has no place for: the round is quarantined with this."""


def time(value: Any) -> datetime:
    """A pilot time (factory time, to the minute) as an aware datetime."""
    for layout in TIMES:
        try:
            return datetime.strptime(str(value), layout).replace(tzinfo=FACTORY_TZ)
        except ValueError:
            continue
    raise Unmappable("the time is neither MM/DD/YYYY HH:MM nor YYYY_MM_DD_HH_MM")


def status(machine: str, value: Any) -> str:
    """manned or unmanned, from the app's Manned/Unmanned or Present/Absent."""
    found = _STATUS.get(str(empty(value)).strip().lower())
    if found is None:
        raise Unmappable(f"{machine}: mc_status (or Attendance) is neither Manned nor "
                         "Unmanned (Present nor Absent)")
    return found


def empty(value: Any) -> Any:
    """None for the pilot's ways of writing nothing: null, "null", "", NaN."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "null")):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def text(value: Any) -> str | None:
    value = empty(value)
    return None if value is None else str(value)


def code(value: Any) -> int | None:
    """A number code (1, 1.0 or "1"), or None."""
    try:
        found = number(value, "code")
    except Unmappable:
        return None
    return int(found) if found is not None and found == int(found) else None


def number(value: Any, key: str) -> float | None:
    """A finite number, also as the pilot wrote some: in a string."""
    value = empty(value)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise Unmappable(f"{key}: not a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value):
        raise Unmappable(f"{key}: not a number")
    return float(value)


def count(value: Any, key: str) -> int | None:
    found = number(value, key)
    if found is not None and found != int(found):
        raise Unmappable(f"{key}: not a whole number")
    return None if found is None else int(found)
