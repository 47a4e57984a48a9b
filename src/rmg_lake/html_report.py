"""The HTML report: one self-contained page (no network when it is read) for a phone or a
laptop, from the lake's frames: completion heatmap, observers, flags, interactions, batches.

Each data table carries `data-view`, the frame it shows, so a test can hold it against
the frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import polars as pl
from jinja2 import Environment, PackageLoader, select_autoescape

from rmg_lake.contract.models import FACTORY_TZ
from rmg_lake.lake import Lake

__all__ = ["render_html"]

_TASK_LABEL = {"roster": "R", "wip": "W", "interactions": "I"}


@dataclass
class _Table:
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)


def render_html(lake: Lake, *, flags_from: date | None = None,
                now: datetime | None = None) -> str:
    """The report as one HTML page; flags from `flags_from` on (default: every day's)."""
    completion = lake.completion()
    observations, interactions = lake.table("observations"), lake.table("interactions")
    env = Environment(loader=PackageLoader("rmg_lake"), autoescape=select_autoescape())
    days = completion["day"]
    return env.get_template("report.html").render(
        made=(now or datetime.now(FACTORY_TZ)).astimezone(FACTORY_TZ).strftime(
            "%Y-%m-%d %H:%M (factory time)"),
        first_day=days.min() if len(days) else "—", last_day=days.max() if len(days) else "—",
        heat=_heat(completion), observers=_observers(observations),
        flag_day=flags_from, flags=_frame_table(lake.flags(flags_from)),
        topics=_interactions(interactions, "topic"),
        initiators=_interactions(interactions, "initiator"),
        observer_days=_observer_days(observations),
        batches=_frame_table(lake.table("batches").select(
            "batch", "kind", "committed_at", "source", "seen", "added", "duplicate",
            "quarantined", "rolled_back")),
    )


@dataclass
class _Heat:
    columns: list[dict[str, str]]
    rows: list[dict[str, Any]]


def _heat(completion: pl.DataFrame) -> _Heat:
    """Days down, factory/department/team/task across; a cell is completed/expected."""
    keys = completion.select("factory", "department", "team", "task").unique().sort(
        "factory", "department", "team",
        pl.col("task").replace_strict(list(_TASK_LABEL), list(range(len(_TASK_LABEL))),
                                      default=len(_TASK_LABEL)))
    columns = [{"title": f"{f} {d} {t}: {task}",
                "label": f"{f} {d[:4]} {t[:5]} {_TASK_LABEL.get(task, task)}",
                "key": f"{f}/{d}/{t}/{task}"} for f, d, t, task in keys.iter_rows()]
    cells = {(row["day"], f"{row['factory']}/{row['department']}/{row['team']}/{row['task']}"):
             row for row in completion.iter_rows(named=True)}
    rows = []
    for day in sorted({day for day, _ in cells}):
        row_cells = []
        for column in columns:
            cell = cells.get((day, column["key"]))
            row_cells.append({"key": column["key"], "status": cell["status"] if cell else "",
                              "text": "" if cell is None else "–" if cell["status"] == "off"
                              else f"{cell['completed']}/{cell['expected']}"})
        rows.append({"day": day.isoformat(), "cells": row_cells})
    return _Heat(columns, rows)


def _observers(observations: pl.DataFrame) -> _Table:
    """Per observer: days observed, tasks, and how many complete, partial and aborted."""
    frame = observations.group_by("observer").agg(
        days=pl.col("day").n_unique(), tasks=pl.len(),
        complete=(pl.col("status") == "complete").sum(),
        partial=(pl.col("status") == "partial").sum(),
        aborted=(pl.col("status") == "aborted").sum(),
        last_day=pl.col("day").max()).sort("observer")
    return _frame_table(frame)


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
