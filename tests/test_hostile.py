"""Hostile input: whatever lands in the sync folder, the run finishes, every file is
accounted for, and each bad one is quarantined with a reason a researcher understands."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rmg_lake import open_lake
from rmg_lake.contract import InvalidObservation, validate_file
from rmg_lake.sources import LocalFolder, SourceFile
from rmg_lake.store.log import Batch

DATA = Path(__file__).parent / "data"
BAD = sorted((DATA / "bad").iterdir())
GOOD = sorted((DATA / "good").iterdir())


def _case(case: Path) -> tuple[str, bytes, dict[str, str]]:
    """(the name it arrives under, its bytes, expected field and reason)."""
    file = next(p for p in case.iterdir() if p.name not in ("expected.txt", "name.txt"))
    name = (case / "name.txt").read_text() if (case / "name.txt").exists() else file.name
    expected = {}
    if (case / "expected.txt").exists():
        for line in (case / "expected.txt").read_text().splitlines():
            key, value = line.split(":", 1)
            expected[key] = value.strip()
    return name, file.read_bytes(), expected


def _accounted(batch: Batch, files: int) -> None:
    c = batch.counts
    assert c["seen"] == files == len(batch.files) + len(batch.deferred)
    assert c["seen"] == (c["added"] + c["duplicate"] + c["quarantined"] + c["attachment"]
                         + c["deferred"])


def test_every_kind_of_bad_file_is_quarantined_with_its_reason(tmp_path: Path) -> None:
    inbox, placed = tmp_path / "inbox", {}
    for case in [*BAD, *GOOD]:
        name, data, expected = _case(case)
        if len(name.encode()) > 255:  # no disk holds such a name: tested through Dropbox
            continue
        path = inbox / case.name / name
        path.parent.mkdir(parents=True)
        path.write_bytes(data)
        placed[f"{case.name}/{name}"] = expected
    lake = open_lake(tmp_path / "lake", create=True)
    batch = lake.ingest(inbox).batch
    assert batch is not None
    _accounted(batch, len(placed))
    outcomes = {f.path: f for f in batch.files}
    for path, expected in placed.items():
        record = outcomes[path]
        if not expected:  # a good case (some repeat another's bytes)
            assert record.outcome in ("added", "duplicate"), (path, record.reason)
            continue
        assert record.outcome == "quarantined", path
        assert (record.field or "") == expected["field"], path
        assert expected["reason"] in (record.reason or ""), path
        assert (lake.root / record.stored).read_bytes() == \
            (inbox / path).read_bytes()  # the evidence, byte for byte
    assert len(BAD) >= 30


def test_links_are_never_followed_and_special_files_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "elsewhere" / "secret.json"
    secret.parent.mkdir()
    secret.write_text('{"worker_id": "w-never-in-the-lake"}')
    inbox = tmp_path / "inbox"
    (inbox / "obs01").mkdir(parents=True)
    (inbox / "obs01" / "photo.jpg").write_bytes(b"\xff\xd8 a photo")
    links = {"to-a-file-inside.jpg": "photo.jpg", "to-a-file-outside.json": str(secret),
             "to-a-folder-outside": str(secret.parent), "broken.json": "nowhere.json"}
    for name, target in links.items():
        (inbox / "obs01" / name).symlink_to(target)
    os.mkfifo(inbox / "obs01" / "pipe.json")  # reading it would wait for ever
    lake = open_lake(tmp_path / "lake", create=True)
    batch = lake.ingest(inbox).batch
    assert batch is not None
    _accounted(batch, 1 + len(links) + 1)
    records = {f.path.removeprefix("obs01/"): f for f in batch.files}
    for name, target in links.items():
        assert records[name].outcome == "quarantined"
        assert records[name].reason == f"a symbolic link (to {target}), not followed"
        assert (lake.root / records[name].stored).read_bytes() == target.encode()
    assert records["pipe.json"].reason == "not a regular file (a named pipe)"
    kept = b"".join(p.read_bytes() for p in lake.root.rglob("*") if p.is_file())
    assert b"w-never-in-the-lake" not in kept


def test_an_unreadable_file_is_deferred_then_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Permission denied (as the OS says it; root reads anything, so the tests say it for
    the OS when they run as root)."""
    name, data, _ = _case(DATA / "good" / "knitting-wip")
    locked = tmp_path / "inbox" / name
    locked.parent.mkdir()
    locked.write_bytes(data)
    locked.chmod(0)
    if os.geteuid() == 0:
        real_open = os.open

        def refuse(path: object, *args: object, **kwargs: object) -> int:
            if Path(str(path)) == locked:
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr("rmg_lake.sources.local.os.open", refuse)
    lake = open_lake(tmp_path / "lake", create=True)
    first = lake.ingest(tmp_path / "inbox").batch
    assert first is not None and first.counts["deferred"] == 1
    assert first.deferred[0].reason == "cannot be read (Permission denied); tried again next time"
    monkeypatch.undo()
    locked.chmod(0o644)
    second = lake.ingest(tmp_path / "inbox").batch
    assert second is not None and second.counts["added"] == 1


