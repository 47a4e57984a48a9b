"""Charts for the HTML report, drawn with matplotlib as SVG to embed in the page.

The SVG keeps its text as text (small, sharp on a phone) and is the same bytes for the
same data: no date in it, and a fixed salt for the ids matplotlib makes up.
"""

from __future__ import annotations

import io
import re
from datetime import date, timedelta
from typing import Any

import matplotlib as mpl
import polars as pl
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

__all__ = ["TREATMENT", "line_id", "wip_chart"]

TREATMENT = "treatment"  # the team the study treats; every other team is a control
_TREATED = "#c0392b"
_CONTROLS = ("#2c7fb8", "#7fa8c9", "#5a5a5a", "#a6a6a6", "#41ab5d", "#8c6bb1")
_STYLE: dict[Any, Any] = {"svg.hashsalt": "rmg-lake", "svg.fonttype": "none", "font.size": 10,
          "axes.spines.top": False, "axes.spines.right": False}


def line_id(factory: str, department: str, team: str) -> str:
    """The id of a team's line in the SVG (a `<g id=…>`), for a reader or a test to find."""
    return f"wip-{factory}-{department}-{team}"


def wip_chart(trend: pl.DataFrame, factory: str, department: str, *,
              start: date, end: date) -> str:
    """One factory's department, day by day from `start` to `end`: each team's mean
    pieces per manned machine (`trend`: team, day, pieces), treatment in red, controls
    in blues and greys. An SVG element, ready to put in a page."""
    if start >= end:  # one day: a day either side, so the point has room
        start, end = start - timedelta(days=1), end + timedelta(days=1)
    with mpl.rc_context(_STYLE):
        figure = Figure(figsize=(5.6, 3.0))
        FigureCanvasSVG(figure)
        figure.subplots_adjust(left=0.11, right=0.94, top=0.9, bottom=0.24)  # fixed: fast
        axes = figure.add_subplot()
        teams = sorted(trend["team"].unique(), key=lambda t: (t != TREATMENT, t))
        controls = iter(_CONTROLS * (len(teams) // len(_CONTROLS) + 1))
        for team in teams:
            rows = trend.filter(pl.col("team") == team).sort("day")
            treated = team == TREATMENT
            (line,) = axes.plot(rows["day"].to_list(), rows["pieces"].to_list(),
                                marker="o", markersize=3 if treated else 2,
                                linewidth=2.2 if treated else 1.2, label=team,
                                color=_TREATED if treated else next(controls),
                                zorder=3 if treated else 2)
            line.set_gid(line_id(factory, department, team))
        ticks = _ticks(start, end)
        label = "%d %b %Y" if start.year != end.year else "%d %b"
        axes.set_xticks(ticks, [day.strftime(label) for day in ticks])  # type: ignore[arg-type]
        axes.set_xlim(start, end)  # type: ignore[arg-type]  # matplotlib takes dates
        axes.set_ylim(bottom=0)
        axes.set_ylabel("pieces per machine")
        axes.set_title(f"{factory} {department}", loc="left", fontweight="bold")
        axes.grid(axis="y", color="#e6e6e6")
        figure.legend(frameon=False, loc="lower center", ncols=len(teams))
        svg = io.StringIO()
        figure.savefig(svg, format="svg", metadata={"Date": None})
    text = svg.getvalue()
    return _own_ids(text[text.index("<svg"):], f"{factory}-{department}-")


def _ticks(start: date, end: date, most: int = 6) -> list[date]:
    """At most `most` days from `start` to `end`, evenly a whole number of days apart."""
    step = max(1, -(-(end - start).days // (most - 1)))
    return [start + timedelta(days=n) for n in range(0, (end - start).days + 1, step)]


def _own_ids(svg: str, prefix: str) -> str:
    """The SVG element (no XML declaration), with `prefix` before every id matplotlib
    made and every reference to one, so that several charts make one valid page."""
    svg = re.sub(r'\bid="(?!wip-)', f'id="{prefix}', svg)
    return re.sub(r'(url\(#|href="#)', rf"\g<1>{prefix}", svg)
