"""History: replay, roll back and travel in time through the log, append-only throughout."""

from __future__ import annotations

import hashlib
import random
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl
import pytest
from conftest import run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rmg_lake import Lake, LakeError, open_lake, simulate
from rmg_lake.derive.partitions import load_state
from rmg_lake.sources import LocalFolder, SourceFile
from rmg_lake.store.log import Rollback, in_effect


def frames(root: Path, *, but: tuple[str, ...] = ()) -> dict[str, str]:
    """Every derived Parquet file under `root`, by path and sha256 (leaving out frames in
    `but`)."""
    state = load_state(root)
    assert state is not None
    return {f: hashlib.sha256((root / f).read_bytes()).hexdigest()
            for name, parts in state.frames.items() if name not in but
            for f in parts.values()}


def rows(lake: Lake, name: str) -> pl.DataFrame:
    """A frame without its batch numbers (which depend on how many batches came before)."""
    frame = lake.table(name)
    return frame.drop("batch") if "batch" in frame.columns else frame


def _days(tmp_path: Path, name: str, start: date, seed: int, days: int = 1) -> Path:
    simulate(tmp_path / name, days=days, seed=seed, start=start, observers=2)
    return tmp_path / name


@pytest.fixture
def three(tmp_path: Path) -> list[Path]:
    """Three independent working days, a week apart (none depends on another)."""
    return [_days(tmp_path, f"part{n}", date(2026, 11, 2 + 7 * n), seed=60 + n)
            for n in range(3)]


def test_rolling_back_equals_never_having_ingested(three: list[Path], tmp_path: Path) -> None:
    lake = open_lake(tmp_path / "lake", create=True)
    for folder in three:
        lake.ingest(folder)
    done = lake.rollback(2, "the observer's tablet clock was wrong")
    assert (done.entry.batch, done.entry.target, done.removed, done.restored) == (4, 2, [2], [])
    never = open_lake(tmp_path / "never", create=True)
    for folder in (three[0], three[2]):
        never.ingest(folder)
    for name in ("observations", "roster", "wip", "interactions", "completion", "quarantine"):
        assert rows(lake, name).equals(rows(never, name)), name
    batches = lake.table("batches")
    assert batches.select("batch", "kind", "rolled_back", "rolled_back_by").rows() == [
        (1, "ingest", False, None), (2, "ingest", True, 4), (3, "ingest", False, None),
        (4, "rollback", False, None)]
    assert all((lake.root / f.stored).is_file() for f in lake.batches()[1].files)  # kept
    before = frames(lake.root)
    lake.rebuild()
    assert frames(lake.root) == before  # the incremental update equals a rebuild


def test_rolling_back_a_rollback_restores_the_batch(three: list[Path], tmp_path: Path) -> None:
    lake = open_lake(tmp_path / "lake", create=True)
    for folder in three:
        lake.ingest(folder)
    whole = frames(lake.root, but=("batches",))
    lake.rollback(2, "wrong factory")
    assert frames(lake.root, but=("batches",)) != whole
    lake.rollback(4, "it was the right factory after all")
    assert frames(lake.root, but=("batches",)) == whole
    with pytest.raises(LakeError, match="changes nothing"):
        lake.rollback(4, "twice")
    with pytest.raises(LakeError, match="no batch 9"):
        lake.rollback(9, "not there")


def test_a_rolled_back_batchs_files_arriving_again_are_new(
    three: list[Path], tmp_path: Path,
) -> None:
    lake = open_lake(tmp_path / "lake", create=True)
    first = lake.ingest(three[0]).counts
    lake.rollback(1, "uploaded to the wrong study")
    assert lake.table("observations").is_empty()
    again = tmp_path / "again"
    shutil.copytree(three[0], again / "resent")
    second = lake.ingest(again).counts
    assert (second["added"], second["duplicate"]) == (first["added"], first["duplicate"])
    assert lake.table("observations").height > 0


