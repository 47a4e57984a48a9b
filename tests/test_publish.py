"""Delivery: the daily report and the day's flags, under dated names, the last 30 days kept."""

from __future__ import annotations

import shutil
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import REPO, run_cli
from openpyxl import load_workbook

from rmg_lake import open_lake, simulate
from rmg_lake.contract.models import FACTORY_TZ
from rmg_lake.deliver.publish import KEEP, publish
from rmg_lake.deliver.targets import FolderTarget


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A three-day sync folder."""
    inbox = tmp_path_factory.mktemp("publish") / "inbox"
    simulate(inbox, days=3, seed=5)
    return inbox


def test_ingest_report_delivers_the_page_and_the_days_flags(
    study: Path, tmp_path: Path,
) -> None:
    lake = tmp_path / "lake"
    before = datetime.now(FACTORY_TZ).date()
    result = run_cli("ingest", "--source", str(study), "--lake", str(lake), "--report")
    assert result.returncode == 0, result.stderr
    (page,) = (lake / "reports").glob("*-report.html")
    flags = page.with_name(page.name.replace("report.html", "flags.csv"))
    assert page.name[:10] in {str(before), str(datetime.now(FACTORY_TZ).date())}  # today's
    assert "Wrote the report and" in result.stdout and str(page) in result.stdout
    assert 'data-view="completion"' in page.read_text()
    check = run_cli("check", "--lake", str(lake), "--format", "csv")  # the day's flags
    assert check.returncode == 0, check.stderr
    assert flags.read_text() == check.stdout and check.stdout.count("\n") > 1
    assert page.stat().st_mode & 0o077 == 0  # private, like every file of the lake
    workbook = page.with_name(page.name.replace("report.html", "checks.xlsx"))
    summary = load_workbook(workbook)["summary"]  # the same flags, for the field manager
    n = check.stdout.count("\n") - 1
    assert summary["B3"].value == f"{n}: {n} open, 0 corrected, 0 reviewed"
    again = run_cli("ingest", "--source", str(study), "--lake", str(lake), "--report")
    assert "Nothing new" in again.stdout and "Wrote the report" in again.stdout
    assert sorted(p.name for p in (lake / "reports").iterdir()) == [
        workbook.name, flags.name, page.name]


def test_each_place_keeps_the_last_30_days(study: Path, tmp_path: Path) -> None:
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(study)
    now = datetime(2026, 12, 31, 8, 0, tzinfo=FACTORY_TZ)
    dropbox_like = FolderTarget(tmp_path / "elsewhere")
    for root in (lake.root, dropbox_like.root):
        (root / "reports").mkdir(parents=True, exist_ok=True)
        for n in range(1, 36):  # 35 earlier days, one without its CSV
            day = (now - timedelta(days=n)).date()
            (root / f"reports/{day}-report.html").write_text("old")
            if n != 3:
                (root / f"reports/{day}-flags.csv").write_text("old")
        (root / "reports/notes.txt").write_text("the researcher's own")
    done = publish(lake, targets=[dropbox_like], now=now)
    assert done.page == "reports/2026-12-31-report.html"
    assert done.places == [str(lake.root), dropbox_like.name]
    assert done.deleted == 2 * 12  # days 30-35 before today, page and CSV, in each place
    for root in (lake.root, dropbox_like.root):
        names = {p.name for p in (root / "reports").iterdir()}
        days = {name[:10] for name in names if name[:4] == "2026"}
        assert days == {str((now - timedelta(days=n)).date()) for n in range(KEEP)}
        assert "notes.txt" in names and "2026-12-28-flags.csv" not in names
        assert (root / done.page).read_bytes() == (lake.root / done.page).read_bytes()


def test_our_folders_at_the_top_of_a_sync_folder_are_never_read(
    study: Path, tmp_path: Path,
) -> None:
    inbox = tmp_path / "inbox"
    shutil.copytree(study, inbox)
    lake = open_lake(tmp_path / "lake", create=True)
    first = lake.ingest(inbox).counts["seen"]
    publish(lake, targets=[FolderTarget(inbox)])  # reports/ in the sync folder
    (inbox / "backups" / "objects" / "ab").mkdir(parents=True)
    (inbox / "backups" / "objects" / "ab" / "cdef").write_bytes(b"a backed-up object")
    (inbox / "obs01" / "reports").mkdir(parents=True)
    (inbox / "obs01" / "reports" / "photo.jpg").write_bytes(b"an observer's own folder")
    again = lake.ingest(inbox)
    assert [f.path for f in again.files] == ["obs01/reports/photo.jpg"]
    assert first == len(list(study.rglob("*.*")))


def test_just_daily_ingests_reports_checks_and_backs_up(study: Path, tmp_path: Path) -> None:
    """With the Dropbox client's folder as the source, `reports_to` names where the
    reports go to be synced (here a plain folder)."""
    (tmp_path / "rmg-lake.toml").write_text(
        f'source = "{study}"\nlake = "lake"\nbackup = "usb"\nreports_to = "synced"\n')
    just = shutil.which("just")
    assert just is not None, "`just` comes with the dev extras (rust-just)"
    daily = subprocess.run([just, "--justfile", str(REPO / "justfile"),
                            "--working-directory", str(tmp_path), "daily"],
                           capture_output=True, text=True, timeout=300, check=False)
    assert daily.returncode == 0, daily.stderr
    (page,) = (tmp_path / "lake" / "reports").glob("*-report.html")
    assert (tmp_path / "synced" / "reports" / page.name).read_bytes() == page.read_bytes()
    assert f"delivered to {tmp_path / 'synced'}/reports" in daily.stdout
    assert "Backed up" in daily.stdout and "Kept 1 version" in daily.stdout
    assert len(list((tmp_path / "usb" / "backups").glob("*.json"))) == 1
    other = run_cli("backup", "--lake", str(tmp_path / "other"), cwd=tmp_path)
    assert other.returncode == 1  # the toml's folder is for the toml's lake only
    assert "no backup folder given" in other.stderr


def test_a_place_out_of_reach_is_a_warning_and_the_lake_has_the_report(
    study: Path, tmp_path: Path,
) -> None:
    (tmp_path / "unplugged").write_text("a file where a folder should be")
    (tmp_path / "rmg-lake.toml").write_text(
        f'source = "{study}"\nlake = "lake"\nreports_to = "unplugged"\n')
    result = run_cli("ingest", "--report", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "warning: the report did not reach" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(list((tmp_path / "lake" / "reports").glob("*-report.html"))) == 1
