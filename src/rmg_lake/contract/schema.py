"""The contract as JSON Schema (draft 2020-12), one document per task, generated from the
pydantic models: for anyone who builds another client (the observer kit points to it).

A schema gives the shapes and most rules: keys, types, codes by department, ranges, what
a manned or an unmanned machine holds. What JSON Schema cannot say is in each schema's
description and in the models' validators, which `rmg-lake ingest` runs: `ended_at` not
before `started_at`; whole numbers written as 3, never 3.0; a key written once.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from pydantic import Field, TypeAdapter

from rmg_lake.contract.models import (
    InteractionsObservation,
    KnittingWipObservation,
    LinkingWipObservation,
    RosterObservation,
)

__all__ = ["VERSION", "contract_schemas", "file_name", "schema_bytes"]

VERSION = 1  # the contract's schema_version these schemas describe
_COMMON = ("Contract v{v}: one completed task as saved by the tablet (shared/CONTRACT.md). "
           "Timestamps are ISO 8601 with a UTC offset; ended_at is not before started_at. "
           "Unknown keys are allowed and kept. ")
_RULES = {
    "roster": "Machine codes are KN1, KN2, … in knitting and LI1, LI2, … in linking. "
              "Unmanned: worker_id null; manned: worker_id set, or null in a partial "
              "observation (the worker not known, contract 1.1).",
    "wip": "Machine codes are KN1, KN2, … in knitting and LI1, LI2, … in linking. "
           "Unmanned: every other value null; manned: worker_id set, or null in a partial "
           "observation (the worker not known, contract 1.1). Knitting: a body has "
           "collar null, a collar has back, front and sleeve null; or (contract 1.1) wip "
           "as one number with component and panels null, never both. Linking: wip in "
           "steps of 0.25, required when manned.",
    "interactions": "`with` is a machine code of the team, or OO, OS, FIC, PM, OM or O. "
                    "The lengths and left_floor_s should fit in the window (checked "
                    "later, never refused).",
}
_MODELS: dict[str, TypeAdapter[Any]] = {
    "roster": TypeAdapter(RosterObservation),
    "wip": TypeAdapter(Annotated[KnittingWipObservation | LinkingWipObservation,
                                 Field(discriminator="department")]),
    "interactions": TypeAdapter(InteractionsObservation),
}


def contract_schemas() -> dict[str, dict[str, Any]]:
    """Task → its JSON Schema."""
    return {task: {"$schema": "https://json-schema.org/draft/2020-12/schema",
                   "$id": f"urn:rmg-lake:contract:v{VERSION}:{task}",
                   "title": f"rmg-lake observation file, contract v{VERSION}: {task}",
                   "description": _COMMON.format(v=VERSION) + _RULES[task],
                   **adapter.json_schema()}
            for task, adapter in _MODELS.items()}


def file_name(task: str) -> str:
    """`roster.v1.schema.json`: a version 2 comes beside it."""
    return f"{task}.v{VERSION}.schema.json"


def schema_bytes(schema: dict[str, Any]) -> bytes:
    """A schema as the file `rmg-lake schema --out` writes (indented, newline at the end)."""
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2) + b"\n"
