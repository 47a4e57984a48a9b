"""The HTML report: one self-contained page (no network when it is read) for a phone or a
laptop, from the lake's frames, over a window of days (by default the four weeks up to
the last day observed): completion heatmaps per factory, observers and their agreement in
paired rounds, the day's flags, WIP trends per team, interactions, batches.

Each data table carries `data-view`, the frame it shows, so a test can hold it against
the frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl
from jinja2 import Environment, PackageLoader, select_autoescape

from rmg_lake.contract.models import FACTORY_TZ
from rmg_lake.derive.checks import FOUND
from rmg_lake.derive.pairs import PAIRED_WITHIN
from rmg_lake.errors import LakeError
from rmg_lake.lake import Lake

__all__ = ["WINDOW_DAYS", "Report", "render_html", "report_data"]

WINDOW_DAYS = 28  # the heatmap's days unless --from says otherwise
_TASK_LABEL = {"roster": "R", "wip": "W", "interactions": "I"}
_DEPARTMENT_LABEL = {"knitting": "knit", "linking": "link"}


@dataclass
class _Table:
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)


@dataclass
class _Heat:
    factory: str
    teams: list[tuple[str, int]]  # "department team" and how many task columns it spans
    columns: list[dict[str, str]]
    rows: list[dict[str, Any]]


@dataclass(frozen=True)
class Report:
    """What the page and the delivered CSV show: the window, and the day's flags."""

    start: date
    end: date
    check_day: date | None  # the first day of "the day's flags" (as `rmg-lake check`)
    last_observed: date | None
    quiet: int  # working days since the last day observed, before today
    flags: pl.DataFrame  # the window's and the check day's, and any later
    made: datetime

    @property
    def checked(self) -> pl.DataFrame:
        """The check day's flags and any later (every flag while nothing was observed
        before today), open or settled."""
        if self.check_day is None:
            return self.flags
        return self.flags.filter(pl.col("day") >= self.check_day)

    @property
    def days_flags(self) -> pl.DataFrame:
        """The flags `rmg-lake check` shows by default: the open ones of `checked`."""
        return self.checked.filter(pl.col("status") == "open")


def report_data(lake: Lake, *, start: date | None = None, end: date | None = None,
                now: datetime | None = None) -> Report:
    """The window (`end`: by default the last day observed up to today, factory time;
    `start`: four weeks before it) and the flags of it; `now` is timezone-aware."""
    if now is not None and now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    made = (now or datetime.now(FACTORY_TZ)).astimezone(FACTORY_TZ)
    today = made.date()
    last = lake.last_day_observed(today + timedelta(days=1))
    end = end or last or today
    start = start or end - timedelta(days=WINDOW_DAYS - 1)
    if start > end:
        raise LakeError(f"the days asked for end before they start ({start} to {end})",
                        field="--from/--to", hint="pass an earlier --from, or a --to too")
    check_day = lake.last_day_observed(today)
    quiet = lake.settings().calendar.working_days(last, today) if last else 0
    flags = lake.flags(min(start, check_day) if check_day else None)
    return Report(start, end, check_day, last, quiet, flags, made)


def render_html(lake: Lake, report: Report | None = None) -> str:
    """The report as one HTML page (`report`: by default `report_data(lake)`)."""
    from rmg_lake.deliver.charts import TREATMENT

    report = report or report_data(lake)
    start, end = report.start, report.end
    observations = lake.table("observations", start, end)
    interactions = lake.table("interactions", start, end)
    window = report.flags.filter(pl.col("day").is_between(start, end))
    trend = _wip_trend(lake.table("wip", start, end))
    completion = lake.completion(start, end)
    first: date = completion["day"].min() or start  # type: ignore[assignment]
    batches = lake.table("batches")  # a row per log entry: the log is not read again
    env = Environment(loader=PackageLoader("rmg_lake.deliver"), autoescape=select_autoescape())
    return env.get_template("report.html").render(
        made=report.made.strftime("%Y-%m-%d %H:%M (factory time)"),
        start=start, end=end, today=report.made.date(), last_observed=report.last_observed,
        quiet=report.quiet, entries=batches.height,
        heat=_heat(completion), observers=_observers(observations, window),
        flag_day=report.check_day, flags=_frame_table(report.days_flags.select(FOUND)),
        flag_counts=_flag_counts(window),
        charts=_charts(trend, first, end), trend=_frame_table(trend), treatment=TREATMENT,
        topics=_interactions(interactions, "topic"),
        initiators=_interactions(interactions, "initiator"),
        observer_days=_observer_days(observations),
        agreement=_agreement(lake.agreement(start, end)), paired_within=PAIRED_WITHIN,
        batches=_frame_table(batches.select(
            "batch", "kind", pl.col("committed_at").dt.convert_time_zone(FACTORY_TZ.key)
            .dt.strftime("%Y-%m-%d %H:%M"), "source", "seen", "added", "duplicate",
            "quarantined", "rolled_back")),
    )


