"""The daily quality checks: named rules over the lake's views, each finding a row of `flags`.

Field studies run such "high-frequency checks" each morning to know whether to call an
observer. Each `Check` is one SQL query over the views of `lake.duckdb` (see
`rmg_lake.derive.catalog`), with the thresholds of `[checks]` in rmg-lake.toml (recorded in the
log like the other study settings); the `flags` view is their union, one row per finding:

    check_name, severity, day, factory, department, team, observer, observation_id, detail,
    flag_id, status, settled_by

(`check_name`: `check` is a word SQL reserves.) `severity` is `error` (data is missing or
cannot be right), `warning` (look at it) or `info` (worth knowing). A detail names
machines and fields, never a worker's or a supervisor's code: flags are meant to be
shared with the field team.

A flag is known by `flag_id`, the same every day it is found: a hash of its check, day,
place, observation, observer (but for `incomplete`, whose observer is whom to ask) and
what its detail is about (the words before its first `: `: a task, a machine and panel,
a file and the batch that quarantined it). `status` is `open`, or `corrected` or
`reviewed` by a checks workbook taken back (`rmg-lake correct`), in the batch
`settled_by` (the first in effect; a correction wins, while its row is in effect).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from string import Template
from typing import Any

import polars as pl

from rmg_lake.config import Settings
from rmg_lake.contract.models import FACTORY_TZ
from rmg_lake.derive.pairs import PAIRED_WITHIN

__all__ = ["CHECKS", "COLUMNS", "FLAG_SCHEMA", "FOUND", "STATUSES", "Check", "flags_sql", "rules"]

FOUND = ("check_name", "severity", "day", "factory", "department", "team", "observer",
         "observation_id", "detail")  # what a check finds
COLUMNS = (*FOUND, "flag_id", "status", "settled_by")
FLAG_SCHEMA: dict[str, Any] = {name: pl.Date if name == "day" else pl.Int64
                               if name == "settled_by" else pl.String for name in COLUMNS}
SEVERITIES = ("error", "warning", "info")
STATUSES = ("open", "corrected", "reviewed")


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    rule: str  # what it flags, for the researcher (shown by `rmg-lake check --list`)
    sql: str  # a SELECT of COLUMNS; ${placeholders} are filled from the settings


CHECKS: tuple[Check, ...] = (
    Check("incomplete", "A team did fewer tasks than the protocol asks on a working day "
          "(error: none arrived; warning: some); the observer is the one who observed the "
          "team most in the week up to it.", """
        WITH short AS (SELECT * FROM completion WHERE status IN ('missing', 'partial')),
        seen AS (SELECT s.day, s.factory, s.department, s.team, o.observer,
                        count(*) AS n
                 FROM (SELECT DISTINCT day, factory, department, team FROM short) s
                 JOIN observations o ON o.factory = s.factory
                  AND o.department = s.department AND o.team = s.team
                  AND o.day BETWEEN s.day - 7 AND s.day
                 GROUP BY ALL),
        usual AS (SELECT day, factory, department, team,
                         first(observer ORDER BY n DESC, observer) AS observer
                  FROM seen GROUP BY ALL)
        SELECT 'incomplete', CASE status WHEN 'missing' THEN 'error' ELSE 'warning' END,
               day, factory, department, team, usual.observer, NULL,
               format('{}: {} of {} complete ({} attempted)', task, completed, expected,
                      attempted)
        FROM short LEFT JOIN usual USING (day, factory, department, team)"""),
    Check("observer_absent", "An observer who worked in the week before made no "
          "observation on a working day (once per factory they worked in).", """
        WITH seen AS (SELECT DISTINCT observer, factory, day FROM observations),
             working AS (SELECT DISTINCT day FROM completion WHERE status <> 'off')
        SELECT DISTINCT 'observer_absent', 'warning', w.day, s.factory, NULL, NULL,
               s.observer, NULL, 'no observation this working day; some in the week before'
        FROM working w JOIN seen s ON s.day BETWEEN w.day - 7 AND w.day - 1
        WHERE NOT EXISTS (SELECT 1 FROM seen x
                          WHERE x.observer = s.observer AND x.day = w.day)"""),
    Check("late_arrival", "An observation's first version reached the sync folder more "
          "than {late_after_days} days after its task ended (by its file time: Dropbox's "
          "upload time, or a local file's modification time).", """
        SELECT 'late_arrival', 'warning', day, factory, department, team, observer,
               observation_id,
               format('{}: synced {} days after it ended', task,
                      round(epoch(synced_at - ended_at) / 86400, 1))
        FROM observations
        WHERE epoch(synced_at - ended_at) > ${late_after_days} * 86400"""),
    Check("clock_ahead", "A task started more than 5 minutes after its first file was "
          "saved, or after it reached the lake: the tablet's clock is ahead.", """
        SELECT 'clock_ahead', 'error', day, factory, department, team, observer,
               observation_id,
               format('{}: started {} minutes after its first file was saved', task,
                      round(epoch(started_at - seen_at) / 60)::BIGINT)
        FROM (SELECT o.*, least(o.synced_at, b.committed_at) AS seen_at
              FROM observations o JOIN batches b USING (batch))
        WHERE started_at > seen_at + INTERVAL 5 MINUTE"""),
    Check("outside_hours", "A task started before {day_starts} or ended after {day_ends}, "
          "factory time.", """
        SELECT 'outside_hours', 'warning', day, factory, department, team, observer,
               observation_id,
               format('{}: {} to {} factory time', task,
                      strftime(started_at ${local}, '%H:%M'),
                      strftime(ended_at ${local}, '%H:%M'))
        FROM observations
        WHERE CAST(started_at ${local} AS TIME) < TIME '${day_starts}'
           OR CAST(ended_at ${local} AS TIME) > TIME '${day_ends}'
           OR CAST(ended_at ${local} AS DATE) > day"""),
    Check("off_day", "A task was observed on an off day (the weekend or a holiday of "
          "[calendar]).", """
        SELECT 'off_day', 'warning', day, factory, department, team, observer,
               observation_id, format('{}: observed on an off day', task)
        FROM observations
        WHERE dayname(day) IN (${weekend}) OR day IN (${holidays})"""),
    Check("overlap", "An observer's task started more than 2 minutes before an earlier one "
          "of theirs ended.", """
        SELECT 'overlap', 'warning', day, factory, department, team, observer,
               observation_id,
               format('{}: starts {} minutes before an earlier task ended', task,
                      round(epoch(earlier_end - started_at) / 60)::BIGINT)
        FROM (SELECT *, max(ended_at) OVER (
                  PARTITION BY observer ORDER BY started_at, observation_id
                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS earlier_end
              FROM ${every_observation})
        WHERE started_at < earlier_end - INTERVAL 2 MINUTE"""),
    Check("too_short", "A complete task took less than the shortest real one "
          "({shortest}).", """
        SELECT 'too_short', 'warning', day, factory, department, team, observer,
               observation_id,
               format('{}: {} minutes', task, round(epoch(ended_at - started_at) / 60, 1))
        FROM observations
        WHERE status = 'complete' AND epoch(ended_at - started_at) / 60 <
              CASE task ${shortest_cases} END"""),
    Check("too_long", "A task took longer than the longest real one ({longest}).", """
        SELECT 'too_long', 'warning', day, factory, department, team, observer,
               observation_id,
               format('{}: {} minutes', task, round(epoch(ended_at - started_at) / 60, 1))
        FROM observations
        WHERE epoch(ended_at - started_at) / 60 > CASE task ${longest_cases} END"""),
    Check("interactions_overflow", "An interactions window's interactions and time off "
          "the floor add up to more than the window.", """
        SELECT 'interactions_overflow', 'warning', o.day, o.factory, o.department, o.team,
               o.observer, o.observation_id,
               format('{} s of interactions and {} s off the floor in a {} s window',
                      coalesce(i.seconds, 0), coalesce(list_sum(o.left_floor_s), 0),
                      epoch(o.ended_at - o.started_at)::BIGINT)
        FROM observations o
        LEFT JOIN (SELECT observation_id, sum(length_s) AS seconds FROM interactions
                   GROUP BY observation_id) i USING (observation_id)
        WHERE o.task = 'interactions'
          AND coalesce(i.seconds, 0) + coalesce(list_sum(o.left_floor_s), 0)
              > epoch(o.ended_at - o.started_at)"""),
    Check("roster_mismatch", "A wip round without a note has another worker at a machine "
          "than the day's roster (its last complete one, else its last), or mans a machine "
          "the roster has unmanned (a worker not known is no other worker).", """
        WITH chosen AS (
            SELECT observation_id FROM observations WHERE task = 'roster'
            QUALIFY row_number() OVER (
                PARTITION BY day, factory, department, team
                ORDER BY status = 'complete' DESC, started_at DESC, observation_id) = 1),
        day_roster AS (SELECT r.* FROM roster r JOIN chosen USING (observation_id))
        SELECT 'roster_mismatch', 'warning', w.day, w.factory, w.department, w.team,
               w.observer, w.observation_id,
               format('{}: {}', w.machine,
                      CASE WHEN r.mc_status = 'unmanned'
                           THEN 'manned in the round, unmanned in the roster'
                           ELSE 'another worker than in the roster' END)
        FROM wip w
        JOIN observations o ON o.observation_id = w.observation_id
        JOIN day_roster r
          ON r.day = w.day AND r.factory = w.factory AND r.department = w.department
         AND r.team = w.team AND r.machine = w.machine
        WHERE w.mc_status = 'manned' AND coalesce(trim(o.notes), '') = ''
          AND (r.mc_status = 'unmanned'
               OR (w.worker_id IS NOT NULL AND r.worker_id IS NOT NULL
                   AND w.worker_id <> r.worker_id))
        """),
    Check("wip_outlier", "A machine's count of a panel (or its wip) is far from its "
          "own history (of 10 rounds or more): a robust z-score over {wip_z}, against its "
          "median.", """
        WITH history AS (  -- a machine's counts as a list: one pass, not two and a join
            SELECT factory, department, team, machine, panel, median(pieces) AS centre,
                   list(pieces) AS counts
            FROM ${every_panel} GROUP BY ALL HAVING count(*) >= 10),
        spread AS (
            SELECT * EXCLUDE (counts, deviations),
                   CASE WHEN list_median(deviations) > 0 THEN 1.4826 * list_median(deviations)
                        ELSE 1.253314 * list_avg(deviations) END AS scale
            FROM (SELECT *, list_transform(counts, x -> abs(x - centre)) AS deviations
                  FROM history))
        SELECT 'wip_outlier', 'warning', c.day, c.factory, c.department, c.team, c.observer,
               c.observation_id,
               format('{} {}: {:g}, usually about {:g}', c.machine, c.panel, c.pieces,
                      s.centre)
        FROM ${panels} c JOIN spread s USING (factory, department, team, machine, panel)
        WHERE s.scale > 0 AND abs(c.pieces - s.centre) / s.scale > ${wip_z}"""),
    Check("wip_jump", "A machine's count of a panel (or its wip) rose by more than "
          "{wip_jump} from one round to the next the same day (a drop is work handed in).",
          """
        SELECT 'wip_jump', 'warning', day, factory, department, team, observer,
               observation_id,
               format('{} {}: {:g}, {:g} in the round before', machine, panel, pieces,
                      before)
        FROM (SELECT *, lag(pieces) OVER (
                  PARTITION BY day, factory, department, team, machine, panel
                  ORDER BY started_at, observation_id) AS before
              FROM ${panels})
        WHERE pieces - before > ${wip_jump}"""),
    Check("wip_repeated", "A wip round repeats the round before it the same day, machine "
          "for machine and panel for panel, with some pieces (copied?); not a second "
          "observer's round within {paired_within} minutes of it (a back-check that "
          "agrees).", """
        SELECT 'wip_repeated', 'warning', day, factory, department, team, observer,
               observation_id,
               format('the same counts at all {} machines as the round before', machines)
        FROM (SELECT *, lag(counts) OVER earlier AS before,
                     lag(observer) OVER earlier AS before_observer,
                     lag(started_at) OVER earlier AS before_started
              FROM (SELECT day, factory, department, team, observer, observation_id,
                           started_at, count(*) AS machines, sum(${pieces}) AS pieces,
                           string_agg(concat_ws(':', machine, ${round_counts}), ','
                                      ORDER BY machine) AS counts
                    FROM wip WHERE mc_status = 'manned' GROUP BY ALL)
              WINDOW earlier AS (PARTITION BY day, factory, department, team
                                 ORDER BY started_at, observation_id))
        WHERE counts = before AND machines >= 2 AND pieces > 0
          AND NOT (observer <> before_observer
                   AND started_at <= before_started + INTERVAL ${paired_within} MINUTE)"""),
    Check("superseded", "An observation was saved more than once with different content; "
          "the version saved last is used.", """
        SELECT 'superseded', 'info', day, factory, department, team, observer,
               observation_id, format('{}: {} versions', task, versions)
        FROM observations WHERE versions > 1"""),
    Check("quarantined", "A file was quarantined (on the day, factory time, it was "
          "ingested); once a later batch took it in, or quarantined it again, info.", """
        SELECT 'quarantined', CASE WHEN q.resolved_by IS NULL THEN 'error' ELSE 'info' END,
               CAST(b.committed_at ${local} AS DATE), NULL, NULL, NULL, NULL, NULL,
               format('{} (batch {}): {}{}{}', q.source_path, q.batch,
                      coalesce(q.field || ': ', ''), q.reason,
                      CASE q.resolution
                           WHEN 'quarantined' THEN format(' (quarantined again by batch {})',
                                                          q.resolved_by)
                           WHEN 'added' THEN format(' (taken in by batch {})', q.resolved_by)
                           WHEN 'attachment' THEN format(' (kept as an attachment by batch {})',
                                                         q.resolved_by)
                           ELSE '' END)
        FROM quarantine q JOIN batches b USING (batch)"""),
)

# For the wip checks: a manned machine's counts, one row per panel (knitting's back,
# front, sleeve, collar; linking's wip): `panel`, `pieces`; a wip row's pieces all
# together; and its counts one by one, a missing one shown as `-`.
_COUNTED = ("back", "front", "sleeve", "collar", "wip")
_PANELS = (f"(UNPIVOT (SELECT * FROM {{}} WHERE mc_status = 'manned') "
           f"ON {', '.join(_COUNTED)} INTO NAME panel VALUE pieces)")
# The flags of some days read the frames from a week before them (LOOKBACK: `incomplete`
# and `observer_absent` look at the week before a day), but for a machine's whole history
# (`wip_outlier`) and an observer's earlier tasks (`overlap`, which needs only those that
# end after the days' first task starts, + 2 minutes): the same flags as the view's.
LOOKBACK = 7
_WINDOWED = ("observations", "roster", "wip", "interactions", "completion")
_PIECES = " + ".join(f"coalesce(CAST({c} AS DOUBLE), 0)" for c in _COUNTED)  # no overflow
_ROUND_COUNTS = ", ".join(f"coalesce(CAST({c} AS VARCHAR), '-')"
                          for c in ("component", *_COUNTED))


def flags_sql(settings: Settings, days: tuple[date, date] | None = None) -> str:
    """The `flags` view's query: every check, its thresholds filled in from `settings`;
    with `days` (first, last), the flags of those days only, reading little more."""
    checks, calendar = settings.checks, settings.calendar
    values = {
        "late_after_days": checks.late_after_days,
        "day_starts": checks.day_starts.isoformat(), "day_ends": checks.day_ends.isoformat(),
        "weekend": ", ".join(f"'{day.capitalize()}'" for day in calendar.weekend) or "NULL",
        "holidays": ", ".join(f"DATE '{day.isoformat()}'" for day in calendar.holidays)
                    or "NULL",
        "shortest_cases": _cases(checks.shortest.model_dump()),
        "longest_cases": _cases(checks.longest.model_dump()),
        "wip_z": checks.wip_z, "wip_jump": checks.wip_jump,
        "local": f"AT TIME ZONE '{FACTORY_TZ.key}'",  # an instant's factory wall time
        "pieces": _PIECES, "panels": _PANELS.format("wip"), "round_counts": _ROUND_COUNTS,
        "every_observation": "every_observation" if days else "observations",
        "every_panel": _PANELS.format("every_wip" if days else "wip"),
        "paired_within": PAIRED_WITHIN,
    }
    parts = [f"SELECT * FROM ({Template(check.sql).substitute(values)}) "
             f"AS {check.name}({_FOUND})" for check in CHECKS]
    union = "SELECT * FROM (\n" + "\nUNION ALL\n".join(parts) + "\n)"
    if days is not None:
        first, last = (f"DATE '{day.isoformat()}'" for day in days)
        union = ("WITH every_observation AS (SELECT * FROM observations WHERE day BETWEEN "
                 f"{first} AND {last} OR ended_at > (SELECT min(started_at) FROM "
                 f"observations WHERE day BETWEEN {first} AND {last}) + INTERVAL 2 MINUTE), "
                 "every_wip AS (SELECT * FROM wip), "
                 + ", ".join(f"{name} AS (SELECT * FROM {name} WHERE day BETWEEN "
                             f"{first} - {LOOKBACK} AND {last})" for name in _WINDOWED)
                 + f"\n{union} WHERE day BETWEEN {first} AND {last}")
    return (f"SELECT f.*, coalesce(s.status, 'open') AS status, s.batch AS settled_by "
            f"FROM (SELECT *, {_FLAG_ID} AS flag_id FROM ({union})) f "
            f"LEFT JOIN ({_SETTLED}) s USING (flag_id) ORDER BY day, "
            "CASE severity WHEN 'error' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, "
            "check_name, factory, department, team, observer, observation_id, detail")


def rules(settings: Settings) -> dict[str, str]:
    """Each check's rule, its thresholds filled in."""
    checks = settings.checks
    values = {"late_after_days": f"{checks.late_after_days:g}",
              "day_starts": checks.day_starts.strftime("%H:%M"),
              "day_ends": checks.day_ends.strftime("%H:%M"),
              "shortest": _minutes(checks.shortest.model_dump()),
              "longest": _minutes(checks.longest.model_dump()),
              "wip_z": f"{checks.wip_z:g}", "wip_jump": f"{checks.wip_jump:g}",
              "paired_within": PAIRED_WITHIN}
    return {check.name: check.rule.format(**values) for check in CHECKS}


_FOUND = ", ".join(f'"{c}"' for c in FOUND)
_FLAG_ID = ("substr(sha256(concat_ws(chr(31), check_name, CAST(day AS VARCHAR), "
            "coalesce(factory, ''), coalesce(department, ''), coalesce(team, ''), "
            "CASE check_name WHEN 'incomplete' THEN '' ELSE coalesce(observer, '') END, "
            "coalesce(observation_id, ''), CASE WHEN contains(detail, ': ') "
            "THEN split_part(detail, ': ', 1) ELSE '' END)), 1, 16)")
# Each flag's settlement: the first batch in effect that corrected it (with a row still
# in effect: a newer version of the observation may bring the finding back), else
# reviewed it (a review holds for the flag whatever its values: reviewed is reviewed).
_SETTLED = """
    SELECT flag_id, status, batch FROM (
        SELECT flag_id, 'corrected' AS status, batch FROM corrections
        WHERE flag_id IS NOT NULL AND (in_effect OR outcome = 'already')
          AND NOT rolled_back
        UNION ALL
        SELECT flag_id, 'reviewed', batch FROM reviews
        WHERE outcome <> 'refused' AND NOT rolled_back)
    QUALIFY row_number() OVER (PARTITION BY flag_id ORDER BY status, batch) = 1"""


def _cases(minutes: dict[str, float]) -> str:
    return " ".join(f"WHEN '{task}' THEN {value}" for task, value in minutes.items())


def _minutes(minutes: dict[str, float]) -> str:
    return ", ".join(f"{task} {value:g} min" for task, value in minutes.items())
