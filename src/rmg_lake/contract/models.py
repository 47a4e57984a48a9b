"""Pydantic models of the observation file contract, version 1 with the 1.1 additions
(shared/CONTRACT.md): a knitting machine's WIP as one number, a worker not known."""

from __future__ import annotations

import codecs
import re
from datetime import date, datetime
from typing import Annotated, Any, Literal, Self
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    TypeAdapter,
    ValidationInfo,
    field_validator,
    model_validator,
)

__all__ = [
    "FACTORY_TZ",
    "PERSONAL",
    "Interaction",
    "InteractionsObservation",
    "KnittingWipMachine",
    "KnittingWipObservation",
    "LinkingWipMachine",
    "LinkingWipObservation",
    "Observation",
    "Personal",
    "RosterMachine",
    "RosterObservation",
    "department_problem",
    "observation_adapter",
    "parse_observation",
    "shown_key",
    "worker_problem",
]

FACTORY_TZ = ZoneInfo("Asia/Dhaka")
MACHINE_PREFIX = {"knitting": "KN", "linking": "LI"}
_MACHINE_LIKE = re.compile(r"(KN|LI)[1-9][0-9]{0,3}")  # a machine code of either department
OTHER_INTERLOCUTORS = ("OO", "OS", "FIC", "PM", "OM", "O")  # besides the team's machines

Token = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]+$", max_length=64)]
Code = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Personal:
    """Marks a field whose value is a person's code (a worker's, a supervisor's): never
    repeated by an error message or a correction's summary (`show` prints an observation's
    values on purpose, and says so), pseudonymised by `export --pseudonymise`. `PERSONAL`
    (below) gathers these fields' names from the models."""


PersonCode = Annotated[Code, Personal()]
INT64_MAX = 2**63 - 1  # the frames keep whole numbers as Int64: larger ones cannot be real
Count = Annotated[int, Field(ge=0, le=INT64_MAX)]
Seconds = Annotated[int, Field(ge=0, le=INT64_MAX)]
Department = Literal["knitting", "linking"]
McStatus = Literal["manned", "unmanned"]


class _Model(BaseModel):
    """Strict: no silent coercion ("4" is not 4); unknown keys kept, never dropped."""

    model_config = ConfigDict(extra="allow", strict=True, frozen=True,
                              use_attribute_docstrings=True)  # (the schema's descriptions)


class _Machine(_Model):
    mc_status: McStatus
    """Whether a worker sat at the machine."""
    worker_id: PersonCode | None
    """The factory's code of the worker at the machine (null when unmanned, and when
    manned in a partial observation whose worker is not known: contract 1.1)."""

    def _check_worker(self) -> None:
        # (manned with worker_id null, the worker not known: only in a partial
        # observation, which the observation checks: see _known_workers)
        if self.mc_status == "unmanned" and self.worker_id is not None:
            raise ValueError("an unmanned machine cannot have a worker_id")


def _rule(unmanned: dict[str, Any], manned: dict[str, Any]) -> dict[str, Any]:
    """A machine's rules for JSON Schema (the validators below are what the lake runs)."""
    return {"if": {"properties": {"mc_status": {"const": "unmanned"}}},
            "then": {"properties": unmanned}, "else": {"properties": manned}}


_NULL: Any = {"type": "null"}
_TEXT: Any = {"type": "string"}


def _codes(pattern: str) -> Any:
    """JSON Schema for a `machines` object: its keys are machine codes."""
    return Field(json_schema_extra={"propertyNames": {"pattern": pattern}})


_WORKER: Any = {"type": ["string", "null"]}  # manned: null when the worker is not known
# 0.25 to 48 pieces, in steps of 0.25: linking's wip, and knitting's when one number
Pieces = Annotated[float, Field(ge=0, le=48, allow_inf_nan=False,
                                json_schema_extra={"multipleOf": 0.25})]


def _in_steps(wip: float | None) -> None:
    if wip is not None and (wip * 4) != int(wip * 4):
        raise ValueError(f"wip {wip} is not in steps of 0.25")


class RosterMachine(_Machine):
    model_config = ConfigDict(json_schema_extra=_rule({"worker_id": _NULL},
                                                      {"worker_id": _WORKER}))

    @model_validator(mode="after")
    def _rules(self) -> Self:
        self._check_worker()
        return self


