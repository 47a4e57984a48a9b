"""`rmg-lake watch`: files taken in as they arrive, a few batches for a burst, the morning's
work on time (a missed run once), a link that comes and goes, one watcher per lake, and a
stop at any moment that leaves the lake as a kill would: nothing is ever taken in twice.

The quiet period is a fraction of a second here; where a test's files arrive by the clock,
the watch's timer is the test's own (it moves only when the test says: no stall of a
loaded machine can end a burst), and so is the clock of the schedule."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import orjson
import pytest
from conftest import run_cli
from dropbox_fake import FakeDropbox

from rmg_lake import open_lake, simulate
from rmg_lake._internal.faults import SIGNAL_VARIABLE, VARIABLE
from rmg_lake.config import Config, Schedule
from rmg_lake.contract.models import FACTORY_TZ
from rmg_lake.deliver.backup import BackupResult, Pruned
from rmg_lake.deliver.publish import Published
from rmg_lake.errors import LakeUnusable
from rmg_lake.lake import IngestResult, Lake
from rmg_lake.sources import LocalFolder, Source
from rmg_lake.sources.dropbox import DropboxFolder
from rmg_lake.store.log import Batch
from rmg_lake.watch.link import Backoff
from rmg_lake.watch.loop import Stopped, Watcher
from rmg_lake.watch.schedule import STATE, Timetable

QUIET = 0.4  # seconds: the watch's quiet period in these tests


class Timer:
    """A watch's monotonic timer that stands still until the test moves it on."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def moved(self, seconds: float = QUIET) -> bool:
        """Move on by `seconds` (a quiet period), and let the watch see it: False, for
        `until`."""
        self.now += seconds
        time.sleep(0.05)
        return False


class Heard:
    """What a watch told its listener, as it came."""

    def __init__(self) -> None:
        self.results: list[IngestResult] = []
        self.reports: list[Published] = []
        self.backups: list[BackupResult] = []
        self.notes: list[str] = []
        self.statuses: list[str] = []

    def ingested(self, result: IngestResult) -> None:
        self.results.append(result)

    def published(self, done: Published, unreached: list[str]) -> None:
        self.reports.append(done)

    def backed_up(self, done: BackupResult, pruned: Pruned | None, to: str) -> None:
        self.backups.append(done)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def idle(self, status: str) -> None:
        self.statuses.append(status)

    @property
    def batches(self) -> list[Batch]:
        return [batch for result in self.results for batch in result.batches]


def until(condition: Callable[[], object], timeout: float = 30, what: str = "") -> None:
    """Wait for `condition` to hold (failing after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout} s for {what or condition}"
        time.sleep(0.02)


@contextmanager
def watching(lake: Lake, source: Source, **options: object) -> Iterator[Heard]:
    """A watch running in a thread for the `with` block, then stopped."""
    heard = Heard()
    options.setdefault("quiet", QUIET)
    watcher = Watcher(lake, source, listener=heard,  # type: ignore[arg-type]
                      backoff=Backoff(first=0.05, cap=0.2), **options)
    ended: list[Stopped | BaseException] = []

    def run() -> None:
        try:
            ended.append(watcher.run())
        except BaseException as error:
            ended.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        until(lambda: heard.results or ended, what="the first ingest")
        yield heard
    finally:
        watcher.stop()
        thread.join(30)
    assert ended == [Stopped("Stopped.", None)]


def each_file_once(lake: Lake, inbox: Path) -> None:
    """Every file of `inbox` is in exactly one batch of the lake."""
    paths = [f.path for batch in lake.batches() for f in batch.files]
    assert sorted(paths) == sorted(p.relative_to(inbox).as_posix()
                                   for p in inbox.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def field(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A day of two observers' files (and photos), to copy into the watched folder."""
    folder = tmp_path_factory.mktemp("field") / "files"
    simulate(folder, days=1, observers=2, seed=23, bad_files=False)
    return folder


def arrive(files: list[Path], inbox: Path, gap: float = 0.02) -> None:
    """Files arriving one after the other, as a sync client writes them."""
    for file in files:
        shutil.copy2(file, inbox / file.name)
        time.sleep(gap)


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    (tmp_path / "inbox").mkdir()
    return tmp_path / "inbox"


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return open_lake(tmp_path / "lake", create=True)


# ------------------------------------------------------------------ a local folder


