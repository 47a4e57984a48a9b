"""The frames as Delta Lake tables for a data team, published batch by batch.

    TARGET/observations/            by day (day=2026-11-02/part-….parquet), _delta_log/
    TARGET/completion/, flags/      by day
    TARGET/roster/, wip/, interactions/   a table per task (every team's rows), by day
    TARGET/wip_knitting_treatment/  a table per task, department and team, by month
                                    (its `month` column, YYYY-MM)

Version N of every table is the lake right after its batch N (`rebuild --as-of N`), and
version 0 the empty table: each batch not yet published is one commit per table, in
order. The rows of the days (months) a batch changed replace theirs, a new day's are
added, and a batch that changed nothing in a table (a correction elsewhere) is an empty
commit there, so that versions and batches keep step; a table that first has rows at
batch N gets empty commits for the batches before. Each commit's metadata names its
batch, kind and source and the rmg-lake that wrote it (`DeltaTable.history()`); the
observations' also lists the target's tables, and their description says whether
people's codes are pseudonymised (and with which key) and which tasks it holds, so
that a target published one way refuses the other.

The frames as of each batch are derived into a folder of the lake's own,
`LAKE/delta/<key>/` (one per target), left at the target's last batch for the next
publish to go on from; like every derived file it may be deleted (the next publish
derives it again). A publish interrupted anywhere resumes at the first batch a table
lacks: the observations, committed last for each batch, say where the target stands.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC
from importlib import metadata
from pathlib import Path

import duckdb
import polars as pl
from deltalake import CommitProperties, DeltaTable, write_deltalake

from rmg_lake._internal.faults import reached
from rmg_lake._internal.files import make_private_dir, own_private_dir, private_umask
from rmg_lake._internal.progress import Track
from rmg_lake.deliver.export import shareable
from rmg_lake.deliver.secret import StudySecret
from rmg_lake.derive.catalog import CATALOG
from rmg_lake.derive.checks import FLAG_SCHEMA
from rmg_lake.derive.frames import DETAIL, empty_frame
from rmg_lake.derive.partitions import Derived, derive, load_state
from rmg_lake.errors import LakeError, boundary, guarded
from rmg_lake.lake import Lake
from rmg_lake.store.log import Batch, Correction, LogEntry
from rmg_lake.store.versions import log_rows

__all__ = ["FOLDER", "DeltaPublished", "publish_delta"]

FOLDER = "delta"  # LAKE/delta/<key>/: the frames as of a target's last batch
BASE = ("observations", "completion", "flags")  # every target's tables, besides the teams'
_FOREVER = "interval 36500 days"  # time travel to any batch: no log or old file expires
_PROPERTIES = {"delta.logRetentionDuration": _FOREVER,
               "delta.deletedFileRetentionDuration": _FOREVER}
_TAG = re.compile(r"\[rmg-lake: (plain|pseudonymised [0-9a-f]+); tasks ([a-z,]+)\]$")
_STORE = re.compile(r"(s3|s3a|gs|az|abfs|abfss)://.+")  # object stores deltalake writes to


@dataclass(frozen=True, slots=True)
class DeltaPublished:
    target: str  # the folder, or the object store's address
    batches: tuple[int, ...]  # those this run published, in order
    batch: int  # the last batch the tables hold: version `batch` of each
    tables: tuple[str, ...]
    key_id: str | None  # the study secret's, if pseudonymised


@dataclass(frozen=True, slots=True)
class _Target:
    address: str  # a folder's absolute path, or s3://…, az://…, gs://…
    options: dict[str, str] | None  # passed to deltalake as they are
    folder: Path | None  # if local

    def uri(self, table: str) -> str:
        return f"{self.address.rstrip('/')}/{table}"

    def open(self, table: str) -> DeltaTable | None:
        """The table, if the target has it; refused if another program committed to it
        last (its versions and the batches would no longer keep step)."""
        uri = self.uri(table)
        if not DeltaTable.is_deltatable(uri, self.options):
            return None
        found = DeltaTable(uri, storage_options=self.options)
        if found.history(limit=1)[0].get("rmg_lake.batch") != str(found.version()):
            raise LakeError(f"version {found.version()} was not written by rmg-lake",
                            file=uri, hint="the tables are rmg-lake's to write, others' to "
                                           "read: publish into a new folder")
        return found


@guarded
def publish_delta(lake: Lake, target: str | Path, *, tasks: Collection[str] | None = None,
                  secret: StudySecret | None = None,
                  storage_options: Mapping[str, str] | None = None,
                  track: Track | None = None) -> DeltaPublished:
    """Publish every batch of `lake` that `target` lacks as one commit per table (of
    `tasks`: by default all, or those the target holds), people's codes pseudonymised
    with `secret` if given. A target refuses to be published another way than it was."""
    where = _target(lake, target, storage_options)
    kind = f"pseudonymised {secret.key_id}" if secret else "plain"
    with lake.lock.held(), boundary(file=where.address, doing="publish the tables"):
        entries = lake.entries()
        observations = where.open("observations")
        chosen = _tasks(observations, where, kind, tasks)
        done, known = _standing(observations, where, entries)
        tables = {name: found for name in known if (found := where.open(name))}
        if lost := sorted(set(known) - set(tables)):
            raise LakeError(f"the target has lost its table {lost[0]}"
                            + (f" and {len(lost) - 1} more" if len(lost) > 1 else ""),
                            file=where.uri(lost[0]),
                            hint="publish into a new folder (its tables are made again)")
        todo = range(done + 1, len(entries) + 1)
        if todo:
            if where.folder is not None:
                own_private_dir(where.folder)  # (one made beforehand, too)
            publisher = _Publisher(where, entries, chosen, secret, kind)
            tables["observations"] = observations or publisher.create("observations")
            known = publisher.publish(lake, tables, done, known, track)
    return DeltaPublished(where.address, tuple(todo), len(entries) if todo else done,
                          tuple(sorted(known)), secret.key_id if secret else None)


class _Publisher:
    """Writes the commits of one target."""

    def __init__(self, where: _Target, entries: list[LogEntry], tasks: list[str],
                 secret: StudySecret | None, kind: str) -> None:
        self.where, self.entries, self.tasks, self.secret = where, entries, tasks, secret
        self.kind = kind

    def publish(self, lake: Lake, tables: dict[str, DeltaTable], done: int,
                known: set[str], track: Track | None) -> set[str]:
        """Commit the batches after `done` to every table (`tables`, those open; `known`,
        the target's): the frames of each derived in the lake's folder for the target,
        going on from the state there. The target's tables after."""
        scratch = _scratch(lake, self.where)
        rows = log_rows(self.entries)
        before = _Frames.at(lake, self.entries[:done], scratch, rows, load_state(scratch))
        todo = range(done + 1, len(self.entries) + 1)
        for number in track(todo, len(todo), "Publishing") if track else todo:
            after = _Frames.at(lake, self.entries[:number], scratch, rows, before.state)
            names = {*known, *BASE, *self.tasks, *after.teams(self.tasks)}
            for name in [*sorted(names - {"observations"}), "observations"]:
                tables[name] = self.commit(tables.get(name), name, number, before, after,
                                           sorted(names))
            known, before = names, after
        return known

    def commit(self, table: DeltaTable | None, name: str, number: int, before: _Frames,
               after: _Frames, names: list[str]) -> DeltaTable:
        """Bring `table` (None: not opened yet) to batch `number`: the partitions that
        differ between `before` and `after` replaced. A new table is made first, with
        empty commits for the batches before."""
        table = table or self.where.open(name) or self.create(name)
        if table.version() >= number:  # a publish interrupted after this commit
            return table
        while table.version() < number - 1:  # a table new at this batch
            self._write(table, name, self._shared(name, _empty(name)), [],
                        self.entries[table.version()])
        old, new = before.partitions(name), after.partitions(name)
        changed = sorted((k for k in old.keys() | new.keys() if old.get(k) != new.get(k)),
                         key=str)
        self._write(table, name, self._shared(name, after.rows(name, changed)),
                    changed if old.keys() & set(changed) else [], self.entries[number - 1],
                    names if name == "observations" else None)
        return table

    def create(self, name: str) -> DeltaTable:
        """Version 0: the empty table, with its partitioning and description."""
        people = ("worker and supervisor codes pseudonymised with the study secret"
                  if self.secret else "worker and supervisor codes as the factory wrote them")
        with private_umask():
            write_deltalake(
                self.where.uri(name), self._shared(name, _empty(name)), mode="error",
                partition_by=[_column(name)], name=name, configuration=_PROPERTIES,
                description=f"RMG field study, {name}: version N is the lake right after "
                            f"its batch N (rmg-lake publish --delta); {people}. "
                            f"[rmg-lake: {self.kind}; tasks {','.join(self.tasks)}]",
                commit_properties=CommitProperties(custom_metadata=_about(
                    None, ["observations"] if name == "observations" else None)),
                storage_options=self.where.options)
        reached("delta-committed")
        return DeltaTable(self.where.uri(name), storage_options=self.where.options)

    def _write(self, table: DeltaTable, name: str, rows: pl.DataFrame,
               replaced: list[str | None], entry: LogEntry,
               tables: list[str] | None = None) -> None:
        """One commit: `rows` replace those of the partitions `replaced` (none: they are
        added)."""
        about = CommitProperties(custom_metadata=_about(entry, tables))
        with private_umask():
            if replaced:
                write_deltalake(table, rows, mode="overwrite", schema_mode="merge",
                                predicate=_predicate(_column(name), replaced),
                                commit_properties=about)
            else:  # rows of new partitions only, or none: an empty commit
                write_deltalake(table, rows, mode="append", schema_mode="merge",
                                commit_properties=about)
        reached("delta-committed")

    def _shared(self, name: str, frame: pl.DataFrame) -> pl.DataFrame:
        """The rows as the table holds them: of the target's tasks, people's codes
        pseudonymised if it is, and a team table's `month`."""
        if name in ("observations", "completion"):
            frame = frame.filter(pl.col("task").is_in(self.tasks))
        frame = shareable(frame, self.secret, keep_notes=self.secret is None)
        if _column(name) == "month":
            frame = frame.with_columns(pl.col("day").dt.strftime("%Y-%m").alias("month"))
        return frame


@dataclass(frozen=True, slots=True)
class _Frames:
    """The lake as of one batch, as the tables need it: the derived files (None: before
    the first batch) and the two frames that are not kept by day, completion and flags."""

    folder: Path
    state: Derived | None
    completion: pl.DataFrame
    flags: pl.DataFrame

    @classmethod
    def at(cls, lake: Lake, entries: list[LogEntry], folder: Path, rows: pl.DataFrame,
           previous: Derived | None) -> _Frames:
        """The frames after `entries`, derived in `folder` (going on from `previous`,
        its state, if that is of a prefix of them)."""
        if not entries:
            return cls(folder, None, empty_frame("completion"), pl.DataFrame(
                schema=FLAG_SCHEMA))
        if previous is not None and (previous.entries > len(entries)
                                     or previous.root != str(lake.root)):
            previous = None  # ahead of the target (an interrupted publish), or moved
        state = previous if previous is not None and previous.entries == len(entries) \
            else derive(lake.root, entries, folder, previous=previous,
                        rows=rows.filter(pl.col("batch") <= len(entries)))
        completion = pl.read_parquet([folder / f for f in state.files("completion")])
        con = duckdb.connect(str(folder / CATALOG), read_only=True)
        try:
            flags = con.execute("SELECT * FROM flags").fetchall()
        finally:
            con.close()
        return cls(folder, state, completion, pl.DataFrame(flags, schema=FLAG_SCHEMA,
                                                           orient="row"))

    def teams(self, tasks: list[str]) -> set[str]:
        """The team frames of `tasks`, by table name."""
        return {name.removeprefix("teams/") for name in (self.state.frames if self.state
                                                          else {})
                if name.startswith("teams/") and name[6:].split("_")[0] in tasks}

    def partitions(self, table: str) -> dict[str | None, object]:
        """Each partition of `table` (a day, a month) → what says its rows: its file's
        name (named by its content), or the hashes of its rows (completion, flags)."""
        if table in ("completion", "flags"):
            frame = self.completion if table == "completion" else self.flags
            hashed = frame.select(pl.col("day").cast(pl.String), frame.hash_rows().alias("h"))
            return {day: tuple(sorted(h)) for day, h in hashed.group_by("day").agg(
                "h").iter_rows()}
        parts = self.state.frames.get(_frame(table), {}) if self.state else {}
        return {key: file for key, file in parts.items() if key[:4].isdigit()}

    def rows(self, table: str, keys: list[str | None]) -> pl.DataFrame:
        """The rows of `table` in the partitions `keys`."""
        if table in ("completion", "flags"):
            frame = self.completion if table == "completion" else self.flags
            day = pl.col("day").cast(pl.String)
            return frame.filter(day.is_in([k for k in keys if k is not None])
                                | (day.is_null() & (None in keys)))
        parts = self.partitions(table)
        files = [self.folder / str(parts[key]) for key in keys if key in parts]
        return pl.read_parquet(files) if files else _empty(table)


def _empty(table: str) -> pl.DataFrame:
    """No rows, in the columns of the frame `table` publishes."""
    return pl.DataFrame(schema=FLAG_SCHEMA) if table == "flags" else empty_frame(_frame(table))


def _frame(table: str) -> str:
    """The derived frame a table publishes: `wip_knitting_treatment` is a team frame."""
    return table if _by_day(table) else f"teams/{table}"


def _column(table: str) -> str:
    """What `table` is partitioned by."""
    return "day" if _by_day(table) else "month"


def _by_day(table: str) -> bool:
    """Whether `table` is kept by day, as its frame is (else by month: a team's)."""
    return table in BASE or table in DETAIL


def _predicate(column: str, keys: list[str | None]) -> str:
    """`day IN ('2026-11-02', …)`: the rows of those partitions (None: of no day)."""
    named = ", ".join(f"'{key}'" for key in keys if key is not None)
    return " OR ".join([*([f"{column} IN ({named})"] if named else []),
                        *([f"{column} IS NULL"] if None in keys else [])])


def _about(entry: LogEntry | None, tables: list[str] | None = None) -> dict[str, str]:
    """A commit's metadata: the batch (0: the table made), its kind, source and time in
    the lake, the rmg-lake that wrote it; the observations' also name the target's
    tables."""
    if entry is None:
        batch, kind, source, when = 0, "created", "", ""
    else:
        batch, kind = entry.batch, entry.kind
        source = entry.source if isinstance(entry, Batch) else \
            f"sheet {entry.sheet} by {entry.by}" if isinstance(entry, Correction) else \
            f"rollback of batch {entry.target}"  # (its reason is free text: left out)
        when = entry.committed_at.astimezone(UTC).isoformat()
    return {"rmg_lake.batch": str(batch), "rmg_lake.kind": kind, "rmg_lake.source": source,
            "rmg_lake.committed_at": when, "rmg_lake.version": _version(),
            "userMetadata": f"rmg-lake batch {batch} ({kind})",
            **({"rmg_lake.tables": ",".join(tables)} if tables is not None else {})}


@functools.cache
def _version() -> str:
    return metadata.version("rmg-lake")


def _target(lake: Lake, target: str | Path,
            options: Mapping[str, str] | None) -> _Target:
    """Where the tables go: an object store's address, or a folder outside the lake that
    is new, empty, or holds published tables."""
    text = str(target)
    if _STORE.fullmatch(text):
        return _Target(text.rstrip("/"), dict(options or {}), None)
    if "://" in text or text.startswith("dropbox:"):
        raise LakeError("Delta tables cannot go there", file=text,
                        hint="give a folder, or an s3://, az:// or gs:// address")
    if options:
        raise LakeError("--storage-option is for s3://, az:// and gs:// addresses",
                        file=text, hint="leave it out for a folder")
    folder = Path(text).expanduser().resolve()
    if folder.exists() and not folder.is_dir():
        raise LakeError("is a file, not a folder", file=str(folder),
                        hint="give --delta a new folder")
    if folder.is_relative_to(lake.root):
        raise LakeError("the tables go outside the lake", file=str(folder),
                        hint="give --delta a folder outside the lake's")
    with boundary(file=folder, doing="look into the folder"):
        if folder.is_dir() and any(folder.iterdir()) \
                and not (folder / "observations" / "_delta_log").is_dir():
            raise LakeError("the folder is not empty and holds no published tables",
                            file=str(folder), hint="give --delta a new folder (or one "
                                                   "`rmg-lake publish --delta` wrote)")
    return _Target(str(folder), None, folder)


def _tasks(observations: DeltaTable | None, where: _Target, kind: str,
           asked: Collection[str] | None) -> list[str]:
    """The tasks to publish: those asked, else the target's, else all; refuses a target
    published another way (plain, pseudonymised, with another key, other tasks)."""
    wanted = sorted(set(asked)) if asked else None
    if unknown := sorted(set(wanted or ()) - set(DETAIL)):
        raise LakeError(f"no task {', '.join(unknown)}", hint=f"one of {', '.join(DETAIL)}")
    if observations is None:
        return wanted or sorted(DETAIL)
    said = _TAG.search(observations.metadata().description or "")
    if said is None:
        raise LakeError("a Delta table that rmg-lake did not write", file=where.uri(
            "observations"), hint="give --delta a new folder")
    theirs, their_tasks = said[1], said[2].split(",")
    if theirs != kind:
        raise _mixing(theirs, kind, where.address)
    if wanted and wanted != their_tasks:
        raise LakeError(f"the tables hold the tasks {', '.join(their_tasks)}",
                        file=where.address, hint=f"publish them with --tasks "
                        f"{','.join(their_tasks)} (or without --tasks), or other tasks into "
                        "a new folder")
    return their_tasks


def _mixing(theirs: str, ours: str, address: str) -> LakeError:
    """A target published one way, asked to be published another."""
    if theirs == "plain":
        return LakeError("the tables hold worker and supervisor codes as the factory wrote "
                         "them", file=address,
                         hint="publish pseudonymised tables into a new folder")
    if ours == "plain":
        return LakeError("the tables are pseudonymised", file=address,
                         hint="publish into them with --pseudonymise (or plain tables into "
                              "a new folder)")
    return LakeError(f"the tables were pseudonymised with another study secret (key id "
                     f"{theirs.split()[1]}; this one's is {ours.split()[1]})", file=address,
                     hint="publish with that secret (RMG_LAKE_SECRET names its file), or "
                          "into a new folder")


def _standing(observations: DeltaTable | None, where: _Target,
              entries: list[LogEntry]) -> tuple[int, set[str]]:
    """The last batch the target holds, and its tables (its observations say both: they
    are committed last for each batch); refused if that batch is not this lake's."""
    if observations is None:
        return 0, set()
    version = observations.version()  # (its last commit is rmg-lake's: `_Target.open`)
    last = observations.history(limit=1)[0]
    if version and (version > len(entries) or last.get("rmg_lake.committed_at")
                    != _about(entries[version - 1])["rmg_lake.committed_at"]):
        raise LakeError(f"the tables hold batch {version} of another lake", file=where.address,
                        hint="give --delta a new folder for this lake's")
    return version, set(str(last["rmg_lake.tables"]).split(","))


def _scratch(lake: Lake, where: _Target) -> Path:
    """The lake's folder of derived files for this target."""
    folder = lake.root / FOLDER / hashlib.sha256(where.address.encode()).hexdigest()[:16]
    make_private_dir(folder.parent)
    own_private_dir(folder)
    return folder
