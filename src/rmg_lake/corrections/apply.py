"""Corrections: fixes to observations' values from a sheet, kept in the log, never in raw.

A row sets one `field` of an observation (a path into its payload: `team`,
`machines.KN3.worker_id`, `interactions.4.topic`) from `old_value` to `new_value`, or
withdraws the observation (`new_value` DROP). It is guarded: it applies only while the
value is `old_value`, compared as text ("" is null; numbers and instants by value).
The rows of one observation in one sheet apply together, and only if the corrected
observation still keeps the contract.

Raw files stay as they arrived. Whenever the frames are derived, each corrected
observation's payload is made again from the raw file of its current version, with the
corrections in effect applied in log order, each guarded as when it was applied: a new
version of the observation whose value differs is not corrected by a row written for the
old one (the `corrections` view shows which rows are in effect).
"""

from __future__ import annotations

import codecs
import copy
import math
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol
from uuid import UUID

import pydantic_core

from rmg_lake.contract.models import PERSONAL, Observation, shown_key
from rmg_lake.contract.validate import CONTRACT_KEYS, InvalidObservation, validate_payload
from rmg_lake.corrections.sheet import SheetRow, as_text
from rmg_lake.errors import LakeUnusable, passing
from rmg_lake.store.log import Correction, CorrectionRow, Current, RowOutcome

__all__ = [
    "DROP",
    "Patch",
    "Patches",
    "Replayed",
    "apply_rows",
    "observation_key",
    "patches",
    "plan",
    "raw_payload",
    "replay",
    "shown_change",
    "shown_field",
    "shown_id",
    "shown_row",
    "shown_value",
]

DROP = "DROP"
_FIXED = {"observation_id": "an observation's id cannot be corrected (DROP it instead)",
          "schema_version": "the contract's version is not a value to correct"}
_OPTIONAL = frozenset({"app_version", "device", "notes"})  # absent is null: may be set
_WHOLE = frozenset({"back", "front", "sleeve", "collar", "length_s", "left_floor_s"})
_NUMBER = frozenset({"wip"})
_INSTANT = frozenset({"started_at", "ended_at"})
_INTEGER = re.compile(r"[+-]?[0-9]+")
_WORD = re.compile(r"[A-Za-z]+([_-][A-Za-z]+)*")  # a key's name, not a code

Payload = dict[str, Any]


class Row(Protocol):
    """A sheet's row, read (SheetRow) or as the log keeps it (CorrectionRow)."""

    @property
    def field(self) -> str: ...
    @property
    def old_value(self) -> str: ...
    @property
    def new_value(self) -> str: ...
    @property
    def reason(self) -> str: ...


class Outcome(NamedTuple):
    outcome: RowOutcome
    detail: str | None = None  # refused: why
    current: str | None = None  # refused because old_value is stale: the value now


class _Refused(Exception):
    def __init__(self, detail: str, current: str | None = None) -> None:
        super().__init__(detail)
        self.detail, self.current = detail, current


@dataclass(frozen=True, slots=True)
class Replayed:
    payload: Payload | None  # None: withdrawn (DROP)
    observation: Observation | None  # the payload, validated (None if withdrawn)
    fields: tuple[str, ...]  # the fields of the rows that changed it, in order


class Patch(NamedTuple):
    observation: Observation | None  # the corrected observation; None: withdrawn (DROP)
    fields: tuple[str, ...]  # the fields corrected (a row's corrections count from them)


class Patches(NamedTuple):
    by_id: dict[str, Patch]  # observation_id → its corrected self
    applied: set[tuple[int, int]]  # (batch, place among its rows) of every row in effect


def shown_field(field: str) -> str:
    """A field path as a message may show it: its parts that are the contract's keys,
    machine codes, positions or words without digits (anything else may be a person's
    code in the wrong place, described instead)."""
    return ".".join(part if part in CONTRACT_KEYS or _position(part) or shown_key(part) == part
                    or _WORD.fullmatch(part) else "<not a key of the contract>"
                    for part in field.split("."))


