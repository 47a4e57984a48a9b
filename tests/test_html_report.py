"""The HTML report: one page whose data tables say what the lake's views say."""

from __future__ import annotations

import html
import re
import struct
import subprocess
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from browser import find_browser
from conftest import Ingested, run_cli

from rmg_lake.contract.models import FACTORY_TZ

CHROMIUM = find_browser()
TODAY = date(2026, 11, 15)  # the report's today (pinned): the morning after the sample's last day


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
        if tag == "script":
            self.links.append("a script")
        self.links += [v for k, v in found.items()  # anything fetched, not a part of the page
                       if k in ("src", "href", "xlink:href") and not v.startswith("#")]
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
    """Headless Chromium or Chrome (`just browser` finds one, or installs Debian's), kept
    off the network."""
    assert CHROMIUM is not None, "no Chromium or Chrome found: run `just browser`"
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={user_data}", *args],
        capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def report(ingested: Ingested, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The page over every day of the study (its default is the last four weeks)."""
    out = tmp_path_factory.mktemp("html") / "report.html"
    [(first, last)] = ingested.sql("select min(day), max(day) from completion")
    result = run_cli("report", "--lake", str(ingested.lake.root), "--format", "html",
                     "--out", str(out), "--from", str(first), "--to", str(last),
                     "--today", str(TODAY))
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


PHONE = 412  # px: a common phone's width


def on_a_phone(report: Path, script: str = "") -> Path:
    """A page showing the report in a frame as wide as a phone (headless Chromium lays a
    page out at least 500 px wide, whatever its window; a frame is as wide as it is
    made). `script` runs in the outer page once the report is laid out, as `frame`."""
    wrapper = report.with_name(f"phone-{len(script)}.html")
    wrapper.write_text(
        '<!doctype html><html><head><title>-</title></head><body style="margin:0">'
        f'<iframe id="phone" style="width:{PHONE}px;height:900px;border:0" '
        f'srcdoc="{html.escape(report.read_text())}"></iframe><script>'
        "const frame = document.getElementById('phone');"
        f"frame.onload = () => {{ {script} }};</script></body></html>")
    return wrapper


@pytest.mark.parametrize("width", [PHONE, 1200])  # a phone, a laptop
def test_chromium_renders_the_page(report: Path, width: int) -> None:
    png = report.parent / f"report-{width}.png"
    page = on_a_phone(report) if width == PHONE else report
    shot = chromium(f"--window-size={width},900", f"--screenshot={png}", page.as_uri(),
                    user_data=report.parent / f"profile-{width}")
    assert shot.returncode == 0, shot.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (width, 900)
    assert len(data) > 20_000  # a page with tables, not a blank one


def test_the_page_needs_no_network(page: _Tables) -> None:
    assert page.links == []  # no script, style sheet or image fetched from anywhere


def test_the_charts_ids_are_their_own(report: Path) -> None:
    """Four SVG charts in one page: no id twice, and every reference finds its id."""
    html = report.read_text()
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids)) > 100
    refs = set(re.findall(r'(?:url\(#|href="#)([^")]+)', html))
    assert refs and refs <= set(ids)


def test_on_a_phone_only_the_tables_scroll_sideways(report: Path) -> None:
    """On a phone the page is no wider than the screen: wide tables scroll inside their
    own boxes (the day column staying put), charts shrink to fit."""
    probe = on_a_phone(report, "const page = frame.contentDocument.documentElement;"
                               "document.title = `${page.scrollWidth} of ${page.clientWidth}`;")
    dom = chromium("--window-size=600,900", "--dump-dom", probe.as_uri(),
                   user_data=report.parent / "profile-probe")
    assert dom.returncode == 0, dom.stderr
    widths = re.search(r"<title>(\d+) of (\d+)</title>", dom.stdout)
    assert widths is not None, "the frame was not laid out"
    wide, room = int(widths[1]), int(widths[2])
    assert PHONE - 20 <= room <= PHONE and wide == room


def test_every_completion_cell_is_the_views(page: _Tables, ingested: Ingested) -> None:
    expected = {(str(day), f"{f}/{d}/{t}/{task}"): (status, f"{done}/{want}")
                for day, f, task, d, t, want, done, _, status in ingested.sql(
                    "select * from completion")}
    shown = {}
    for row in page.tables["completion"]:  # a table per factory, two header rows each
        day = row[0][0]
        for text, status, key in row[1:]:
            if key:
                shown[(day, key)] = (status, text)
    assert shown.keys() == expected.keys()
    for key, (status, text) in shown.items():
        assert status == expected[key][0]
        assert text == ("–" if status == "off" else expected[key][1])


def test_observers_and_interactions_are_the_views(page: _Tables, ingested: Ingested) -> None:
    observers = ingested.sql(
        "select observer, count(distinct day), count(*), count(*) filter (status = 'complete'),"
        " count(*) filter (status = 'partial'), count(*) filter (status = 'aborted'),"
        " (select count(*) from flags f where f.check_name = 'incomplete'"
        "  and f.observer = o.observer and f.day <= (select max(day) from completion)),"
        " max(day) from observations o group by observer order by observer")
    assert any(row[6] for row in observers)  # the sample has teams short of the protocol
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


def test_each_factory_has_its_own_heatmap(report: Path, ingested: Ingested) -> None:
    tables = re.findall(r'<table class="data heat" data-view="completion" '
                        r'data-factory="([^"]+)">(.*?)</table>', report.read_text(), re.S)
    assert [f for f, _ in tables] == [f for (f,) in ingested.sql(
        "select distinct factory from completion order by 1")]
    for factory, table in tables:
        keys = set(re.findall(r'data-key="([^"]+)"', table))
        assert keys == {f"{factory}/{d}/{t}/{task}" for d, t, task in ingested.sql(
            f"select distinct department, team, task from completion where factory = '{factory}'")}


def test_the_days_flags_and_the_counts_are_the_views(
    page: _Tables, ingested: Ingested,
) -> None:
    [(check_day,)] = ingested.sql(
        f"select max(day) from observations where day < DATE '{TODAY}'")
    flags = ingested.sql("select * exclude (flag_id, status, settled_by) from flags "
                         f"where day >= DATE '{check_day}' and status = 'open'")
    assert flags  # the sample's last day has flags to show
    assert [[cell[0] for cell in row] for row in page.tables["flags"][1:]] == [
        ["" if v is None else str(v) for v in row] for row in flags]
    counts = ingested.sql(
        "select check_name, severity, count(*), count(*) filter (status = 'open'), "
        "count(distinct day), max(day) from flags "
        "where day <= (select max(day) from completion) group by all order by 1, 2")
    assert [[cell[0] for cell in row] for row in page.tables["flag_counts"][1:]] == [
        [str(v) for v in row] for row in counts]


def test_wip_trends_are_the_view(page: _Tables, ingested: Ingested) -> None:
    header, *rows = page.tables["wip_trend"]
    assert [c[0] for c in header] == ["factory", "department", "team", "day", "rounds",
                                      "pieces"]
    expected = ingested.sql(
        "select factory, department, team, day, count(distinct observation_id),"
        " avg(coalesce(back, 0) + coalesce(front, 0) + coalesce(sleeve, 0)"
        " + coalesce(collar, 0) + coalesce(wip, 0))"
        " from wip where mc_status = 'manned' group by all order by 1, 2, 3, 4")
    assert len(rows) == len(expected) > 0
    for row, (f, d, t, day, rounds, pieces) in zip(rows, expected, strict=True):
        assert [c[0] for c in row[:5]] == [f, d, t, str(day), str(rounds)]
        assert float(row[5][0]) == pytest.approx(pieces, abs=0.05 + 1e-9)  # one decimal


def test_each_observer_s_agreement_is_the_view(page: _Tables, ingested: Ingested) -> None:
    header, *rows = page.tables["agreement"]
    assert [c[0] for c in header] == ["observer", "pairs", "machines", "agreeing",
                                      "mean_abs_diff"]
    expected = ingested.sql("select observer, pairs, machines, all_agree, mean_abs_diff "
                            "from agreement order by observer")
    assert len(rows) == len(expected) > 1  # the field supervisor and those checked
    for row, (observer, pairs, machines, agree, difference) in zip(rows, expected,
                                                                   strict=True):
        assert [c[0] for c in row[:3]] == [observer, str(pairs), str(machines)]
        assert float(row[3][0].removesuffix("%")) == pytest.approx(100 * agree, abs=0.05)
        assert float(row[4][0]) == pytest.approx(difference, abs=0.005 + 1e-9)


def test_each_team_is_a_line_of_its_departments_chart(page: _Tables, report: Path) -> None:
    """A chart per factory and department; in it a line per team with a point a day."""
    from rmg_lake.deliver.charts import line_id

    html = report.read_text()
    _, *rows = page.tables["wip_trend"]
    days: dict[tuple[str, str, str], int] = defaultdict(int)
    for f, d, t, *_ in ([c[0] for c in row] for row in rows):
        days[(f, d, t)] += 1
    charts = re.findall(r"<figure>\s*<svg.*?</svg>\s*</figure>", html, re.S)
    assert len(charts) == len({(f, d) for f, d, _ in days})
    for (f, d, t), n in days.items():
        line = re.search(rf'<g id="{line_id(f, d, t)}">\s*<path d="([^"]+)"', html)
        assert line is not None, (f, d, t)
        assert line[1].count("L") + 1 == n  # one point per day with rounds


def test_charts_drawn_in_turn_are_each_as_if_drawn_alone() -> None:
    """The page's charts share one figure; a chart keeps nothing of the one before it:
    not its lines, its legend, nor the height its values needed."""
    import polars as pl

    from rmg_lake.deliver.charts import wip_charts

    days = [date(2026, 11, 1) + timedelta(days=n) for n in range(10)]
    tall = pl.DataFrame({"team": ["treatment"] * 10 + ["control"] * 10, "day": days * 2,
                         "pieces": [90.0 + n for n in range(20)]})
    short = pl.DataFrame({"team": ["other"] * 10, "day": days,
                          "pieces": [float(n % 3) for n in range(10)]})
    charts = [("f01", "knitting", tall), ("f02", "linking", short)]
    together = wip_charts(charts, start=days[0], end=days[-1])
    alone = [wip_charts([chart], start=days[0], end=days[-1])[0] for chart in charts]
    assert together == alone
    assert "treatment" not in together[1] and together[0] != together[1]


def test_the_same_lake_gives_the_same_page(ingested: Ingested) -> None:
    from rmg_lake.deliver.html import render_html, report_data

    now = datetime(2026, 11, 15, 8, 0, tzinfo=FACTORY_TZ)
    pages = {render_html(ingested.lake, report_data(ingested.lake, now=now))
             for _ in range(2)}
    assert len(pages) == 1


def test_the_default_window_is_four_weeks_to_the_last_day_observed(
    ingested: Ingested,
) -> None:
    from rmg_lake.deliver.html import report_data

    [(first, last)] = ingested.sql("select min(day), max(day) from observations")
    morning = datetime.combine(last, time(7), FACTORY_TZ)  # the last day's tasks not done
    report = report_data(ingested.lake, now=morning)
    assert (report.start, report.end) == (last - timedelta(days=27), last)
    [(before,)] = ingested.sql(f"select max(day) from observations where day < DATE '{last}'")
    assert report.check_day == before  # the last day observed before today, as `check` says
    assert report.days_flags["day"].min() == before  # and later: today's quarantined files
    later = report_data(ingested.lake, now=morning + timedelta(days=40),
                        start=first + timedelta(days=2), end=first + timedelta(days=4))
    assert (later.start, later.end, later.check_day) == (
        first + timedelta(days=2), first + timedelta(days=4), last)


def test_today_can_be_another_day(ingested: Ingested, tmp_path: Path) -> None:
    """`--today`: the page as it would have been made that morning (its window ending on
    the last day observed by then), and a week later, when the sync has stopped."""
    [(first, last)] = ingested.sql("select min(day), max(day) from observations")
    pages = {}
    for today in (first + timedelta(days=5), last + timedelta(days=7)):
        out = tmp_path / f"{today}.html"
        result = run_cli("report", "--lake", str(ingested.lake.root), "--format", "html",
                         "--out", str(out), "--today", str(today))
        assert result.returncode == 0, result.stderr
        pages[today] = out.read_text()
    back_then, later = pages.values()
    [(end,)] = ingested.sql("select max(day) from observations "
                            f"where day <= DATE '{first + timedelta(days=5)}'")
    assert f"Made {first + timedelta(days=5)} " in back_then
    assert f"days {end - timedelta(days=27)} to {end}." in back_then
    assert "has the sync stopped?" not in back_then
    assert f"Nothing observed since {last} (7 days ago)" in later


def test_a_window_narrows_the_page(ingested: Ingested, tmp_path: Path) -> None:
    [(first,)] = ingested.sql("select min(day) from observations")
    start, end = first + timedelta(days=2), first + timedelta(days=4)
    out = tmp_path / "narrow.html"
    result = run_cli("report", "--lake", str(ingested.lake.root), "--format", "html",
                     "--out", str(out), "--from", str(start), "--to", str(end))
    assert result.returncode == 0, result.stderr
    parser = _Tables()
    parser.feed(out.read_text())
    days = {row[0][0] for row in parser.tables["completion"] if row[1][2]}
    assert days == {str(start + timedelta(days=n)) for n in range(3)}
    observers = ingested.sql(
        "select observer, count(distinct day), count(*) from observations "
        f"where day between DATE '{start}' and DATE '{end}' group by all order by 1")
    assert [[c[0] for c in row[:3]] for row in parser.tables["observers"][1:]] == [
        [str(v) for v in row] for row in observers]
    assert {row[3][0] for row in parser.tables["wip_trend"][1:]} == days


def test_a_stopped_sync_is_said_at_the_top(ingested: Ingested) -> None:
    from rmg_lake.deliver.html import render_html, report_data

    [(last,)] = ingested.sql("select max(day) from observations")
    later = datetime.combine(last + timedelta(days=9), time(8), FACTORY_TZ)
    page = render_html(ingested.lake, report_data(ingested.lake, now=later))
    assert f"Nothing observed since {last} (9 days ago): has the sync stopped?" in page
    next_morning = datetime.combine(last + timedelta(days=1), time(8), FACTORY_TZ)
    assert report_data(ingested.lake, now=next_morning).quiet == 0
    page = render_html(ingested.lake, report_data(ingested.lake, now=next_morning))
    assert "has the sync stopped?" not in page
    assert last == date(2026, 11, 14)  # a Saturday: Sunday 15 to Sunday 22 are 8 days,
    assert report_data(ingested.lake, now=later).quiet == 7  # less Friday the 20th


def test_one_day_is_a_page_too(ingested: Ingested) -> None:
    from rmg_lake.deliver.html import render_html, report_data

    [(first,)] = ingested.sql("select min(day) from observations")
    page = render_html(ingested.lake, report_data(ingested.lake, start=first, end=first))
    assert page.count("<svg") == 4  # a chart per factory and department, no warning


def test_the_day_s_flags_are_every_flag_before_anything_was_observed(
    ingested: Ingested,
) -> None:
    from rmg_lake.deliver.html import report_data

    [(first,)] = ingested.sql("select min(day) from observations")
    report = report_data(ingested.lake, now=datetime.combine(first, time(7), FACTORY_TZ))
    assert report.check_day is None  # as `rmg-lake check` on the first morning
    assert report.days_flags.equals(ingested.lake.flags())


def test_days_that_end_before_they_start_are_refused(ingested: Ingested) -> None:
    result = run_cli("report", "--lake", str(ingested.lake.root), "--format", "html",
                     "--out", "x.html", "--from", "2030-01-01")
    assert result.returncode == 1 and "end before they start" in result.stderr
    assert "Traceback" not in result.stderr


def test_batches_are_the_view(page: _Tables, ingested: Ingested) -> None:
    batches = ingested.sql("select batch, kind from batches order by batch")
    assert [[c[0] for c in row[:2]] for row in page.tables["batches"][1:]] == [
        [str(b), kind] for b, kind in batches]


def test_an_html_report_needs_a_file(ingested: Ingested, tmp_path: Path) -> None:
    result = run_cli("report", "--lake", str(ingested.lake.root), "--format", "html")
    assert result.returncode == 1 and "--out FILE" in result.stderr
    assert "Traceback" not in result.stderr
