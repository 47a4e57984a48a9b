"""Delta Lake tables for a data team (`rmg-lake publish --delta`): version N of every table
is the lake right after its batch N, exactly as `rebuild --as-of N` makes the frame; read
back with polars (`read_delta`, by version) and deltalake (`DeltaTable.history()`)."""

from __future__ import annotations

import csv
import functools
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from importlib import metadata
from pathlib import Path

import duckdb
import polars as pl
import pytest
from conftest import run_in
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import (
    CommitFailedError,
    DeltaError,
    DeltaProtocolError,
    SchemaMismatchError,
)

from rmg_lake import Lake, LakeError, init_secret, open_lake, publish_delta, simulate
from rmg_lake._internal.faults import VARIABLE
from rmg_lake.deliver.export import shareable
from rmg_lake.derive.checks import FLAG_SCHEMA
from rmg_lake.derive.partitions import load_state
from rmg_lake.errors import converted

BASE = {"observations", "completion", "flags", "roster", "wip", "interactions"}
KINDS = ["created", "ingest", "ingest", "correction", "rollback", "rollback"]  # version 0–5
NEW_TEAM = "wip_knitting_newteam"  # the team the correction of batch 3 moves a round to


@dataclass(frozen=True)
class Study:
    lake: Lake
    stepwise: Path  # published after batches 1, 3 and 5: three runs
    whole: Path  # published once, after batch 5

    @functools.cached_property
    def published(self) -> dict[str, list[tuple[object, ...]]]:
        """Every version of every table of `whole` (see `everything`)."""
        return everything(self.whole)


def correct(lake: Lake, sheet: Path, team: str | None = None) -> None:
    """A corrections sheet: a roster's worker code changed on the first day and, with
    `team`, a knitting round of the second day moved to that team."""
    obs, roster = lake.table("observations"), lake.table("roster")
    manned = roster.filter(pl.col("day") == date(2026, 11, 2),
                           pl.col("worker_id").is_not_null()).sort("observation_id").row(
        0, named=True)
    rows = [(manned["observation_id"], f"machines.{manned['machine']}.worker_id",
             manned["worker_id"], "w9999", "digits swapped")]
    if team is not None:
        moved = obs.filter(pl.col("task") == "wip", pl.col("department") == "knitting",
                           pl.col("day") == date(2026, 11, 3)).sort("observation_id").row(
            0, named=True)
        rows.append((moved["observation_id"], "team", moved["team"], team, "wrong team"))
    with sheet.open("w", newline="") as handle:
        csv.writer(handle).writerows([("observation_id", "field", "old_value", "new_value",
                                       "reason"), *rows])
    assert lake.correct(sheet, by="tester").count("applied") == len(rows)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Study:
    """Five batches: two ingests, a correction (a worker's code; a round moved to a team
    new to the lake), a rollback of the second ingest, and one of the correction."""
    root = tmp_path_factory.mktemp("delta")
    simulate(root / "inbox" / "one", days=2, observers=2, seed=5, start=date(2026, 11, 2),
             factories=1)
    lake = open_lake(root / "lake", create=True)
    lake.ingest(root / "inbox")  # 1: 2 and 3 November
    publish_delta(lake, root / "stepwise")
    simulate(root / "inbox" / "two", days=1, observers=2, seed=6, start=date(2026, 11, 4),
             factories=1)
    lake.ingest(root / "inbox")  # 2: 4 November
    correct(lake, root / "fixes.csv", team="newteam")  # 3
    publish_delta(lake, root / "stepwise")
    lake.rollback(2, "another study's day")  # 4
    lake.rollback(3, "the team was right")  # 5: the new team's frame is gone again
    publish_delta(lake, root / "stepwise")
    publish_delta(lake, root / "whole")
    return Study(lake, root / "stepwise", root / "whole")


@pytest.fixture(scope="module")
def as_of(study: Study, tmp_path_factory: pytest.TempPathFactory,
          ) -> dict[int, dict[str, pl.DataFrame]]:
    """Batch → each table's frame, as `rebuild --as-of` makes it (flags: its view)."""
    frames = {}
    for batch in range(1, len(study.lake.entries()) + 1):
        out = study.lake.rebuild(as_of=batch, out=tmp_path_factory.mktemp(f"as-of-{batch}"))
        state = load_state(out)
        assert state is not None
        frames[batch] = {name.removeprefix("teams/"): pl.read_parquet(
            [out / f for f in parts.values()]) for name, parts in state.frames.items()
            if name.startswith("teams/") or name in BASE}
        con = duckdb.connect(str(out / "lake.duckdb"), read_only=True)
        frames[batch]["flags"] = pl.DataFrame(con.execute("SELECT * FROM flags").fetchall(),
                                              schema=FLAG_SCHEMA, orient="row")
        con.close()
    return frames