def test_rolling_back_keeps_what_a_later_batch_brought_again(
    three: list[Path], tmp_path: Path,
) -> None:
    """Batch 2 brought the same files as batch 1 (duplicates): they arrived, and rolling
    back batch 1 must not take them away."""
    again = tmp_path / "again"
    shutil.copytree(three[0], again / "sub")
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(three[0])
    assert lake.ingest(again).counts["added"] == 0  # all duplicates
    lake.rollback(1, "the first copy came from the wrong folder")
    only = open_lake(tmp_path / "only", create=True)
    only.ingest(again)
    for name in ("observations", "roster", "wip", "interactions", "completion"):
        assert rows(lake, name).drop("source_path", strict=False).equals(
            rows(only, name).drop("source_path", strict=False)), name


def test_undoing_a_rollback_after_a_rearrival_counts_each_version_once(
    three: list[Path], tmp_path: Path,
) -> None:
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(three[0])
    before = lake.table("observations")
    lake.rollback(1, "wrong study")
    shutil.copytree(three[0], tmp_path / "again" / "resent")
    lake.ingest(tmp_path / "again")  # the same bytes arrive again: new, while 1 is out
    done = lake.rollback(2, "it was the right study")
    assert done.restored == [1]
    after = lake.table("observations")
    assert after["versions"].to_list() == before["versions"].to_list()
    assert after["batch"].to_list() == before["batch"].to_list()  # the first arrival


def test_a_rollback_that_changes_nothing_is_refused(three: list[Path], tmp_path: Path) -> None:
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(three[0])
    lake.rollback(1, "a")         # 2 takes 1 out
    lake.rollback(2, "b")         # 3 puts it back
    lake.rollback(1, "c")         # 4 takes it out again
    with pytest.raises(LakeError, match="changes nothing") as caught:
        lake.rollback(3, "d")     # would bring 2 back: 1 is out anyway
    assert "other rollbacks in the log have the same effect" in str(caught.value)
    assert len(lake.entries()) == 4


def test_the_same_files_listed_in_any_order_give_the_same_log_and_frames(
    three: list[Path], tmp_path: Path,
) -> None:
    class Shuffled(LocalFolder):
        def list(self) -> Iterator[SourceFile]:
            files = list(super().list())
            random.Random(7).shuffle(files)
            return iter(files)

    inbox = tmp_path / "inbox"
    for folder in three:
        shutil.copytree(folder, inbox / folder.name)
    plain, shuffled = (open_lake(tmp_path / name, create=True) for name in ("a", "b"))
    plain.ingest(LocalFolder(inbox))
    shuffled.ingest(Shuffled(inbox))
    assert plain.batches()[0].files == shuffled.batches()[0].files
    assert frames(plain.root, but=("batches",)) == frames(shuffled.root, but=("batches",))


def catalog(root: Path) -> dict[str, tuple[list[tuple[str, str]], list[str]]]:
    """What `duckdb ROOT/lake.duckdb` shows: each view's columns and types, and its rows
    (as text, sorted)."""
    con = duckdb.connect(str(root / "lake.duckdb"), read_only=True)
    try:
        views = [v for (v,) in con.execute("select view_name from duckdb_views() "
                                           "where not internal order by 1").fetchall()]
        shown = {}
        for view in views:
            columns = [(c[0], c[1]) for c in con.execute(f'describe "{view}"').fetchall()]
            rows = con.execute(f'select columns(*)::varchar from "{view}"').fetchall()
            shown[view] = (columns, sorted(repr(row) for row in rows))
        return shown
    finally:
        con.close()