def test_a_file_that_changes_while_it_is_read_is_left_for_the_next_run(tmp_path: Path) -> None:
    name, data, _ = _case(DATA / "good" / "knitting-wip")
    growing = tmp_path / "inbox" / name
    growing.parent.mkdir()
    growing.write_bytes(data[: len(data) // 2])  # the sync client is still writing it

    class StillSyncing(LocalFolder):
        def list(self) -> Iterator[SourceFile]:
            yield from super().list()
            growing.write_bytes(data)  # … and finishes after the listing

    lake = open_lake(tmp_path / "lake", create=True)
    result = lake.ingest(StillSyncing(tmp_path / "inbox"))
    assert result.vanished == 1  # nothing torn was kept (the first batch holds settings)
    assert result.batch is not None and result.batch.files == ()
    again = lake.ingest(tmp_path / "inbox").batch
    assert again is not None and again.counts["added"] == 1


def test_large_files_are_kept_without_being_held_whole(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    huge = inbox / "wip_knitting_treatment_obs03_20261124T101500.json"
    with huge.open("wb") as out:  # 50 MB: a tablet bug, or a video saved as .json
        out.write(b'{"notes": "')
        for _ in range(50):
            out.write(b"x" * 2**20)
        out.write(b'"}')
    video = inbox / "wip_2026_11_24_10_15.mp4"
    video.write_bytes(os.urandom(12 * 2**20))
    lake = open_lake(tmp_path / "lake", create=True)
    tracemalloc.start()
    try:
        batch = lake.ingest(inbox).batch
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert batch is not None
    assert peak < 8 * 2**20  # neither file was ever held whole
    records = {f.path: f for f in batch.files}
    assert records[huge.name].outcome == "quarantined"
    assert records[huge.name].reason == ("larger than 10 MB (50 MB): kept, not read as an "
                                         "observation (max_file_mb in rmg-lake.toml)")
    assert records[video.name].outcome == "attachment"
    for path in (huge, video):
        kept = lake.root / records[path.name].stored
        assert kept.stat().st_size == path.stat().st_size
        assert records[path.name].sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert kept.read_bytes() == path.read_bytes()


@pytest.mark.parametrize("year", [2019, 2031])
def test_a_wrong_tablet_clock_is_accepted(tmp_path: Path, year: int) -> None:
    """A date years off is the quality checks' to flag, never a reason to quarantine."""
    name, data, _ = _case(DATA / "good" / "knitting-wip")
    moved = data.replace(b"2026-11-24T", f"{year}-11-24T".encode())
    name = name.replace("20261124", f"{year}1124")
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / name).write_bytes(moved)
    lake = open_lake(tmp_path / "lake", create=True)
    batch = lake.ingest(tmp_path / "inbox").batch
    assert batch is not None and batch.counts["added"] == 1
    assert str(lake.table("observations")["day"][0]) == f"{year}-11-24"


# -- fuzzing: payloads derived from valid ones -------------------------------------------

VALID = [_case(case)[:2] for case in GOOD if case.name != "conflicted-copy-name"]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8)


def _paths(value: object, prefix: tuple[object, ...] = ()) -> Iterator[tuple[object, ...]]:
    yield prefix
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from _paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _paths(inner, (*prefix, i))


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    """A valid file with one value replaced, one key dropped, or its bytes cut or flipped."""
    name, data = draw(st.sampled_from(VALID))
    how = draw(st.sampled_from(["replace", "drop", "cut", "flip"]))
    if how in ("cut", "flip"):
        at = draw(st.integers(0, len(data) - 1))
        if how == "cut":
            return name, data[:at]
        return name, data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
    payload = json.loads(data.removeprefix(b"\xef\xbb\xbf"))
    path = draw(st.sampled_from([p for p in _paths(payload) if p]))
    parent = payload
    for part in path[:-1]:
        parent = parent[part]
    if how == "drop":
        del parent[path[-1]]
    else:
        parent[path[-1]] = draw(JSON)
    return name, json.dumps(payload, allow_nan=True).encode()


@settings(max_examples=300, deadline=None)
@given(mutated())
def test_fuzzed_payloads_are_valid_or_quarantined_never_a_crash(case: tuple[str, bytes]) -> None:
    name, data = case
    try:
        validate_file(f"obs03/{name}", data)
    except InvalidObservation as error:
        assert error.message and error.file == f"obs03/{name}"


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated(), min_size=1, max_size=12))
def test_a_folder_of_fuzzed_files_is_ingested_and_accounted_for(
    cases: list[tuple[str, bytes]],
) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        inbox = Path(scratch) / "inbox"
        for n, (name, data) in enumerate(cases):
            (inbox / f"copy{n}").mkdir(parents=True)
            (inbox / f"copy{n}" / name).write_bytes(data)
        lake = open_lake(Path(scratch) / "lake", create=True)
        batch = lake.ingest(inbox).batch
        assert batch is not None
        _accounted(batch, len(cases))
        assert lake.table("observations").height <= batch.counts["added"]
        assert lake.verify().ok
        shutil.rmtree(lake.root / "frames")
        lake.rebuild()  # whatever was accepted derives