def test_files_arriving_in_bursts_become_a_batch_a_burst(
    field: Path, inbox: Path, lake: Lake,
) -> None:
    files, timer = sorted(field.glob("*.json"))[:24], Timer()
    with watching(lake, LocalFolder(inbox), timer=timer) as heard:
        for burst in range(3):
            arrive(files[burst * 8:(burst + 1) * 8], inbox)  # however slowly: no time passes
            until(lambda n=burst: timer.moved() or len(heard.batches) == n + 2,
                  what=f"burst {burst}")  # quiet periods pass, one by one
        for _ in range(5):
            timer.moved()  # and nothing more
    assert [b.counts["seen"] for b in heard.batches] == [0, 8, 8, 8]  # (1: the new lake)
    each_file_once(lake, inbox)


def test_a_file_still_being_written_waits_until_it_is_whole(
    field: Path, inbox: Path, lake: Lake,
) -> None:
    wip, timer = next(iter(sorted(field.glob("wip_*.json")))), Timer()
    data = wip.read_bytes()
    with watching(lake, LocalFolder(inbox), timer=timer) as heard:
        with (inbox / wip.name).open("wb") as file:  # written a piece at a time
            for start in range(0, len(data), len(data) // 12 + 1):
                file.write(data[start:start + len(data) // 12 + 1])
                file.flush()
                time.sleep(0.02)
        until(lambda: timer.moved() or len(heard.batches) == 2, what="the batch")
    (batch,) = heard.batches[1:]
    assert [(f.path, f.outcome) for f in batch.files] == [(wip.name, "added")]


def test_a_file_growing_unseen_is_taken_once_its_size_holds(
    field: Path, inbox: Path, lake: Lake, tmp_path: Path,
) -> None:
    """A file written through another name (a network drive's writer, say) makes no file
    event here: its size, looked at again after the quiet period, says it is not whole."""
    first_wip, wip = sorted(field.glob("wip_*.json"))[:2]
    (inbox / first_wip.name).write_bytes(first_wip.read_bytes()[:100])  # cut short
    data = wip.read_bytes()
    elsewhere, timer = tmp_path / "elsewhere", Timer()
    elsewhere.mkdir()
    with watching(lake, LocalFolder(inbox), timer=timer) as heard:
        (inbox / wip.name).write_bytes(data[:100])  # seen arriving, then grows unseen
        os.link(inbox / wip.name, elsewhere / wip.name)
        with (elsewhere / wip.name).open("ab") as file:
            for start in range(100, len(data), 200):  # a piece each half quiet period
                file.write(data[start:start + 200])
                file.flush()
                timer.moved(QUIET / 2)
        until(lambda: timer.moved() or len(heard.batches) == 2,
              what="the batch of the grown file")
    first, second = heard.batches
    assert [(f.path, f.outcome) for f in first.files] == [(first_wip.name, "quarantined")]
    assert [(f.path, f.outcome) for f in second.files] == [(wip.name, "added")]


def test_our_own_reads_and_folders_wake_nothing(field: Path, inbox: Path, lake: Lake) -> None:
    """An ingest reading the files, the reports and backups rmg-lake writes at the top of
    the folder, and the sync client's own files: no batch, no ingest."""
    arrive(sorted(field.glob("*.json"))[:3], inbox)
    with watching(lake, LocalFolder(inbox)) as heard:
        time.sleep(3 * QUIET)
        for ours in ("reports/2026-11-30-report.html", "backups/x.json",
                     ".dropbox.cache/part.json", "obs01/.DS_Store"):
            (inbox / ours).parent.mkdir(exist_ok=True)
            (inbox / ours).write_text("rmg-lake's or the client's own")
        time.sleep(3 * QUIET)
    assert len(heard.results) == 1  # the first ingest only


def test_two_watchers_one_lake(field: Path, inbox: Path, tmp_path: Path) -> None:
    """The second is refused, naming the first; ordinary commands go on beside it."""
    with subprocess.Popen([sys.executable, "-m", "rmg_lake", "watch", "--source", str(inbox),
                           "--lake", str(tmp_path / "lake"), "--quiet", "0.2"],
                          stdout=subprocess.PIPE, text=True) as first:
        _refused_beside(first, field, inbox, tmp_path / "lake")
    assert first.returncode == 0
    each_file_once(open_lake(tmp_path / "lake"), inbox)


def _refused_beside(first: subprocess.Popen[str], field: Path, inbox: Path,
                    lake_dir: Path) -> None:
    """While `first` watches: a second watch, and an ingest."""
    try:
        assert first.stdout is not None
        assert "Batch 1: no files in" in first.stdout.readline()
        second = run_cli("watch", "--source", str(inbox), "--lake", str(lake_dir))
        assert second.returncode == 1
        assert f"another `rmg-lake watch` is watching this lake (pid {first.pid} on " \
            in second.stderr
        with pytest.raises(LakeUnusable, match=f"pid {first.pid}"):
            Watcher(open_lake(lake_dir), LocalFolder(inbox)).run()
        arrive(sorted(field.glob("*.json"))[:2], inbox)
        beside = run_cli("ingest", "--source", str(inbox), "--lake", str(lake_dir))
        assert beside.returncode == 0, beside.stderr
        time.sleep(1)  # the watch, woken by the same files, finds them in the lake
        first.send_signal(signal.SIGTERM)
        rest = first.communicate(timeout=30)[0]
    finally:
        first.kill()
    assert "Stopped (SIGTERM)" in rest.splitlines()[-1]


def test_a_second_watcher_in_the_same_process_is_refused_too(inbox: Path, lake: Lake) -> None:
    with watching(lake, LocalFolder(inbox)), \
            pytest.raises(LakeUnusable, match=f"is watching this lake .pid {os.getpid()} "):
        Watcher(lake, LocalFolder(inbox)).run()


def test_on_a_terminal_a_status_line_while_it_waits(inbox: Path, tmp_path: Path) -> None:
    import pty

    main, terminal = pty.openpty()
    with subprocess.Popen([sys.executable, "-m", "rmg_lake", "watch", "--source", str(inbox),
                           "--lake", str(tmp_path / "lake")], stdin=terminal, stdout=terminal,
                          stderr=terminal, env=os.environ | {"TERM": "xterm",
                                                             "COLUMNS": "200"}) as run:
        os.close(terminal)
        shown = b""
        try:
            while b"Ctrl-C stops" not in shown:
                assert select.select([main], [], [], 30)[0], f"no status line: {shown!r}"
                shown += os.read(main, 4096)
            run.send_signal(signal.SIGTERM)
            assert run.wait(30) == 0
        finally:
            run.kill()
            os.close(main)
    assert f"Watching {inbox} for new files. Ctrl-C stops.".encode() in shown


def test_a_scheduled_backup_needs_a_place(
    inbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from conftest import run_in

    (tmp_path / "rmg-lake.toml").write_text(
        f'source = "{inbox}"\n\n[schedule]\nbackup = "20:00"\n')
    monkeypatch.chdir(tmp_path)
    refused = run_in(capsys, "watch")
    assert refused.returncode == 1
    assert refused.stderr == ("error: rmg-lake.toml: Value error, a scheduled backup needs "
                              "`backup`, the place it goes to\n")
    assert not (tmp_path / "lake").exists()


# ------------------------------------------------------------------ stopping


def _watch_process(inbox: Path, lake: Path, **env: str) -> subprocess.Popen[str]:
    """`rmg-lake watch` running (use it in a `with`: it closes its pipes)."""
    environment = {k: v for k, v in os.environ.items() if k not in (VARIABLE, SIGNAL_VARIABLE)}
    return subprocess.Popen([sys.executable, "-m", "rmg_lake", "watch", "--source",
                             str(inbox), "--lake", str(lake), "--quiet", "0.2"],
                            env=environment | env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize(("point", "says", "batches"), [
    ("before-commit", "its batch was not committed; the next run takes its files in", 1),
    ("after-commit", "batch 2 was committed, and stays", 2),
])
def test_a_signal_mid_ingest_leaves_the_batch_committed_or_not_and_says_which(
    field: Path, inbox: Path, tmp_path: Path, point: str, says: str, batches: int,
) -> None:
    lake = open_lake(tmp_path / "lake", create=True)
    lake.ingest(inbox)  # batch 1: the lake, empty
    shutil.copytree(field, inbox, dirs_exist_ok=True)
    with _watch_process(inbox, lake.root, **{VARIABLE: point, SIGNAL_VARIABLE: "TERM"}) as run:
        out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert out.splitlines()[-1].endswith(f"Stopped (SIGTERM) mid-ingest: {says}.")
    assert len(lake.batches()) == batches
    assert lake.verify().ok  # (what the stopped run wrote and did not commit: orphans)
    lake.ingest(inbox)
    each_file_once(lake, inbox)


@pytest.mark.parametrize(("sent", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 0)])
def test_a_signal_while_waiting_stops_at_once(
    inbox: Path, tmp_path: Path, sent: signal.Signals, code: int,
) -> None:
    with _watch_process(inbox, tmp_path / "lake") as run:
        try:
            assert run.stdout is not None
            assert "Batch 1: " in run.stdout.readline()  # the first ingest is done: waiting
            started = time.monotonic()
            run.send_signal(sent)
            out, err = run.communicate(timeout=30)
        finally:
            run.kill()
    assert time.monotonic() - started < 10
    assert run.returncode == code, err
    assert out.splitlines()[-1].endswith(f"Stopped ({sent.name}).")
    assert "Traceback" not in err


# ------------------------------------------------------------------ the schedule


def factory(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment of November 2026, factory time, as UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=FACTORY_TZ).astimezone(UTC)


def test_a_run_is_due_once_its_time_has_come_since_it_last_ran(tmp_path: Path) -> None:
    table = Timetable(tmp_path, Schedule.model_validate({"report": "07:00",
                                                         "backup": "20:00"}))
    assert table.due(factory(2, 6)) == ["report", "backup"]  # never ran
    table.ran("report", factory(2, 6))
    table.ran("backup", factory(2, 6))
    assert table.due(factory(2, 6, 59)) == []
    assert table.due(factory(2, 7)) == ["report"]  # its time, factory time
    table.ran("report", factory(2, 7, 1))
    assert table.due(factory(2, 19)) == []
    assert table.due(factory(5, 9)) == ["report", "backup"]  # days missed: due once
    table.ran("report", factory(5, 9))
    table.ran("backup", factory(5, 9))
    assert table.due(factory(5, 19, 59)) == []
    assert table.next(factory(5, 9)) == factory(5, 20)
    assert orjson.loads((tmp_path / STATE).read_bytes()) == {
        "report": factory(5, 9).isoformat(), "backup": factory(5, 9).isoformat()}


def test_a_laptop_asleep_for_days_reports_and_backs_up_once_on_waking(
    field: Path, inbox: Path, lake: Lake, tmp_path: Path,
) -> None:
    arrive(sorted(field.glob("*.json"))[:6], inbox, gap=0)
    schedule = Schedule.model_validate({"report": "07:00", "backup": "20:00"})
    table = Timetable(lake.root, schedule)
    table.ran("report", factory(1, 7, 5))
    table.ran("backup", factory(1, 20, 1))
    now = [factory(2, 6)]
    config = Config(schedule=schedule, backup=str(tmp_path / "usb"))
    with watching(lake, LocalFolder(inbox), config=config, clock=lambda: now[0],
                  tick=0.05) as heard:
        time.sleep(0.5)
        assert heard.reports == heard.backups == []  # 06:00: nothing due
        now[0] = factory(2, 7, 30)
        until(lambda: heard.reports, what="the 07:00 report")
        now[0] = factory(5, 9)  # the lid closed at 07:30 on the 2nd, opened the 5th
        until(lambda: len(heard.reports) == 2 and heard.backups, what="the missed runs")
        time.sleep(0.5)
    assert [Path(r.page).name for r in heard.reports] == ["2026-11-02-report.html",
                                                          "2026-11-05-report.html"]
    assert len(heard.backups) == 1
    assert len(list((tmp_path / "usb" / "backups").glob("*.json"))) == 1
    assert table.last_runs() == {"report": factory(5, 9), "backup": factory(5, 9)}


def test_the_scheduled_report_publishes_the_delta_tables_too(
    field: Path, inbox: Path, lake: Lake, tmp_path: Path,
) -> None:
    """As `ingest --report` does with `publish` in rmg-lake.toml."""
    from deltalake import DeltaTable

    arrive(sorted(field.glob("*.json"))[:6], inbox, gap=0)
    schedule = Schedule.model_validate({"report": "07:00"})
    Timetable(lake.root, schedule).ran("report", factory(1, 7, 5))
    config = Config(schedule=schedule, publish=str(tmp_path / "shared"))
    with watching(lake, LocalFolder(inbox), config=config, clock=lambda: factory(2, 7, 30),
                  tick=0.05) as heard:
        until(lambda: heard.reports and any("Delta" in n for n in heard.notes),
              what="the report and the tables")
    batches = len(lake.entries())
    assert DeltaTable(tmp_path / "shared" / "observations").version() == batches >= 1
    assert f"Published batches 1 to {batches} to the Delta tables" in " ".join(heard.notes)


def test_a_report_due_while_the_watch_was_stopped_runs_once_at_start(
    field: Path, inbox: Path, tmp_path: Path,
) -> None:
    arrive(sorted(field.glob("*.json"))[:6], inbox, gap=0)
    (tmp_path / "rmg-lake.toml").write_text(
        f'source = "{inbox}"\nlake = "lake"\nbackup = "usb"\n\n'
        '[schedule]\nreport = "07:00"\nbackup = "20:00"\n')
    lake = open_lake(tmp_path / "lake", create=True)
    days_ago = datetime.now(UTC) - timedelta(days=3)
    Timetable(lake.root, Schedule()).path.write_bytes(orjson.dumps(
        {"report": days_ago.isoformat(), "backup": days_ago.isoformat()}))
    started = datetime.now(UTC)
    with subprocess.Popen([sys.executable, "-m", "rmg_lake", "watch", "--quiet", "0.2"],
                          cwd=tmp_path, stdout=subprocess.PIPE, text=True) as run:
        try:
            said = lines_of(run)
            until(lambda: " Backup: " in "".join(said), timeout=120, what="the backup")
            time.sleep(1)  # … and nothing more
            run.send_signal(signal.SIGTERM)
            assert run.wait(30) == 0
        finally:
            run.kill()
    text = "".join(said)
    assert text.count(" Report: ") == 1 and text.count(" Backup: ") == 1, text
    assert len(list((lake.root / "reports").glob("*-report.html"))) == 1
    assert len(list((tmp_path / "usb" / "backups").glob("*.json"))) == 1
    assert all(ran >= started for ran in Timetable(lake.root, Schedule()).last_runs().values())


def lines_of(run: subprocess.Popen[str]) -> list[str]:
    """The lines `run` writes on stdout, as they come (read in a thread)."""
    lines: list[str] = []

    def read(out: IO[str]) -> None:
        for line in out:
            lines.append(line)

    assert run.stdout is not None
    threading.Thread(target=read, args=(run.stdout,), daemon=True).start()
    return lines


# ------------------------------------------------------------------ Dropbox

ROOT = "/Apps/RMG Observer"


@pytest.fixture
def fake() -> Iterator[FakeDropbox]:
    with FakeDropbox() as server:
        yield server
        assert server.errors == []


def upload(fake: FakeDropbox, files: list[Path]) -> None:
    for file in files:
        fake.put(f"{ROOT}/{file.name}", file.read_bytes())


@pytest.fixture
def dropbox_folder(fake: FakeDropbox, field: Path) -> DropboxFolder:
    """The study's folder, holding a photo already."""
    upload(fake, sorted(field.glob("*.jpg"))[:1])
    return DropboxFolder(f"dropbox:{ROOT}", fake.client())


def test_dropbox_arrivals_come_by_longpoll_not_by_listing(
    fake: FakeDropbox, dropbox_folder: DropboxFolder, field: Path, lake: Lake,
) -> None:
    files = sorted(field.glob("*.json"))[:12]
    with watching(lake, dropbox_folder) as heard:
        until(lambda: "/2/files/list_folder/longpoll" in fake.requests, what="a long-poll")
        upload(fake, files[:6])
        until(lambda: len(heard.batches) == 2, what="the first upload's batch")
        fake.requests.clear()
        time.sleep(1)  # idle: waiting on the long-poll, listing nothing
        assert not {"/2/files/list_folder", "/2/files/list_folder/continue"} & set(
            fake.requests)
        upload(fake, files[6:])
        until(lambda: len(heard.batches) == 3, what="the second upload's batch")
    assert [b.counts["seen"] for b in heard.batches] == [1, 6, 6]
    assert heard.batches[-1].cursor == lake.cursor(f"dropbox:{ROOT}")


def test_a_link_gone_for_a_while_loses_nothing_and_says_so_twice(
    fake: FakeDropbox, dropbox_folder: DropboxFolder, field: Path, lake: Lake,
) -> None:
    """Gone while the watch waits, and gone while it ingests: each time a line when it
    goes and one when it is back, and every file once."""
    files = sorted(field.glob("*.json"))[:15]
    with watching(lake, dropbox_folder) as heard:
        until(lambda: "/2/files/list_folder/longpoll" in fake.requests, what="a long-poll")
        fake.go_offline()
        upload(fake, files[:5])  # uploaded by the tablets while the laptop is offline
        until(lambda: fake.dropped_offline >= 5, what="tries while offline")
        fake.go_online()
        upload(fake, files[5:10])
        until(lambda: sum(b.counts["seen"] for b in heard.batches) == 11, what="the files")
        assert len(heard.notes) == 2, heard.notes
        upload(fake, files[10:])
        until(lambda: len(heard.statuses) > 1 and "settle" in heard.statuses[-1],
              what="files settling")
        fake.go_offline()  # before the ingest: it fails, and is tried again
        until(lambda: len(heard.notes) == 3, what="the link gone")
        time.sleep(4 * QUIET)
        fake.go_online()
        until(lambda: sum(b.counts["seen"] for b in heard.batches) == 16, what="every file")
        time.sleep(2 * QUIET)
    assert [note.split(" (")[0].split(", after")[0] for note in heard.notes] == [
        f"dropbox:{ROOT} cannot be reached", f"dropbox:{ROOT} can be reached again"] * 2
    paths = [f.path for batch in lake.batches()[1:] for f in batch.files]
    assert sorted(paths) == sorted(file.name for file in files)  # each once


def test_an_ingest_the_link_cut_short_is_tried_again(
    fake: FakeDropbox, dropbox_folder: DropboxFolder, field: Path, lake: Lake,
) -> None:
    """The long-poll gets through, the listing does not (five times over): the ingest is
    tried again after a wait."""
    files = sorted(field.glob("*.json"))[:4]
    with watching(lake, dropbox_folder) as heard:
        until(lambda: "/2/files/list_folder/longpoll" in fake.requests, what="a long-poll")
        fake.inject("drop", times=8, route="/2/files/list_folder/continue")
        upload(fake, files)
        until(lambda: sum(b.counts["seen"] for b in heard.batches) == 5, what="the files")
    assert [note.split(" (")[0].split(", after")[0] for note in heard.notes] == [
        f"dropbox:{ROOT} cannot be reached", f"dropbox:{ROOT} can be reached again"]
    assert fake.injected["drop"] == 8


# ------------------------------------------------------------------ the service


def test_install_writes_a_user_unit_and_says_how_to_run_it(
    inbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from conftest import run_in

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    odd = tmp_path / "100% field $data"  # a name with a space, % and $
    inbox.rename(odd)
    installed = run_in(capsys, "watch", "--install", "--source", str(odd), "--lake",
                       str(tmp_path / "lake"))
    assert installed.returncode == 0, installed.stderr
    unit = tmp_path / "config" / "systemd" / "user" / "rmg-lake-watch.service"
    text = unit.read_text()
    assert f'"{odd}"'.replace("%", "%%").replace("$", "$$") in text
    assert f"ExecStart={sys.executable} -m rmg_lake watch --source " in text
    assert "Restart=on-failure" in text and f"WorkingDirectory={Path.cwd()}" in text
    for says in ("systemctl --user daemon-reload && systemctl --user enable --now "
                 "rmg-lake-watch", "systemctl --user disable --now rmg-lake-watch",
                 "journalctl --user -u rmg-lake-watch -f"):
        assert says in installed.stdout
    assert not (tmp_path / "lake").exists()  # installing makes no lake
    _systemd_accepts(unit)
    removed = run_in(capsys, "watch", "--uninstall")
    assert removed.returncode == 0 and not unit.exists()
    assert "systemctl --user stop rmg-lake-watch" in removed.stdout


def _systemd_accepts(unit: Path) -> None:
    """`systemd-analyze verify` finds nothing to say about the unit (where there is one)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here: the unit is not verified")
    checked = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                             timeout=60, check=False)
    if "Failed to initialize manager" in checked.stderr:
        pytest.skip(f"systemd-analyze cannot run here: {checked.stderr.strip()}")
    assert checked.returncode == 0 and checked.stderr == "", checked.stderr


def test_on_macos_a_launchd_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import plistlib

    from rmg_lake.watch.service import install

    monkeypatch.setenv("HOME", str(tmp_path))
    command = ["/usr/local/bin/rmg-lake", "watch", "--lake", "/Users/r/lake"]
    service = install(command, Path("/Users/r/study"), platform="darwin")
    agent = plistlib.loads(service.path.read_bytes())
    assert service.path == tmp_path / "Library" / "LaunchAgents" / "org.rmg-lake.watch.plist"
    assert agent["ProgramArguments"] == command and agent["RunAtLoad"] is True
    assert agent["WorkingDirectory"] == "/Users/r/study"
    assert service.start.startswith("launchctl bootstrap gui/$(id -u) ")
    assert service.log == f"tail -f {tmp_path}/Library/Logs/rmg-lake-watch.log"