_PANELS = ("back", "front", "sleeve", "collar")


class KnittingWipMachine(_Machine):
    model_config = ConfigDict(json_schema_extra={"allOf": [
        _rule(dict.fromkeys(("worker_id", "style", "component", *_PANELS, "wip"), _NULL),
              {"worker_id": _WORKER}),
        {"if": {"properties": {"mc_status": {"const": "manned"}}}, "then": {"oneOf": [
            {"properties": {"component": {"enum": ["body", "collar"]}, "wip": _NULL}},
            {"properties": {"component": _NULL, "wip": {"type": "number"},
                            **dict.fromkeys(_PANELS, _NULL)}, "required": ["wip"]}]}},
        {"if": {"properties": {"component": {"const": "body"}}},
         "then": {"properties": {"collar": _NULL}}},
        {"if": {"properties": {"component": {"const": "collar"}}},
         "then": {"properties": dict.fromkeys(("back", "front", "sleeve"), _NULL)}}]})

    style: Code | None
    """The style (design) the machine works on."""
    component: Literal["body", "collar"] | None
    """What the machine knits: body panels or collars."""
    back: Count | None
    """Back panels finished but not yet handed in (null: knitted elsewhere)."""
    front: Count | None
    """Front panels finished but not yet handed in (null: knitted elsewhere)."""
    sleeve: Count | None
    """Sleeves finished but not yet handed in (null: knitted elsewhere)."""
    collar: Count | None
    """Collars finished but not yet handed in (null: knitted elsewhere)."""
    wip: Pieces | None = None
    """Pieces knitted but not yet handed in, in steps of 0.25, when the WIP was counted
    as one number instead of panels (contract 1.1; then component and panels are null)."""

    @model_validator(mode="after")
    def _rules(self) -> Self:
        self._check_worker()
        panels = {"back": self.back, "front": self.front, "sleeve": self.sleeve,
                  "collar": self.collar}
        _in_steps(self.wip)
        if self.mc_status == "unmanned":
            set_ = [k for k, v in {"style": self.style, "component": self.component,
                                   **panels, "wip": self.wip}.items() if v is not None]
            if set_:
                raise ValueError(f"an unmanned machine has {', '.join(set_)} set; "
                                 "they must be null")
        elif self.wip is not None:
            set_ = [k for k, v in {"component": self.component, **panels}.items()
                    if v is not None]
            if set_:
                raise ValueError(f"a machine gives panels or wip, never both: wip is set, "
                                 f"so {', '.join(set_)} must be null")
        elif self.component is None:
            raise ValueError("a manned knitting machine needs a component (body or collar), "
                             "or its wip as one number")
        elif self.component == "body" and self.collar is not None:
            raise ValueError("component is body, so the collar count must be null")
        elif self.component == "collar" and any(
            panels[k] is not None for k in ("back", "front", "sleeve")
        ):
            raise ValueError("component is collar, so back, front and sleeve must be null")
        return self


class LinkingWipMachine(_Machine):
    model_config = ConfigDict(json_schema_extra=_rule(
        dict.fromkeys(("worker_id", "style", "wip"), _NULL),
        {"worker_id": _WORKER, "wip": {"type": "number"}}))

    style: Code | None
    """The style (design) the machine works on."""
    wip: Pieces | None
    """Pieces linked but not yet handed in, in steps of 0.25."""

    @model_validator(mode="after")
    def _rules(self) -> Self:
        self._check_worker()
        if self.mc_status == "unmanned" and (self.style is not None or self.wip is not None):
            raise ValueError("an unmanned machine must have style and wip null")
        if self.mc_status == "manned" and self.wip is None:
            raise ValueError("a manned linking machine needs a wip count")
        _in_steps(self.wip)
        return self


