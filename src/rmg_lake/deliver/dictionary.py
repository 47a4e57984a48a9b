"""The data dictionary of an export: each column of each file, its type, what it means and
which values it may hold. The file's own keys are described by the contract's models (their
JSON Schema); the columns the lake adds, here."""

from __future__ import annotations

from functools import cache
from typing import Any

import polars as pl

from rmg_lake.contract.models import (
    OTHER_INTERLOCUTORS,
    Interaction,
    InteractionsObservation,
    KnittingWipMachine,
    KnittingWipObservation,
    LinkingWipMachine,
    LinkingWipObservation,
    RosterMachine,
    RosterObservation,
)

__all__ = ["column_rows", "described"]

_MODELS = (RosterObservation, KnittingWipObservation, LinkingWipObservation,
           InteractionsObservation, RosterMachine, KnittingWipMachine, LinkingWipMachine,
           Interaction)
_RENAMED = {"interlocutor": "with"}  # frame column → the contract's key
_LAKE: dict[str, str] = {
    "event_id": "The SHA-256 of the raw file the row comes from (that version of the "
                "observation).",
    "batch": "The ingest batch that brought that version.",
    "task": "The task: the morning roster, a wip round, or an interactions window.",
    "day": "The factory-local date (Asia/Dhaka) the task started on.",
    "started_at": "When the task started, in UTC.",
    "ended_at": "When the task ended, in UTC.",
    "versions": "How many different versions of the observation arrived.",
    "source_path": "The file's path in the sync folder.",
    "synced_at": "When its first version was saved on the tablet (the file's time), UTC.",
    "extra_keys": "Keys the file had that the contract lacks (kept with the raw file).",
    "corrected": "Whether a correction (rmg-lake correct) changed this row's values.",
    "corrections": "How many corrections changed this row's values.",
    "machine": "The machine's code: KN1, KN2, … in knitting; LI1, LI2, … in linking.",
    "seq": "The interaction's place in the window, from 0.",
    "interlocutor": "Whom the supervisor talked with: a machine of the team, or OO other "
                    "operator, OS other supervisor, FIC floor in charge, PM production "
                    "management, OM other management, O other.",
    "wip": "Pieces finished but not yet handed in, in steps of 0.25: a linking machine's, "
           "and a knitting machine's when counted as one number instead of panels "
           "(contract 1.1; then component and the panels are empty).",
    "expected": "Tasks the protocol asks of the team that day (0 on an off day).",
    "completed": "Observations of the task with status complete.",
    "attempted": "Observations of the task, whatever their status.",
}
_CODES = {
    "machine": "KN1, KN2, … in knitting; LI1, LI2, … in linking",
    "interlocutor": f"a machine's code, {', '.join(OTHER_INTERLOCUTORS)}",
}
_COMPLETION_STATUS = ("Against the protocol: done, partial, missing, or off (a day off).")
_TYPES: dict[Any, str] = {pl.String: "text", pl.Int64: "whole number", pl.Float64: "number",
          pl.Boolean: "true/false", pl.Date: "date (YYYY-MM-DD)"}


@cache
def _contract() -> dict[str, dict[str, Any]]:
    """Each key of the contract → its JSON Schema (the first model to define it)."""
    found: dict[str, dict[str, Any]] = {}
    for model in _MODELS:
        schema = model.model_json_schema(by_alias=True)
        for key, prop in schema.get("properties", {}).items():
            found.setdefault(key, prop)
    return found


def _type(dtype: Any) -> str:
    if isinstance(dtype, pl.Datetime):
        return "timestamp (UTC)"
    if isinstance(dtype, pl.List):
        return f"list of {_type(dtype.inner)}"
    for kind, word in _TYPES.items():
        if dtype == kind:
            return word
    return str(dtype)


def _allowed(prop: dict[str, Any]) -> str:
    """The values a JSON Schema property allows, in words (nothing for free text)."""
    words, empty = [], False
    for option in prop.get("anyOf", [prop]):
        if option.get("type") == "null":
            empty = True
        elif "enum" in option or "const" in option:
            words.append(", ".join(map(str, option.get("enum", [option.get("const")]))))
        elif option.get("type") in ("integer", "number"):
            low, high = option.get("minimum"), option.get("maximum")
            text = f"{low:g} or more" if high is None or high > 2**53 else f"{low:g} to {high:g}"
            step = option.get("multipleOf")
            words.append(text + (f", in steps of {step:g}" if step else ""))
        elif option.get("type") == "array":
            words.append(_allowed(option.get("items", {})))
    text = "; ".join(w for w in words if w)
    return f"{text}, or empty" if text and empty else text


def described(column: str, frame: str) -> tuple[str, str]:
    """What a column of a frame means, and which values it allows."""
    if frame == "completion" and column == "status":
        return _COMPLETION_STATUS, "done, partial, missing, off"
    if column == "task":  # (each model allows its own)
        return _LAKE[column], "roster, wip, interactions"
    if column in _CODES:
        return _LAKE[column], _CODES[column]
    prop = _contract().get(_RENAMED.get(column, column))
    if column in _LAKE:
        return _LAKE[column], _allowed(prop) if prop else ""
    if prop is None:
        return "", ""
    return " ".join(str(prop.get("description", "")).split()), _allowed(prop)


def column_rows(frame: str, schema: pl.Schema, pseudonymised: set[str],
                joined: set[str]) -> list[tuple[str, str, str, str]]:
    """(column, type, meaning, allowed values) for every column of a frame's file; the
    `joined` columns are lists written as text, their items separated by `;`."""
    rows = []
    for column, dtype in schema.items():
        meaning, allowed = described(column, frame)
        kind = _type(dtype) if column not in joined else "list, as text: items separated by ;"
        if column in pseudonymised:
            meaning += " Pseudonymised: p_ and 16 hex digits, the same for the same code " \
                       "in every export keyed by the same study secret."
            allowed = ""
        rows.append((column, kind, meaning, allowed))
    return rows
