"""Reviews: a checks workbook's flags the field manager looked at, and the flags its rows
name.

A row of a per-check sheet with a `resolution` and no change ("checked with the
observer: correct") settles its flag as `reviewed`, in the same logged batch as the
workbook's corrections: the flag stays out of the next day's checks, and rolling the
batch back opens it again (`rmg_lake.derive.checks`). A row, a review's or a
correction's, settles only the flag of its sheet: one the lake finds now, of that check
and (a correction) of that observation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from rmg_lake.corrections.apply import observation_key
from rmg_lake.corrections.sheet import SheetReview, SheetRow
from rmg_lake.store.log import Review

__all__ = ["Flag", "check_flags", "plan_reviews"]


class Flag(NamedTuple):
    """A flag as the lake finds it now."""

    check_name: str
    observation_id: str | None
    status: str  # open, corrected, reviewed


def plan_reviews(reviews: Sequence[SheetReview], flags: Mapping[str, Flag],
                 ) -> tuple[Review, ...]:
    """What each review does to the lake whose flags now are `flags` (by flag_id):
    reviews an open flag, finds it settled already, or is refused (no such flag)."""
    planned, seen = [], set()
    for review in reviews:
        detail = _wrong(review.flag_id, review.worksheet, None, flags)
        if detail is not None:
            outcome = "refused"
        elif review.flag_id in seen or flags[review.flag_id].status != "open":
            outcome = "already"
        else:
            outcome = "reviewed"
        seen.add(review.flag_id)
        planned.append(Review(worksheet=review.worksheet, row=review.row,
                              flag_id=review.flag_id, resolution=review.resolution,
                              outcome=outcome, detail=detail))
    return tuple(planned)


def check_flags(rows: Sequence[SheetRow], flags: Mapping[str, Flag]) -> dict[int, str]:
    """Why each of `rows` (their place) that a checks workbook holds may not settle the
    flag it names: not of its sheet, or about another observation."""
    return {place: detail for place, row in enumerate(rows) if row.worksheet is not None
            and (detail := _wrong(row.flag_id, row.worksheet,
                                  observation_key(row.observation_id), flags)) is not None}


def _wrong(flag_id: str | None, sheet: str, observation_id: str | None,
           flags: Mapping[str, Flag]) -> str | None:
    """Why `flag_id` is not a flag a row of `sheet` (about `observation_id`, if a
    correction) may settle; None if it is."""
    if not flag_id:
        return "no flag_id: the row's flag is named by it (keep it as the workbook wrote it)"
    flag = flags.get(flag_id)
    if flag is None:
        return ("no such flag in the lake now (its check finds it no more, or its flag_id "
                "was changed)")
    if flag.check_name != sheet:
        return f"flag {flag_id} is not of this sheet's check (it is a {flag.check_name} flag)"
    if observation_id is not None and flag.observation_id not in (None, observation_id):
        return f"flag {flag_id} is about another observation"
    return None
