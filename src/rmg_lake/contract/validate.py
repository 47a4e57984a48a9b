"""Turn the bytes of one file into a validated observation, or say exactly what is wrong."""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from rmg_lake.contract.models import (
    FACTORY_TZ,
    PERSONAL,
    Observation,
    department_problem,
    parse_observation,
    shown_key,
    worker_problem,
)
from rmg_lake.contract.names import parse_name
from rmg_lake.errors import LakeError

__all__ = ["CONTRACT_KEYS", "SHOWN_VALUES", "InvalidObservation", "Validated", "extra_keys",
           "validate_file", "validate_payload"]

# A message repeats the input only where it cannot be a person's code: a number or a
# boolean in a counting or coded field. Text never: whatever failed to parse may be a
# worker's code typed in the wrong place, so it is described, not echoed.
SHOWN_VALUES = frozenset({
    "schema_version", "back", "front", "sleeve", "collar", "wip", "length_s",
    "mc_status", "component", "status", "task", "initiator", "topic", "department",
})
# Keys of the contract, which a message may name (any other key may be a person's code).
CONTRACT_KEYS = SHOWN_VALUES | PERSONAL | {
    "observation_id", "observer", "factory", "team", "started_at", "ended_at", "app_version",
    "device", "notes", "machines", "style", "interactions", "with", "left_floor_s"}
_NAME_HINT = "expected <task>_<department>_<team>_<observer>_<YYYYMMDD>T<HHMMSS>.json"


class InvalidObservation(LakeError):
    """A file that breaks the contract; it goes to quarantine with this reason."""


@dataclass(frozen=True, slots=True)
class Validated:
    observation: Observation
    extra_keys: tuple[str, ...]  # paths of keys the contract does not know, kept in raw


def validate_file(path: str, data: bytes) -> Validated:
    """Validate one observation file; `path` is its place in the sync folder.

    Raises InvalidObservation naming the file and the field.
    """
    name = path.rsplit("/", 1)[-1]
    parsed = parse_name(name)
    if parsed is None:
        raise InvalidObservation("file name does not follow the contract", file=path,
                                 field="(file name)", hint=_NAME_HINT)
    data = data.removeprefix(codecs.BOM_UTF8)  # some editors start UTF-8 with a BOM: fine
    if not data.strip():
        raise InvalidObservation("the file is empty (an upload that never finished?)",
                                 file=path)
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in data[:4]:
        raise InvalidObservation("UTF-16 or UTF-32 text, not UTF-8",
                                 file=path, hint="the tablet must save UTF-8 JSON")
    try:
        observation = parse_observation(data)
    except ValidationError as exc:
        field, message = _first_problem(exc)
        raise InvalidObservation(message, file=path, field=field) from None
    if (twice := _duplicate_key(data)) is not None:
        raise InvalidObservation("a key appears twice in one object (which one counts?)",
                                 file=path, field=twice)
    local = observation.started_at.astimezone(FACTORY_TZ).strftime("%Y%m%dT%H%M%S")
    for token, payload_value in (
        ("task", observation.task), ("department", observation.department),
        ("team", observation.team), ("observer", observation.observer), ("stamp", local),
    ):
        if getattr(parsed, token) != payload_value:
            # the name's value is in the path already; the payload's may be anything
            said = f"{payload_value!r}" if token == "stamp" else "something else"
            raise InvalidObservation(
                f"the file name says {getattr(parsed, token)!r} but the payload says {said}",
                file=path, field="started_at" if token == "stamp" else token,
                hint="the name and the payload must agree; check the tablet's export")
    problem = department_problem(observation) or worker_problem(observation)
    if problem is not None:
        field, message = problem
        raise InvalidObservation(message, file=path, field=field)
    return Validated(observation, tuple(extra_keys(observation)))


def validate_payload(data: bytes, *, file: str) -> Observation:
    """Validate an observation's JSON against the contract (its file name aside: a
    corrected observation keeps the name it arrived with). Raises InvalidObservation."""
    try:
        observation = parse_observation(data)
    except ValidationError as exc:
        field, message = _first_problem(exc)
        raise InvalidObservation(message, file=file, field=field) from None
    problem = department_problem(observation) or worker_problem(observation)
    if problem is not None:
        raise InvalidObservation(problem[1], file=file, field=problem[0])
    return observation


def _first_problem(exc: ValidationError) -> tuple[str | None, str]:
    error = exc.errors(include_url=False)[0]
    loc = [str(part) for part in error["loc"]]
    if loc and (loc[0] in ("roster", "interactions") or loc[0].startswith("wip-")):
        loc = loc[1:]  # the discriminator's tag, not a field of the file
    if len(loc) > 1 and loc[0] == "machines":
        loc[1] = shown_key(loc[1])
    field = ".".join(loc) or None
    message = str(error["msg"])
    if error["type"] == "json_invalid":
        detail = str(error["ctx"]["error"])
        if "unicode" in detail or "utf-8" in detail.lower():
            return None, f"not UTF-8 text ({detail}); the tablet must save UTF-8 JSON"
        return None, f"not valid JSON ({detail})"
    if error["type"] == "value_error":
        return field, str(error["ctx"]["error"])
    if error["type"] == "missing":
        return field, "required key is missing"
    if error["type"] == "unknown_task":
        payload = error.get("input")
        if not isinstance(payload, dict):
            return None, "the file holds JSON but not an object of the contract"
        field = "department" if payload.get("task") == "wip" else "task"
    if error["type"] == "json_type":
        return None, "not valid JSON"
    if error["type"] in ("uuid_parsing", "uuid_type"):
        return field, "not a UUID"  # pydantic's own message quotes the text
    value = error.get("input")
    if isinstance(value, int | float) and loc and loc[-1] in SHOWN_VALUES:
        got = repr(value) if len(repr(value)) <= 24 else f"a number of {len(repr(value))} digits"
        message = f"{message} (got {got})"
    return field, message


class _Twice(Exception):
    pass


def _no_twice(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen = dict(pairs)
    if len(seen) != len(pairs):
        keys = [key for key, _ in pairs]
        raise _Twice(next(k for k in keys if keys.count(k) > 1))
    return seen


def _duplicate_key(data: bytes) -> str | None:
    """The key that appears twice in some object of `data` (which has parsed as JSON), as
    a field may show it; None if there is none. JSON parsers keep the last silently."""
    try:
        json.loads(data, object_pairs_hook=_no_twice)
    except _Twice as twice:
        key = str(twice.args[0])
        if key in CONTRACT_KEYS:
            return key
        return f"machines.{key}" if shown_key(key) == key else "(a key the contract lacks)"
    return None


def extra_keys(observation: Any) -> list[str]:
    """Dotted paths of every key the contract does not define."""
    found = [str(key) for key in observation.model_extra or {}]
    for code, machine in getattr(observation, "machines", {}).items():
        found += [f"machines.{code}.{key}" for key in machine.model_extra or {}]
    for i, interaction in enumerate(getattr(observation, "interactions", [])):
        found += [f"interactions.{i}.{key}" for key in interaction.model_extra or {}]
    return sorted(found)
