"""One observation's story, from the log: the files that brought it, the files attached to
it (a pilot round's photo), the corrections of it, and what it holds now.

    >>> story(open_lake("lake"), "3f2a9c1e")      # an id, or the start of one
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rmg_lake.corrections.apply import observation_key, raw_payload, replay
from rmg_lake.errors import LakeError, guarded
from rmg_lake.lake import Lake
from rmg_lake.store.log import (
    Batch,
    Correction,
    CorrectionRow,
    corrections_in_effect,
    rolled_back_by,
)
from rmg_lake.store.records import FileRecord
from rmg_lake.store.versions import current_of

__all__ = ["Arrival", "Fix", "Story", "story"]

_SHORTEST = 8  # characters of an id that may stand for it


@dataclass(frozen=True, slots=True)
class Arrival:
    batch: int
    record: FileRecord  # added, or a duplicate of a version
    rolled_back: bool
    current: bool  # the version the frames show


@dataclass(frozen=True, slots=True)
class Fix:
    entry: Correction
    row: CorrectionRow
    rolled_back: bool
    in_effect: bool  # it shapes the frames now


@dataclass(frozen=True, slots=True)
class Story:
    observation_id: str
    arrivals: tuple[Arrival, ...]
    fixes: tuple[Fix, ...]
    payload: dict[str, Any] | None  # its values now, corrected; None: not shown
    attached: tuple[Arrival, ...] = ()  # evidence of it, such as the photo ending a round

    @property
    def state(self) -> str:
        """current, corrected, withdrawn (by a DROP), or rolled back."""
        if not any(a.current for a in self.arrivals):
            return "rolled back"
        if self.payload is None:
            return "withdrawn"
        return "corrected" if any(f.in_effect for f in self.fixes) else "current"


@guarded
def story(lake: Lake, key: str) -> Story:
    """The story of the observation whose id is `key` (or starts with it)."""
    entries = lake.entries()
    observation_id = _resolve(entries, key)
    by = rolled_back_by(entries)
    current = current_of(entries, [observation_id]).get(observation_id)
    arrivals = tuple(
        Arrival(e.batch, r, e.batch in by, current is not None and current.batch == e.batch
                and r.path == current.record.path)
        for e in entries if isinstance(e, Batch) for r in e.files
        if r.observation_id == observation_id and r.stored.startswith("raw/"))
    attached = tuple(Arrival(e.batch, r, e.batch in by, False)
                     for e in entries if isinstance(e, Batch) for r in e.files
                     if r.observation_id == observation_id
                     and r.stored.startswith("attachments/"))
    payload: dict[str, Any] | None = None
    applied: set[tuple[int, int]] = set()
    if current is not None:
        replayed, applied = replay(lake.root, corrections_in_effect(entries),
                                   {observation_id: current}, [observation_id])
        payload = replayed[observation_id].payload if observation_id in replayed \
            else raw_payload(lake.root, current.record.stored)
    fixes = tuple(Fix(e, row, e.batch in by, (e.batch, place) in applied)
                  for e in entries if isinstance(e, Correction)
                  for place, row in enumerate(e.rows) if row.observation_id == observation_id)
    return Story(observation_id, arrivals, fixes, payload, attached)


def _resolve(entries: list[Any], key: str) -> str:
    wanted = observation_key(key).lower()
    if len(wanted) < _SHORTEST:
        raise LakeError(f"give at least {_SHORTEST} characters of the observation's id",
                        hint="see the observation_id column of the frames")
    found = {r.observation_id for e in entries if isinstance(e, Batch) for r in e.files
             if r.observation_id is not None and r.observation_id.startswith(wanted)}
    if not found:
        raise LakeError("no observation with this id in the lake", field=key,
                        hint="ids are in the observation_id column of the frames")
    if len(found) > 1:
        raise LakeError(f"{len(found)} observations have ids starting {wanted}",
                        hint="give more of the id")
    return found.pop()
