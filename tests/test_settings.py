"""Study settings come from rmg-lake.toml, are recorded in the log, and shape the frames."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from conftest import run_in

from rmg_lake import ConfigError, load_config, open_lake, simulate

Rmg = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def rmg(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Rmg:
    """`rmg-lake ARGS` run from the folder `cwd` (in this process: quicker)."""
    def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        monkeypatch.chdir(cwd)
        return run_in(capsys, *args)
    return run


def write_toml(folder: Path, extra: str = "") -> None:
    (folder / "rmg-lake.toml").write_text(f'source = "inbox"\nlake = "lake"\n{extra}')


def off_days(folder: Path) -> set[date]:
    frame = open_lake(folder / "lake").completion()
    return set(frame.filter(status="off")["day"])


def test_rebuild_elsewhere_keeps_the_settings_the_log_recorded(tmp_path: Path, rmg: Rmg) -> None:
    simulate(tmp_path / "inbox", days=4, seed=2, bad_files=False)  # Sun 1 – Wed 4 Nov
    write_toml(tmp_path, "[calendar]\nholidays = [2026-11-02]\n")
    assert rmg("ingest", cwd=tmp_path).returncode == 0
    assert off_days(tmp_path) == {date(2026, 11, 2)}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert rmg("rebuild", "--lake", str(tmp_path / "lake"), cwd=elsewhere).returncode == 0
    assert off_days(tmp_path) == {date(2026, 11, 2)}


def test_changed_settings_alone_make_a_batch_of_no_files(tmp_path: Path, rmg: Rmg) -> None:
    simulate(tmp_path / "inbox", days=4, seed=2, bad_files=False)
    write_toml(tmp_path)
    assert rmg("ingest", cwd=tmp_path).returncode == 0
    assert off_days(tmp_path) == set()
    write_toml(tmp_path, "[calendar]\nholidays = [2026-11-03]\n")
    result = rmg("ingest", cwd=tmp_path)
    assert "Batch 2: no new files; the study settings" in result.stdout
    lake = open_lake(tmp_path / "lake")
    assert lake.batches()[-1].counts["seen"] == 0
    assert off_days(tmp_path) == {date(2026, 11, 3)}
    assert "Nothing new" in rmg("ingest", cwd=tmp_path).stdout


def test_a_partial_protocol_keeps_the_other_defaults(tmp_path: Path) -> None:
    write_toml(tmp_path, "[protocol]\nwip = 3\n")
    config = load_config(tmp_path / "rmg-lake.toml")
    assert config is not None
    assert config.settings.protocol.expected() == {"roster": 1, "wip": 3, "interactions": 1}


@pytest.mark.parametrize(("extra", "field"), [
    ("[protocol]\nintercations = 1\n", "protocol.intercations"),
    ("[protocol]\nwip = -1\n", "protocol.wip"),
    ("[calendar]\nweekend = ['fri']\n", "calendar.weekend.0"),
    ("[study.f01]\nknit = ['treatment']\n", "study.f01.knit"),
    ("[study.f01]\nknitting = ['Treatment Team']\n", "study.f01.knitting.0"),
    ("colour = 'blue'\n", "colour"),
    ("[checks]\nwip_z = 0\n", "checks.wip_z"),
    ("[checks]\nday_starts = 21:00:00\n", "checks"),
    ("[checks]\nshortest = { roster = 2, wip = 500, interactions = 10 }\n", "checks"),
])
def test_wrong_settings_are_refused_naming_the_field(
    tmp_path: Path, extra: str, field: str,
) -> None:
    write_toml(tmp_path, extra)
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "rmg-lake.toml")
    assert caught.value.field == field


def test_without_a_config_file_nothing_is_read(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_config() is None


def test_a_toml_about_another_lake_does_not_change_this_one(tmp_path: Path, rmg: Rmg) -> None:
    study, other = tmp_path / "study", tmp_path / "other"
    simulate(study / "inbox", days=4, seed=2, bad_files=False)
    write_toml(study, "[calendar]\nholidays = [2026-11-02]\n")
    assert rmg("ingest", cwd=study).returncode == 0
    (other / "inbox").mkdir(parents=True)
    write_toml(other)  # no holidays, and its own lake
    result = rmg("ingest", "--lake", str(study / "lake"), cwd=other)
    assert "Nothing new" in result.stdout
    assert off_days(study) == {date(2026, 11, 2)}


def test_the_same_days_in_another_order_are_the_same_settings(tmp_path: Path, rmg: Rmg) -> None:
    simulate(tmp_path / "inbox", days=4, seed=2, bad_files=False)
    write_toml(tmp_path, "[calendar]\nholidays = [2026-11-02, 2026-11-03]\n")
    assert rmg("ingest", cwd=tmp_path).returncode == 0
    write_toml(tmp_path, "[calendar]\nholidays = [2026-11-03, 2026-11-02, 2026-11-02]\n")
    assert "Nothing new" in rmg("ingest", cwd=tmp_path).stdout


def test_the_first_batch_records_the_settings_and_team_order_is_no_change(
    tmp_path: Path, rmg: Rmg) -> None:
    simulate(tmp_path / "inbox", days=2, seed=2, bad_files=False)
    write_toml(tmp_path, "[study.f09]\nlinking = ['b', 'a']\n")
    assert rmg("ingest", cwd=tmp_path).returncode == 0
    (first,) = open_lake(tmp_path / "lake").batches()
    assert first.settings is not None and first.settings.study == {"f09": {"linking": ("a", "b")}}
    write_toml(tmp_path, "[study.f09]\nlinking = ['a', 'b', 'a']\n")
    assert "Nothing new" in rmg("ingest", cwd=tmp_path).stdout


def test_a_lake_without_a_toml_still_records_its_settings(tmp_path: Path) -> None:
    simulate(tmp_path / "inbox", days=2, seed=2, bad_files=False)
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(tmp_path / "inbox")
    assert lake.batches()[0].settings is not None


def test_working_days_skip_the_weekend_and_holidays() -> None:
    from rmg_lake.config import Calendar

    thursday, saturday = date(2026, 11, 19), date(2026, 11, 21)
    assert Calendar().working_days(thursday, saturday) == 0  # Friday is off
    assert Calendar().working_days(thursday, date(2026, 11, 24)) == 3  # Sat, Sun, Mon
    assert Calendar(holidays=(date(2026, 11, 22),)).working_days(
        thursday, date(2026, 11, 24)) == 2
    assert Calendar().working_days(saturday, saturday) == 0