def test_rebuild_as_of_gives_the_lake_as_it_was(three: list[Path], tmp_path: Path) -> None:
    lake = open_lake(tmp_path / "lake", create=True)
    taken, shown = [], []
    for step in (0, 1, "rollback", 2):
        if step == "rollback":
            lake.rollback(1, "test")
        else:
            assert isinstance(step, int)
            lake.ingest(three[step])
        taken.append(frames(lake.root))
        shown.append(catalog(lake.root))
    for n, (then, views) in enumerate(zip(taken, shown, strict=True), start=1):
        folder = lake.rebuild(as_of=n, out=tmp_path / f"as-of-{n}")
        assert frames(folder) == then
        assert catalog(folder) == views  # its lake.duckdb: every view, column and row
    now = frames(lake.root)
    default = lake.rebuild(as_of=2)
    assert default == lake.root / "as-of-000002" and frames(default) == taken[1]
    assert frames(lake.root) == now  # the lake itself is untouched


def test_rebuild_as_of_writes_only_where_it_may(three: list[Path], tmp_path: Path) -> None:
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(three[0])
    other = open_lake(tmp_path / "other", create=True)
    other.ingest(three[1])
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "mine.txt").write_text("keep me")
    for folder in (notes, other.root, lake.root, lake.root / "raw"):
        with pytest.raises(LakeError, match="not empty"):
            lake.rebuild(as_of=1, out=folder)
    assert (notes / "mine.txt").read_text() == "keep me"
    again = lake.rebuild(as_of=1, out=tmp_path / "then")
    assert lake.rebuild(as_of=1, out=again) == again  # over an earlier one: fine


def test_another_lakes_derived_state_is_never_trusted(three: list[Path], tmp_path: Path) -> None:
    """A `_derived.json` copied from another lake (or a moved one) makes a full derive."""
    a, b = open_lake(tmp_path / "a", create=True), open_lake(tmp_path / "b", create=True)
    a.ingest(three[0])
    b.ingest(three[1])
    shutil.copy(a.root / "_derived.json", b.root / "_derived.json")
    shutil.copytree(a.root / "frames", b.root / "frames", dirs_exist_ok=True)
    b.ingest(three[2])
    built = frames(b.root)
    b.rebuild()
    assert frames(b.root) == built


def test_an_update_rewrites_only_the_days_it_touches(tmp_path: Path) -> None:
    late = _days(tmp_path, "late", date(2026, 12, 20), seed=71)
    written = []
    for days in (3, 12):  # a small lake and a larger one take the same new day
        lake = open_lake(tmp_path / f"lake{days}", create=True)
        lake.ingest(_days(tmp_path, f"early{days}", date(2026, 11, 2), seed=70, days=days))
        before = {p: p.stat().st_mtime_ns for p in (lake.root / "frames").rglob("*.parquet")}
        lake.ingest(late)
        after = {p: p.stat().st_mtime_ns for p in (lake.root / "frames").rglob("*.parquet")}
        new = {p for p in after if before.get(p) != after[p]}
        assert all(p.name.startswith(("2026-12-20-", "all-", "b000002", "empty-"))
                   or (p.parent.parent.name == "teams" and p.name[:8] == "2026-12-")  # its month
                   for p in new)
        assert set(before) - set(after) <= {p for p in before if p.name.startswith("all-")}
        written.append(len(new))
    assert written[0] == written[1]  # the cost follows the batch, not the lake