def rows(frame: pl.DataFrame) -> tuple[dict[str, pl.DataType], list[str]]:
    """Columns and types, and the rows, each in an order of their own (a Delta table may
    give its columns in another order, its rows in any)."""
    columns = sorted(frame.columns)
    return ({c: frame.schema[c] for c in columns},
            sorted(map(repr, frame.select(columns).iter_rows())))


def read(folder: Path, table: str, version: int | None = None) -> pl.DataFrame:
    """A published table as polars reads it, a team table without its `month`."""
    frame = pl.read_delta(str(folder / table), version=version)
    if table in BASE:
        return frame
    assert frame["month"].to_list() == frame["day"].dt.strftime("%Y-%m").to_list()
    return frame.drop("month")


def tables(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def everything(folder: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every version of every table: its rows and what its commit names."""
    return {table: [(rows(read(folder, table, h["version"])), h["rmg_lake.batch"],
                     h["rmg_lake.kind"], h["rmg_lake.source"])
                    for h in sorted(DeltaTable(folder / table).history(),
                                    key=lambda h: h["version"])]
            for table in tables(folder)}


@pytest.mark.parametrize("target", ["stepwise", "whole"])
def test_each_version_is_the_lake_as_of_its_batch(
    study: Study, as_of: dict[int, dict[str, pl.DataFrame]], target: str,
) -> None:
    folder: Path = getattr(study, target)
    teams = {name for frames in as_of.values() for name in frames} - BASE
    assert tables(folder) == sorted(BASE | teams) and NEW_TEAM in teams
    for table in tables(folder):
        assert DeltaTable(folder / table).version() == len(as_of)
        for version in range(len(as_of) + 1):
            published = read(folder, table, version)
            expected = as_of[version].get(table) if version else None
            if expected is None:  # version 0, or a team with no frame at that batch
                assert published.is_empty(), (table, version)
            else:
                assert rows(published) == rows(expected), (table, version)


def test_history_names_each_commits_batch_kind_source_and_rmg_lake(study: Study) -> None:
    entries = study.lake.entries()
    ingests = [entries[0].source, entries[1].source]  # type: ignore[union-attr]
    sources = ["", *ingests, "sheet fixes.csv by tester", "rollback of batch 2",
               "rollback of batch 3"]
    for table in tables(study.whole):
        history = sorted(DeltaTable(study.whole / table).history(), key=lambda h: h["version"])
        assert [h["rmg_lake.batch"] for h in history] == [str(v) for v in range(6)]
        assert [h["rmg_lake.kind"] for h in history] == KINDS
        assert [h["rmg_lake.source"] for h in history] == sources
        assert {h["rmg_lake.version"] for h in history} == {metadata.version("rmg-lake")}
        assert [h["rmg_lake.committed_at"] for h in history[1:]] == [
            e.committed_at.isoformat() for e in entries]  # (UTC, as the log has them)
        assert history[4]["userMetadata"] == "rmg-lake batch 4 (rollback)"  # Spark shows it


def test_a_rollback_is_a_new_version_that_takes_its_rows_out(study: Study) -> None:
    days = {v: set(read(study.whole, "observations", v)["day"]) for v in (3, 4)}
    assert date(2026, 11, 4) in days[3] and date(2026, 11, 4) not in days[4]
    rollback = DeltaTable(study.whole / "observations").history(limit=2)[1]
    assert rollback["version"] == 4 and rollback["operationMetrics"]["num_removed_files"] == 1
    moved = [read(study.whole, NEW_TEAM, v).height for v in range(6)]
    assert moved[:3] == [0, 0, 0] and moved[3] == moved[4] > 0 and moved[5] == 0


def test_publishing_again_writes_nothing(study: Study) -> None:
    def files() -> dict[Path, tuple[int, int]]:
        return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in study.whole.rglob("*")}

    before = files()
    again = publish_delta(study.lake, study.whole)
    assert (again.batches, again.batch, len(again.tables)) == ((), 5, len(tables(study.whole)))
    assert files() == before
    assert all(p.stat().st_mode & 0o077 == 0 for p in before)  # private, as the lake is
    assert study.lake.verify().ok  # (its folders for the targets too)


def test_a_target_that_lost_a_table_is_refused(study: Study, tmp_path: Path) -> None:
    """Made again from its latest changes alone, it would hold too little: refused."""
    folder = tmp_path / "copy"
    shutil.copytree(study.whole, folder)
    shutil.rmtree(folder / "completion")
    with pytest.raises(LakeError, match="the target has lost its table completion"):
        publish_delta(study.lake, folder)
    assert not (folder / "completion").exists()


@pytest.mark.parametrize("kill_at", [
    "delta-committed:1",  # the observations made, nothing else
    "delta-committed:91",  # batch 3: the new team's table made, one empty commit of two
])
def test_a_killed_publish_is_completed_by_the_next(study: Study, tmp_path: Path,
                                                   kill_at: str) -> None:
    target = tmp_path / "killed"
    killed = subprocess.run(
        [sys.executable, "-m", "rmg_lake", "publish", "--delta", str(target), "--lake",
         str(study.lake.root)], env={**os.environ, VARIABLE: kill_at}, capture_output=True,
        timeout=120, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert DeltaTable(target / "observations").version() < 5  # (committed last per batch)
    done = publish_delta(study.lake, target)
    assert done.batches[-1] == 5
    assert everything(target) == study.published


def test_a_pseudonymised_target_holds_no_code_and_refuses_to_mix(
    study: Study, as_of: dict[int, dict[str, pl.DataFrame]], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RMG_LAKE_SECRET", str(tmp_path / "secret"))
    secret = init_secret()
    target = tmp_path / "shared"
    assert publish_delta(study.lake, target, secret=secret).key_id == secret.key_id
    codes = {code for frames in as_of.values() for frame in frames.values()
             for column in ("worker_id", "supervisor") if column in frame.columns
             for code in frame[column].drop_nulls()}
    assert "w9999" in codes and len(codes) > 20  # (the correction's, of batches 3 and 4)
    texts: set[str] = set()
    for path in target.rglob("*"):
        if path.suffix == ".parquet":  # every value of every text column
            frame = pl.read_parquet(path)
            texts |= {str(v) for c, dtype in frame.schema.items() if dtype == pl.String
                      for v in frame[c].drop_nulls()}
            texts |= {str(v) for c, dtype in frame.schema.items()
                      if dtype == pl.List(pl.String) for v in frame[c].explode().drop_nulls()}
        elif path.is_file():  # the Delta log: commits, and each file's minimum and maximum
            assert not [code for code in codes if code.encode() in path.read_bytes()], path
    assert not texts & codes
    assert sum(bool(re.fullmatch("p_[0-9a-f]{16}", text)) for text in texts) > 20
    assert "notes" not in read(target, "observations").columns
    latest = read(target, "roster_knitting_treatment")
    assert rows(latest) == rows(shareable(as_of[5]["roster_knitting_treatment"], secret,
                                          keep_notes=False))
    with pytest.raises(LakeError, match="the tables are pseudonymised — publish into them "
                                        "with --pseudonymise"):
        publish_delta(study.lake, target)
    with pytest.raises(LakeError, match="hold worker and supervisor codes as the factory"):
        publish_delta(study.lake, study.whole, secret=secret)
    monkeypatch.setenv("RMG_LAKE_SECRET", str(tmp_path / "another"))
    with pytest.raises(LakeError, match=f"another study secret \\(key id {secret.key_id};"):
        publish_delta(study.lake, target, secret=init_secret())
    result = run_in(capsys, "publish", "--delta", str(target), "--lake", str(study.lake.root))
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {target}: the tables are pseudonymised")
    assert result.stderr.count("\n") == 1


def test_a_column_added_later_is_a_schema_change_not_a_rewrite(
    study: Study, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Batch 1 published by an rmg-lake whose frames lacked `corrections`; batch 2 (a
    correction of the first day) by this one: the column is added, the second day's file
    stays as it was, its rows without a value there."""
    simulate(tmp_path / "inbox", days=2, observers=2, seed=5, start=date(2026, 11, 2),
             factories=1)
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(tmp_path / "inbox")
    with monkeypatch.context() as older:
        older.setattr("rmg_lake.deliver.delta.shareable", lambda frame, *a, **k: shareable(
            frame, *a, **k).drop("corrections", strict=False))
        publish_delta(lake, tmp_path / "target")
    correct(lake, tmp_path / "fixes.csv")
    publish_delta(lake, tmp_path / "target")
    path = tmp_path / "target" / "observations"
    assert "corrections" not in read(tmp_path / "target", "observations", 1).columns
    after = read(tmp_path / "target", "observations", 2)
    assert after.group_by("day").agg(pl.col("corrections").max()).sort("day").rows() == [
        (date(2026, 11, 2), 1), (date(2026, 11, 3), None)]
    second = {uri for uri in DeltaTable(path, version=1).file_uris() if "2026-11-03" in uri}
    assert second and second <= set(DeltaTable(path, version=2).file_uris())
    commit = (path / "_delta_log" / f"{2:020d}.json").read_text()
    assert '"metaData"' in commit and '\\"name\\":\\"corrections\\"' in commit
    with pytest.raises(LakeError, match="the tables hold batch 2 of another lake"):
        publish_delta(study.lake, tmp_path / "target")  # (which has five)


@pytest.mark.parametrize(("error", "says", "retryable"), [
    (SchemaMismatchError("w1101"), "the Delta table's columns cannot take the frame's", False),
    (DeltaProtocolError("w1101"), "the Delta table uses features deltalake cannot write",
     False),
    (CommitFailedError("w1101"), "another program wrote the Delta table at the same time",
     True),
    (DeltaError("Generic LocalFileSystem error: Permission denied (os error 13) w1101"),
     "the data files could not be read or written: permission denied", False),
    (DeltaError("Generic S3 error: error sending request w1101"),
     "the Delta table could not be read or written", True),
    (OSError("Generic S3 error: no credentials w1101"),  # (an object store's, as deltalake
     "the Delta table could not be read or written", True),  # raises some: no errno)
])
def test_deltalakes_errors_at_the_boundary(error: Exception, says: str,
                                           retryable: bool) -> None:
    """By type, or the system's words; never their text, which may quote rows."""
    found = converted(error, file="s3://rmg/delta")
    assert found is not None and found.retryable is retryable
    assert str(found).startswith(f"s3://rmg/delta: {says} — ") and "w1101" not in str(found)


def test_the_command_and_its_refusals(study: Study, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    lake = str(study.lake.root)
    first = run_in(capsys, "publish", "--delta", str(tmp_path / "wip"), "--tasks", "wip",
                   "--lake", lake)
    assert first.returncode == 0, first.stderr
    assert first.stdout == (
        f"Published batches 1 to 5 to {tmp_path / 'wip'}: 11 Delta tables, version 5 of "
        "each the lake right after batch 5; worker and supervisor codes as the factory "
        "wrote them.\n")
    assert {"wip", "wip_knitting_treatment"} <= set(tables(tmp_path / "wip"))
    assert not {"roster", "interactions"} & set(tables(tmp_path / "wip"))
    assert set(read(tmp_path / "wip", "observations", 3)["task"]) == {"wip"}
    again = run_in(capsys, "publish", "--delta", str(tmp_path / "wip"), "--lake", lake)
    assert again.stdout.startswith("Nothing to publish: the 11 Delta tables in ")
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("the researcher's own")
    for args, says in [
        (["--delta", str(tmp_path / "a-file")], "is a file, not a folder"),
        (["--delta", str(tmp_path / "full")], "the folder is not empty and holds no "
                                              "published tables"),
        (["--delta", f"{lake}/shared"], "the tables go outside the lake"),
        (["--delta", "dropbox:/rmg"], "Delta tables cannot go there"),
        (["--delta", "s3://bucket/rmg", "--storage-option", "AWS_SECRET_ACCESS_KEY:s3cr3t"],
         "--storage-option: a value is not KEY=VALUE"),
        (["--delta", str(tmp_path / "new"), "--storage-option", "AWS_REGION=x"],
         "--storage-option is for s3://, az:// and gs:// addresses"),
        (["--delta", str(tmp_path / "new"), "--tasks", "lunch"], "no task lunch"),
        (["--delta", str(tmp_path / "wip"), "--tasks", "roster"],
         "the tables hold the tasks wip — publish them with --tasks wip"),
    ]:
        result = run_in(capsys, "publish", *args, "--lake", lake)
        assert result.returncode == 1, args
        assert says in result.stderr and result.stderr.count("\n") == 1, result.stderr
        assert "s3cr3t" not in result.stderr
    assert not (tmp_path / "new").exists()
    optimised = tmp_path / "wip" / "wip_knitting_treatment"  # a commit of another program's
    write_deltalake(str(optimised), pl.read_delta(str(optimised)).head(0), mode="append")
    result = run_in(capsys, "publish", "--delta", str(tmp_path / "wip"), "--lake", lake)
    assert result.stderr == (f"error: {optimised}: version 6 was not written by rmg-lake — "
                             "the tables are rmg-lake's to write, others' to read: publish "
                             "into a new folder\n")


def test_ingest_report_publishes_to_the_tomls_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    simulate(tmp_path / "inbox", days=1, observers=1, seed=3, factories=1)
    (tmp_path / "rmg-lake.toml").write_text('source = "inbox"\nlake = "lake"\n'
                                            'publish = "shared"\n')
    monkeypatch.chdir(tmp_path)
    result = run_in(capsys, "ingest", "--report")
    assert result.returncode == 0, result.stderr
    assert f"Published batch 1 to {tmp_path / 'shared'}: " in result.stdout
    assert DeltaTable(tmp_path / "shared" / "observations").version() == 1
    (tmp_path / "rmg-lake.toml").write_text('source = "inbox"\nlake = "lake"\n'
                                            'publish = "rmg-lake.toml"\n')
    unreachable = run_in(capsys, "ingest", "--report")
    assert unreachable.returncode == 0, unreachable.stderr
    assert unreachable.stderr == (
        f"warning: the Delta tables were not published: {tmp_path / 'rmg-lake.toml'}: is a "
        "file, not a folder — give --delta a new folder; the next --report publishes the "
        "batches they lack\n")
