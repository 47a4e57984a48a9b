"""The HTML report: one page whose data tables say what the lake's views say."""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections import defaultdict
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import Ingested, run_cli

CHROMIUM = shutil.which("chromium")


class _Tables(HTMLParser):
    """Every `<table data-view=…>`: its header, and its rows' cells (text, class, key)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[tuple[str, str, str]]]] = defaultdict(list)
        self.view: str | None = None
        self.row: list[tuple[str, str, str]] | None = None
        self.cell: list[str] | None = None
        self.attrs: dict[str, str] = {}
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag in ("script", "link", "img") and (found.get("src") or found.get("href")):
            self.links.append(found.get("src") or found["href"])
        if tag == "table" and "data-view" in found:
            self.view = found["data-view"]
        elif self.view and tag == "tr":
            self.row = []
        elif self.row is not None and tag in ("td", "th"):
            self.cell, self.attrs = [], found

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None and self.row is not None:
            self.row.append(("".join(self.cell).strip(), self.attrs.get("class", ""),
                             self.attrs.get("data-key", "")))
            self.cell = None
        elif tag == "tr" and self.row is not None and self.view:
            self.tables[self.view].append(self.row)
            self.row = None
        elif tag == "table":
            self.view = None


def chromium(*args: str, user_data: Path) -> subprocess.CompletedProcess[str]:
    """Headless Chromium (Debian's; `just test` installs it), kept off the network."""
    assert CHROMIUM is not None, "chromium is missing: `just test` installs it (apt)"
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={user_data}", *args],
        capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def report(ingested: Ingested, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("html") / "report.html"
    result = run_cli("report", "--lake", str(ingested.lake.root), "--format", "html",
                     "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def page(report: Path) -> _Tables:
    """The tables of the page as Chromium reads it."""
    dom = chromium("--dump-dom", report.as_uri(), user_data=report.parent / "profile")
    assert dom.returncode == 0, dom.stderr
    parser = _Tables()
    parser.feed(dom.stdout)
    return parser


@pytest.mark.parametrize("width", [412, 1200])  # a phone, a laptop
def test_chromium_renders_the_page(report: Path, width: int) -> None:
    png = report.parent / f"report-{width}.png"
    shot = chromium(f"--window-size={width},900", f"--screenshot={png}", report.as_uri(),
                    user_data=report.parent / f"profile-{width}")
    assert shot.returncode == 0, shot.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (width, 900)
    assert len(data) > 20_000  # a page with tables, not a blank one


def test_the_page_needs_no_network(page: _Tables) -> None:
    assert page.links == []  # no script, style sheet or image fetched from anywhere


def test_every_completion_cell_is_the_views(page: _Tables, ingested: Ingested) -> None:
    expected = {(str(day), f"{f}/{d}/{t}/{task}"): (status, f"{done}/{want}")
                for day, f, task, d, t, want, done, _, status in ingested.sql(
                    "select * from completion")}
    shown = {}
    for row in page.tables["completion"][1:]:
        day = row[0][0]
        for text, status, key in row[1:]:
            shown[(day, key)] = (status, text)
    assert shown.keys() == expected.keys()
    for key, (status, text) in shown.items():
        assert status == expected[key][0]
        assert text == ("–" if status == "off" else expected[key][1])


def test_observers_and_interactions_are_the_views(page: _Tables, ingested: Ingested) -> None:
    observers = ingested.sql(
        "select observer, count(distinct day), count(*), count(*) filter (status = 'complete'),"
        " count(*) filter (status = 'partial'), count(*) filter (status = 'aborted'), max(day)"
        " from observations group by observer order by observer")
    assert [[cell[0] for cell in row] for row in page.tables["observers"][1:]] == [
        [str(v) for v in row] for row in observers]
    _, *rows = page.tables["interactions"]
    totals = {tuple(c[0] for c in row[:3]): sum(int(c[0]) for c in row[3:]) for row in rows}
    assert totals == {(f, d, t): n for f, d, t, n in ingested.sql(
        "select factory, department, team, count(*) from interactions group by all")}


def test_interactions_by_initiator_are_the_view(page: _Tables, ingested: Ingested) -> None:
    header, *rows = page.tables["initiators"]
    shown = {(*(c[0] for c in row[:3]), name[0]): int(cell[0])
             for row in rows for name, cell in zip(header[3:], row[3:], strict=True)
             if cell[0] != "0"}
    assert shown == {(f, d, t, i): n for f, d, t, i, n in ingested.sql(
        "select factory, department, team, initiator, count(*) from interactions "
        "group by all")}


def test_observers_day_by_day_are_the_view(page: _Tables, ingested: Ingested) -> None:
    header, *rows = page.tables["observer_days"]
    days = [c[0] for c in header[1:]]
    [(observed,)] = ingested.sql("select count(distinct day) from observations")
    assert len(days) == min(14, observed) and days == sorted(days)  # the last 14 observed
    shown = {(row[0][0], day): cell[0] for row in rows
             for day, cell in zip(days, row[1:], strict=True) if cell[0]}
    assert shown == {(o, str(d)): f"{done}/{n}" for o, d, done, n in ingested.sql(
        "select observer, day, count(*) filter (status = 'complete'), count(*) "
        f"from observations where day >= DATE '{days[0]}' group by all")}


def test_flags_and_batches_are_the_views(page: _Tables, ingested: Ingested) -> None:
    flags = ingested.sql("select * from flags")
    assert [[cell[0] for cell in row] for row in page.tables["flags"][1:]] == [
        ["" if v is None else str(v) for v in row] for row in flags]
    batches = ingested.sql("select batch, kind from batches order by batch")
    assert [[c[0] for c in row[:2]] for row in page.tables["batches"][1:]] == [
        [str(b), kind] for b, kind in batches]


def test_an_html_report_needs_a_file(ingested: Ingested, tmp_path: Path) -> None:
    result = run_cli("report", "--lake", str(ingested.lake.root), "--format", "html")
    assert result.returncode == 1 and "--out FILE" in result.stderr
    assert "Traceback" not in result.stderr
