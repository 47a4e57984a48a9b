"""What the derived frames hold, and their rows from the log and events (their columns and
types are `rmg_lake.store.tables`'s).

    observations   one row per current observation
    roster         one row per machine of each roster
    wip            one row per machine of each wip round (both departments)
    interactions   one row per interaction
                   (each with `corrected` and `corrections`: how many corrections changed it)
    teams/<task>_<department>_<team>   the same rows, one frame per team
    completion     day × factory × task × department × team against the protocol
                   (back-checks, a wip round's second observer, not counted)
    batches        one row per log entry (ingests and rollbacks)
    history        one row per file of each ingest: what became of it
    quarantine     the bad files of the batches in effect, and whether a later batch
                   resolved them (took them in, or quarantined them again)
    corrections    one row per row of each corrections sheet: its outcome, and whether it
                   is in effect
    reviews        one row per flag a checks workbook reviewed (a resolution, no change)

`rmg_lake.derive.partitions` decides which of them to make and where to keep them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import date, timedelta

import polars as pl

from rmg_lake.config import Settings
from rmg_lake.derive.pairs import PAIRED_WITHIN
from rmg_lake.store.log import Batch, Correction, LogEntry, rolled_back_by
from rmg_lake.store.resolved import resolutions
from rmg_lake.store.tables import SCHEMAS

__all__ = [
    "DETAIL", "batches_frame", "completion", "completion_after", "corrections_frame",
    "current_frames", "empty_frame", "history_frame", "quarantine_frame", "reviews_frame",
    "team_frame_name", "team_frames",
]

DETAIL = ("roster", "wip", "interactions")  # the tasks, each with its team frames
# Columns a team frame leaves out because its department has none of them (knitting
# keeps `wip`: contract 1.1 lets a machine give its WIP as one number instead of panels).
_NOT_IN = {"knitting": (), "linking": ("component", "back", "front", "sleeve", "collar")}
_ROW_ORDER = ("factory", "department", "team", "started_at", "observation_id")


def team_frame_name(task: str, department: str, team: str) -> str:
    """`wip_linking_same_floor`: the frame's file stem and its DuckDB view name."""
    return f"{task}_{department}_{team}".replace("-", "_")


def current_frames(events: dict[str, pl.DataFrame], current: pl.DataFrame,
                   ) -> dict[str, pl.DataFrame]:
    """The frames of current events, in row order, from their rows (see `rmg_lake.store.events`)
    and, for each, what the log says of it: `current` has columns event_id, batch,
    versions, source_path, synced_at (the file time of its first version), corrected and
    corrections; the detail frames' rows have their own `corrected` and `corrections`."""
    machine_no = pl.col("machine").str.slice(2).cast(pl.Int64)
    then_by = {"roster": [machine_no], "wip": [machine_no], "interactions": [pl.col("seq")]}
    frames = {}
    for name, rows in events.items():
        if name == "observations":
            rows = rows.join(current, on="event_id")
        frames[name] = rows.select(list(SCHEMAS[name])).sort(
            [*_ROW_ORDER, *then_by.get(name, [])])
    return frames


def team_frames(task: str, rows: pl.DataFrame) -> dict[str, pl.DataFrame]:
    """A task's rows, one frame per team: `teams/<task>_<department>_<team>` → its rows."""
    return {f"teams/{team_frame_name(task, str(department), str(team))}":
            _team_columns(part, task, str(department))
            for (department, team), part in sorted(
                rows.partition_by("department", "team", as_dict=True).items())}


def empty_frame(name: str) -> pl.DataFrame:
    """A frame with no rows, of the schema `name` (a frame or `teams/…`) has."""
    if not name.startswith("teams/"):
        return pl.DataFrame(schema=SCHEMAS[name])
    task, department = name.removeprefix("teams/").split("_")[:2]
    return _team_columns(pl.DataFrame(schema=SCHEMAS[task]), task, department)


def _team_columns(frame: pl.DataFrame, task: str, department: str) -> pl.DataFrame:
    """A task's rows as its team frame shows them: without the other department's columns."""
    return frame.drop(_NOT_IN[department] if task == "wip" else ())


def completion(observations: pl.DataFrame, settings: Settings) -> pl.DataFrame:
    """Observed against expected, for every day from the first to the last observed one."""
    schema = SCHEMAS["completion"]
    if observations.is_empty():
        return pl.DataFrame(schema=schema)
    first, last = observations["day"].min(), observations["day"].max()
    assert isinstance(first, date) and isinstance(last, date)
    return _completion(observations, settings, _days(first, last),
                       _teams(observations, settings), _tasks(observations, settings))