class _Observation(_Model):
    schema_version: int = Field(json_schema_extra={"const": 1})  # (other versions: refused)
    """The version of the file contract."""
    observation_id: UUID
    """The observation's id, made on the tablet; a re-upload keeps it."""
    observer: Token
    """The observer's code."""
    factory: Token
    """The factory's code."""
    department: Department
    """The section observed."""
    team: Token
    """The team observed, one of the study's (e.g. treatment, control)."""
    started_at: AwareDatetime
    """When the task started (with its UTC offset)."""
    ended_at: AwareDatetime
    """When the task ended (with its UTC offset)."""
    status: Literal["complete", "partial", "aborted"]
    """Whether the observer finished the task."""
    app_version: str | None = None
    """The tablet app's version."""
    device: str | None = None
    """The tablet's name."""
    notes: str | None = None
    """The observer's free-text notes."""

    @property
    def day(self) -> date:
        """The factory-local date the task started on."""
        return self.started_at.astimezone(FACTORY_TZ).date()

    @field_validator("schema_version")
    @classmethod
    def _version(cls, value: int) -> int:
        if value != 1:
            raise ValueError(f"schema_version {value} is not one this backend reads (1)")
        return value

    @field_validator("ended_at")
    @classmethod
    def _after_start(cls, value: datetime, info: ValidationInfo) -> datetime:
        started = info.data.get("started_at")
        if started is not None and value < started:
            raise ValueError("ended_at is before started_at")
        return value


def _by_department(knitting: Any, linking: Any) -> dict[str, Any]:
    """JSON Schema for what depends on the department (`department_problem` checks it)."""
    return {"if": {"properties": {"department": {"const": "knitting"}}},
            "then": {"properties": knitting}, "else": {"properties": linking}}


# JSON Schema: a manned machine's worker_id may be null only in a partial observation
_KNOWN_WORKERS: Any = {
    "if": {"not": {"properties": {"status": {"const": "partial"}}}},
    "then": {"properties": {"machines": {"additionalProperties": {
        "if": {"properties": {"mc_status": {"const": "manned"}}},
        "then": {"properties": {"worker_id": _TEXT}}}}}}}



class RosterObservation(_Observation):
    model_config = ConfigDict(json_schema_extra={"allOf": [
        _by_department(*({"machines": {"propertyNames": {
            "pattern": f"^{prefix}[1-9][0-9]*$"}}} for prefix in ("KN", "LI"))),
        _KNOWN_WORKERS]})

    task: Literal["roster"]
    """The task: the start-of-day roster."""
    machines: dict[str, RosterMachine] = _codes("^(KN|LI)[1-9][0-9]*$")
    """The team's machines by code (KN1, KN2, … in knitting; LI1, LI2, … in linking)."""



class KnittingWipObservation(_Observation):
    model_config = ConfigDict(json_schema_extra=_KNOWN_WORKERS)

    task: Literal["wip"]
    """The task: a round counting work in progress."""
    department: Literal["knitting"]
    """The section observed."""
    machines: dict[str, KnittingWipMachine] = _codes("^KN[1-9][0-9]*$")
    """The team's machines by code (KN1, KN2, …)."""



class LinkingWipObservation(_Observation):
    model_config = ConfigDict(json_schema_extra=_KNOWN_WORKERS)

    task: Literal["wip"]
    """The task: a round counting work in progress."""
    department: Literal["linking"]
    """The section observed."""
    machines: dict[str, LinkingWipMachine] = _codes("^LI[1-9][0-9]*$")
    """The team's machines by code (LI1, LI2, …)."""



class Interaction(_Model):
    with_: Code = Field(alias="with")
    """Whom the supervisor talked with: a machine of the team, or OO other operator, OS
    other supervisor, FIC floor in charge, PM production management, OM other
    management, O other."""
    length_s: Seconds
    """How long, in seconds."""
    initiator: Literal["supervisor", "interlocutor", "unclear"]
    """Who started it."""
    topic: Literal["machine-configuration", "machine-function", "yarn", "pattern",
                   "other-work", "personal"]
    """What it was about."""


class InteractionsObservation(_Observation):
    model_config = ConfigDict(json_schema_extra=_by_department(*(
        {"interactions": {"items": {"properties": {"with": {
            "pattern": f"^({prefix}[1-9][0-9]*|{'|'.join(OTHER_INTERLOCUTORS)})$"}}}}}
        for prefix in ("KN", "LI"))))

    task: Literal["interactions"]
    """The task: a window following the team's supervisor."""
    supervisor: PersonCode
    """The factory's code of the supervisor followed."""
    interactions: list[Interaction]
    """The supervisor's interactions, in order."""
    left_floor_s: list[Seconds]
    """Seconds the supervisor was away and could not be followed, each time."""