def _is_id(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True


def shown_id(text: str) -> str:
    """An observation id's first 8 characters, if it is an id (else it is not shown)."""
    return f"{UUID(text)}"[:8] + "…" if _is_id(text) else "<not an id>"


def shown_row(row: CorrectionRow) -> dict[str, Any]:
    """A logged row as output may show it: no worker's or supervisor's code."""
    return {**row.model_dump(exclude_none=True), "field": shown_field(row.field),
            "observation_id": row.observation_id if _is_id(row.observation_id)
            else "<not an id>",
            **{key: shown_value(row.field, value, quoted=False)
               for key in ("old_value", "new_value", "current")
               if (value := getattr(row, key)) is not None}}


def shown_change(row: CorrectionRow) -> str:
    """`team: 'treatment' → 'control'`, or `DROP`: what a row does, as output may show it."""
    new = DROP if row.new_value == DROP else shown_value(row.field, row.new_value)
    if not row.field:
        return new
    return f"{shown_field(row.field)}: {shown_value(row.field, row.old_value)} → {new}"


def shown_value(field: str, text: str, *, quoted: bool = True) -> str:
    """A sheet's value as a message may show it: not a worker's or supervisor's code."""
    if _leaf(field) in PERSONAL and text not in ("", DROP):
        return "‹a person's code›"
    if not quoted:
        return text
    return repr(text) if text else "null"


def observation_key(text: str) -> str:
    """An observation id as the lake writes it (lower case, with hyphens), if it is one."""
    try:
        return str(UUID(text.strip()))
    except ValueError:
        return text.strip()


def apply_rows(payload: Payload | None, rows: Sequence[Row], *, file: str,
               ) -> tuple[Payload | None, Observation | None, list[Outcome]]:
    """Apply one sheet's `rows` for one observation to its `payload` (None: withdrawn):
    the payload after them, validated (None if nothing applied or it is withdrawn), and
    each row's outcome. If the result breaks the contract, no row applies."""
    work = copy.deepcopy(payload)
    done: list[Outcome] = []
    for row in rows:
        try:
            if work is None:
                if row.new_value == DROP:
                    done.append(Outcome("already"))
                    continue
                raise _Refused("the observation is withdrawn (DROP)")
            done.append(_apply(work, row))
            if done[-1].outcome == "applied" and row.new_value == DROP:
                work = None
        except _Refused as refused:
            done.append(Outcome("refused", refused.detail, refused.current))
    applied = [i for i, outcome in enumerate(done) if outcome.outcome == "applied"]
    if not applied:
        return payload, None, done
    if work is None:
        return None, None, done
    try:
        observation = validate_payload(pydantic_core.to_json(work), file=file)
    except InvalidObservation as bad:
        where = f"{bad.field}: " if bad.field else ""
        for i in applied:
            done[i] = Outcome("refused", f"the corrected observation breaks the contract "
                                         f"({where}{bad.message})")
        return payload, None, done
    return work, observation, done


def _apply(payload: Payload, row: Row) -> Outcome:
    """Apply one row to `payload` (in place), or raise _Refused."""
    if not row.reason:
        raise _Refused("a correction needs a reason")
    if not row.field:
        if row.new_value != DROP:
            raise _Refused("no field: name one (e.g. team), or withdraw the observation with "
                           "new_value DROP")
        if row.old_value:
            raise _Refused("a DROP without a field has no old_value")
        return Outcome("applied")
    node, key = _place(payload, row.field)
    current = node.get(key) if isinstance(node, dict) else node[key]
    new = None if row.new_value == DROP else _typed(row.field, row.new_value)
    if not _same(row.field, current, row.old_value):
        if row.new_value != DROP and _same(row.field, current, row.new_value):
            return Outcome("already")
        raise _Refused("old_value is not the current value", as_text(current))
    if row.new_value == DROP:
        return Outcome("applied")
    if _same(row.field, current, row.new_value):
        return Outcome("already")
    node[key] = new
    return Outcome("applied")


def _place(payload: Payload, field: str) -> tuple[Any, Any]:
    """The object (or list) holding `field`, and its key there."""
    if field in _FIXED:
        raise _Refused(_FIXED[field])
    parts = field.split(".")
    node: Any = payload
    for part in parts[:-1]:
        node = node[_key(node, part)]
    if len(parts) == 1 and field in _OPTIONAL:  # a note may be added where there was none
        return node, field
    key = _key(node, parts[-1])
    if isinstance(node[key], dict | list):
        raise _Refused("not one value but a group of them: name a field inside it")
    return node, key


def _key(node: Any, part: str) -> str | int:
    if isinstance(node, dict) and part in node:
        return part
    if isinstance(node, list) and _position(part) and int(part) < len(node):
        return int(part)
    raise _Refused("no such field in this observation")


def _position(part: str) -> bool:
    """Whether a part of a path is a position in a list: 0, 1, 2, …"""
    return part.isascii() and part.isdigit()


def _leaf(field: str) -> str:
    """The contract's name of the field: `left_floor_s` for `left_floor_s.2`."""
    parts = field.split(".")
    return parts[-2] if _position(parts[-1]) and len(parts) > 1 else parts[-1]


def _typed(field: str, text: str) -> Any:
    """`text` as the value the field holds: a whole number, a number, text, or null."""
    if text == "":
        return None
    leaf = _leaf(field)
    if leaf in _WHOLE:
        if not _INTEGER.fullmatch(text):
            raise _Refused("new_value is not a whole number")
        return int(text)
    if leaf in _NUMBER:
        try:
            number = float(text)
        except ValueError:
            raise _Refused("new_value is not a number") from None
        if not math.isfinite(number):
            raise _Refused("new_value is not a number")
        return number
    return text


def _same(field: str, value: Any, text: str) -> bool:
    """Whether the payload's `value` is what the sheet writes as `text`."""
    if value is None or text == "":
        return value is None and text == ""
    if _leaf(field) in _INSTANT and isinstance(value, str):
        try:
            return datetime.fromisoformat(value) == datetime.fromisoformat(text)
        except (ValueError, TypeError):  # not an instant, or one without its offset
            return False
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return float(text) == value
        except ValueError:
            return False
    return as_text(value) == text


def raw_payload(lake: Path, record_stored: str) -> Payload:
    """The payload of a raw file the log names, as JSON values (read as ingest read it:
    big whole numbers and Infinity in keys the contract lacks are kept)."""
    try:
        loaded = pydantic_core.from_json(  # the parser ingest validated it with
            (lake / record_stored).read_bytes().removeprefix(codecs.BOM_UTF8))
    except (OSError, ValueError) as err:
        if passing(err):
            raise
        raise LakeUnusable("a raw file the log names is missing or damaged",
                           file=str(lake / record_stored),
                           hint="restore it from a backup (its name is its sha256)") from None
    assert isinstance(loaded, dict)
    return loaded


def replay(lake: Path, corrections: list[Correction], currents: dict[str, Current],
           only: Collection[str] | None = None) -> tuple[dict[str, Replayed], set[tuple[int, int]]]:
    """Each observation of `currents` (of `only`, if given) that a row of `corrections`
    (those in effect, in log order) names, as those rows leave it; and the rows that apply
    (batch, the row's place among its entry's rows)."""
    sheets: dict[str, list[tuple[int, list[tuple[int, CorrectionRow]]]]] = {}
    for correction in corrections:
        mine: dict[str, list[tuple[int, CorrectionRow]]] = {}
        for place, row in enumerate(correction.rows):
            if row.outcome != "refused" and row.observation_id in currents \
                    and (only is None or row.observation_id in only):
                mine.setdefault(row.observation_id, []).append((place, row))
        for observation_id, rows in mine.items():
            sheets.setdefault(observation_id, []).append((correction.batch, rows))
    replayed, applied = {}, set()
    for observation_id in sorted(sheets):
        stored = currents[observation_id].record.stored
        payload: Payload | None = raw_payload(lake, stored)
        observation: Observation | None = None
        fields: list[str] = []
        for batch, placed in sheets[observation_id]:
            after, valid, outcomes = apply_rows(payload, [row for _, row in placed],
                                                file=stored)
            if any(outcome.outcome == "refused" for outcome in outcomes):
                continue  # written for another version: a sheet's rows apply together
            changed = [(place, row) for (place, row), o in zip(placed, outcomes, strict=True)
                       if o.outcome == "applied"]
            if changed:
                payload, observation = after, valid
                fields += [row.field for _, row in changed]
                applied |= {(batch, place) for place, _ in changed}
        replayed[observation_id] = Replayed(payload, observation, tuple(fields))
    return replayed, applied


def patches(lake: Path, corrections: list[Correction], currents: dict[str, Current],
            only: Collection[str] | None = None) -> Patches:
    """The observations of `currents` that `corrections` change, as they change them."""
    if not corrections:
        return Patches({}, set())
    replayed, applied = replay(lake, corrections, currents, only)
    return Patches({key: Patch(r.observation, r.fields)
                    for key, r in replayed.items() if r.fields}, applied)


def plan(lake: Path, corrections: list[Correction], currents: dict[str, Current],
         rows: list[SheetRow], refused: dict[int, str] | None = None) -> list[CorrectionRow]:
    """What each row of a new sheet does to the lake as it is (`corrections` in effect,
    `currents` the observations' current versions): its outcome, and why if refused
    (`refused`: rows refused beforehand, by their place, and why)."""
    ids = [observation_key(row.observation_id) for row in rows]
    known = {key for key in ids if key in currents}
    replayed, _ = replay(lake, corrections, currents, known)
    grouped: dict[str, list[int]] = {}
    outcomes: dict[int, Outcome] = {}
    for i, key in enumerate(ids):
        if refused and i in refused:
            outcomes[i] = Outcome("refused", refused[i])
        else:
            grouped.setdefault(key, []).append(i)
    for key, indices in grouped.items():
        if key not in known:
            outcomes |= {i: Outcome("refused", "no observation with this id in the lake")
                         for i in indices}
            continue
        stored = currents[key].record.stored
        payload = replayed[key].payload if key in replayed else raw_payload(lake, stored)
        _, _, done = apply_rows(payload, [rows[i] for i in indices], file=stored)
        outcomes |= dict(zip(indices, done, strict=True))
    return [CorrectionRow(row=row.row, worksheet=row.worksheet, flag_id=row.flag_id,
                          observation_id=key, field=row.field,
                          old_value=row.old_value, new_value=row.new_value, reason=row.reason,
                          outcome=outcomes[i].outcome,
                          detail=outcomes[i].detail, current=outcomes[i].current)
            for i, (row, key) in enumerate(zip(rows, ids, strict=True))]
