"""Each case in tests/data is a file as a tablet might write it; bad ones carry expected.txt."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rmg_lake.contract import (
    InvalidObservation,
    observation_adapter,
    parse_name,
    parse_observation,
    validate_file,
)
from rmg_lake.contract.models import department_problem
from rmg_lake.errors import shown

CASES = Path(__file__).parent / "data"
BAD = sorted((CASES / "bad").iterdir())


def _case_file(case: Path) -> Path:
    (file,) = (p for p in case.iterdir() if p.name not in ("expected.txt", "name.txt"))
    return file


def _uploaded_as(case: Path) -> str:
    """The name the file arrives under: its own, or one no disk would hold (name.txt)."""
    named = case / "name.txt"
    return named.read_text() if named.exists() else _case_file(case).name


def _expected(case: Path) -> dict[str, str]:
    lines = (case / "expected.txt").read_text().splitlines()
    return {key: value.strip() for key, value in (line.split(":", 1) for line in lines)}


@pytest.mark.parametrize("case", sorted((CASES / "good").iterdir()), ids=lambda p: p.name)
def test_good_files_validate(case: Path) -> None:
    file = _case_file(case)
    valid = validate_file(f"obs03/{file.name}", file.read_bytes())
    assert valid.observation.observer == "obs03"
    assert str(valid.observation.day) == "2026-11-24"


@pytest.mark.parametrize("case", BAD, ids=lambda p: p.name)
def test_bad_files_are_rejected_naming_file_and_field(case: Path) -> None:
    file, name = _case_file(case), _uploaded_as(case)
    expected = _expected(case)
    with pytest.raises(InvalidObservation) as caught:
        validate_file(f"obs03/{name}", file.read_bytes())
    error = caught.value
    assert error.file == f"obs03/{name}"
    assert (error.field or "") == expected["field"]
    assert expected["reason"] in error.message
    assert shown(error.file) in str(error)


def test_there_are_many_kinds_of_bad_file() -> None:
    assert len(BAD) >= 30


@pytest.mark.parametrize("case", BAD, ids=lambda p: p.name)
def test_every_bad_case_says_which_field_and_a_reason(case: Path) -> None:
    """An empty reason matches any message, and a case with one proves nothing."""
    expected = _expected(case)
    assert set(expected) == {"field", "reason"}
    assert expected["reason"]


def test_department_rules_are_apart_from_parsing() -> None:
    """The adapter alone parses stored files; the department's codes are checked after."""
    for case in sorted((CASES / "good").iterdir()):
        observation = parse_observation(_case_file(case).read_bytes())
        assert department_problem(observation) is None, case.name
    file = _case_file(CASES / "bad" / "machine-of-other-department")
    observation = observation_adapter.validate_json(file.read_bytes())
    assert department_problem(observation) == (
        "machines.LI1", "not a knitting machine code (KN1, KN2, …)")


def test_unknown_keys_are_reported_not_dropped() -> None:
    file = _case_file(CASES / "good" / "unknown-keys-kept")
    valid = validate_file(file.name, file.read_bytes())
    assert valid.extra_keys == ("battery", "machines.KN1.temperature")


def test_error_messages_never_repeat_a_worker_code() -> None:
    file = _case_file(CASES / "bad" / "unmanned-with-worker")
    with pytest.raises(InvalidObservation) as caught:
        validate_file(file.name, file.read_bytes())
    assert "w0102" not in str(caught.value)


def _rejected(good_case: str, change: Any) -> InvalidObservation:
    """Validate a good case after `change(payload)`; return the error it must raise."""
    file = _case_file(CASES / "good" / good_case)
    payload = json.loads(file.read_bytes())
    change(payload)
    with pytest.raises(InvalidObservation) as caught:
        validate_file(f"obs03/{file.name}", json.dumps(payload).encode())
    return caught.value


def _put(where: str, value: Any) -> Any:
    """A change that sets the dotted path `where` (list indices as numbers) to `value`."""
    *parents, last = where.split(".")

    def change(payload: Any) -> None:
        for part in parents:
            payload = payload[int(part) if isinstance(payload, list) else part]
        payload[int(last) if isinstance(payload, list) else last] = value
    return change