@pytest.mark.slow  # `just slow`: about two minutes
def test_memory_stays_bounded_with_100000_files(tmp_path: Path) -> None:
    """Files are streamed through, never all held: the peak follows the metadata of the
    batch (about 4.5 kB a file), not the files' bytes."""
    import resource
    import subprocess
    import sys

    from rmg_lake import simulate

    made = simulate(tmp_path / "inbox", days=1070, observers=8, seed=5)
    assert made.files >= 100_000
    run = subprocess.run([sys.executable, "-m", "rmg_lake", "ingest", "--source",
                          str(tmp_path / "inbox"), "--lake", str(tmp_path / "lake")],
                         capture_output=True, text=True, check=False, timeout=1800)
    assert run.returncode == 0, run.stderr
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    held = sum(p.stat().st_size for p in (tmp_path / "inbox").rglob("*") if p.is_file())
    assert peak < 1024 * 2**20, f"{peak / 2**20:.0f} MB at the peak for {held / 2**20:.0f} MB"


def test_the_size_limit_comes_from_the_config(tmp_path: Path) -> None:
    from conftest import run_cli

    name, data, _ = _case(DATA / "good" / "knitting-wip")
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / name).write_bytes(data)  # about 1 kB
    (tmp_path / "rmg-lake.toml").write_text('source = "inbox"\nmax_file_mb = 0.0005\n')
    run = run_cli("ingest", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert f"larger than 524 bytes ({len(data)} bytes)" in run.stdout


def test_a_socket_is_quarantined_not_deferred(tmp_path: Path) -> None:
    import socket

    (tmp_path / "inbox").mkdir()
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(tmp_path / "inbox" / "agent.sock"))
        lake = open_lake(tmp_path / "lake", create=True)
        batch = lake.ingest(tmp_path / "inbox").batch
    assert batch is not None and batch.counts["quarantined"] == 1
    assert batch.files[0].reason == "not a regular file (a socket)"


def test_device_files_are_quarantined_never_read(tmp_path: Path) -> None:
    """A character device like /dev/zero (read, it would never end) and a block device."""
    import stat

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    try:
        os.mknod(inbox / "zero.json", stat.S_IFCHR | 0o600, os.makedev(1, 5))
        os.mknod(inbox / "disk.jpg", stat.S_IFBLK | 0o600, os.makedev(7, 0))
    except PermissionError:
        pytest.skip("making a device file needs root (CAP_MKNOD)")
    lake = open_lake(tmp_path / "lake", create=True)
    batch = lake.ingest(inbox).batch
    assert batch is not None and batch.counts["quarantined"] == 2
    assert {f.path: f.reason for f in batch.files} == {
        "zero.json": "not a regular file (a character device)",
        "disk.jpg": "not a regular file (a block device)"}


def test_a_large_file_cut_short_by_a_crash_is_kept_whole_next_time(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    video = tmp_path / "inbox" / "wip_2026_11_24_10_15.mp4"
    video.write_bytes(os.urandom(11 * 2**20))
    digest = hashlib.sha256(video.read_bytes()).hexdigest()
    lake = open_lake(tmp_path / "lake", create=True)
    left = lake.root / "attachments" / f"{digest}.mp4"
    left.parent.mkdir(mode=0o700)  # (as rmg-lake makes its folders)
    left.write_bytes(b"")  # what a power cut before the sync can leave
    batch = lake.ingest(tmp_path / "inbox").batch
    assert batch is not None and batch.files[0].stored == f"attachments/{digest}.mp4"
    assert left.read_bytes() == video.read_bytes()
    assert lake.verify().ok
