"""Each case in tests/cases is a file as a tablet might write it; bad ones carry expected.txt."""

from __future__ import annotations

from pathlib import Path

import pytest

from rmg_lake.contract import InvalidObservation, parse_name, validate_file

CASES = Path(__file__).parent / "cases"


def _case_file(case: Path) -> Path:
    (file,) = (p for p in case.iterdir() if p.name != "expected.txt")
    return file


@pytest.mark.parametrize("case", sorted((CASES / "good").iterdir()), ids=lambda p: p.name)
def test_good_files_validate(case: Path) -> None:
    file = _case_file(case)
    valid = validate_file(f"obs03/{file.name}", file.read_bytes())
    assert valid.observation.observer == "obs03"
    assert str(valid.observation.day) == "2026-11-24"


@pytest.mark.parametrize("case", sorted((CASES / "bad").iterdir()), ids=lambda p: p.name)
def test_bad_files_are_rejected_naming_file_and_field(case: Path) -> None:
    file = _case_file(case)
    expected = dict(line.split(": ", 1) for line in
                    (case / "expected.txt").read_text().splitlines())
    with pytest.raises(InvalidObservation) as caught:
        validate_file(f"obs03/{file.name}", file.read_bytes())
    error = caught.value
    assert error.file == f"obs03/{file.name}"
    assert (error.field or "").startswith(expected.get("field", "").strip())
    assert expected["reason"].strip() in error.message
    assert error.file in str(error)


def test_there_are_many_kinds_of_bad_file() -> None:
    assert len(list((CASES / "bad").iterdir())) >= 20


def test_unknown_keys_are_reported_not_dropped() -> None:
    file = _case_file(CASES / "good" / "unknown-keys-kept")
    valid = validate_file(file.name, file.read_bytes())
    assert valid.extra_keys == ("battery", "machines.KN1.temperature")


def test_error_messages_never_repeat_a_worker_code() -> None:
    file = _case_file(CASES / "bad" / "unmanned-with-worker")
    with pytest.raises(InvalidObservation) as caught:
        validate_file(file.name, file.read_bytes())
    assert "w0102" not in str(caught.value)


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