# A person's code where it does not belong: the error names the field, never the value.
@pytest.mark.parametrize(("good_case", "where", "value", "code"), [
    ("interactions", "interactions.0.with", "w4821", "w4821"),  # a worker, not a machine
    ("interactions", "interactions.0.with", 4821, "4821"),
    ("interactions", "interactions.0", "sup777", "sup777"),
    ("interactions", "supervisor", 777, "777"),
    ("interactions", "supervisor", "sup777" * 11, "sup777"),  # too long
    ("interactions", "left_floor_s.0", "w4821", "w4821"),
    ("knitting-wip", "machines.KN1.worker_id", 4821, "4821"),
    ("knitting-wip", "machines.KN1.worker_id", "w4821" * 13, "w4821"),  # too long
    ("knitting-wip", "machines.KN1.style", "w4821" * 13, "w4821"),  # too long
    ("knitting-wip", "machines.KN1.style", 4821, "4821"),
    ("knitting-wip", "machines.KN1", "w4821", "w4821"),
    ("knitting-wip", "notes", 4821, "4821"),
    ("linking-roster", "machines.LI1.worker_id", ["w4821"], "w4821"),
    ("linking-wip", "machines.LI1.worker_id", False, "False"),
])
def test_errors_name_the_field_never_a_personal_value(
    good_case: str, where: str, value: Any, code: str,
) -> None:
    error = _rejected(good_case, _put(where, value))
    assert error.field == where
    assert code not in str(error)


@pytest.mark.parametrize("back", [4, -1])  # caught by the department rule, or by the model
def test_a_key_that_is_no_machine_code_is_described_not_repeated(back: int) -> None:
    """A person's code typed as a machine key must not come back in the error."""
    def rename(payload: Any) -> None:
        payload["machines"]["w4821"] = payload["machines"].pop("KN1")
        payload["machines"]["w4821"]["back"] = back

    error = _rejected("knitting-wip", rename)
    assert (error.field or "").startswith("machines.<not a machine code>")
    assert "w4821" not in str(error)


def test_a_machine_code_key_is_named_in_the_field() -> None:
    error = _rejected("knitting-wip", _put("machines.KN1.back", -4))
    assert error.field == "machines.KN1.back"


@pytest.mark.parametrize(("where", "value", "shown"), [
    ("machines.KN1.back", -4, "(got -4)"),
    ("machines.KN2.mc_status", "idle", None),  # text in a coded field may be anything
    ("status", "sup4715", None),
    ("observation_id", "W4712-a", None),
    ("ended_at", "sup-rahim", None),
    ("team", "w4712", None),  # the name says treatment, the payload a worker's code
])
def test_values_are_shown_only_where_they_cannot_be_a_persons_code(
    where: str, value: object, shown: str | None,
) -> None:
    error = _rejected("knitting-wip", _put(where, value))
    assert error.field == where
    if shown:
        assert shown in error.message
    else:
        assert "(got" not in error.message and str(value) not in str(error)


@pytest.mark.parametrize("key", ["W4712", "w4712", "sup07"])
def test_an_upper_case_code_as_machine_key_is_not_repeated(key: str) -> None:
    def rename(payload: Any) -> None:
        payload["machines"][key] = payload["machines"].pop("KN2")

    error = _rejected("knitting-wip", rename)
    assert key not in str(error)

@pytest.mark.parametrize(("name", "team"), [
    ("wip_knitting_same-floor_obs03_20261124T101500.json", "same-floor"),
    ("wip_knitting_treatment_obs03_20261124T101500 (1).json", "treatment"),
    ("wip_knitting_treatment_obs03_20261124T101500 (conflicted copy 2026-11-24).json",
     "treatment"),
    ("wip_knitting_treatment_obs03_20261124T101500.JSON", None),
    ("wip_knitting_same_floor_obs03_20261124T101500.json", None),  # `_` inside a token
    ("wip_knitting_treatment_obs03_2026-11-24.json", None),
])
def test_file_names(name: str, team: str | None) -> None:
    parsed = parse_name(name)
    assert (parsed.team if parsed else None) == team


def test_a_repeated_key_is_named_only_when_it_is_the_contracts() -> None:
    file = _case_file(CASES / "good" / "knitting-wip")
    data = file.read_bytes().replace(b'"status"', b'"w0101": 1, "w0101": 2, "status"', 1)
    with pytest.raises(InvalidObservation) as caught:
        validate_file(f"obs03/{file.name}", data)
    assert caught.value.field == "(a key the contract lacks)"
    assert "w0101" not in str(caught.value)
