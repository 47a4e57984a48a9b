"""Observer agreement: paired wip rounds (a supervisor's back-checks), machine by machine.

Two wip rounds are a *pair* when two different observers began them within
`PAIRED_WITHIN` minutes of each other on the same day, factory, department and team.
Each pair is compared at the machines both rounds hold: manned status, worker, style (and
component), and counts (knitting's back, front, sleeve, collar and wip; linking's wip).
Two values agree when they are equal or both null (a worker not known against a known one
disagrees). The `pairs` view has a row per pair, the earlier round first:

    day, factory, department, team, first_observation_id, first_observer,
    second_observation_id, second_observer, minutes_apart, machines, manned_agree,
    worker_agree, style_agree, counts_agree, all_agree, counts_compared, mean_abs_diff

`*_agree` are the shares (0 to 1) of the machines compared that agree on that field
(`all_agree`: on all of them), null when no machine is in both rounds; `mean_abs_diff` is
the mean absolute difference over the `counts_compared` counts both rounds give. The
`agreement` view sums the pairs per observer (each pair counts for both of its observers):

    observer, pairs, machines, manned_agree, worker_agree, style_agree, counts_agree,
    all_agree, counts_compared, mean_abs_diff

Worker codes are compared, never shown.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl

__all__ = ["AGREEMENT_SCHEMA", "PAIRED_WITHIN", "PAIR_SCHEMA", "agreement_sql", "pairs_sql"]

PAIRED_WITHIN = 15  # minutes between the starts of two observers' rounds of a team, at most
_FIELDS = ("manned", "worker", "style", "counts", "all")
_COUNTS = ("back", "front", "sleeve", "collar", "wip")
_SAME = {"manned": ("mc_status",), "worker": ("worker_id",), "style": ("style", "component"),
         "counts": _COUNTS}
_SHARE_SCHEMA: dict[str, Any] = {f"{name}_agree": pl.Float64 for name in _FIELDS}
_SUMMED: dict[str, Any] = {"machines": pl.Int64, **_SHARE_SCHEMA, "counts_compared": pl.Int64,
                           "mean_abs_diff": pl.Float64}
PAIR_SCHEMA: dict[str, Any] = {
    "day": pl.Date, "factory": pl.String, "department": pl.String, "team": pl.String,
    "first_observation_id": pl.String, "first_observer": pl.String,
    "second_observation_id": pl.String, "second_observer": pl.String,
    "minutes_apart": pl.Float64, **_SUMMED}
AGREEMENT_SCHEMA: dict[str, Any] = {"observer": pl.String, "pairs": pl.Int64, **_SUMMED}


def _same(columns: tuple[str, ...]) -> str:
    return " AND ".join(f"a.{c} IS NOT DISTINCT FROM b.{c}" for c in columns)


_COMPARED = ",\n           ".join([
    *(f"({_same(columns)})::INT AS {name}" for name, columns in _SAME.items()),
    f"({' AND '.join(_same(columns) for columns in _SAME.values())})::INT AS \"all\"",
    " + ".join(f"(a.{c} IS NOT NULL AND b.{c} IS NOT NULL)::INT" for c in _COUNTS)
    + " AS counts_compared",
    " + ".join(f"coalesce(abs(CAST(a.{c} AS DOUBLE) - b.{c}), 0)" for c in _COUNTS)
    + " AS difference"])
_SUMS = ", ".join(f'coalesce(sum(c."{name}"), 0) AS "{name}"'
                  for name in (*_FIELDS, "counts_compared", "difference"))
_SHARES_SQL = ", ".join([*(f'"{name}" / nullif(machines, 0) AS {name}_agree'
                           for name in _FIELDS),
                         "difference / nullif(counts_compared, 0) AS mean_abs_diff"])

# every pair with what its machines' comparisons add up to (`{days}`: a condition on day)
_PAIRED = f"""
WITH rounds AS (
    SELECT observation_id, observer, day, factory, department, team, started_at
    FROM observations WHERE task = 'wip' AND {{days}}),
pair AS (
    SELECT a.day, a.factory, a.department, a.team, a.started_at,
           a.observation_id AS first_observation_id, a.observer AS first_observer,
           b.observation_id AS second_observation_id, b.observer AS second_observer,
           round(epoch(b.started_at - a.started_at) / 60, 1) AS minutes_apart
    FROM rounds a JOIN rounds b USING (day, factory, department, team)
    WHERE a.observer <> b.observer
      AND (a.started_at < b.started_at
           OR (a.started_at = b.started_at AND a.observation_id < b.observation_id))
      AND b.started_at <= a.started_at + INTERVAL {PAIRED_WITHIN} MINUTE),
side AS (  -- each pair's machines, round by round (the union keeps DuckDB from joining
           -- the two rounds' machines before it has found the pairs)
    SELECT p.first_observation_id, p.second_observation_id, 1 AS round, w.*
    FROM pair p JOIN (SELECT * FROM wip WHERE {{days}}) w
      ON w.observation_id = p.first_observation_id
    UNION ALL
    SELECT p.first_observation_id, p.second_observation_id, 2 AS round, w.*
    FROM pair p JOIN (SELECT * FROM wip WHERE {{days}}) w
      ON w.observation_id = p.second_observation_id),
compared AS (
    SELECT a.first_observation_id, a.second_observation_id, a.machine,
           {_COMPARED}
    FROM side a JOIN side b
      USING (first_observation_id, second_observation_id, machine)
    WHERE a.round = 1 AND b.round = 2),
summed AS (
    SELECT p.*, count(c.machine) AS machines, {_SUMS}
    FROM pair p LEFT JOIN compared c USING (first_observation_id, second_observation_id)
    GROUP BY ALL)"""


def pairs_sql(days: tuple[date, date] | None = None) -> str:
    """The `pairs` view's query; with `days` (first, last), the pairs of those days."""
    return (_PAIRED.format(days=_between(days))
            + f"\nSELECT {', '.join(PAIR_SCHEMA)} FROM (SELECT *, {_SHARES_SQL} FROM summed)"
            "\nORDER BY day, factory, department, team, started_at, first_observation_id, "
            "second_observation_id")


def agreement_sql(days: tuple[date, date] | None = None) -> str:
    """The `agreement` view's query: the pairs summed per observer (of `days` only)."""
    sums = ", ".join(f'sum("{name}") AS "{name}"'
                     for name in ("machines", *_FIELDS, "counts_compared", "difference"))
    return (_PAIRED.format(days=_between(days)) + f""",
observer_pair AS (SELECT first_observer AS observer, * FROM summed
                  UNION ALL BY NAME SELECT second_observer AS observer, * FROM summed)
SELECT {', '.join(AGREEMENT_SCHEMA)} FROM (
    SELECT *, {_SHARES_SQL}
    FROM (SELECT observer, count(*) AS pairs, {sums} FROM observer_pair GROUP BY observer))
ORDER BY observer""")


def _between(days: tuple[date, date] | None) -> str:
    """The condition on `day` that keeps `days` (first, last)."""
    if days is None:
        return "TRUE"
    first, last = (f"DATE '{day.isoformat()}'" for day in days)
    return f"day BETWEEN {first} AND {last}"
