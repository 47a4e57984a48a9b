"""Charts for the HTML report, drawn with matplotlib as SVG to embed in the page.

The SVG keeps its text as text (small, sharp on a phone) and is the same bytes for the
same data: no date in it, and a fixed salt for the ids matplotlib makes up.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

import matplotlib as mpl
import polars as pl
from matplotlib.axes import Axes
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

__all__ = ["TREATMENT", "line_id", "wip_charts"]

TREATMENT = "treatment"  # the team the study treats; every other team is a control
_TREATED = "#c0392b"
_CONTROLS = ("#2c7fb8", "#7fa8c9", "#5a5a5a", "#a6a6a6", "#41ab5d", "#8c6bb1")
_STYLE: dict[Any, Any] = {"svg.hashsalt": "rmg-lake", "svg.fonttype": "none", "font.size": 10,
          "axes.spines.top": False, "axes.spines.right": False}


def line_id(factory: str, department: str, team: str) -> str:
    """The id of a team's line in the SVG (a `<g id=…>`), for a reader or a test to find."""
    return f"wip-{factory}-{department}-{team}"


def wip_charts(trends: Iterable[tuple[str, str, pl.DataFrame]], *, start: date,
               end: date) -> list[str]:
    """A chart per (factory, department, trend) of `trends`: its teams' mean pieces per
    manned machine (`trend`: team, day, pieces), day by day from `start` to `end`,
    treatment in red, controls in blues and greys. SVG elements, ready to put in a page.

    They are drawn in turn on one figure (its axes, days and labels made once: a chart
    costs a third), each the same as if it were drawn alone."""
    if start >= end:  # one day: a day either side, so the point has room
        start, end = start - timedelta(days=1), end + timedelta(days=1)
    with mpl.rc_context(_STYLE):
        figure = Figure(figsize=(5.6, 3.0))
        FigureCanvasSVG(figure)
        figure.subplots_adjust(left=0.11, right=0.94, top=0.9, bottom=0.24)  # fixed: fast
        axes = figure.add_subplot()
        ticks = _ticks(start, end)
        label = "%d %b %Y" if start.year != end.year else "%d %b"
        axes.set_xticks(ticks, [day.strftime(label) for day in ticks])  # type: ignore[arg-type]
        axes.set_xlim(start, end)  # type: ignore[arg-type]  # matplotlib takes dates
        axes.set_ylabel("pieces per machine")
        axes.grid(axis="y", color="#e6e6e6")
        return [_draw(figure, axes, trend, factory, department)
                for factory, department, trend in trends]


def _draw(figure: Figure, axes: Axes, trend: pl.DataFrame, factory: str,
          department: str) -> str:
    """One chart on `figure`, in place of the one before."""
    for line in list(axes.lines):
        line.remove()
    for legend in list(figure.legends):
        legend.remove()
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
    axes.set_autoscaley_on(True)  # the top from these lines, the bottom at 0
    axes.relim()
    axes.autoscale_view(scalex=False)
    axes.set_ylim(bottom=0)
    axes.set_title(f"{factory} {department}", loc="left", fontweight="bold")
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