def _kind(value: Any) -> str | None:
    """Which model a payload is: its task, and for wip its department too."""
    if not isinstance(value, dict):
        return None
    task, department = value.get("task"), value.get("department")
    if task == "wip":  # (a list or an object where a word belongs is no department)
        return f"wip-{department}" if isinstance(department, str) \
            and department in MACHINE_PREFIX else None
    return task if isinstance(task, str) and task in ("roster", "interactions") else None


Observation = Annotated[
    Annotated[RosterObservation, Tag("roster")]
    | Annotated[KnittingWipObservation, Tag("wip-knitting")]
    | Annotated[LinkingWipObservation, Tag("wip-linking")]
    | Annotated[InteractionsObservation, Tag("interactions")],
    Discriminator(
        _kind,
        custom_error_type="unknown_task",
        custom_error_message="task must be roster, wip or interactions "
        "(and a wip's department knitting or linking)",
    ),
]

# Parses one file's shape and per-machine rules; validate_file adds department_problem.
observation_adapter: TypeAdapter[Observation] = TypeAdapter(Observation)


def parse_observation(data: bytes) -> Observation:
    """The observation in a file's bytes (after a UTF-8 BOM, if any), parsed strictly.

    Raises pydantic's ValidationError; `validate_file` turns that into a reason.
    """
    return observation_adapter.validate_json(data.removeprefix(codecs.BOM_UTF8), strict=True)


def department_problem(observation: Observation) -> tuple[str, str] | None:
    """The first field that breaks the department's codes, and why; None if there is none.

    Machine codes are fixed per department (KN1, KN2, … in knitting; LI1, LI2, … in
    linking), and an interlocutor is a machine of the team or one of OTHER_INTERLOCUTORS.
    Checked on a parsed observation rather than inside the models, so the field path is
    exact and the message can never repeat the value (it may be a person's code).
    """
    department = observation.department
    prefix = MACHINE_PREFIX[department]
    machine = re.compile(rf"{prefix}[1-9][0-9]*")
    if isinstance(observation, InteractionsObservation):
        others = f"{', '.join(OTHER_INTERLOCUTORS[:-1])} or {OTHER_INTERLOCUTORS[-1]}"
        for i, interaction in enumerate(observation.interactions):
            who = interaction.with_
            if who not in OTHER_INTERLOCUTORS and not machine.fullmatch(who):
                return (f"interactions.{i}.with",
                        f"not a machine of this {department} team nor {others}")
        return None
    for code in observation.machines:
        if not machine.fullmatch(code):
            return (f"machines.{shown_key(code)}",
                    f"not a {department} machine code ({prefix}1, {prefix}2, …)")
    return None


def worker_problem(observation: Observation) -> tuple[str, str] | None:
    """The first manned machine whose worker is not known (worker_id null) in an
    observation that is not partial, and why that cannot be; None if there is none.

    Contract 1.1: a worker not known makes the observation partial, never complete."""
    if observation.status == "partial" or isinstance(observation, InteractionsObservation):
        return None
    for code, machine in observation.machines.items():
        if machine.mc_status == "manned" and machine.worker_id is None:
            return (f"machines.{shown_key(code)}.worker_id",
                    f"a manned machine needs a worker_id; null (the worker not known) only "
                    f"in a partial observation, and this one is {observation.status}")
    return None


def shown_key(key: str) -> str:
    """A machine key as a field path may show it: a key that is no machine code of either
    department may be a person's code typed in the wrong place: described, not repeated."""
    return key if _MACHINE_LIKE.fullmatch(key) else "<not a machine code>"


def _personal(model: type[BaseModel]) -> set[str]:
    """The fields of `model` and of the models below it that are marked `Personal`."""
    marked = {name for name, field in model.model_fields.items()
              if any(isinstance(m, Personal)
                     for m in [*field.metadata, *_marks(field.annotation)])}
    return marked.union(*(_personal(sub) for sub in model.__subclasses__()))


def _marks(annotation: Any) -> list[Any]:
    """The `Annotated` metadata anywhere in a field's type (`PersonCode | None` too)."""
    found = list(getattr(annotation, "__metadata__", ()))
    return found + [m for arg in getattr(annotation, "__args__", ()) for m in _marks(arg)]


# The names of the fields (and the frames' columns) that hold people's codes
PERSONAL = frozenset(_personal(_Model))