def completion_after(earlier: pl.DataFrame, observed: tuple[date, date],
                     changed: Collection[date], read: Callable[[list[date]], pl.DataFrame],
                     settings: Settings) -> pl.DataFrame | None:
    """`completion` from `earlier` (this frame before the observations of some days
    `changed`, under the same settings), when the days `observed` (the first and the last)
    start where it did: only the days changed and those after its last are made again,
    from their observations (`read(days)`). None if the teams or tasks differ."""
    if earlier.is_empty():
        return None
    start, end = earlier.select(pl.col("day").min().alias("first"),
                                pl.col("day").max().alias("last")).row(0)
    if start != observed[0] or end > observed[1]:
        return None
    redo = [day for day in _days(*observed) if day in changed or day > end]
    again = pl.col("day").is_in(redo)
    redone = read(redo)
    grid = earlier.filter(pl.col("day") == start)  # every day has each team's every task
    all_teams, all_tasks = _team_keys(grid), set(grid["task"])
    teams, tasks = _teams(redone, settings), set(_tasks(redone, settings))
    if not teams <= all_teams or not tasks <= all_tasks:
        return None  # a team or task is new
    # one observed only on the days made again, and not any more, is gone
    was = earlier.filter(again, pl.col("attempted") > 0)
    gone = _team_keys(was) - teams, set(was["task"]) - tasks
    if gone[0] or gone[1]:
        still = earlier.filter(~again, pl.col("attempted") > 0)
        if not gone[0] <= _team_keys(still) or not gone[1] <= set(still["task"]):
            return None
    return pl.concat([earlier.filter(~again), _completion(
        redone, settings, redo, all_teams, sorted(all_tasks))]).sort(
        "day", maintain_order=True)  # (each day's rows in order: its own or made again)


def _team_keys(frame: pl.DataFrame) -> set[tuple[str, str, str]]:
    """The teams of `frame` (factory, department, team)."""
    return set(frame.select("factory", "department", "team").unique().rows())


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _teams(observations: pl.DataFrame, settings: Settings) -> set[tuple[str, str, str]]:
    """The teams observed and those the study expects."""
    return _team_keys(observations) | {(f, d, t) for f, depts in settings.study.items()
                                       for d, names in depts.items() for t in names}


def _tasks(observations: pl.DataFrame, settings: Settings) -> list[str]:
    """The tasks observed and those the protocol expects."""
    return sorted({t for t, n in settings.protocol.expected().items() if n > 0}
                  | set(observations["task"].unique()))


def _completion(observations: pl.DataFrame, settings: Settings, days: list[date],
                teams: set[tuple[str, str, str]], tasks: list[str]) -> pl.DataFrame:
    """The completion rows of `days`."""
    schema = SCHEMAS["completion"]
    protocol = settings.protocol.expected()
    counts = _rounds(observations).group_by("day", "factory", "task", "department", "team").agg(
        completed=(pl.col("status") == "complete").sum().cast(pl.Int64),
        attempted=pl.len().cast(pl.Int64))
    grid = pl.DataFrame({"day": days}, schema={"day": schema["day"]}).join(
        pl.DataFrame(sorted(teams), schema={k: schema[k] for k in
                                            ("factory", "department", "team")}, orient="row"),
        how="cross").join(pl.DataFrame({"task": tasks}, schema={"task": schema["task"]}),
                          how="cross")
    off = pl.col("day").is_in([d for d in days if settings.calendar.is_off(d)])
    expected = pl.col("task").replace_strict(protocol, default=0, return_dtype=pl.Int64)
    return (
        grid.join(counts, on=["day", "factory", "task", "department", "team"], how="left")
        .with_columns(pl.col("completed", "attempted").fill_null(0),
                      expected=pl.when(off).then(0).otherwise(expected))
        .with_columns(status=pl.when(off).then(pl.lit("off"))
                      .when(pl.col("completed") >= pl.col("expected")).then(pl.lit("done"))
                      .when(pl.col("completed") > 0).then(pl.lit("partial"))
                      .otherwise(pl.lit("missing")))
        .select(list(schema))
        .sort("day", "factory", "task", "department", "team")
    )


