"""Reviews: a checks workbook's flags the field manager looked at and found right.

A row of a per-check sheet with a `resolution` and no change ("checked with the
observer: correct") settles its flag as `reviewed`, in the same logged batch as the
workbook's corrections: the flag stays out of the next day's checks, and rolling the
batch back opens it again (`rmg_lake.derive.checks`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rmg_lake.corrections.sheet import SheetReview
from rmg_lake.store.log import Review

__all__ = ["plan_reviews"]


def plan_reviews(reviews: Sequence[SheetReview], flags: Mapping[str, str],
                 ) -> tuple[Review, ...]:
    """What each review does to the lake whose flags now are `flags` (flag_id → status):
    reviews an open flag, finds it settled already, or is refused (no such flag)."""
    planned, seen = [], set()
    for review in reviews:
        detail = None
        if not review.flag_id:
            outcome, detail = "refused", "no flag_id: a resolution is about the flag of its row"
        elif review.flag_id not in flags:
            outcome, detail = "refused", "no such flag in the lake now (its check finds it " \
                                         "no more, or its flag_id was changed)"
        elif review.flag_id in seen or flags[review.flag_id] != "open":
            outcome = "already"
        else:
            outcome = "reviewed"
        seen.add(review.flag_id)
        planned.append(Review(worksheet=review.worksheet, row=review.row,
                              flag_id=review.flag_id, resolution=review.resolution,
                              outcome=outcome, detail=detail))
    return tuple(planned)