def _heat(completion: pl.DataFrame) -> list[_Heat]:
    """Per factory: days down, department/team/task across; a cell is completed/expected."""
    order = pl.col("task").replace_strict(list(_TASK_LABEL), list(range(len(_TASK_LABEL))),
                                          default=len(_TASK_LABEL))
    cells = {(row["day"], _key(row)): row for row in completion.iter_rows(named=True)}
    days = sorted({day for day, _ in cells})
    heats = []
    for (factory,), frame in completion.partition_by(
            "factory", as_dict=True, maintain_order=True).items():
        keys = frame.select("factory", "department", "team", "task").unique().sort(
            "department", "team", order)
        columns = [{"title": f"{f} {d} {t}: {task}", "label": _TASK_LABEL.get(task, task),
                    "key": f"{f}/{d}/{t}/{task}"} for f, d, t, task in keys.iter_rows()]
        teams = keys.group_by("department", "team", maintain_order=True).len()
        rows = [{"day": day.isoformat(), "cells": [_cell(cells.get((day, c["key"])), c["key"])
                                                    for c in columns]} for day in days]
        heats.append(_Heat(str(factory), [
            (f"{_DEPARTMENT_LABEL.get(d, d)} {t}", n) for d, t, n in teams.iter_rows()],
            columns, rows))
    return heats


def _key(row: dict[str, Any]) -> str:
    return f"{row['factory']}/{row['department']}/{row['team']}/{row['task']}"


def _cell(row: dict[str, Any] | None, key: str) -> dict[str, str]:
    if row is None:
        return {"key": key, "status": "", "text": ""}
    text = "–" if row["status"] == "off" else f"{row['completed']}/{row['expected']}"
    return {"key": key, "status": row["status"], "text": text}


def _observers(observations: pl.DataFrame, flags: pl.DataFrame) -> _Table:
    """Per observer: days observed, tasks, how many complete, partial and aborted, and
    the team-days short of the protocol (`incomplete` flags) of teams they usually cover."""
    short = flags.filter(pl.col("check_name") == "incomplete").group_by("observer").agg(
        incomplete=pl.len().cast(pl.UInt32))
    frame = observations.group_by("observer").agg(
        days=pl.col("day").n_unique(), tasks=pl.len(),
        complete=(pl.col("status") == "complete").sum(),
        partial=(pl.col("status") == "partial").sum(),
        aborted=(pl.col("status") == "aborted").sum(),
        last_day=pl.col("day").max())
    frame = frame.join(short, on="observer", how="left").select(
        "observer", "days", "tasks", "complete", "partial", "aborted",
        pl.col("incomplete").fill_null(0), "last_day").sort("observer")
    return _frame_table(frame)


def _agreement(agreement: pl.DataFrame) -> _Table:
    """Per observer: paired rounds, machines compared, the share of them agreeing on
    everything, and the mean absolute difference of the counts both rounds give."""
    return _frame_table(agreement.select(
        "observer", "pairs", "machines",
        agreeing=pl.format("{}%", (pl.col("all_agree") * 100).round(1)),
        mean_abs_diff=pl.col("mean_abs_diff").round(2)))


def _flag_counts(flags: pl.DataFrame) -> _Table:
    """Per check: how many flags (how many still open), on how many days, and the last
    day."""
    frame = flags.group_by("check_name", "severity").agg(
        flags=pl.len(), open=(pl.col("status") == "open").sum(),
        days=pl.col("day").n_unique(), last_day=pl.col("day").max()
    ).sort("check_name", "severity")
    return _frame_table(frame)


def _wip_trend(wip: pl.DataFrame) -> pl.DataFrame:
    """Per team and day: rounds, and the mean pieces per manned machine and round (all
    panels together in knitting; linking's wip)."""
    pieces = pl.sum_horizontal("back", "front", "sleeve", "collar", "wip")
    return (wip.filter(pl.col("mc_status") == "manned")
            .group_by("factory", "department", "team", "day")
            .agg(rounds=pl.col("observation_id").n_unique(),
                 pieces=pieces.mean().round(1))
            .sort("factory", "department", "team", "day"))


def _charts(trend: pl.DataFrame, start: date, end: date) -> list[str]:
    """One chart per factory and department."""
    from rmg_lake.deliver.charts import wip_charts

    return wip_charts(((str(factory), str(department), frame) for (factory, department), frame
                       in trend.partition_by("factory", "department", as_dict=True,
                                             maintain_order=True).items()),
                      start=start, end=end)


def _interactions(interactions: pl.DataFrame, by: str) -> _Table:
    """Interactions per factory, department and team, by `by` (topic or initiator)."""
    if interactions.is_empty():
        return _Table(["factory", "department", "team"])
    frame = interactions.group_by("factory", "department", "team", by).agg(
        n=pl.len()).sort(by).pivot(by, index=["factory", "department", "team"],
                                   values="n").fill_null(0)
    return _frame_table(frame.sort("factory", "department", "team"))


def _observer_days(observations: pl.DataFrame, days: int = 14) -> _Table:
    """Each observer's complete tasks of the last `days` days observed (complete/all)."""
    if observations.is_empty():
        return _Table(["observer"])
    shown = observations["day"].unique().sort()[-days:]
    frame = (observations.filter(pl.col("day").is_in(shown.implode()))
             .group_by("observer", "day").agg(
                 cell=pl.format("{}/{}", (pl.col("status") == "complete").sum(), pl.len()))
             .sort("day")
             .pivot("day", index="observer", values="cell").sort("observer"))
    return _frame_table(frame)


def _frame_table(frame: pl.DataFrame) -> _Table:
    return _Table(frame.columns, [["" if v is None else str(v) for v in row]
                                  for row in frame.iter_rows()])