def _rounds(observations: pl.DataFrame) -> pl.DataFrame:
    """The observations the protocol counts: all but back-checks, the wip rounds another
    observer began within `PAIRED_WITHIN` minutes after a round of the same team (the
    second of a pair of `rmg_lake.derive.pairs`: a measure of agreement, not a round)."""
    team = ["day", "factory", "department", "team"]
    wip = observations.filter(pl.col("task") == "wip").select(
        *team, "observation_id", "observer", "started_at")
    later = wip.join(wip, on=team, suffix="_first").filter(
        pl.col("observer") != pl.col("observer_first"),
        (pl.col("started_at") > pl.col("started_at_first"))
        | ((pl.col("started_at") == pl.col("started_at_first"))
           & (pl.col("observation_id") > pl.col("observation_id_first"))),
        pl.col("started_at") <= pl.col("started_at_first")
        + pl.duration(minutes=PAIRED_WITHIN))
    return observations.filter(~pl.col("observation_id").is_in(later["observation_id"].implode()))


def batches_frame(entries: list[LogEntry]) -> pl.DataFrame:
    """One row per log entry; `rolled_back_by` names the rollback in effect, if any."""
    by = rolled_back_by(entries)
    rows = [{"batch": e.batch, "kind": e.kind, "committed_at": e.committed_at,
             "rolled_back": e.batch in by, "rolled_back_by": by.get(e.batch),
             **({"source": e.source, **e.counts} if isinstance(e, Batch)
                else {"source": f"sheet {e.sheet}", "reason": f"by {e.by}"}
                if isinstance(e, Correction) else {"target": e.target, "reason": e.reason})}
            for e in entries]
    return pl.DataFrame(rows, schema=SCHEMAS["batches"], orient="row")


def corrections_frame(entries: list[LogEntry], in_effect: set[tuple[int, int]],
                      ) -> pl.DataFrame:
    """Every row of every corrections sheet; `in_effect`: the rows that apply (batch,
    place among its entry's rows)."""
    by = rolled_back_by(entries)
    return pl.DataFrame(
        [{"batch": e.batch, "committed_at": e.committed_at, "by": e.by, "sheet": e.sheet,
          **row.model_dump(), "rolled_back": e.batch in by,
          "in_effect": (e.batch, place) in in_effect}
         for e in entries if isinstance(e, Correction) for place, row in enumerate(e.rows)],
        schema=SCHEMAS["corrections"], orient="row")


def reviews_frame(entries: list[LogEntry]) -> pl.DataFrame:
    """Every flag a checks workbook reviewed (a resolution, no change)."""
    by = rolled_back_by(entries)
    return pl.DataFrame(
        [{"batch": e.batch, "committed_at": e.committed_at, "by": e.by, "sheet": e.sheet,
          **review.model_dump(), "rolled_back": e.batch in by}
         for e in entries if isinstance(e, Correction) for review in e.reviews],
        schema=SCHEMAS["reviews"], orient="row")


def history_frame(batch: Batch) -> pl.DataFrame:
    """What became of each file `batch` saw."""
    return batch.frame().select(pl.lit(batch.batch, pl.Int64).alias("batch"),
                                pl.lit(batch.source, pl.String).alias("source"),
                                *[c for c in SCHEMAS["history"] if c not in ("batch", "source")])


def quarantine_frame(batches: list[Batch], earlier: pl.DataFrame | None = None,
                     families: Mapping[int, str] | None = None) -> pl.DataFrame:
    """The quarantined files of `batches` (pass those in effect), each with the later
    batch that resolved it, if one did: took it in (`added`, `attachment`) or quarantined
    it again (`quarantined`: a new version, or another reason). With `earlier` (this frame
    of the batches in effect before them) and `families` (see `resolutions`), its rows
    come first, as `batches` resolve them."""
    resolved = resolutions(batches, earlier, families)
    before = [] if earlier is None else [
        (row["batch"], row["source_path"], row["sha256"], row["field"], row["reason"],
         row["stored"]) for row in earlier.iter_rows(named=True)]
    return pl.DataFrame(
        [{"batch": number, "source_path": path, "sha256": sha, "field": field,
          "reason": reason, "stored": stored,
          **({"resolved_by": by.batch, "resolution": by.outcome}
             if (by := resolved.get((number, path))) else {})}
         for number, path, sha, field, reason, stored in [*before, *(
             (b.batch, *row) for b in batches if b.counts.get("quarantined")
             for row in b.frame(["path", "sha256", "field", "reason", "stored", "outcome"])
             .filter(pl.col("outcome") == "quarantined").drop("outcome").iter_rows())]],
        schema=SCHEMAS["quarantine"], orient="row")