def test_history_says_where_an_observation_came_from(three: list[Path], tmp_path: Path) -> None:
    import duckdb

    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(three[0])
    lake.rollback(1, "test")
    lake.ingest(three[1])
    observation = lake.table("observations")["observation_id"][0]
    history = lake.table("history")
    assert history.columns[:2] == ["batch", "committed_at"]
    assert history.height == sum(len(b.files) for b in lake.batches())
    con = duckdb.connect(str(lake.root / "lake.duckdb"), read_only=True)
    try:
        came = con.execute("select batch, outcome, rolled_back from history "
                           "where observation_id = ?", [observation]).fetchall()
        assert came and all(outcome in {"added", "duplicate"} for _, outcome, _ in came)
        assert con.execute("select count(*) from history where rolled_back").fetchone() == (
            len(lake.batches()[0].files),)
    finally:
        con.close()


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four days with re-uploads, conflicted copies and corrected versions."""
    root = tmp_path_factory.mktemp("replay")
    simulate(root / "inbox", days=4, seed=81, observers=2)
    return root / "inbox"


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_replay_in_batches_equals_rebuild_at_every_step(folder: Path, data: st.DataObject) -> None:
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    order = data.draw(st.permutations(files))
    cuts = sorted(data.draw(st.sets(st.integers(1, len(files) - 1), min_size=1, max_size=4)))
    with tempfile.TemporaryDirectory() as scratch:
        inbox, lake = Path(scratch) / "inbox", open_lake(Path(scratch) / "lake", create=True)
        taken = []
        for start, end in zip([0, *cuts], [*cuts, len(files)], strict=True):
            for path in order[start:end]:  # these files arrive now
                (inbox / path.relative_to(folder)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, inbox / path.relative_to(folder))
            lake.ingest(inbox)
            entries = lake.entries()
            effective = in_effect(entries)
            changing = [e.batch for e in entries if in_effect(
                [*entries, Rollback(batch=len(entries) + 1, committed_at=datetime.now(UTC),
                                    target=e.batch, reason="")]) != effective]
            if changing and data.draw(st.booleans(), label="roll one back"):
                lake.rollback(data.draw(st.sampled_from(changing)), "replay")
            taken.append((len(lake.entries()), frames(lake.root)))
        for entries, then in taken:
            assert frames(lake.rebuild(as_of=entries, out=Path(scratch) / f"{entries}")) == then


def test_history_commands(three: list[Path], tmp_path: Path) -> None:
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(three[0])
    lake.ingest(three[1])
    where = ["--lake", str(lake.root)]
    back = run_cli("rollback", "2", "--reason", "wrong folder", *where)
    assert back.returncode == 0, back.stderr
    assert "Batch 3 rolls back batch 2" in back.stdout
    log = run_cli("log", *where)
    assert log.returncode == 0 and "rollback of 2" in log.stdout and "wrong folder" in log.stdout
    as_json = run_cli("log", "--json", *where)
    import json

    assert [e["rolled_back"] for e in json.loads(as_json.stdout)] == [False, True, False]
    shown = run_cli("show", "1", *where)
    first = lake.batches()[0].files[0]
    assert first.path in shown.stdout and first.sha256[:12] in shown.stdout
    travel = run_cli("rebuild", "--as-of", "1", "--out", str(tmp_path / "then"), *where)
    assert travel.returncode == 0, travel.stderr
    assert frames(tmp_path / "then") == frames(lake.rebuild(as_of=1))
    for bad, message in ((["rollback", "7", "--reason", "x"], "there is no batch 7"),
                         (["rollback", "2", "--reason", "x"], "changes nothing"),
                         (["show", "0"], "there is no batch 0")):
        failed = run_cli(*bad, *where)
        assert failed.returncode == 1 and message in failed.stderr, failed.stderr
        assert "Traceback" not in failed.stderr


def test_nothing_but_the_derived_layer_is_ever_rewritten(
    three: list[Path], tmp_path: Path,
) -> None:
    """Raw, quarantined and attached files and the log stay as first written, through
    ingests, rollbacks, rebuilds, time travel and verification."""
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(three[0])

    def kept() -> dict[Path, tuple[int, int, bytes]]:
        derived = {"frames", "as-of-000001", "lake.duckdb", "_derived.json", ".lock",
                   ".lock.holder"}
        return {p: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_bytes())
                for p in lake.root.rglob("*")
                if p.is_file() and p.relative_to(lake.root).parts[0] not in derived}

    first = kept()
    shutil.copytree(three[0], tmp_path / "again" / "copy")
    lake.ingest(tmp_path / "again")  # duplicates of everything
    lake.ingest(three[1])
    lake.rollback(1, "test")
    lake.rebuild()
    lake.rebuild(as_of=1)
    lake.verify(repair=True)
    now = kept()
    assert {p: now[p] for p in first} == first
